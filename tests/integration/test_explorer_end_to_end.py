"""The interactive map of a real run, as MLflow logged it, in a real headless Chromium; and ``drlim view`` of a
run and of a million embeddings, served on loopback, stopped with Ctrl-C."""

from __future__ import annotations

import io
import re
import signal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.data.store import SampleStore
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.evaluate.scoring import HeldOut
from pipeline.explore.page import read_page
from tests.integration.cli_runs import LiveOutput, start_drlim
from tests.pipeline.explore.browser import canvas_pixels, chromium, console, move_to, requested_urls, wait_until

pytestmark = pytest.mark.integration


def _logged_page(workdir, tmp_path) -> tuple[str, Path]:
    """The run id of the session's run and its explorer page as downloaded from MLflow."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run_id = client.get_model_version_by_alias("drlim-test", "champion").run_id
    return run_id, Path(client.download_artifacts(run_id, "plots/explorer.html", str(tmp_path)))


def _inside(driver, ids) -> int:
    """An id of ``ids`` drawn well inside the map's canvas (strays may lie past its edge)."""
    size = "const r = window.drlim.views[0].canvas.getBoundingClientRect(); return [r.width, r.height]"
    box = driver.execute_script(size)
    for sample in ids:
        spot = driver.execute_script(f"const v = window.drlim.views[0]; return v.screen(v.ds.ids.indexOf({sample}))")
        if spot and 40 < spot[0] < box[0] - 40 and 40 < spot[1] < box[1] - 40:
            return int(sample)
    raise AssertionError("no point inside the canvas")


def test_the_logged_page_of_a_real_run_shows_its_samples_and_their_pairs(mnist_run, tmp_path):
    _, page = _logged_page(mnist_run.workdir, tmp_path)
    [(meta, blobs)] = read_page(page.read_text())
    [store_dir] = (mnist_run.workdir / "samples").iterdir()
    held = HeldOut.load(SampleStore.open(store_dir))
    split = next(c for c in meta["columns"] if c["name"] == "split")
    codes = np.frombuffer(blobs[split["blob"]], split["dtype"])
    ids = np.frombuffer(blobs["id"], np.int32)
    degree = np.frombuffer(blobs["degree"], np.int32)
    assert (codes == split["values"].index("test")).sum() == len(held.ids) == 60  # every held-out sample
    assert (degree[codes == split["values"].index("train")] > 0).all()  # training samples, with their pairs
    with chromium(offline=True) as driver:
        requested_urls(driver)
        driver.get(page.as_uri())
        wait_until(driver, "window.drlim.ready")
        assert not [entry for entry in console(driver) if entry["level"] == "SEVERE"]
        assert all(url.startswith(("file:", "data:", "blob:")) for url in requested_urls(driver))
        assert (canvas_pixels(driver)[..., :3].min(axis=2) < 230).sum() > 300  # the points are drawn

        sample = _inside(driver, held.ids)
        i = int(np.flatnonzero(held.ids == sample)[0])
        move_to(driver, *driver.execute_script(f"return window.drlim.screenOf(0, {sample})"))
        wait_until(driver, "!document.getElementById('tooltip').hidden")
        tip = driver.find_element("id", "tooltip")
        assert f"id {sample} · label {held.labels[i]} · split test" in tip.text
        shown = Image.open(io.BytesIO(tip.find_element("css selector", ".thumb").screenshot_as_png)).convert("L")
        digit = 255 - held.features[i, 0] / held.features[i, 0].max() * 255  # the MNIST digit, ink dark
        assert np.abs(np.asarray(shown, np.float32)[1:-1:3, 1:-1:3] - digit).mean() < 12

        anchor = _inside(driver, ids[degree > 1])
        move_to(driver, *driver.execute_script(f"return window.drlim.screenOf(0, {anchor})"), click=True)
        wait_until(driver, f"window.drlim.selected() === {anchor}")
        wait_until(driver, "document.getElementById('details').textContent.includes('knn:')")
        assert re.search(r"Similar pairs: \d+ in the pair set, \d+ drawn", driver.find_element("id", "details").text)


def _serve(workdir, args: list[str]) -> tuple[LiveOutput, str]:
    live = LiveOutput(start_drlim(workdir, ["view", *args, "--port", "0"]))
    line = live.wait_for("serving ", timeout=300)
    return live, re.search(r"at (http://127\.0\.0\.1:\d+/)", line).group(1)


def _stop(live: LiveOutput) -> str:
    live.proc.send_signal(signal.SIGINT)
    out = live.finish(timeout=30)
    assert live.proc.returncode == 0 and "stopped" in out and "Traceback" not in out, out[-3000:]
    return out


def test_drlim_view_serves_a_run_by_its_id_and_by_its_model(mnist_run, tmp_path):
    run_id, _ = _logged_page(mnist_run.workdir, tmp_path)
    for target in (run_id, "models:/drlim-test@champion"):
        live, address = _serve(mnist_run.workdir, [target])
        try:
            with chromium() as driver:
                driver.get(address)
                wait_until(driver, "window.drlim.ready")
                assert driver.execute_script("return window.drlim.views[0].ds.meta.pairs.count") > 0
                assert not [entry for entry in console(driver) if entry["level"] == "SEVERE"]
        finally:
            _stop(live)


def test_drlim_view_renders_a_million_embeddings_from_a_parquet_folder(tmp_path):
    folder = tmp_path / "million"
    folder.mkdir()
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (10, 2))
    for part in range(4):  # clustered 2-D points, four parts of the embeddings schema
        ids = np.arange(part * 250_000, (part + 1) * 250_000)
        labels = rng.integers(0, 10, len(ids))
        points = (centres[labels] + rng.normal(0, 1, (len(ids), 2))).astype(np.float32)
        pq.write_table(embeddings_table(ids, "input", labels, points), folder / f"part-{part:05d}.parquet")
    live, address = _serve(tmp_path, [str(folder)])
    try:
        assert "serving 1,000,000 points" in "".join(live.lines)
        with chromium() as driver:
            driver.get(address)
            wait_until(driver, "window.drlim.firstRenderMs", timeout=120)
            assert driver.execute_script("return window.drlim.views[0].ds.n") == 1_000_000
            assert driver.find_element("id", "status").text == "1,000,000 points"
            pixels = canvas_pixels(driver)
            assert (pixels[..., :3].min(axis=2) < 230).mean() > 0.05  # ten dense clusters cover the canvas
            assert not [entry for entry in console(driver) if entry["level"] == "SEVERE"]
    finally:
        _stop(live)
