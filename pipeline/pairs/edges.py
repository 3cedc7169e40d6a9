"""What one query shard of the pair stage emits: directed similar-pair rows (``shards.ROW``) for its samples.

Every pair is emitted in both directions, each later routed to the shard of its ``left`` (``shards.by_shard``),
so that one writer per shard sees every row of its samples and no process ever holds all the pairs.
"""

from __future__ import annotations

import numpy as np

from pipeline.pairs.shards import ROW, SOURCES, both_ways, knn_pairs, rows
from pipeline.pairs.copies import Groups, transform_knn_pairs, transform_pairs


def query_rows(ids: np.ndarray, neighbors: np.ndarray, sources: list[str], groups: Groups | None) -> np.ndarray:
    """The rows of queries ``ids`` whose ``k`` nearest neighbours (self excluded) are ``neighbors``: their kNN
    edges, their own copies (``transform``) and their neighbours' copies (``transform_knn``), as configured."""
    parts = [np.empty(0, ROW)]
    left, right = knn_pairs(neighbors, ids)
    if "knn" in sources:
        parts.append(both_ways(left, right, "knn"))
    if "transform" in sources:  # a copy's own query emits the reverse
        parts.append(rows(*transform_pairs(groups, ids), "transform"))
    if "transform_knn" in sources:
        parts.append(both_ways(*transform_knn_pairs(groups, left, right), "transform_knn"))
    return np.concatenate(parts)


def count_by_source(found: np.ndarray) -> dict[str, int]:
    counts = np.bincount(found["source"].astype(np.int64), minlength=len(SOURCES))
    return {name: int(c) for name, c in zip(SOURCES, counts) if c}
