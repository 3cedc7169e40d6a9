"""Similar pairs from transformed copies: the paper's recipe for a transform-invariant map.

Samples that share an ``origin_id`` are copies of one original (the original itself included). Two sources:

- ``transform``: every sample with every other copy of its own origin (a group of size g gives g(g-1)/2 pairs);
- ``transform_knn``: for each kNN edge (i -> j), sample i with every *other* copy of j's origin, so a sample is
  also similar to the translations of its neighbours.

With 5 copies per origin and k = 5 this gives each sample 5 + 4 + 5*4 = 29 directed similar pairs, the
paper's ~870 000 for translated MNIST before duplicates are merged.
"""

from __future__ import annotations

import numpy as np

from pipeline.pairs.pair_sources import PairSource
from pipeline.pairs.shards import both_ways, rows


def origin_groups(origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR view of the groups: ``(members sorted by origin, start offset of each sample's group, group size)``.

    ``start[i]`` and ``size[i]`` describe the group of sample ``i`` inside ``members``.
    """
    origin = np.asarray(origin, dtype=np.int64)
    members = np.argsort(origin, kind="stable")
    sorted_origin = origin[members]
    firsts = np.flatnonzero(np.r_[True, sorted_origin[1:] != sorted_origin[:-1]])
    sizes = np.diff(np.r_[firsts, len(origin)])
    group_of_member = np.repeat(np.arange(len(firsts)), sizes)
    group = np.empty(len(origin), dtype=np.int64)
    group[members] = group_of_member
    return members, firsts[group], sizes[group]


def _expand(anchor: np.ndarray, groups_of: np.ndarray, members, start, size) -> tuple[np.ndarray, np.ndarray]:
    """Pair each ``anchor[e]`` with every member of the group of sample ``groups_of[e]``."""
    counts = size[groups_of]
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(anchor, counts), members[np.repeat(start[groups_of], counts) + offsets]


Groups = tuple[np.ndarray, np.ndarray, np.ndarray]  # origin_groups' (members, start, size)


def transform_pairs(groups: Groups, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Directed pairs (i, c) for every sample i of ``ids`` (default: all) and every other copy c of its origin."""
    members, start, size = groups
    ids = np.arange(len(members), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    left, right = _expand(ids, ids, members, start, size)
    keep = left != right
    return left[keep], right[keep]


def transform_knn_pairs(groups: Groups, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each kNN edge (i -> j): pairs (i, c) for every copy c of j's origin other than j itself."""
    members, start, size = groups
    pair_left, pair_right = _expand(np.asarray(left), np.asarray(right), members, start, size)
    keep = pair_right != np.repeat(np.asarray(right), size[right])
    return pair_left[keep], pair_right[keep]


class TransformPairs(PairSource):
    """``transform``: every sample with every other copy of its own origin (a copy's own query emits the reverse)."""

    name = "transform"

    def shard_rows(self, ids: np.ndarray, left: np.ndarray, right: np.ndarray, groups: Groups | None) -> np.ndarray:
        return rows(*transform_pairs(_needed(groups), ids), self.name)


class TransformKnnPairs(PairSource):
    """``transform_knn``: for each kNN edge (i -> j), sample i with every other copy of j's origin."""

    name = "transform_knn"

    def shard_rows(self, ids: np.ndarray, left: np.ndarray, right: np.ndarray, groups: Groups | None) -> np.ndarray:
        return both_ways(*transform_knn_pairs(_needed(groups), left, right), self.name)


def _needed(groups: Groups | None) -> Groups:
    if groups is None:
        raise ValueError("the copies' pair sources need the origin groups of the store (origin_groups)")
    return groups
