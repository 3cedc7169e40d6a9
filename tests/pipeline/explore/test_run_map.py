import numpy as np

from pipeline.config import DataConfig
from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.evaluate.scoring import HeldOut
from pipeline.explore.run_map import anchors_with_partners, run_map, thumbnails_of
from pipeline.pairs.shards import SOURCES, PairSet, both_ways, write_pair_shards


def test_thumbnails_are_grayscale_in_their_own_range_and_shrunk_to_fit():
    images = np.random.default_rng(0).random((3, 3, 96, 64), dtype=np.float32) * 5 + 2
    thumbs = thumbnails_of(images)
    assert thumbs.shape == (3, 32, 21) and thumbs.min() == 0 and np.allclose(thumbs.max(axis=(1, 2)), 1)
    assert thumbnails_of(np.zeros((3, 10), np.float32)) is None  # vectors have no picture


def test_anchors_come_with_every_partner_and_stay_within_the_budget():
    rng = np.random.default_rng(0)
    once = rng.integers(0, 500, (2000, 2))
    once = once[once[:, 0] != once[:, 1]]
    left, right = np.r_[once[:, 0], once[:, 1]], np.r_[once[:, 1], once[:, 0]]
    chosen = anchors_with_partners(left, right, np.arange(0, 500, 2), budget=100, seed=1)
    assert 0 < len(chosen) <= 100 and np.all(np.diff(chosen) > 0)
    anchors = [i for i in chosen if i % 2 == 0 and set(right[left == i]) <= set(chosen)]
    assert anchors, "some even sample is an anchor with every partner on the page"


def test_a_runs_map_holds_the_held_out_points_and_training_samples_with_their_pairs(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.random((40, 1, 6, 6), dtype=np.float32), rng.random((12, 1, 6, 6), dtype=np.float32)
    splits = {
        "train": PartSamples(train, np.arange(40) % 2, np.arange(40)),
        "test": PartSamples(test, np.arange(12) % 2, np.arange(12)),
    }
    store = store_arrays(tmp_path / "store", splits, DataConfig(transforms={"shift_x": [1]}))
    n_train = store.manifest["splits"]["train"]  # originals and their shifted copies
    origin, _ = store.origins("train")
    own = np.flatnonzero(origin != np.arange(n_train))  # each copy is similar to its original
    knn = np.array([[0, 2], [2, 4], [4, 6]])
    found = np.concatenate([both_ways(origin[own], own, "transform"), both_ways(knn[:, 0], knn[:, 1], "knn")])
    write_pair_shards(tmp_path / "pairs", found, n_train, 2, {})
    data = HeldOut.load(store)

    def embed(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)[:, :2] * 10

    def training(ids: np.ndarray) -> np.ndarray:
        return embed(store.as_float(np.asarray(store.feature_matrix("train"))[ids]))

    points = run_map(data, embed(data.features), store, PairSet.open(tmp_path / "pairs"), training, "a run")
    held = len(data.ids)
    assert points.split[:held].tolist() == ["test"] * held and set(points.split[held:]) == {"train"}
    assert np.allclose(points.embedding[held:], training(points.ids[held:]))
    assert points.thumbnails.shape == (len(points), 6, 6) and points.neighbours.shape == (len(points), 10)
    assert (points.neighbours[:held, : held - 1] >= 0).all() and (points.neighbours[held:] == -1).all()
    ends = points.ids[points.pairs.rows]
    pairs = {(int(a), int(b)): SOURCES[s] for (a, b), s in zip(ends, points.pairs.source)}
    assert pairs[(0, 2)] == "knn" and pairs[(0, int(own[origin[own] == 0][0]))] == "transform"
    assert points.pairs.degree[:held].tolist() == [-1] * held  # test samples are never paired

    no_pairs = run_map(data, embed(data.features), store, None, training, "a run")
    assert len(no_pairs) == held and no_pairs.pairs is None
