"""k nearest neighbours in input space with FAISS: a pure core and a Ray wrapper.

The Ray wrapper builds one index, places it in the object store once, and searches contiguous query shards
in parallel tasks; each task sets its FAISS thread count explicitly (Ray sets OMP_NUM_THREADS per worker).
"""

from __future__ import annotations

import logging

import faiss
import numpy as np
import ray
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def build_flat_index(features: np.ndarray) -> faiss.Index:
    """Exact L2 index over ``features`` (n, d) float32; row i has id i."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    return index


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


@ray.remote
def _search_shard(index_bytes: np.ndarray, features: np.ndarray, start: int, stop: int, k: int, threads: int):
    faiss.omp_set_num_threads(threads)
    index = faiss.deserialize_index(index_bytes)
    return start, knn_search(index, features[start:stop], np.arange(start, stop), k)


def knn_graph(features: np.ndarray, k: int, num_tasks: int, threads_per_task: int = 1) -> np.ndarray:
    """``(n, k)`` neighbour ids of every row of ``features`` against all rows, as parallel Ray tasks."""
    n = len(features)
    flat = np.ascontiguousarray(features.reshape(n, -1), dtype=np.float32)
    index_ref = ray.put(faiss.serialize_index(build_flat_index(flat)))
    features_ref = ray.put(flat)
    bounds = np.linspace(0, n, min(num_tasks, n) + 1, dtype=np.int64)
    pending = [
        _search_shard.options(num_cpus=threads_per_task).remote(
            index_ref, features_ref, int(a), int(b), k, threads_per_task
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
