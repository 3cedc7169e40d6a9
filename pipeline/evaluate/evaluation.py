"""The evaluate stage: embed the held-out split, score it, write ``embeddings.parquet`` and maps.

When the store holds transformed copies, trustworthiness and k-NN accuracy are computed on the test
originals (the paper's protocol) and the translation-invariance ratio on all test samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline.config import EvaluateConfig
from pipeline.data.store import SampleStore
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.evaluate.inference import embed
from pipeline.evaluate.metrics import cylinder_fit, invariance_ratio, knn_accuracy, trustworthiness
from pipeline.evaluate.plots import cylinder_views, scatter_map, thumbnail_map
from pipeline.errors import DataError
from pipeline.io import atomic_path

log = logging.getLogger(__name__)


@dataclass
class HeldOut:
    """The samples an embedding is scored on, with what the metrics need to know about them."""

    split: str
    ids: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    origin: np.ndarray
    transform: np.ndarray
    meta: dict[str, np.ndarray]  # azimuth / elevation / lighting when the source has them

    @classmethod
    def load(cls, store: SampleStore) -> HeldOut:
        split = store.held_out_split
        ids, features, labels = store.split(split)
        origin, transform = store.origins(split)
        names = [c for c in ("azimuth", "elevation", "lighting") if c in store.metadata_columns]
        meta = store.metadata(split, names) if {"azimuth", "elevation"} <= set(names) else {}
        return cls(split, ids, features, labels, origin, transform, meta)

    @property
    def original(self) -> np.ndarray:
        return np.array([t is None for t in self.transform])


def check_evaluate_config(cfg: EvaluateConfig, store: SampleStore) -> None:
    """Refuse, before training, metrics the held-out samples are too few for; the error names the keys."""
    split = store.held_out_split
    copies = sum(len(v) for v in (store.manifest.get("provenance", {}).get("transforms") or {}).values())
    n = store.manifest["splits"][split] // (1 + copies)  # the metrics score the originals
    k = max(cfg.trustworthiness_k)
    if n <= 2 * k or n <= cfg.knn_k:
        raise DataError(
            f"evaluate.trustworthiness_k={cfg.trustworthiness_k} and evaluate.knn_k={cfg.knn_k} need more than "
            f"{max(2 * k, cfg.knn_k)} held-out samples, and the {split} split has {n}; add held-out samples "
            f"(data.test_path, data.test_per_digit) or lower those k"
        )


def score(data: HeldOut, embedding: np.ndarray, cfg: EvaluateConfig) -> dict[str, float]:
    """Every metric that applies: trustworthiness and k-NN accuracy on the originals; the invariance ratio
    when there are transformed copies; the cylinder and lighting invariance for views with azimuth/elevation."""
    original = data.original
    x, z, y = data.features[original], embedding[original], data.labels[original]
    metrics = {f"trustworthiness_{k}": trustworthiness(x, z, k) for k in cfg.trustworthiness_k}
    if (y >= 0).all():  # sources without labels store -1
        metrics[f"knn_accuracy_{cfg.knn_k}"] = knn_accuracy(z, y, cfg.knn_k)
    if not original.all():
        metrics["invariance_ratio"] = invariance_ratio(embedding, data.origin)
    if data.meta:
        if embedding.shape[1] >= 3:
            metrics.update(cylinder_fit(embedding, data.meta["azimuth"], data.meta["elevation"]))
        if "lighting" in data.meta:
            views = np.stack([data.meta["azimuth"], data.meta["elevation"]], 1)
            same_view = np.unique(views, axis=0, return_inverse=True)[1].ravel()
            if np.bincount(same_view).max() > 1:  # some view is seen under several lightings
                metrics["lighting_invariance_ratio"] = invariance_ratio(embedding, same_view)
    return metrics


@dataclass
class Evaluation:
    metrics: dict[str, float]
    files: dict[str, Path]


def evaluate(model: torch.nn.Module, store: SampleStore, cfg: EvaluateConfig, out_dir: Path, title: str) -> Evaluation:
    """Embed the held-out split, compute metrics, write ``embeddings.parquet`` and PNG maps into ``out_dir``."""
    data = HeldOut.load(store)
    split = data.split
    if split != "test":
        log.warning("The sample store has no test split: evaluating on the training samples (set data.test_path)")
    embedding = embed(model, data.features, cfg.batch_size)
    metrics = score(data, embedding, cfg)
    original = data.original
    x, z, y = data.features[original], embedding[original], data.labels[original]
    has_copies = not original.all()
    log.info("Held-out (%s split) metrics: %s", split, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"embeddings": out_dir / "embeddings.parquet"}
    with atomic_path(files["embeddings"]) as tmp:
        pq.write_table(embeddings_table(data.ids, split, data.labels, embedding, data.origin, data.transform), tmp)
    if embedding.shape[1] >= 2:
        files["map"] = scatter_map(embedding, data.labels, out_dir / "map.png", title)
        if x.ndim >= 3:  # images: draw some on the map, as the paper's figures do
            files["map_thumbnails"] = thumbnail_map(z, x, y, out_dir / "map_thumbnails.png", title, cfg.thumbnails)
        if data.meta and embedding.shape[1] >= 3:
            files["map_cylinder"] = cylinder_views(
                embedding, data.meta["azimuth"], data.meta["elevation"], out_dir / "map_cylinder.png", title
            )
        if has_copies:
            tags = np.where(original, "original", data.transform).astype(str)
            files["map_transforms"] = scatter_map(
                embedding, tags, out_dir / "map_transforms.png", f"{title}, by transform", legend="transform"
            )
    return Evaluation(metrics=metrics, files=files)
