import numpy as np

from pipeline.pairs.copies import origin_groups, transform_knn_pairs, transform_pairs


def as_set(left, right):
    return set(zip(left.tolist(), right.tolist()))


# Three originals (0, 1, 2) each with two copies: ids 3..5 and 6..8 (the store's layout).
ORIGIN = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])


def test_groups_list_every_copy_of_each_origin():
    members, start, size = origin_groups(ORIGIN)
    assert size.tolist() == [3] * 9
    assert sorted(members[start[4] : start[4] + size[4]].tolist()) == [1, 4, 7]


def test_transform_pairs_join_every_copy_of_one_origin_and_nothing_else():
    left, right = transform_pairs(origin_groups(ORIGIN))
    assert len(left) == 9 * 2  # each sample with its 2 other copies
    assert as_set(left, right) == {(i, j) for i in range(9) for j in range(9) if i != j and ORIGIN[i] == ORIGIN[j]}
    assert len({(min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist())}) == 3 * 3  # 3 x C(3, 2)


def test_transform_knn_pairs_join_a_sample_with_the_copies_of_its_neighbours():
    # kNN edges 0 -> 1 and 5 -> 0.
    left, right = transform_knn_pairs(origin_groups(ORIGIN), np.array([0, 5]), np.array([1, 0]))
    assert as_set(left, right) == {(0, 4), (0, 7), (5, 3), (5, 6)}
    assert len(left) == 4  # the neighbour itself is the kNN pair, not repeated here


def test_the_papers_recipe_gives_29_directed_pairs_per_sample():
    # 6 originals, 4 copies each (5 per group), every sample with 5 neighbours of other origins.
    n_orig, copies, k = 6, 4, 5
    origin = np.tile(np.arange(n_orig), copies + 1)
    n = len(origin)
    rng = np.random.default_rng(0)
    knn_right = np.concatenate([rng.choice(np.flatnonzero(origin != origin[i]), k, replace=False) for i in range(n)])
    knn_left = np.repeat(np.arange(n), k)
    t_left, _ = transform_pairs(origin_groups(origin))
    tk_left, _ = transform_knn_pairs(origin_groups(origin), knn_left, knn_right)
    assert len(knn_left) + len(t_left) + len(tk_left) == n * (k + copies + k * copies) == n * 29
    assert np.bincount(tk_left, minlength=n).tolist() == [k * copies] * n
