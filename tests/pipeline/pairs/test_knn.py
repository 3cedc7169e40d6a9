import os
import re
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from pipeline.data.sources import PartSamples
from pipeline.data.stage import store_arrays
from pipeline.data.store import SampleStore
from pipeline.pairs.knn import drop_self, make_index, training_rows
from pipeline.pairs.knn_parts import IndexPart, exact_nearest, recall_at_k
from tests.pipeline.pairs.conftest import exact_knn


def brute_force_knn(x: np.ndarray, k: int) -> np.ndarray:
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.fixture
def points():
    # Continuous random data: no ties, so the neighbour order is unique.
    return np.random.default_rng(7).normal(size=(300, 16)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 5, 12])
def test_the_reference_graph_equals_brute_force(points, k):
    np.testing.assert_array_equal(exact_knn(points, k), brute_force_knn(points, k))


def test_drop_self_handles_self_not_first():
    # Query 0 has an exact duplicate (id 3) listed before it; query 1 is missing from its own list.
    neighbors = np.array([[3, 0, 5], [2, 4, 6]])
    np.testing.assert_array_equal(drop_self(neighbors, np.array([0, 1]), k=2), [[3, 5], [2, 4]])


def test_exact_duplicates_never_pair_with_themselves():
    x = np.repeat(np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), 2, axis=0)
    found = exact_knn(x, 3)
    assert not (found == np.arange(len(x))[:, None]).any()
    # Each sample's twin is at distance 0, so it must be among the neighbours.
    twins = np.arange(len(x)) ^ 1
    assert (found == twins[:, None]).any(axis=1).all()


def store_of(x: np.ndarray, directory, rows_per_shard: int = 64) -> SampleStore:
    """``x`` as the training split of a sample store in shards of ``rows_per_shard``."""
    return store_arrays(
        directory, {"train": PartSamples(x, np.zeros(len(x)), np.arange(len(x)))}, rows_per_shard=rows_per_shard
    )


def graph_in_parts(store: SampleStore, parts: int, k: int, backend=None) -> np.ndarray:
    """The k-NN graph through ``parts`` index parts, in this process (the stage runs them as Ray actors)."""
    backend = backend or make_index("flat")
    files = store.files_of("train")
    n = store.manifest["splits"]["train"]
    x = store.split("train")[1].reshape(n, -1)
    size = backend.training_size(n)
    trained = None
    if size:
        import faiss

        trained = faiss.serialize_index(backend.trained(x.shape[1], x[training_rows(n, size)]))
    chunks = np.array_split(np.array([f.name for f in files], dtype=object), parts)
    index_parts = [IndexPart(backend, x.shape[1], list(c), store.location, 1) for c in chunks]
    graph = []
    for path in files:
        found = None
        for part in index_parts:
            found = part.search(path.name, k, trained, found)
        graph.append(drop_self(found.approximate[1], found.ids, k))
    return np.concatenate(graph)


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_an_index_in_parts_equals_brute_force(points, tmp_path, parts):
    graph = graph_in_parts(store_of(points, tmp_path / "s"), parts, 5)
    np.testing.assert_array_equal(graph, brute_force_knn(points, 5))


@pytest.fixture
def clustered():
    # Clustered data, as real features are: approximate indexes are meant for this, not uniform noise.
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=4.0, size=(20, 16))
    return (centres[rng.integers(0, 20, 3000)] + rng.normal(size=(3000, 16))).astype(np.float32)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("annoy", {}, "unknown index 'annoy'; choose one of ['flat', 'hnsw', 'ivf']"),
        (
            "PCA8,IVF16,Flat",
            {"nlist": 4},
            "no option 'nlist'; valid options: ['nprobe', 'ef_search', 'k_factor', 'train_size']",
        ),
        ("ivf", {"nprobes": 4}, "no option 'nprobes'; valid options: ['nlist', 'nprobe', 'train_size']"),
        ("hnsw", {"m": 0}, "option 'm' must be a positive integer, got 0"),
        ("flat", {"m": 8}, "valid options: none"),
    ],
)
def test_index_choices_and_options_are_validated(name, options, message):
    from pipeline.pairs.knn import make_index

    with pytest.raises(ValueError, match=re.escape(message)):
        make_index(name, options)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return sum(len(np.intersect1d(a, b)) for a, b in zip(found, exact)) / exact.size


@pytest.mark.parametrize(
    "name, options",
    [
        ("ivf", {"nlist": 40, "nprobe": 8}),
        ("hnsw", {"m": 16}),
        ("PCA16,IVF40,Flat", {"nprobe": 8}),  # a rotation, then IVF
        ("HNSW16", {}),
        ("IVF40,SQ8", {}),
        ("PCA8,IVF40,Flat,RFlat", {"k_factor": 8}),  # a lossy PCA, its candidates re-ranked by exact distance
    ],
)
def test_approximate_indexes_find_most_exact_neighbours(clustered, name, options):
    backend = make_index(name, options)
    _, found = backend.build(clustered).search(clustered, 6)
    found = drop_self(found, np.arange(len(clustered)), 5)
    assert recall(found, exact_knn(clustered, 5)) >= 0.9


def test_a_factory_string_faiss_cannot_make_is_a_config_error_with_faiss_reason():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"pairs.index: FAISS cannot make the index 'IVF8,PQ5' for 16-dim.*multiple"):
        make_index("IVF8,PQ5").check(16)
    with pytest.raises(ConfigError, match=r"'Foo12' .*could not parse index string Foo12"):
        make_index("Foo12").check(16)


def test_a_factory_index_applies_its_search_options_and_trains_on_64_rows_a_cell(clustered):
    import faiss

    backend = make_index("PCA8,IVF40,Flat", {"nprobe": 5})
    assert backend.training_size(len(clustered)) == 2560 and backend.options["train_size"] == 2560
    assert make_index("HNSW16").training_size(100) == 100  # capped at the rows there are
    index = backend.build(clustered)
    assert faiss.extract_index_ivf(index).nprobe == 5
    id_map = make_index("HNSW8", {"ef_search": 17}).build(clustered)  # kept: the graph below lives inside it
    assert faiss.downcast_index(id_map.index).hnsw.efSearch == 17


def test_exact_nearest_reads_shard_by_shard_what_brute_force_finds(clustered, tmp_path):
    store = store_of(clustered, tmp_path / "s", rows_per_shard=500)
    queries = training_rows(len(clustered), 300)
    ids, neighbors = exact_nearest([p.name for p in store.files_of("train")], store, queries, 5)
    np.testing.assert_array_equal(ids, queries)
    np.testing.assert_array_equal(neighbors, exact_knn(clustered, 5)[queries])


def test_recall_at_k_counts_the_true_neighbours_found_in_any_order():
    exact = (np.array([4, 9]), np.array([[1, 2, 3], [5, 6, 7]]))
    found = (np.array([9, 4, 0]), np.array([[7, 6, 0], [3, 2, 1], [8, 8, 8]]))
    assert recall_at_k(found, exact) == (5, 2)


@pytest.mark.parametrize(
    "name, options",
    [
        ("ivf", {"nlist": 40, "nprobe": 2}),
        ("hnsw", {"m": 16}),
        ("PCA16,IVF40,Flat", {"nprobe": 2}),
        ("PCA16,IVF40,Flat,RFlat", {"nprobe": 2}),
    ],
)
def test_parts_of_an_approximate_index_find_most_true_neighbours(clustered, tmp_path, name, options):
    store = store_of(clustered, tmp_path / "s", rows_per_shard=500)
    graph = graph_in_parts(store, 3, 5, make_index(name, options))
    truth = exact_knn(clustered, 5)
    ivf = "ivf" in name.lower()
    assert 0.9 <= recall(graph, truth) < 1.0 if ivf else recall(graph, truth) >= 0.9
    if ivf:  # the same trained centroids in every part: the parts find what one whole index finds
        whole = make_index(name, options)
        _, one = whole.build(clustered).search(clustered, 6)
        assert (graph == drop_self(one, np.arange(len(clustered)), 5)).mean() > 0.999  # equal but for ties


def _kill_first_task(name: str, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first process of this test's session that runs Ray task ``name`` (its title while running)."""
    session = os.getsid(0)
    while not stop.is_set():
        table = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
        for line in table.splitlines():
            pid, sid, args = line.split(None, 2)
            if int(sid) == session and args.startswith(f"ray::{name}"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.02)


def test_a_killed_index_part_is_restarted_and_the_pairs_are_still_exact(ray_local, tmp_path):
    from pipeline.config import PairsConfig
    from pipeline.pairs.shards import PairSet
    from pipeline.pairs.stage import write_pair_set

    x = np.random.default_rng(3).normal(size=(20_000, 64)).astype(np.float32)  # seconds per part: time to kill one
    store = store_of(x, tmp_path / "s", rows_per_shard=2048)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task, args=("IndexPart.search", killed, stop), daemon=True)
    killer.start()
    try:
        write_pair_set(PairsConfig(k=5, index_parts=2, num_shards=4), store, tmp_path / "pairs")
    finally:
        stop.set()
        killer.join()
    assert killed, "no index part was caught searching"
    neighbors = exact_knn(x, 5)
    expected = {(min(i, j), max(i, j)) for i, row in enumerate(neighbors.tolist()) for j in row}
    left, right = PairSet.open(tmp_path / "pairs").read()
    assert set(zip(left.tolist(), right.tolist())) == expected and len(left) == len(expected)
