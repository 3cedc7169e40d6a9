"""The embeddings table (schema version 2), written by the evaluate stage and by ``drlim embed``.

``id`` int64, ``split`` string, ``label`` int32 (-1: unlabelled), ``origin_id`` int64, ``transform`` string
(null for originals), ``embedding`` fixed_size_list<float32>[output_dim]. A run writes the held-out split as
``embeddings.parquet`` and every split, every row, as the folder ``embeddings/`` (one part per store shard).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

EMBEDDINGS_SCHEMA_VERSION = 2


def embeddings_table(
    ids: np.ndarray,
    split: str | np.ndarray,
    labels: np.ndarray,
    embedding: np.ndarray,
    origin: np.ndarray | None = None,
    transform: np.ndarray | None = None,
) -> pa.Table:
    dim = embedding.shape[1]
    flat = pa.array(np.ascontiguousarray(embedding, dtype=np.float32).ravel())
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("split", pa.string()),
            ("label", pa.int32()),
            ("origin_id", pa.int64()),
            ("transform", pa.string()),
            ("embedding", pa.list_(pa.float32(), dim)),
        ],
        metadata={"drlim.schema_version": str(EMBEDDINGS_SCHEMA_VERSION)},
    )
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "split": pa.array([split] * len(ids) if isinstance(split, str) else split, pa.string()),
            "label": pa.array(labels.astype(np.int32)),
            "origin_id": pa.array(ids if origin is None else origin, pa.int64()),
            "transform": (
                pa.nulls(len(ids), pa.string()) if transform is None else pa.array(list(transform), pa.string())
            ),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
        },
        schema=schema,
    )
