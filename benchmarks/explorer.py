"""The interactive map in headless Chromium (software WebGL): page size and time to first render.

    python benchmarks/explorer.py --page runs/<run id>/explorer.html      # a run's logged page, as it is
    python benchmarks/explorer.py --points 10000 1000000 --regl regl.js    # bare points: ours, regl-scatterplot
    python benchmarks/explorer.py --view 1000000                           # drlim view of an embeddings folder
    python benchmarks/explorer.py --screenshot docs/images/explorer.png --page runs/<run id>/explorer.html

``--page``: the file's size and the time from navigation to the first picture on screen (``window.drlim.
firstRenderMs``: two animation frames after the points were drawn), median of ``--repeat`` fresh browsers.

``--points N``: N clustered 2-D points with a label, drawn by this project's page (inline, one HTML file) and by
regl-scatterplot, a WebGL scatter library, the same points inlined as base64 in both. ``--regl FILE``: the
library and its dependencies bundled into one script (skipped without it), made in a scratch folder with
``npm install regl-scatterplot@1.16.0 esbuild@0.25``, an ``entry.js`` holding ``import c from 'regl-scatterplot';
window.createScatterplot = { default: c };`` and ``npx esbuild entry.js --bundle --minify --format=iife
--outfile=regl.js`` (the package's own UMD build failed at 1M points here: its index worker lacks a helper).

``--view N``: an embeddings folder of N such points (four Parquet parts) served by ``drlim view``: its start-up
(reading and encoding, until it prints the address), the page's first render and the bytes it fetched.

``--screenshot PNG``: the first ``--page`` as a person sees it after clicking the training sample with the most
similar pairs and hovering a held-out sample near it (the README's picture).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.evaluate.embeddings import embeddings_table
from pipeline.explore.page import write_page
from pipeline.explore.points import MapPoints

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the browser the tests drive (tests/ is not installed)
from tests.pipeline.explore.browser import chromium, wait_until  # noqa: E402


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    centres = rng.normal(0, 10, (10, 2))
    return (centres[labels] + rng.normal(0, 1, (n, 2))).astype(np.float32), labels


def first_render(url: str, ready: str = "window.drlim && window.drlim.firstRenderMs", repeat: int = 3) -> dict:
    """Median over ``repeat`` fresh browsers of the page's own figure (``ready``'s value, ms after navigation
    start) and of the wall time from ``driver.get`` to it."""
    page_ms, wall_ms = [], []
    for _ in range(repeat):
        with chromium() as driver:
            start = time.perf_counter()
            driver.get(url)
            page_ms.append(float(wait_until(driver, ready, timeout=300)))
            wall_ms.append(1000 * (time.perf_counter() - start))
    return {"first_render_ms": statistics.median(page_ms), "wall_ms": statistics.median(wall_ms), "runs": page_ms}


def regl_page(path: Path, points: np.ndarray, labels: np.ndarray, bundle: Path) -> Path:
    """The same points drawn by regl-scatterplot (``bundle``: the library and its dependencies in one script), the
    script and the data inline (one file, like ours)."""
    low, high = points.min(axis=0), points.max(axis=0)
    normal = (2 * (points - low) / (high - low) - 1).astype(np.float32)  # regl-scatterplot draws [-1, 1]
    data = base64.b64encode(np.ascontiguousarray(normal).tobytes()).decode()
    codes = base64.b64encode(labels.astype(np.uint8).tobytes()).decode()
    scripts = [bundle.read_text()]
    draw = f"""
      const bytes = (t) => Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
      const xy = new Float32Array(bytes("{data}").buffer), cat = bytes("{codes}");
      const n = cat.length, x = new Float32Array(n), y = new Float32Array(n), z = new Float32Array(n);
      for (let i = 0; i < n; i++) {{ x[i] = xy[2 * i]; y[i] = xy[2 * i + 1]; z[i] = cat[i]; }}
      const canvas = document.getElementById("c");
      const plot = createScatterplot.default({{ canvas, width: 979, height: 765, pointSize: 2, opacity: 0.5,
        colorBy: "category", pointColor: {
        json.dumps(
            [
                "#1f77b4",
                "#ff7f0e",
                "#2ca02c",
                "#d62728",
                "#9467bd",
                "#8c564b",
                "#e377c2",
                "#7f7f7f",
                "#bcbd22",
                "#17becf",
            ]
        )
    } }});
      plot.draw({{ x, y, z }}).then(() => requestAnimationFrame(() => requestAnimationFrame(() => {{
        window.reglFirstRenderMs = performance.now(); }})));
    """
    body = "".join(f"<script>{s}</script>" for s in [*scripts, draw])
    path.write_text(f'<!doctype html><html><body style="margin:0"><canvas id="c"></canvas>{body}</body></html>')
    return path


def measure_page(path: Path, repeat: int) -> dict:
    timing = first_render(path.resolve().as_uri(), repeat=repeat)
    return {"page": str(path), "bytes": path.stat().st_size, **timing}


def measure_points(n: int, bundle: Path | None, scratch: Path, repeat: int) -> list[dict]:
    points, labels = clustered(n)
    ours = write_page(scratch / f"ours-{n}.html", [MapPoints(points, np.arange(n), labels=labels, title=f"{n}")])
    rows = [{"renderer": "drlim explorer (own WebGL)", "points": n, **measure_page(ours, repeat)}]
    if bundle is not None:
        theirs = regl_page(scratch / f"regl-{n}.html", points, labels, bundle)
        timing = first_render(theirs.resolve().as_uri(), "window.reglFirstRenderMs", repeat)
        rows.append({"renderer": "regl-scatterplot 1.16", "points": n, "bytes": theirs.stat().st_size, **timing})
    return rows


def measure_view(n: int, scratch: Path, repeat: int) -> dict:
    folder = scratch / f"embeddings-{n}"
    folder.mkdir()
    points, labels = clustered(n)
    for part, rows in enumerate(np.array_split(np.arange(n), 4)):
        table = embeddings_table(rows, "input", labels[rows], points[rows])
        pq.write_table(table, folder / f"part-{part:05d}.parquet")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "view", str(folder), "--port", "0"],
        cwd=scratch,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "serving" in line:
                break
        startup = time.perf_counter() - start
        address = re.search(r"(http://\S+/)", line).group(1)  # type: ignore[union-attr]
        timing = first_render(address, repeat=repeat)
        from urllib.request import urlopen

        meta = json.loads(urlopen(address + "data/0/meta.json").read())
        sent = sum(len(urlopen(f"{address}data/0/blob/{name}").read()) for name in ("position", "id"))
        sent += sum(len(urlopen(f"{address}data/0/blob/{c['blob']}").read()) for c in meta["columns"])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    return {"points": n, "startup_s": startup, "bytes_fetched": sent, **timing}


# The training sample with the most similar pairs, all drawn, well inside the map; and a held-out sample near it.
PICK = """
const v = window.drlim.views[0], ds = v.ds, adj = ds.partners, split = ds.columns.split;
const r = v.canvas.getBoundingClientRect(), inside = (s) => s && s[0] > 80 && s[0] < r.width - 80 && s[1] > 80
  && s[1] < r.height - 80;
let anchor = -1;
for (let i = 0; i < ds.n; i++) if (adj.degree[i] > 0 && adj.start[i + 1] - adj.start[i] === adj.degree[i]
  && inside(v.screen(i)) && (anchor < 0 || adj.degree[i] > adj.degree[anchor])) anchor = i;
const at = v.screen(anchor), test = split.values.indexOf("test");
let near = -1, best = Infinity;
for (let i = 0; i < ds.n; i++) {
  const s = v.screen(i), d = s && (s[0] - at[0] - 60) ** 2 + (s[1] - at[1] + 60) ** 2;
  if (split.data[i] === test && inside(s) && d < best) { near = i; best = d; }
}
window.drlim.app.select(v, anchor);
return window.drlim.screenOf(0, ds.ids[near]);
"""


def screenshot(page: Path, out: Path) -> Path:
    from tests.pipeline.explore.browser import move_to

    with chromium() as driver:
        driver.get(page.resolve().as_uri())
        wait_until(driver, "window.drlim.ready", timeout=300)
        move_to(driver, *driver.execute_script(PICK))  # selects the anchor as a click would, hovers the other
        wait_until(driver, "!document.getElementById('tooltip').hidden")
        driver.save_screenshot(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page", type=Path, action="append", default=[], help="a written page to measure")
    parser.add_argument("--points", type=int, nargs="*", default=[], help="bare clustered points, both renderers")
    parser.add_argument("--view", type=int, nargs="*", default=[], help="points in a folder served by drlim view")
    parser.add_argument("--regl", type=Path, help="regl-scatterplot bundled into one script (see above)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh browsers per figure (median)")
    parser.add_argument("--screenshot", type=Path, help="write a picture of the first --page in use here (PNG)")
    args = parser.parse_args()
    if args.screenshot:
        print(f"wrote {screenshot(args.page[0], args.screenshot)}")
    with tempfile.TemporaryDirectory(prefix="drlim-explorer-bench-") as scratch:
        for page in args.page:
            print(json.dumps(measure_page(page, args.repeat)), flush=True)
        for n in args.points:
            for row in measure_points(n, args.regl, Path(scratch), args.repeat):
                print(json.dumps(row), flush=True)
        for n in args.view:
            print(json.dumps(measure_view(n, Path(scratch), args.repeat)), flush=True)


if __name__ == "__main__":
    main()
