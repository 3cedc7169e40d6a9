import json

import numpy as np
import pytest

from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.data.store import SampleStore
from pipeline.errors import NoSpaceError, StageError


def test_store_is_sharded_reads_across_shards_and_detects_a_corrupt_one(tmp_path):
    rng = np.random.default_rng(0)
    train = PartSamples(
        rng.random((25, 3), dtype=np.float32), np.arange(25) % 2, np.arange(25), {"angle": np.arange(25) * 10.0}
    )
    test = PartSamples(rng.random((7, 3), dtype=np.float32), np.zeros(7), np.arange(7), {"angle": np.zeros(7)})
    store = store_arrays(tmp_path, {"train": train, "test": test}, rows_per_shard=10)
    assert [(s["file"], s["rows"]) for s in store.manifest["shards"]] == [
        ("part-000000000000.parquet", 10),
        ("part-000000000010.parquet", 10),
        ("part-000000000020.parquet", 5),
        ("part-000000000025.parquet", 7),
    ]  # each part's rows cut where its ids run on, each shard named by its first
    ids, x, y = store.split("train")  # rows 0..24 span three shards
    np.testing.assert_array_equal(ids, np.arange(25))
    np.testing.assert_array_equal(x, train.features)
    assert store.split("test")[0].tolist() == list(range(25, 32))
    assert store.metadata("train", ["angle"])["angle"].tolist() == (np.arange(25) * 10.0).tolist()
    assert store.corrupt_shards() == []
    (tmp_path / "part-000000000020.parquet").write_bytes(b"garbage")
    assert store.corrupt_shards()


def test_a_store_of_another_schema_version_is_refused_with_the_fix(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 1, "feature_shape": [3]}))
    with pytest.raises(StageError, match="schema version 1 is not 2 or 3; delete .* and re-run the data stage"):
        SampleStore.open(tmp_path)


def test_metadata_types_are_unified_across_parts_or_refused_with_the_column_named(tmp_path):
    from pipeline.errors import DataError

    x = np.zeros((2, 3), np.float32)
    train = PartSamples(x, np.zeros(2), np.arange(2), {"elevation": np.array([0, 5])})
    test = PartSamples(x, np.zeros(2), np.arange(2), {"elevation": np.array([2.5, 7.5])})
    store = store_arrays(tmp_path / "a", {"train": train, "test": test})
    assert [
        *store.metadata("train", ["elevation"])["elevation"],
        *store.metadata("test", ["elevation"])["elevation"],
    ] == [0.0, 5.0, 2.5, 7.5]
    text = PartSamples(x, np.zeros(2), np.arange(2), {"elevation": np.array(["low", "high"])})
    with pytest.raises(
        DataError,
        match="metadata column 'elevation' holds numbers in one file and text in another "
        r"\(the test arrays\)",
    ):
        store_arrays(tmp_path / "b", {"train": train, "test": text})


def test_feature_matrix_is_a_memory_map_of_the_split_made_once_and_remade_when_stale(tmp_path):
    rng = np.random.default_rng(1)
    train = PartSamples(rng.random((25, 2, 3), dtype=np.float32), np.zeros(25), np.arange(25))
    test = PartSamples(rng.random((7, 2, 3), dtype=np.float32), np.zeros(7), np.arange(7))
    store = store_arrays(tmp_path, {"train": train, "test": test}, rows_per_shard=10)
    matrix = store.feature_matrix("train")  # 25 rows over three shards
    assert isinstance(matrix, np.memmap) and not matrix.flags.writeable
    np.testing.assert_array_equal(matrix, train.features)
    np.testing.assert_array_equal(store.feature_matrix("test"), test.features)
    path = tmp_path / "features-train.npy"
    made = path.stat().st_mtime_ns
    assert store.feature_matrix("train").shape == (25, 2, 3) and path.stat().st_mtime_ns == made  # reused
    np.save(path, np.zeros((3, 3), np.float32))  # stale: another shape
    np.testing.assert_array_equal(store.feature_matrix("train"), train.features)
    path.write_bytes(b"not numpy")
    np.testing.assert_array_equal(store.feature_matrix("train"), train.features)
    assert store.corrupt_shards() == []  # the derived file is no part of the store's checksums
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left
    with pytest.raises(StageError, match="no rows in split 'valid'"):
        store.feature_matrix("valid")


def test_a_store_that_will_not_fit_is_refused_after_its_first_shard(small_filesystem):
    # 4 shards of 0.8 MB of incompressible features on 2 MB: the first shows that the other three cannot fit.
    train = PartSamples(np.random.default_rng(0).random((200, 4096), dtype=np.float32), np.zeros(200), np.arange(200))
    with pytest.raises(NoSpaceError, match="while writing the sample store .needs ~"):
        store_arrays(small_filesystem, {"train": train}, rows_per_shard=50)
    # Location.build's to remove (a stage writes into a temporary folder)
    assert sorted(p.name for p in small_filesystem.iterdir()) == ["part-000000000000.parquet"]


def test_a_feature_map_that_does_not_fit_is_refused_before_any_page_is_written(small_filesystem):
    # 1 MB of incompressible features fit on the 2 MB filesystem; their 1 MB memory map does not. Made
    # sparse, the map would crash the training worker that fills it (SIGBUS) instead of saying so.
    train = PartSamples(np.random.default_rng(0).random((64, 4096), dtype=np.float32), np.zeros(64), np.arange(64))
    store = store_arrays(small_filesystem, {"train": train})
    with pytest.raises(NoSpaceError) as info:
        store.feature_matrix("train")
    assert str(info.value).startswith(
        f"no space left on {small_filesystem} while writing the train features for "
        f"training (features-train.npy) (needs ~"
    )
    assert not (small_filesystem / "features-train.npy").exists()
    assert [p.name for p in small_filesystem.iterdir() if p.name.startswith(".")] == []  # nothing half-written


def test_uint8_pixels_are_stored_as_they_are_and_read_as_pixels_over_255(tmp_path):
    from pipeline.config import DataConfig

    pixels = np.random.default_rng(2).integers(0, 256, (30, 1, 4, 4)).astype(np.uint8)
    store = store_arrays(tmp_path / "a", {"train": PartSamples(pixels, np.zeros(30), np.arange(30), divisor=255.0)})
    assert store.manifest["schema_version"] == 3 and store.feature_dtype == np.uint8
    np.testing.assert_array_equal(store.split("train")[1], (pixels / 255.0).astype(np.float32))  # bit for bit
    assert store.feature_matrix("train").dtype == np.uint8  # a quarter of float32's room
    # Transforms compute on the values: such a store keeps float32 features, and schema version 2.
    copied = store_arrays(
        tmp_path / "b",
        {"train": PartSamples(pixels, np.zeros(30), np.arange(30), divisor=255.0)},
        DataConfig(transforms={"shift_x": [1]}),
    )
    assert copied.manifest["schema_version"] == 2 and copied.feature_dtype == np.float32
    np.testing.assert_array_equal(copied.split("train")[1][:30], (pixels / 255.0).astype(np.float32))


def test_head_reads_the_first_samples_of_a_split(tmp_path):
    rng = np.random.default_rng(0)
    splits = {
        "train": PartSamples(rng.random((50, 3), dtype=np.float32), np.zeros(50), np.arange(50)),
        "test": PartSamples(rng.random((20, 3), dtype=np.float32), np.zeros(20), np.arange(20)),
    }
    store = store_arrays(tmp_path, splits, rows_per_shard=16)
    np.testing.assert_array_equal(store.head("test", 8), splits["test"].features[:8])
    np.testing.assert_array_equal(store.head("train", 3), splits["train"].features[:3])
