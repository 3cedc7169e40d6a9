import os
import re
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from pipeline.pairs.knn import build_flat_index, drop_self, knn_graph, knn_search


def brute_force_knn(x: np.ndarray, k: int) -> np.ndarray:
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.fixture
def points():
    # Continuous random data: no ties, so the neighbour order is unique.
    return np.random.default_rng(7).normal(size=(300, 16)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 5, 12])
def test_knn_search_equals_brute_force(points, k):
    found = knn_search(build_flat_index(points), points, np.arange(len(points)), k)
    np.testing.assert_array_equal(found, brute_force_knn(points, k))


def test_drop_self_handles_self_not_first():
    # Query 0 has an exact duplicate (id 3) listed before it; query 1 is missing from its own list.
    neighbors = np.array([[3, 0, 5], [2, 4, 6]])
    np.testing.assert_array_equal(drop_self(neighbors, np.array([0, 1]), k=2), [[3, 5], [2, 4]])


def test_exact_duplicates_never_pair_with_themselves():
    x = np.repeat(np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), 2, axis=0)
    found = knn_search(build_flat_index(x), x, np.arange(len(x)), 3)
    assert not (found == np.arange(len(x))[:, None]).any()
    # Each sample's twin is at distance 0, so it must be among the neighbours.
    twins = np.arange(len(x)) ^ 1
    assert (found == twins[:, None]).any(axis=1).all()


def test_k_must_be_smaller_than_the_index(points):
    with pytest.raises(ValueError, match="needs more than k"):
        knn_search(build_flat_index(points[:5]), points[:5], np.arange(5), 5)


@pytest.mark.parametrize("num_tasks", [1, 3, 7])
def test_ray_knn_graph_equals_brute_force(ray_local, points, num_tasks):
    np.testing.assert_array_equal(knn_graph(points, 5, num_tasks=num_tasks), brute_force_knn(points, 5))


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
        ("ivf", {"nprobes": 4}, "no option(s) ['nprobes']; valid options: ['nlist', 'nprobe', 'train_size']"),
        ("hnsw", {"m": 0}, "must be positive integers"),
        ("flat", {"m": 8}, "valid options: none"),
    ],
)
def test_index_choices_and_options_are_validated(name, options, message):
    from pipeline.pairs.knn import make_index

    with pytest.raises(ValueError, match=re.escape(message)):
        make_index(name, options)


@pytest.mark.parametrize("name, options", [("ivf", {"nlist": 40, "nprobe": 8}), ("hnsw", {"m": 16})])
def test_approximate_indexes_find_most_exact_neighbours(clustered, name, options):
    from pipeline.pairs.knn import apply_search_parameters, knn_recall, make_index

    backend = make_index(name, options)
    index = backend.build(clustered)
    apply_search_parameters(index, backend.search_parameters())
    found = knn_search(index, clustered, np.arange(len(clustered)), 5)
    assert not (found == np.arange(len(clustered))[:, None]).any()
    assert knn_recall(clustered, found, n_queries=500) >= 0.9
    exact = knn_search(build_flat_index(clustered), clustered, np.arange(len(clustered)), 5)
    assert knn_recall(clustered, exact, n_queries=500) == 1.0


def test_ray_graph_with_an_approximate_index(ray_local, clustered):
    from pipeline.pairs.knn import knn_recall, make_index

    found = knn_graph(clustered, 5, num_tasks=3, backend=make_index("ivf", {"nlist": 40, "nprobe": 40}))
    # nprobe = nlist searches every cell: IVF-Flat is then exact.
    assert knn_recall(clustered, found, n_queries=3000) == 1.0


def test_mutual_symmetrisation_keeps_only_edges_found_from_both_ends(points):
    from pipeline.pairs import mutual_edges
    from pipeline.pairs.shards import knn_pairs

    neighbors = brute_force_knn(points, 5)
    left, right = mutual_edges(*knn_pairs(neighbors), len(points))
    expected = {(i, j) for i in range(len(points)) for j in neighbors[i] if i in neighbors[j]}
    assert set(zip(left.tolist(), right.tolist())) == expected and len(left) == len(expected)
    assert 0 < len(left) < neighbors.size


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


def test_a_killed_search_task_is_retried_and_the_graph_is_still_exact(ray_local):
    x = np.random.default_rng(3).normal(size=(20_000, 64)).astype(np.float32)  # seconds per task: time to kill one
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task, args=("_search_shard", killed, stop), daemon=True)
    killer.start()
    try:
        graph = knn_graph(x, k=5, num_tasks=2)
    finally:
        stop.set()
        killer.join()
    assert killed, "no search task was caught running"
    np.testing.assert_array_equal(graph, knn_search(build_flat_index(x), x, np.arange(len(x)), 5))
