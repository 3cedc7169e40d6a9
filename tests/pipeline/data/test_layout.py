"""The sample store from many parts: ids from prefix sums, copies and shards made per part, in the driver or in
Ray tasks, equal to the store of the same samples in one file."""

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import DataConfig
from pipeline.data.stage import ingest
from pipeline.errors import DataError
from tests.pipeline.conftest import write_parquet

N, SIDE = 23, 6


def _samples():
    rng = np.random.default_rng(0)
    images = rng.random((N, 1, SIDE, SIDE), dtype=np.float32)
    return images, rng.integers(0, 3, N), np.arange(N) * 10


def _write(root, name, rows, images, labels, azimuth):
    return write_parquet(
        root / name,
        images[rows].reshape(len(rows), -1),
        label=labels[rows],
        azimuth=azimuth[rows] if name.endswith(("0.parquet", "one.parquet")) else azimuth[rows].astype(np.float64),
    )


def _cfg(path, **extra):
    return DataConfig(
        source="parquet", path=path, feature_shape=[1, SIDE, SIDE], transforms={"shift_x": [-2, 2]}, **extra
    )


def _rows(store, split):
    """Every column of a split, ordered by id (as a reader sees it)."""
    table = store._read(split, ["id", "label", "origin_id", "transform", "source_index", "azimuth", "features"])
    return table.sort_by("id").to_pydict()


@pytest.mark.parametrize("validation", [0, 5])
def test_a_folder_of_parts_makes_the_store_of_the_same_samples_in_one_file(tmp_path, validation):
    images, labels, azimuth = _samples()
    _write(tmp_path, "one.parquet", np.arange(N), images, labels, azimuth)
    for i, rows in enumerate(np.array_split(np.arange(N), 3)):
        _write(tmp_path / "parts", f"part-{i}.parquet", rows, images, labels, azimuth)
    one = ingest(_cfg("one.parquet"), tmp_path, tmp_path / "work", validation)
    parts = ingest(_cfg("parts"), tmp_path, tmp_path / "work", validation)
    assert parts.directory != one.directory and parts.manifest["splits"] == one.manifest["splits"]
    assert parts.manifest["splits"] == ({"train": 3 * N} if not validation else {"train": 54, "validation": 15})
    for split in parts.manifest["splits"]:
        assert _rows(parts, split) == _rows(one, split)
    ids, features, _ = parts.split("train")
    assert ids.tolist() == list(range(len(ids)))  # training ids stay 0..n-1
    origin, transform = parts.origins("train")
    n = len(ids) // 3
    np.testing.assert_array_equal(features[n + 4, 0, :, :-2], features[4, 0, :, 2:])  # shifted left
    assert transform[n + 4] == "shift_x=-2" and origin[n + 4] == 4
    assert parts.corrupt_shards() == [] and parts.manifest["metadata_columns"] == ["azimuth"]


def test_ray_tasks_write_the_same_shards_as_the_driver(tmp_path, ray_local, monkeypatch):
    images, labels, azimuth = _samples()
    for i, rows in enumerate(np.array_split(np.arange(N), 4)):
        _write(tmp_path / "parts", f"part-{i}.parquet", rows, images, labels, azimuth)
    here = ingest(_cfg("parts"), tmp_path, tmp_path / "here", validation=4)
    monkeypatch.setenv("DRLIM_INLINE_BYTES", "0")
    tasks = ingest(_cfg("parts"), tmp_path, tmp_path / "tasks", validation=4)
    assert tasks.manifest["sha256"] == here.manifest["sha256"]
    assert [s["file"] for s in tasks.manifest["shards"]] == [s["file"] for s in here.manifest["shards"]]
    # a bad part is found by its task and named, one line, not Ray's traceback
    write_parquet(
        tmp_path / "parts" / "part-9.parquet",
        np.zeros((2, SIDE * SIDE + 1), np.float32),
        label=np.arange(2),
        azimuth=np.arange(2),
    )
    with pytest.raises(DataError) as info:
        ingest(_cfg("parts"), tmp_path, tmp_path / "tasks", validation=4)
    assert str(info.value).startswith(f"{tmp_path / 'parts' / 'part-9.parquet'}: data.feature_shape")
    assert "Traceback" not in str(info.value)


def test_parts_that_disagree_are_named(tmp_path):
    images, labels, azimuth = _samples()
    _write(tmp_path / "parts", "part-0.parquet", np.arange(5), images, labels, azimuth)
    write_parquet(
        tmp_path / "parts" / "part-1.parquet",
        images[:3].reshape(3, -1),
        label=labels[:3],
        azimuth=pa.array(["a", "b", "c"]),
    )
    with pytest.raises(
        DataError,
        match=r"metadata column 'azimuth' holds numbers in one file and text in another "
        r"\(.*part-1.parquet\)",
    ):
        ingest(_cfg("parts"), tmp_path, tmp_path / "work")
