import numpy as np
from PIL import Image

from pipeline.evaluate.plots import (
    ink,
    marker_style,
    robust_limits,
    scatter_map,
    spread_out,
    thumbnail_map,
    tight_boxes,
)


def _coloured_pixels(path) -> int:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((rgb.max(axis=2) - rgb.min(axis=2) > 25).sum())


def test_ink_is_black_strokes_on_a_transparent_ground():
    image = np.array([[[0.0, 0.5], [1.0, 0.0]]], dtype=np.float32)  # (1, 2, 2), as the stores hold images
    rgba = ink(image)
    assert rgba.shape == (2, 2, 4)
    assert np.all(rgba[..., :3] == 0)
    assert rgba[..., 3].tolist() == [[0.0, 0.5], [1.0, 0.0]]
    assert np.all(ink(np.full((1, 3, 3), 7.0))[..., 3] == 0)  # a blank image draws nothing


def test_a_thumbnail_on_a_tight_cluster_leaves_its_points_visible(tmp_path):
    # A cluster far smaller than a thumbnail (two far points set the axes) and the thumbnail of one of its
    # samples (one grid cell; seed 0 picks a cluster sample), a short stroke in a corner: the cluster keeps most
    # of its coloured pixels, which an opaque white ground would cover.
    rng = np.random.default_rng(0)
    embedding = np.concatenate([rng.normal(scale=0.02, size=(300, 2)), [[-10.0, -10.0], [10.0, 10.0]]])
    images = np.zeros((302, 1, 28, 28), dtype=np.float32)
    images[:, :, 3, 2:6] = 1.0
    labels = np.zeros(302, dtype=int)
    points_only = thumbnail_map(embedding, images, labels, tmp_path / "points.png", "t", n=0)
    with_thumbnail = thumbnail_map(embedding, images, labels, tmp_path / "map.png", "t", n=1)
    assert _coloured_pixels(with_thumbnail) > 0.8 * _coloured_pixels(points_only) > 20


def test_thumbnails_spread_over_the_map_one_per_occupied_cell():
    rng = np.random.default_rng(1)
    dense = rng.normal(scale=0.01, size=(1000, 2))  # one tight cluster at the origin
    sparse = np.stack(np.meshgrid(np.linspace(1, 9, 5), np.linspace(1, 9, 5)), axis=-1).reshape(-1, 2)
    points = np.concatenate([dense, sparse, [[10.0, 10.0]]])
    chosen = spread_out(points, n=100)  # a 10 x 10 grid of cells 1 wide
    # The cluster once, and one of each other occupied cell: 25 grid points, the corner sharing (9, 9)'s cell.
    assert len(chosen) == len(np.unique(chosen)) == 1 + 25
    assert (chosen < 1000).sum() == 1
    assert len(spread_out(points, n=0)) == 0
    assert spread_out(points[:1], n=5).tolist() == [0]


def _tight_clusters(n_per: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per)
    points = rng.uniform(-100, 100, (10, 2))[labels] + rng.normal(0, 1, (len(labels), 2))
    points[0] = [5000.0, -5000.0]  # one stray far out
    return points, labels


def test_a_stray_does_not_set_the_limits_of_a_map():
    points, _ = _tight_clusters()
    limits = robust_limits(points)
    assert limits[0, 1] < 200 and limits[1, 0] > -200  # the stray at (5000, -5000) is beyond them


def test_points_get_smaller_and_fainter_where_they_crowd():
    rng = np.random.default_rng(0)
    limits = np.array([[0.0, 1.0], [0.0, 1.0]])
    spread = marker_style(rng.random((500, 2)), limits, area=400.0**2)
    crowded = marker_style(0.5 + rng.normal(0, 0.005, (20000, 2)), limits, area=400.0**2)
    assert crowded[0] < spread[0] and crowded[1] < spread[1]


def test_tight_classes_get_a_zoomed_inset_each_and_spread_ones_none(tmp_path):
    points, labels = _tight_clusters()
    limits = robust_limits(points)
    assert sorted(tight_boxes(points, labels, np.arange(10), limits)) == list(range(10))
    wide = np.random.default_rng(1).normal(size=(3000, 2))
    assert tight_boxes(wide, labels, np.arange(10), robust_limits(wide)) == {}
    tall = Image.open(scatter_map(points, labels, tmp_path / "tight.png", "t")).size
    square = Image.open(scatter_map(wide, labels, tmp_path / "wide.png", "t")).size
    assert tall[1] > 1.2 * square[1]  # two rows of insets under the map
