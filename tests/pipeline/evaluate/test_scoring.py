import numpy as np
import pytest

from pipeline.config import EvaluateConfig
from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.data.store import SampleStore
from pipeline.errors import DataError
from pipeline.evaluate.checks import check_evaluate_config
from pipeline.evaluate.scoring import HeldOut, score


def _store(tmp_path, train: int, validation: int, test: int) -> SampleStore:
    rng = np.random.default_rng(0)
    splits = {
        name: PartSamples(rng.random((n, 4), dtype=np.float32), np.arange(n) % 3, np.arange(n))
        for name, n in (("train", train + validation), ("test", test))
    }
    return store_arrays(tmp_path / "store", splits, validation=validation)


def test_a_small_validation_split_scores_what_it_can_and_the_test_split_must_take_every_metric(tmp_path):
    store = _store(tmp_path, train=40, validation=18, test=30)
    cfg = EvaluateConfig()  # trustworthiness at 5 and 12, 5-NN
    check_evaluate_config(cfg, store)  # 18 validation samples: enough for trust@5 and 5-NN, the choosing metrics
    held = HeldOut.load(store, "validation")
    metrics = score(held, held.features[:, :2], cfg)
    assert set(metrics) == {"trustworthiness_5", "knn_accuracy_5"}  # trust@12 needs more than 24
    with pytest.raises(
        DataError, match="need more than 10 samples in the validation split, and it has 8; raise evaluate.validation"
    ):
        check_evaluate_config(cfg, _store(tmp_path / "tiny", train=40, validation=8, test=30))
    with pytest.raises(DataError, match="need more than 24 samples in the test split, and it has 20"):
        check_evaluate_config(cfg, _store(tmp_path / "small", train=40, validation=18, test=20))


def test_a_seeded_sample_of_originals_comes_with_their_copies_and_equals_those_rows_of_the_whole(tmp_path):
    from pipeline.config import DataConfig

    rng = np.random.default_rng(0)
    images = rng.random((40, 1, 28, 28), dtype=np.float32)
    cfg = DataConfig(transforms={"shift_x": [-3, 3]})
    store = store_arrays(tmp_path / "s", {"test": PartSamples(images, np.arange(40) % 2, np.arange(40))}, cfg)
    whole = HeldOut.load(store)
    sample = HeldOut.load(store, originals=10, seed=1)
    assert sample.original.sum() == 10 and len(sample.ids) == 30  # each original with its two copies
    assert set(sample.origin) == set(sample.ids[sample.original])
    rows = np.searchsorted(whole.ids, sample.ids)
    np.testing.assert_array_equal(sample.features, whole.features[rows])
    np.testing.assert_array_equal(sample.labels, whole.labels[rows])
    np.testing.assert_array_equal(sample.transform, whole.transform[rows])
    assert HeldOut.load(store, originals=10, seed=1).ids.tolist() == sample.ids.tolist()  # seeded
    assert HeldOut.load(store, originals=40).ids.tolist() == whole.ids.tolist()  # as many as there are: all
