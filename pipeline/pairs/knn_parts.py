"""The kNN graph of a sample store with the index in parts: no process holds all the features.

Each ``IndexPart`` (a Ray actor in the pair stage) reads the training rows of some sample-store shards into an
index of its own; every part starts from the same empty index (``IndexBackend.trained``: for IVF, the same
trained centroids). A query shard visits the parts one after another: each searches the shard's rows and
merges its ``k + 1`` nearest with those found so far (``merge_nearest``), so after the last part each query has
its nearest among all rows -- for ``flat`` and ``ivf`` exactly what one whole index would give. The last part
hands them to ``QueryShardResult``, which emits the shard's pair rows (``pair_sources.query_rows``) bucketed by pair
shard, and the approximate neighbours of the recall queries among them; ``exact_nearest`` finds their true
neighbours by brute force, shard by shard, and ``recall_at_k`` compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from pipeline.data.store import SampleStore
from pipeline.errors import DataError
from pipeline.infrastructure.location import Location
from pipeline.pairs.copies import Groups
from pipeline.pairs.knn import IndexBackend, drop_self
from pipeline.pairs.pair_sources import count_by_source, query_rows
from pipeline.pairs.shards import by_shard


def read_training_rows(store: SampleStore, file: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, features (n, d) float32)`` of the training rows of the store shard ``file`` (a name in this node's
    copy of ``store``); non-finite features refused."""
    ids, features = store.read_features(store.directory / file, "train")
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise DataError(
            f"sample store {store.location}: {int(bad.sum())} training samples have NaN or infinite features "
            f"(first ids: {ids[bad][:5].tolist()}); fix the source data and re-run"
        )
    return ids, features


def merge_nearest(
    found: tuple[np.ndarray, np.ndarray], more: tuple[np.ndarray, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of two ``(distances, ids)`` results for the same queries (ties: ``found`` first)."""
    distances = np.concatenate([found[0], more[0]], axis=1)
    ids = np.concatenate([found[1], more[1]], axis=1)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(ids, order, axis=1)


def exact_nearest(files: list[str], store: SampleStore, query_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, neighbours (n, k))``: the true ``k`` nearest training rows (self excluded) of those of
    ``query_ids`` that are training rows, by brute force (BLAS) over the store shards ``files``, one at a time."""
    queries = []
    for name in files:
        ids, x = read_training_rows(store, name)
        if (keep := np.isin(ids, query_ids)).any():
            queries.append((ids[keep], x[keep]))
    if not queries:
        return np.empty(0, np.int64), np.empty((0, k), np.int64)
    ids = np.concatenate([q[0] for q in queries])
    x = np.concatenate([q[1] for q in queries])
    nearest: tuple[np.ndarray, np.ndarray] | None = None
    for name in files:
        shard_ids, rows = read_training_rows(store, name)
        distances, positions = faiss.knn(x, rows, min(k + 1, len(rows)))
        more = (distances, np.where(positions >= 0, shard_ids[np.maximum(positions, 0)], -1))
        nearest = more if nearest is None else merge_nearest(nearest, more, k + 1)
    assert nearest is not None  # files is not empty: the queries came from it
    return ids, drop_self(nearest[1], ids, k)


def recall_at_k(found: tuple[np.ndarray, np.ndarray], exact: tuple[np.ndarray, np.ndarray]) -> tuple[int, int]:
    """``(hits, queries)``: how many of the exact neighbours of the queries of ``exact`` the approximate lists
    ``found`` (both ``(ids, neighbours)``, any order) contain."""
    position = {int(i): row for row, i in enumerate(found[0])}
    hits = sum(len(np.intersect1d(found[1][position[int(i)]], true)) for i, true in zip(*exact))
    return hits, len(exact[0])


@dataclass
class Nearest:
    """The nearest rows found so far for one query shard (``k + 1`` each: the query itself is among them)."""

    ids: np.ndarray
    approximate: tuple[np.ndarray, np.ndarray]
    route: tuple[np.ndarray, np.ndarray] | None = None  # IndexBackend.route, made by the first part


@dataclass(frozen=True)
class QueryShardResult:
    """Turns a query shard's finished ``Nearest`` into its pair rows, bucketed by pair shard, plus figures (with
    the neighbours found for those of ``recall_ids`` among its queries)."""

    k: int
    sources: list[str]
    num_shards: int
    recall_ids: np.ndarray | None = None

    def emit(self, nearest: Nearest, groups: Groups | None) -> tuple:
        neighbors = drop_self(nearest.approximate[1], nearest.ids, self.k)
        found = query_rows(nearest.ids, neighbors, self.sources, groups)
        figures = {"queries": len(nearest.ids), "rows_by_source": count_by_source(found)}
        if self.recall_ids is not None:
            rows = np.isin(nearest.ids, self.recall_ids)
            figures["recall_found"] = (nearest.ids[rows], neighbors[rows])
        return (*by_shard(found, self.num_shards), figures)


class IndexPart:
    """One part of the index: the training rows of ``files`` (names of store shards), searchable by any query
    shard of the store.

    It is built on its first search, from the store's shards and ``trained`` (the empty index every part starts
    from, handed to every search): so its own arguments stay small, and a part that Ray starts again after a
    loss builds itself again from the same inputs when its search is retried."""

    def __init__(self, backend: IndexBackend, dimension: int, files: list[str], store: Location, threads: int) -> None:
        self.backend, self.dimension, self.files, self.store, self.threads = backend, dimension, files, store, threads
        self.index: faiss.Index | None = None

    def _built(self, trained: np.ndarray | None) -> faiss.Index:
        if self.index is None:
            faiss.omp_set_num_threads(self.threads)
            store = SampleStore.open(self.store)
            index = (
                faiss.deserialize_index(trained) if trained is not None else self.backend.trained(self.dimension, None)
            )
            for name in self.files:
                ids, features = read_training_rows(store, name)
                index.add_with_ids(features, ids)
            self.backend.configure(index)
            self.index, self.queries = index, store
        return self.index

    def search(
        self,
        file: str,
        k: int,
        trained: np.ndarray | None,
        found: Nearest | None = None,
        result: QueryShardResult | None = None,
        groups: Groups | None = None,
    ) -> Nearest | tuple:
        """Search the training rows of store shard ``file`` (``k + 1`` nearest, self included) and merge them into
        ``found`` (the earlier parts'); with ``result``, this is the last part: emit the shard's rows."""
        index = self._built(trained)
        ids, queries = read_training_rows(self.queries, file)
        route = found.route if found is not None else self.backend.route(index, queries)
        approximate = self.backend.search(index, queries, k + 1, route)
        if found is not None:
            approximate = merge_nearest(found.approximate, approximate, k + 1)
        nearest = Nearest(ids, approximate, route)
        return nearest if result is None else result.emit(nearest, groups)
