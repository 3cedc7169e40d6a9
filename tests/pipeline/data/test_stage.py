"""The validation split: held out of the training originals, with a fixed seed, copies going with originals."""

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.data.sources import PartSamples
from pipeline.data.stage import ingest, store_arrays
from pipeline.errors import DataError


def _train(n: int = 20) -> PartSamples:
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return PartSamples(x, np.arange(n) % 4, np.arange(100, 100 + n), {"angle": np.arange(n) * 10.0})


@pytest.mark.parametrize(("validation", "count"), [(0.25, 5), (3, 3), (0.01, 0)])
def test_a_fraction_or_a_count_of_the_originals_is_held_out_the_same_way_every_time(tmp_path, validation, count):
    if count == 0:
        with pytest.raises(DataError, match=r"evaluate.validation=0.01 holds out 0 of the 20 training samples"):
            store_arrays(tmp_path, {"train": _train()}, validation=validation)
        return
    store = store_arrays(tmp_path / "a", {"train": _train()}, validation=validation)
    again = store_arrays(tmp_path / "b", {"train": _train()}, validation=validation)
    train, held = store.column("train", "source_index"), store.column("validation", "source_index")
    assert len(held) == count and len(train) == 20 - count
    np.testing.assert_array_equal(train, again.column("train", "source_index"))  # fixed seed
    assert sorted([*train, *held]) == list(range(100, 120))  # a partition
    assert list(train) == sorted(train)  # the source's order is kept
    np.testing.assert_array_equal(store.metadata("validation", ["angle"])["angle"], (held - 100) * 10.0)
    np.testing.assert_array_equal(store.split("validation")[1][:, 0], (held - 100) * 3)


def test_the_store_gets_a_validation_split_whose_copies_follow_their_originals(tmp_path, sample_files):
    root = tmp_path / "data"
    sample_files.write_mnist(root, per_split=40)
    cfg = DataConfig(train_per_digit=4, test_per_digit=2, transforms={"shift_x": [-3, 3]})
    store = ingest(cfg, root, tmp_path / "work", validation=0.25)
    # 4 fours + 4 nines, a quarter held out; each original with 2 shifted copies
    assert store.manifest["splits"] == {"train": 18, "validation": 6, "test": 12}
    ids, _, _ = store.split("train")
    assert ids.tolist() == list(range(18))  # training ids stay 0..n-1 (pairs index by row)
    origin, transform = store.origins("validation")
    originals = origin[[t is None for t in transform]]
    assert len(originals) == 2 and set(origin) == set(originals)  # every copy's origin is a validation original
