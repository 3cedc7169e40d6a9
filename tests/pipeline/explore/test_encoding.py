import io

import numpy as np
from PIL import Image

from pipeline.explore.encoding import encode, sprite_png
from pipeline.explore.points import MapPoints, SimilarPairs


def _typed(blobs, meta, name, dtype=None):
    column = next((c for c in meta["columns"] if c["name"] == name), None)
    return np.frombuffer(blobs[column["blob"]] if column else blobs[name], dtype=dtype or column["dtype"])


def test_encode_writes_positions_ids_and_every_colour_column_as_typed_blobs():
    n = 30
    rng = np.random.default_rng(0)
    labels = np.array([9, 10, -1] * 10)
    points = MapPoints(
        rng.random((n, 3)),
        np.arange(100, 100 + n),
        labels=labels,
        split=np.array(["test"] * 20 + ["train"] * 10),
        transform=np.array([None, "shift_x=3"] * 15, dtype=object),
        metadata={"lighting": np.arange(n) % 3, "azimuth": np.arange(n) * 12.0, "camera": np.array(["a", "b"] * 15)},
        title="t",
    )
    meta, blobs = encode(points)
    assert meta["n"] == n and meta["dim"] == 3 and meta["id_dtype"] == "int32"
    assert np.array_equal(np.frombuffer(blobs["position"], np.float32).reshape(n, 3), points.embedding.astype("f4"))
    assert np.frombuffer(blobs["id"], np.int32).tolist() == list(range(100, 130))
    columns = {c["name"]: c for c in meta["columns"]}
    assert list(columns) == ["label", "split", "transform", "lighting", "azimuth", "camera"]
    assert columns["label"]["values"] == ["none", "9", "10"]  # numbers in numeric order; -1 is no label
    label = _typed(blobs, meta, "label")
    assert [columns["label"]["values"][c] for c in label[:3]] == ["9", "10", "none"]
    assert columns["transform"]["values"] == ["original", "shift_x=3"]
    assert columns["lighting"]["kind"] == "category" and columns["lighting"]["values"] == ["0", "1", "2"]
    assert columns["azimuth"] == {**columns["azimuth"], "kind": "number", "min": 0.0, "max": 348.0}
    assert np.array_equal(_typed(blobs, meta, "azimuth"), np.arange(n) * 12.0)
    assert "thumbnails" not in meta and "pairs" not in meta and "neighbours" not in meta


def test_the_first_view_frames_robust_quantiles_so_a_stray_does_not_set_the_scale():
    points = np.random.default_rng(0).normal(size=(1000, 2))
    points[0] = [500, -500]
    (x_low, x_high), (y_low, y_high) = encode(MapPoints(points, np.arange(1000)))[0]["frame"]
    assert -4 < x_low < -2 and 2 < x_high < 4 and -4 < y_low < -2 and 2 < y_high < 4


def test_thumbnails_go_on_one_sprite_where_the_page_finds_them_by_index():
    thumbs = np.zeros((7, 4, 5), np.float32)
    for i in range(7):
        thumbs[i, i % 4, i % 5] = 1.0  # one ink pixel per thumbnail, at a known place
    png, per_row = sprite_png(thumbs)
    sheet = np.asarray(Image.open(io.BytesIO(png)))
    assert per_row == 3 and sheet.shape == (3 * 4, 3 * 5)
    for i in range(7):
        cell = sheet[(i // per_row) * 4 : (i // per_row + 1) * 4, (i % per_row) * 5 : (i % per_row + 1) * 5]
        assert cell[i % 4, i % 5] == 0 and (cell == 0).sum() == 1  # ink is dark on white


def test_pairs_and_neighbours_travel_as_int32_rows():
    rows, source = np.array([[0, 1], [1, 2]]), np.array([0, 2], np.int8)
    pairs = SimilarPairs(rows, source, ["knn", "x", "transform"], np.array([1, 5, -1]))
    points = MapPoints(np.zeros((3, 2)), np.arange(3), pairs=pairs, neighbours=np.array([[1], [0], [-1]]))
    meta, blobs = encode(points)
    assert meta["pairs"] == {"count": 2, "sources": ["knn", "x", "transform"]} and meta["neighbours"] == {"k": 1}
    assert np.frombuffer(blobs["pairs"], "<i4").tolist() == [0, 1, 1, 2]
    assert np.frombuffer(blobs["pair_source"], np.uint8).tolist() == [0, 2]
    assert np.frombuffer(blobs["degree"], "<i4").tolist() == [1, 5, -1]
    assert np.frombuffer(blobs["neighbours"], "<i4").tolist() == [1, 0, -1]
