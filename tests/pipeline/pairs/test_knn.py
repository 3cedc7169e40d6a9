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
