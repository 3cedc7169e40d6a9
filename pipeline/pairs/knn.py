"""k nearest neighbours in input space with FAISS: index backends, a pure search core and a Ray wrapper.

Backends (``pairs.index``): ``flat`` is exact L2 search; ``ivf`` (inverted lists, ``nprobe`` of ``nlist``
cells searched) and ``hnsw`` (a navigable small-world graph) are approximate, for large N. Approximate
indexes are trained/built once on the driver; the Ray wrapper places the serialised index in the object store
once and searches contiguous query shards in parallel tasks, each setting its FAISS thread count explicitly
(Ray sets OMP_NUM_THREADS per worker) and the backend's search parameters. ``knn_recall`` measures an
approximate graph against exact search on a sample of queries.
"""

from __future__ import annotations

import logging
import math
from typing import ClassVar

import faiss
import numpy as np
import ray
from tqdm.auto import tqdm

from pipeline.pairs.catalog import check_index_options

log = logging.getLogger(__name__)


class IndexBackend:
    """A FAISS index type: validated options (``catalog.INDEX_OPTIONS``), how to build it, and the parameters
    its searches need."""

    name: ClassVar[str]
    exact: ClassVar[bool] = False

    def __init__(self, **options: int | None) -> None:
        self.options = check_index_options(self.name, options)

    def build(self, x: np.ndarray, seed: int = 0) -> faiss.Index:
        raise NotImplementedError

    def search_parameters(self) -> dict[str, int]:
        """FAISS ``ParameterSpace`` settings to apply to a deserialised index before searching."""
        return {}


class FlatIndex(IndexBackend):
    name, exact = "flat", True

    def build(self, x: np.ndarray, seed: int = 0) -> faiss.Index:
        index = faiss.IndexFlatL2(x.shape[1])
        index.add(x)
        return index


class IVFIndex(IndexBackend):
    """IVF-Flat; ``nlist`` defaults to 4 sqrt(N) cells, trained on at most ``train_size`` (64 per cell) rows."""

    name = "ivf"

    def build(self, x: np.ndarray, seed: int = 0) -> faiss.Index:
        n = len(x)
        nlist = self.options["nlist"] or max(1, int(4 * math.sqrt(n)))
        if nlist > n:
            raise ValueError(f"index 'ivf': nlist={nlist} exceeds the {n} samples; lower pairs.index_options.nlist")
        train_size = min(n, self.options["train_size"] or 64 * nlist)
        sample = x[np.sort(np.random.default_rng(seed).choice(n, train_size, replace=False))]
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(x.shape[1]), x.shape[1], nlist)
        index.cp.seed = seed
        self.options = {**self.options, "nlist": nlist, "train_size": train_size}  # record what was used
        index.train(sample)
        index.add(x)
        return index

    def search_parameters(self) -> dict[str, int]:
        return {"nprobe": int(self.options["nprobe"])}


class HNSWIndex(IndexBackend):
    """HNSW-Flat with ``m`` links per node; ``ef_construction`` / ``ef_search`` trade speed for recall."""

    name = "hnsw"

    def build(self, x: np.ndarray, seed: int = 0) -> faiss.Index:
        index = faiss.IndexHNSWFlat(x.shape[1], int(self.options["m"]))
        index.hnsw.efConstruction = int(self.options["ef_construction"])
        index.add(x)
        return index

    def search_parameters(self) -> dict[str, int]:
        return {"efSearch": int(self.options["ef_search"])}


INDEXES: dict[str, type[IndexBackend]] = {cls.name: cls for cls in (FlatIndex, IVFIndex, HNSWIndex)}


def make_index(name: str, options: dict[str, int | None] | None = None) -> IndexBackend:
    """The backend ``name`` with ``options``; errors name the valid choices."""
    check_index_options(name, options)
    return INDEXES[name](**(options or {}))


def build_flat_index(features: np.ndarray) -> faiss.Index:
    """Exact L2 index over ``features`` (n, d) float32; row i has id i."""
    return FlatIndex().build(np.ascontiguousarray(features, dtype=np.float32))


def drop_self(neighbors: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """From ``k + 1`` neighbours per query, remove the query itself (or the farthest when self is absent).

    Self may be missing from its own list when exact duplicates tie with it; it is never kept.
    """
    is_self = neighbors == query_ids[:, None]
    keep = ~is_self
    no_self = ~is_self.any(axis=1)
    keep[no_self, -1] = False
    # A row may contain its own id at most once; after this, every row keeps exactly k entries.
    return neighbors[keep].reshape(len(neighbors), k)


def knn_search(index: faiss.Index, queries: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """Ids of the ``k`` nearest indexed samples of each query, self excluded, nearest first."""
    if k >= index.ntotal:
        raise ValueError(f"k={k} needs more than k indexed samples, the index has {index.ntotal}")
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k + 1)
    return drop_self(found.astype(np.int64), np.asarray(query_ids, dtype=np.int64), k)


def apply_search_parameters(index: faiss.Index, parameters: dict[str, int]) -> None:
    space = faiss.ParameterSpace()
    for key, value in parameters.items():
        space.set_index_parameter(index, key, value)


# A search is pure, so a task whose worker process died (OOM killer, lost node) is simply run again.
@ray.remote(max_retries=3)
def _search_shard(index_bytes, features, start: int, stop: int, k: int, threads: int, parameters: dict[str, int]):
    faiss.omp_set_num_threads(threads)
    index = faiss.deserialize_index(index_bytes)
    apply_search_parameters(index, parameters)
    return start, knn_search(index, features[start:stop], np.arange(start, stop), k)


def knn_graph(
    features: np.ndarray,
    k: int,
    num_tasks: int,
    backend: IndexBackend | None = None,
    threads_per_task: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """``(n, k)`` neighbour ids of every row of ``features`` against all rows, as parallel Ray tasks."""
    backend = backend or FlatIndex()
    n = len(features)
    flat = np.ascontiguousarray(features.reshape(n, -1), dtype=np.float32)
    if not backend.exact:
        log.info("Building the %s index over %d samples (%s)", backend.name, n, backend.options)
    index_ref = ray.put(faiss.serialize_index(backend.build(flat, seed)))
    features_ref = ray.put(flat)
    parameters = backend.search_parameters()
    bounds = np.linspace(0, n, min(num_tasks, n) + 1, dtype=np.int64)
    pending = [
        _search_shard.options(num_cpus=threads_per_task).remote(
            index_ref, features_ref, int(a), int(b), k, threads_per_task, parameters
        )
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]
    neighbors = np.empty((n, k), dtype=np.int64)
    with tqdm(total=n, desc="kNN search", unit="query", disable=None) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            start, block = ray.get(done[0])
            neighbors[start : start + len(block)] = block
            bar.update(len(block))
    return neighbors


def knn_recall(features: np.ndarray, neighbors: np.ndarray, n_queries: int, seed: int = 0) -> float:
    """Recall@k of ``neighbors`` (n, k) against exact search, on ``n_queries`` random queries (seeded)."""
    n, k = neighbors.shape
    flat = np.ascontiguousarray(features.reshape(n, -1), dtype=np.float32)
    queries = np.sort(np.random.default_rng(seed).choice(n, min(n_queries, n), replace=False))
    exact = knn_search(build_flat_index(flat), flat[queries], queries, k)
    hits = [len(np.intersect1d(a, b)) for a, b in zip(neighbors[queries], exact)]
    return float(np.sum(hits) / (len(queries) * k))
