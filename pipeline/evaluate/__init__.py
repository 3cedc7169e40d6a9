"""Embed & evaluate stage: held-out embeddings as Parquet, metrics, and pictures.

Embeddings Parquet schema (version 1): ``id`` int64, ``split`` string, ``label`` int32,
``embedding`` fixed_size_list<float32>[output_dim].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipeline.config import EvaluateConfig
from pipeline.data import SampleStore
from pipeline.evaluate.embed import embed
from pipeline.evaluate.metrics import knn_accuracy, trustworthiness
from pipeline.evaluate.plots import scatter_map, thumbnail_map
from pipeline.io import atomic_path

log = logging.getLogger(__name__)


def embeddings_table(ids: np.ndarray, split: str, labels: np.ndarray, embedding: np.ndarray) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(embedding, dtype=np.float32).ravel())
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "split": pa.array([split] * len(ids), pa.string()),
            "label": pa.array(labels.astype(np.int32)),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, embedding.shape[1]),
        },
        schema=pa.schema([("id", pa.int64()), ("split", pa.string()), ("label", pa.int32()),
                          ("embedding", pa.list_(pa.float32(), embedding.shape[1]))],
                         metadata={"drlim.schema_version": "1"}),
    )


@dataclass
class Evaluation:
    metrics: dict[str, float]
    files: dict[str, Path]


def evaluate(model: torch.nn.Module, store: SampleStore, cfg: EvaluateConfig, out_dir: Path, title: str) -> Evaluation:
    """Embed the test split, compute metrics, write ``embeddings.parquet`` and PNG maps into ``out_dir``."""
    ids, features, labels = store.split("test")
    embedding = embed(model, features, cfg.batch_size)
    metrics = {f"trustworthiness_{k}": trustworthiness(features, embedding, k) for k in cfg.trustworthiness_k}
    metrics[f"knn_accuracy_{cfg.knn_k}"] = knn_accuracy(embedding, labels, cfg.knn_k)
    log.info("Test-set metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"embeddings": out_dir / "embeddings.parquet"}
    with atomic_path(files["embeddings"]) as tmp:
        pq.write_table(embeddings_table(ids, "test", labels, embedding), tmp)
    if embedding.shape[1] >= 2:
        files["map"] = scatter_map(embedding, labels, out_dir / "map.png", title)
        files["map_thumbnails"] = thumbnail_map(
            embedding, features, labels, out_dir / "map_thumbnails.png", title, cfg.thumbnails
        )
    return Evaluation(metrics=metrics, files=files)


__all__ = ["Evaluation", "embed", "evaluate", "knn_accuracy", "trustworthiness"]
