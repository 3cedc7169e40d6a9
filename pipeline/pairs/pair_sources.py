"""Pair sources and what one query shard of the pair stage emits: directed similar-pair rows (``shards.ROW``).

A ``PairSource`` (``pairs.sources``) makes the rows of its pairs either per query shard (``shard_rows``: from the
shard's samples, their kNN edges and the groups of transformed copies) or once over the whole store
(``store_rows``, e.g. a metadata rule). Every pair is emitted in both directions, each later routed to the shard of
its ``left`` (``shards.by_shard``), so that one writer per shard sees every row of its samples and no process ever
holds all the pairs. A new source is a ``PairSource`` subclass plus its line in ``pipeline/config/choices.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from pipeline.config import PairsConfig
from pipeline.config.choices import PAIR_SOURCES
from pipeline.pairs.shards import ROW, SOURCES, both_ways, knn_pairs

if TYPE_CHECKING:
    from pipeline.data.store import SampleStore
    from pipeline.pairs.copies import Groups


class PairSource:
    """A way of finding similar pairs; ``name`` is its line in ``PAIR_SOURCES``."""

    name: ClassVar[str]
    per_shard: ClassVar[bool] = True  # False: ``store_rows`` makes its rows once over the whole store

    def shard_rows(self, ids: np.ndarray, left: np.ndarray, right: np.ndarray, groups: Groups | None) -> np.ndarray:
        """The rows of the queries ``ids`` of one store shard, whose kNN edges are ``left -> right``."""
        raise NotImplementedError

    def store_rows(self, store: SampleStore, cfg: PairsConfig) -> np.ndarray:
        """The rows over the whole training split of ``store``."""
        raise NotImplementedError


class KnnPairs(PairSource):
    """Each sample with its k nearest neighbours in input space (the paper's)."""

    name = "knn"

    def shard_rows(self, ids: np.ndarray, left: np.ndarray, right: np.ndarray, groups: Groups | None) -> np.ndarray:
        return both_ways(left, right, self.name)


def pair_sources(names: list[str]) -> list[PairSource]:
    """The pair sources named (``pairs.sources``)."""
    return [PAIR_SOURCES.build(name) for name in names]


def query_rows(ids: np.ndarray, neighbors: np.ndarray, sources: list[str], groups: Groups | None) -> np.ndarray:
    """The rows of queries ``ids`` whose ``k`` nearest neighbours (self excluded) are ``neighbors``, from every
    per-shard source of ``sources``."""
    left, right = knn_pairs(neighbors, ids)
    found = [source.shard_rows(ids, left, right, groups) for source in pair_sources(sources) if source.per_shard]
    return np.concatenate([np.empty(0, ROW), *found])


def count_by_source(found: np.ndarray) -> dict[str, int]:
    counts = np.bincount(found["source"].astype(np.int64), minlength=len(SOURCES))
    return {name: int(c) for name, c in zip(SOURCES, counts) if c}
