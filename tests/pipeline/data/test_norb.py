import numpy as np
import pytest

from pipeline.data.norb import NORB_FILES, load_norb_airplane, read_norb_matrix, render_airplane
from pipeline.errors import DataError


def write_matrix(path, array):
    """The NORB binary matrix format: magic, ndim, max(3, ndim) dims (little-endian int32), then the data."""
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54}[array.dtype]
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([magic, array.ndim, *dims], dtype="<i4").tobytes()
    path.write_bytes(header + array.astype(array.dtype.newbyteorder("<")).tobytes())


@pytest.fixture
def small_norb(tmp_path):
    folder = tmp_path / "norb"
    folder.mkdir()
    n = 8  # 4 airplane views of instance 4, 2 of instance 6, 2 trucks
    images = np.arange(n * 2 * 96 * 96, dtype=np.int64).reshape(n, 2, 96, 96) % 251
    category = np.array([2, 2, 2, 2, 2, 2, 3, 3], dtype=np.int32)
    info = np.array(
        [
            [4, 0, 0, 0],
            [4, 8, 34, 5],
            [4, 2, 10, 1],
            [4, 4, 18, 3],
            [6, 0, 0, 0],
            [6, 1, 2, 2],
            [4, 0, 0, 0],
            [4, 1, 2, 0],
        ],
        dtype=np.int32,
    )
    write_matrix(folder / NORB_FILES["dat"], images.astype(np.uint8))
    write_matrix(folder / NORB_FILES["cat"], category)
    write_matrix(folder / NORB_FILES["info"], info)
    return tmp_path, images, info


def test_reader_round_trips_the_format_and_selects_one_airplane(small_norb):
    root, images, info = small_norb
    assert read_norb_matrix(root / "norb" / NORB_FILES["cat"]).tolist() == [2] * 6 + [3] * 2
    x, meta = load_norb_airplane(root, instance=4)
    assert x.shape == (4, 1, 96, 96)
    np.testing.assert_allclose(x[1, 0], images[1, 0] / 255.0, rtol=1e-6)
    assert meta["azimuth"].tolist() == [0, 340, 100, 180]
    assert meta["elevation"].tolist() == [30, 70, 40, 50] and meta["lighting"].tolist() == [0, 5, 1, 3]
    with pytest.raises(DataError, match=r"no airplane with instance 5; set data.norb_instance to one of \[4, 6\]"):
        load_norb_airplane(root, instance=5)


def test_truncated_or_foreign_files_are_named(small_norb, tmp_path):
    root, _, _ = small_norb
    dat = root / "norb" / NORB_FILES["dat"]
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(DataError, match="the file is truncated"):
        read_norb_matrix(dat)
    (tmp_path / "x.mat").write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="not a NORB matrix"):
        read_norb_matrix(tmp_path / "x.mat")
    with pytest.raises(DataError, match="does not exist"):
        load_norb_airplane(tmp_path / "nowhere", 4)


def test_synthetic_airplane_covers_every_view_and_lighting_changes_shading_not_shape():
    x, meta = render_airplane(size=32)
    assert x.shape == (972, 1, 32, 32) and x.min() >= 0 and x.max() <= 1
    views = set(zip(meta["azimuth"].tolist(), meta["elevation"].tolist()))
    assert len(views) == 18 * 9 and sorted(set(meta["lighting"].tolist())) == list(range(6))
    same_view = (meta["azimuth"] == 40) & (meta["elevation"] == 50)
    silhouettes = x[same_view] > 0
    assert (silhouettes == silhouettes[0]).all()  # lighting does not move the plane
    assert np.abs(x[same_view][0] - x[same_view][3]).mean() > 0.01  # but it changes the pixels
    front = x[(meta["azimuth"] == 0) & (meta["elevation"] == 30) & (meta["lighting"] == 0)][0]
    back = x[(meta["azimuth"] == 180) & (meta["elevation"] == 30) & (meta["lighting"] == 0)][0]
    assert not np.array_equal(front > 0, np.fliplr(back > 0))  # not front/back symmetric
