"""The explorer page in a real headless Chromium (software WebGL): it draws, hovers, recolours, draws a clicked
point's pairs and neighbours, turns in 3-D, links two maps, and works with the network cut."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.explore.page import write_page
from pipeline.explore.points import MapPoints, SimilarPairs, input_neighbours
from tests.pipeline.explore.browser import canvas_pixels, chromium, console, move_to, requested_urls, wait_until

pytestmark = pytest.mark.integration

SOURCES = ["knn", "prior", "transform", "transform_knn"]
KNN, TRANSFORM = (31, 119, 180), (255, 127, 14)  # the page's colours of those sources


def _digits(n: int, seed: int = 0) -> MapPoints:
    """Ten clusters of 'images' (a bar whose row is the label), with pairs from point 0 and input neighbours."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    centres = np.stack([np.cos(np.arange(10)), np.sin(np.arange(10))], 1) * 10
    embedding = centres[labels] + rng.normal(0, 0.8, (n, 2))
    embedding[0], embedding[10], embedding[20] = [0, 0], [4, 0], [0, 4]  # 0 is paired with 10 (kNN) and 20
    images = np.zeros((n, 28, 28), np.float32)
    for i, label in enumerate(labels):
        images[i, 2 + 2 * label : 5 + 2 * label, 4 + i % 7 : 20 + i % 7] = 1
    pairs = SimilarPairs(np.array([[0, 10], [0, 20]]), np.array([0, 2], np.int8), SOURCES, np.r_[2, [-1] * (n - 1)])
    pairs.degree[[10, 20]] = 1
    return MapPoints(
        embedding,
        np.arange(1000, 1000 + n),
        labels=labels,
        split=np.where(np.arange(n) < n // 2, "test", "train"),
        transform=np.array([None] * n, dtype=object),
        thumbnails=images,
        pairs=pairs,
        neighbours=input_neighbours(images, np.zeros(n), 5),
        title="digits",
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple:
    points = _digits(300)
    path = write_page(tmp_path_factory.mktemp("page") / "explorer.html", [points])
    with chromium(offline=True) as driver:
        requested_urls(driver)  # only the page's own requests from here on
        driver.get(path.as_uri())
        wait_until(driver, "window.drlim.ready")
        yield driver, points


def _severe(driver) -> list:
    return [entry for entry in console(driver) if entry["level"] == "SEVERE"]


def _ink(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., :3].min(axis=2) < 230


def test_the_page_loads_offline_without_an_error_and_draws_every_cluster(page):
    driver, points = page
    assert not _severe(driver) and driver.execute_script("return window.drlim.errors") == []
    # the network was cut before the page loaded: everything it asked for came from the file itself
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requested_urls(driver))
    pixels = canvas_pixels(driver)
    assert _ink(pixels).sum() > 1000
    for label in range(10):  # a point of every cluster is drawn in its label's colour
        i = int(np.flatnonzero(points.labels == label)[5])
        x, y = driver.execute_script(f"return window.drlim.views[0].screen({i})")
        patch = pixels[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2, :3].reshape(-1, 3)
        assert (patch.min(axis=1) < 230).any(), f"nothing drawn where point {i} (label {label}) is"
    assert driver.find_element("id", "status").text == "300 points"


def test_hovering_a_point_shows_its_label_and_its_thumbnail(page):
    driver, points = page
    i = 37
    move_to(driver, *driver.execute_script(f"return window.drlim.screenOf(0, {points.ids[i]})"))
    wait_until(driver, "!document.getElementById('tooltip').hidden")
    tip = driver.find_element("id", "tooltip")
    assert f"id {points.ids[i]} · label {points.labels[i]} · split test" in tip.text
    thumb = tip.find_element("css selector", ".thumb")
    shown = np.asarray(Image.open(io.BytesIO(thumb.screenshot_as_png)).convert("L"), dtype=np.float32)
    shown = shown[1:-1, 1:-1]  # inside the 1 px border: the thumbnail at 3x
    expected = 255 - np.kron(points.thumbnails[i], np.ones((3, 3))) * 255
    assert shown.shape == expected.shape and np.abs(shown - expected).mean() < 10
    move_to(driver, 5, 5)


def test_colouring_by_another_column_changes_the_picture_and_the_legend(page):
    driver, _ = page
    before = canvas_pixels(driver)
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "colour")).select_by_value("split")
    after = canvas_pixels(driver)
    assert (np.abs(before.astype(int) - after.astype(int)).sum(axis=2) > 60).sum() > 500
    legend = [li.text for li in driver.find_elements("css selector", "#legend li")]
    assert legend == ["test (150)", "train (150)"]
    driver.find_elements("css selector", "#legend li")[1].click()  # hide the training split
    hidden = canvas_pixels(driver)
    assert _ink(hidden).sum() < 0.7 * _ink(after).sum()
    driver.find_elements("css selector", "#legend li")[1].click()
    Select(driver.find_element("id", "colour")).select_by_value("label")


def test_the_label_filter_keeps_only_the_labels_asked_for(page):
    driver, points = page
    box = driver.find_element("id", "filter")
    box.send_keys("3")
    pixels = canvas_pixels(driver)
    shown = driver.execute_script("return Array.from(window.drlim.views[0].visible)")
    assert np.array_equal(np.array(shown, bool), points.labels == 3)
    assert _ink(pixels).sum() > 0
    box.clear()
    box.send_keys(" ")  # clear() sends no input event
    wait_until(driver, "window.drlim.views[0].visible.every((v) => v === 1)")


def test_clicking_a_point_draws_its_similar_pairs_by_source_and_its_neighbours(page):
    driver, points = page
    move_to(driver, *driver.execute_script(f"return window.drlim.screenOf(0, {points.ids[0]})"), click=True)
    wait_until(driver, f"window.drlim.selected() === {points.ids[0]}")
    details = driver.find_element("id", "details").text
    assert "Similar pairs: 2 in the pair set, 2 drawn" in details and "knn: 1" in details and "transform: 1" in details
    assert "of its 5 nearest in input space are among its 5 nearest on the map" in details
    overlay = driver.execute_script("return window.drlim.views[0].overlay.toDataURL('image/png')")
    import base64

    lines = np.asarray(Image.open(io.BytesIO(base64.b64decode(overlay.split(",")[1]))).convert("RGB"), dtype=int)
    for colour in (KNN, TRANSFORM):
        assert (np.abs(lines - colour).sum(axis=2) < 40).sum() > 20, f"no line in {colour}"
    corner = "const r = window.drlim.views[0].canvas.getBoundingClientRect(); return [r.left + 3, r.bottom - 3]"
    move_to(driver, *driver.execute_script(corner), click=True)  # nothing there: the selection is cleared
    wait_until(driver, "window.drlim.selected() === null")


def test_a_3d_map_turns_when_dragged(tmp_path):
    rng = np.random.default_rng(1)
    angle = rng.uniform(0, 2 * np.pi, 500)
    cylinder = np.stack([np.cos(angle), np.sin(angle), rng.uniform(-2, 2, 500)], 1)
    path = write_page(tmp_path / "cylinder.html", [MapPoints(cylinder, np.arange(500), metadata={"azimuth": angle})])
    with chromium(offline=True) as driver:
        driver.get(path.as_uri())
        wait_until(driver, "window.drlim.ready")
        assert not _severe(driver) and driver.find_element("id", "colour").get_attribute("value") == "azimuth"
        before = canvas_pixels(driver)
        from selenium.webdriver.common.action_chains import ActionChains

        canvas = driver.execute_script("return window.drlim.views[0].canvas")
        ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(120, 40).release().perform()
        after = canvas_pixels(driver)
        assert _ink(before).sum() > 500 and _ink(after).sum() > 500
        assert (np.abs(before.astype(int) - after.astype(int)).sum(axis=2) > 60).sum() > 500


def test_two_maps_side_by_side_select_the_same_sample(tmp_path):
    a, b = _digits(200, seed=0), _digits(200, seed=1)
    b.embedding = b.embedding[:, ::-1].copy()  # another map of the same samples
    b.title = "digits, another run"
    path = write_page(tmp_path / "two.html", [a, b], title="two runs")
    with chromium(offline=True) as driver:
        driver.get(path.as_uri())
        wait_until(driver, "window.drlim.ready")
        assert len(driver.find_elements("css selector", ".panel")) == 2 and not _severe(driver)
        move_to(driver, *driver.execute_script(f"return window.drlim.screenOf(1, {b.ids[42]})"))
        wait_until(driver, "!document.getElementById('tooltip').hidden")
        assert driver.find_elements("css selector", "#tooltip .thumb")  # b's thumbnails come from a's sprite
        move_to(driver, *driver.execute_script(f"return window.drlim.screenOf(1, {b.ids[42]})"), click=True)
        wait_until(driver, f"window.drlim.selected() === {b.ids[42]}")
        headings = [h.text for h in driver.find_elements("css selector", "#details h3")]
        assert headings == ["digits", "digits, another run"]  # the sample in both maps
        x, y = driver.execute_script("return window.drlim.views[0].screen(42)")
        ring = (
            "return window.drlim.views[0].overlay.getContext('2d')"
            f".getImageData({round(x) + 9}, {round(y)}, 1, 1).data[3]"
        )
        assert driver.execute_script(ring) > 0  # map 0 rings the sample clicked in map 1
