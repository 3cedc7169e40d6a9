import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.explore.points import MapPoints, input_neighbours, pairs_among


def test_input_neighbours_are_the_exact_nearest_within_each_group_without_the_point_itself():
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 3, 3), dtype=np.float32)
    groups = np.repeat(["test", "train"], [30, 10])
    found = input_neighbours(x, groups, 4)
    flat = x.reshape(40, -1)
    for row in range(30):
        d = ((flat[:30] - flat[row]) ** 2).sum(1)
        d[row] = np.inf
        assert set(found[row]) == set(np.argsort(d)[:4])
    assert (found[30:] >= 30).all() and all(row not in found[row] for row in range(40))
    assert (input_neighbours(x[:3], np.zeros(3), 4)[:, 2:] == -1).all()  # a group of 3 has 2 others


def test_pairs_among_keeps_pairs_with_both_ends_on_the_map_and_counts_each_points_whole_degree():
    ids = np.array([14, 10, 12])  # samples 11 and 13 are not on the map
    once = np.array([[10, 12], [10, 11], [12, 14], [12, 13], [10, 14]])
    left, right = np.r_[once[:, 0], once[:, 1]], np.r_[once[:, 1], once[:, 0]]  # both directions, as stored
    source = np.tile(np.array([0, 2, 1, 0, 3], dtype=np.int8), 2)
    found = pairs_among(ids, left, right, source, ["knn", "prior", "transform", "transform_knn"])
    assert sorted(map(tuple, found.rows.tolist())) == [(0, 1), (0, 2), (1, 2)]  # rows into ids, i < j
    by_pair = {tuple(ids[r]): s for r, s in zip(found.rows, found.source)}
    assert by_pair == {(14, 10): 3, (10, 12): 0, (14, 12): 1}
    assert found.degree.tolist() == [2, 3, 3]  # in the whole set: 14 has 12 and 10; 10 and 12 have three each
    lonely = pairs_among(np.array([99]), left, right, source, ["knn"])
    assert lonely.degree.tolist() == [-1] and len(lonely.rows) == 0


def test_map_points_refuse_columns_of_another_length_and_a_one_dimensional_embedding():
    with pytest.raises(DataError, match="column 'labels' has 2 values for 3 points"):
        MapPoints(np.zeros((3, 2)), np.arange(3), labels=np.zeros(2))
    with pytest.raises(DataError, match="a 1-D embedding cannot be drawn"):
        MapPoints(np.zeros((3, 1)), np.arange(3))
