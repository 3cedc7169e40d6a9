import logging

import numpy as np

from pipeline.config import DataConfig, PairsConfig
from pipeline.data import ingest
from pipeline.pairs import build_pairs
from tests.pipeline.pairs.conftest import exact_knn


def test_stage_writes_knn_pairs_reuses_them_and_rebuilds_a_corrupt_shard(ray_local, mnist, tmp_path, caplog):
    store = ingest(DataConfig(train_per_digit=60, test_per_digit=10), mnist, tmp_path)
    cfg = PairsConfig(k=5, num_shards=4)
    pairs = build_pairs(cfg, store, tmp_path)

    # The shards hold exactly the canonical 5-NN pairs of the training split.
    _, x, _ = store.split("train")
    neighbors = exact_knn(x, 5)
    expected = {(min(i, j), max(i, j)) for i, row in enumerate(neighbors) for j in row}
    left, right = pairs.read()
    assert set(zip(left.tolist(), right.tolist())) == expected and len(left) == len(expected)

    with caplog.at_level(logging.INFO, logger="pipeline"):
        again = build_pairs(cfg, store, tmp_path)
    assert again.directory == pairs.directory and "Reusing pair set" in caplog.text

    shard = pairs.directory / pairs.manifest["shards"][2]["file"]
    original = shard.read_bytes()
    shard.write_bytes(original[: len(original) // 2])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        rebuilt = build_pairs(cfg, store, tmp_path)
    assert "corrupt" in caplog.text
    assert rebuilt.corrupt_shards() == []
    assert shard.read_bytes() == original  # the rebuild is deterministic


def test_non_finite_features_are_refused_before_faiss(ray_local, tmp_path):
    import pytest

    from pipeline.data.sources import PartSamples
    from pipeline.data.stage import store_arrays
    from pipeline.errors import DataError

    x = np.random.default_rng(0).random((20, 1, 4, 4), dtype=np.float32)
    x[[3, 7], 0, 1, 1] = np.nan
    store = store_arrays(tmp_path / "s", {"train": PartSamples(x, np.zeros(20), np.arange(20))})
    with pytest.raises(DataError, match=r"2 training samples have NaN or infinite features \(first ids: \[3, 7\]\)"):
        build_pairs(PairsConfig(k=3), store, tmp_path)


def test_translation_recipe_pairs_every_sample_with_its_copies_and_its_neighbours_copies(ray_local, mnist, tmp_path):
    data = DataConfig(train_per_digit=20, test_per_digit=5, transforms={"shift_x": [-3, 3]})
    store = ingest(data, mnist, tmp_path)
    pairs = build_pairs(PairsConfig(k=2, num_shards=3, sources=["knn", "transform", "transform_knn"]), store, tmp_path)

    _, x, _ = store.split("train")
    origin, _ = store.origins("train")
    n = len(x)
    assert n == 120 and pairs.n_samples == 120
    neighbors = exact_knn(x, 2)
    # Brute force over the definition: i ~ j when j is a neighbour of i, a copy of i, or a copy of a neighbour.
    same = origin[:, None] == origin[None, :]
    similar = np.zeros((n, n), dtype=bool)
    for i in range(n):
        similar[i, neighbors[i]] = True
        similar[i] |= same[i]
        for j in neighbors[i]:
            similar[i] |= same[j]
    similar |= similar.T
    np.fill_diagonal(similar, False)
    expected = set(zip(*np.nonzero(np.triu(similar))))
    left, right = pairs.read()
    assert set(zip(left.tolist(), right.tolist())) == {(int(a), int(b)) for a, b in expected}
    counts = pairs.manifest["counts_by_source"]
    assert sum(counts.values()) == len(left) == pairs.manifest["similar_pairs"]
    assert counts["transform"] == 40 * 3 - counts_overlap(neighbors, origin)  # C(3,2) per origin, minus kNN hits


def counts_overlap(neighbors, origin):
    """Copy pairs (same origin) that kNN found first: they are recorded under the higher-priority 'knn'."""
    pairs = {(min(i, j), max(i, j)) for i, row in enumerate(neighbors) for j in row if origin[i] == origin[j]}
    return len(pairs)


def test_an_approximate_index_records_its_recall_in_the_manifest(ray_local, mnist, tmp_path):
    store = ingest(DataConfig(train_per_digit=100, test_per_digit=5), mnist, tmp_path)
    cfg = PairsConfig(k=5, index="hnsw", index_options={"m": 16, "ef_search": 32}, recall_queries=50)
    pairs = build_pairs(cfg, store, tmp_path)
    knn = pairs.manifest["knn"]
    assert knn["index"] == "hnsw" and knn["options"]["m"] == 16 and knn["recall_queries"] == 50
    assert 0.9 <= knn["recall_at_k"] <= 1.0
