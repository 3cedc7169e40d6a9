import re

import numpy as np

from pipeline.explore.encoding import encode
from pipeline.explore.page import page_html, read_page, side_by_side, write_page
from pipeline.explore.points import MapPoints


def _points(title: str = "a map </script><b>", n: int = 12) -> MapPoints:
    rng = np.random.default_rng(0)
    return MapPoints(
        rng.random((n, 2)), np.arange(n), labels=np.arange(n) % 3, thumbnails=rng.random((n, 4, 4)), title=title
    )


def test_a_page_carries_its_maps_inline_and_reads_back_the_same_blobs(tmp_path):
    points = _points()
    page = write_page(tmp_path / "map.html", [points]).read_text()
    [(meta, blobs)] = read_page(page)
    expected_meta, expected_blobs = encode(points)
    assert meta == expected_meta and blobs == expected_blobs
    assert "<title>a map &lt;/script&gt;&lt;b&gt;</title>" in page
    assert page.count("</script>") == page.count("<script")  # the title did not end the config's script early


def test_the_page_needs_nothing_from_the_network():
    page = page_html("t", [encode(_points())])
    assert not re.findall(r"https?://|//cdn|@import|<link[^>]+href=\"(?!data:)", page)
    assert "drlim-0-position" in page and "drlim-0-sprite" in page


def test_a_served_page_names_where_its_maps_are_instead_of_carrying_them():
    page = page_html("t", urls=["data/0/", "data/1/"])
    assert '"datasets":[{"url":"data/0/"},{"url":"data/1/"}]' in page and "octet-stream" not in page


def test_two_maps_of_the_same_samples_share_one_sprite():
    a, b, other = encode(_points("a")), encode(_points("b")), encode(_points("c", n=10))
    (ma, ba), (mb, bb), (mc, bc) = side_by_side([a, b, other])
    assert "sprite" in ba and "thumbnails" in ma
    assert "sprite" not in bb and "thumbnails" not in mb  # the page finds b's thumbnails in a, by id
    assert "sprite" in bc  # other ids: keeps its own
