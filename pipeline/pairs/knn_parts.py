"""The kNN graph of a sample store with the index in parts: no process holds all the features.

Each ``IndexPart`` (a Ray actor in the pair stage) reads the training rows of some sample-store shards into an
index of its own; every part starts from the same empty index (``IndexBackend.trained``: for IVF, the same
trained centroids). A query shard visits the parts one after another: each searches the shard's rows and
merges its ``k + 1`` nearest with those found so far (``merge_nearest``), so after the last part each query has
its nearest among all rows -- for ``flat`` and ``ivf`` exactly what one whole index would give. The last part
also searches the recall queries exhaustively (``exact_search``) and hands the result to ``QueryShardResult``,
which emits the shard's pair rows (``edges.query_rows``) bucketed by pair shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from pipeline.data.store import SampleStore
from pipeline.errors import DataError
from pipeline.pairs.edges import count_by_source, query_rows
from pipeline.pairs.knn import IndexBackend, drop_self
from pipeline.pairs.shards import by_shard
from pipeline.pairs.transforms import Groups


def read_training_rows(path: Path, store_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, features (n, d) float32)`` of the training rows of one store shard; non-finite features refused."""
    table = SampleStore.read_shard(path, "train", ["id", "features"])
    ids = table.column("id").to_numpy()
    features = table.column("features").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise DataError(f"sample store {store_dir}: {int(bad.sum())} training samples have NaN or infinite features "
                        f"(first ids: {ids[bad][:5].tolist()}); fix the source data and re-run")
    return ids, np.ascontiguousarray(features, dtype=np.float32)


def merge_nearest(found: tuple[np.ndarray, np.ndarray], more: tuple[np.ndarray, np.ndarray],
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of two ``(distances, ids)`` results for the same queries (ties: ``found`` first)."""
    distances = np.concatenate([found[0], more[0]], axis=1)
    ids = np.concatenate([found[1], more[1]], axis=1)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(ids, order, axis=1)


@dataclass
class Nearest:
    """The nearest rows found so far for one query shard (``k + 1`` each: the query itself is among them)."""

    ids: np.ndarray
    approximate: tuple[np.ndarray, np.ndarray]
    recall_rows: np.ndarray  # positions in ``ids`` of the recall queries
    exact: tuple[np.ndarray, np.ndarray] | None = None
    route: tuple[np.ndarray, np.ndarray] | None = None  # IndexBackend.route, made by the first part


@dataclass(frozen=True)
class QueryShardResult:
    """Turns a query shard's finished ``Nearest`` into its pair rows, bucketed by pair shard, plus figures."""

    k: int
    sources: list[str]
    num_shards: int

    def emit(self, nearest: Nearest, groups: Groups | None) -> tuple:
        neighbors = drop_self(nearest.approximate[1], nearest.ids, self.k)
        found = query_rows(nearest.ids, neighbors, self.sources, groups)
        figures = {"queries": len(nearest.ids), "rows_by_source": count_by_source(found), "recall_hits": 0,
                   "recall_queries": len(nearest.recall_rows)}
        if nearest.exact is not None and len(nearest.recall_rows):
            exact = drop_self(nearest.exact[1], nearest.ids[nearest.recall_rows], self.k)
            figures["recall_hits"] = int(sum(len(np.intersect1d(a, b)) for a, b in
                                             zip(neighbors[nearest.recall_rows], exact)))
        return (*by_shard(found, self.num_shards), figures)


class IndexPart:
    """One part of the index: the training rows of ``files`` (store shards), searchable by any query shard."""

    def __init__(self, backend: IndexBackend, trained: np.ndarray | None, dimension: int, files: list[Path],
                 store_dir: Path, threads: int) -> None:
        faiss.omp_set_num_threads(threads)
        self.backend, self.store_dir = backend, store_dir
        self.index = faiss.deserialize_index(trained) if trained is not None else backend.trained(dimension, None)
        # Ray reports an error raised here as the actor's death, without the error; kept and raised by the first
        # search instead, it reaches the driver as itself (bad features named by their ids).
        self.error: DataError | None = None
        try:
            for path in files:
                ids, features = read_training_rows(path, store_dir)
                self.index.add_with_ids(features, ids)
        except DataError as exc:
            self.error = exc
        backend.configure(self.index)

    def search(self, path: Path, k: int, recall_ids: np.ndarray | None = None, found: Nearest | None = None,
               result: QueryShardResult | None = None, groups: Groups | None = None) -> Nearest | tuple:
        """Search the training rows of store shard ``path`` (``k + 1`` nearest, self included; the rows among
        ``recall_ids`` exhaustively too) and merge them into ``found`` (the earlier parts'); with ``result``, this
        is the last part: emit the shard's rows."""
        if self.error is not None:
            raise self.error
        ids, queries = read_training_rows(path, self.store_dir)
        route = found.route if found is not None else self.backend.route(self.index, queries)
        approximate = self.backend.search(self.index, queries, k + 1, route)
        rows = np.flatnonzero(np.isin(ids, recall_ids)) if recall_ids is not None else np.empty(0, np.int64)
        exact = self.backend.exact_search(self.index, queries[rows], k + 1) if recall_ids is not None else None
        if found is not None:
            approximate = merge_nearest(found.approximate, approximate, k + 1)
            if exact is not None and found.exact is not None:
                exact = merge_nearest(found.exact, exact, k + 1)
        nearest = Nearest(ids, approximate, rows, exact, route)
        return nearest if result is None else result.emit(nearest, groups)
