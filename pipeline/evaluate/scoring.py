"""Scoring an embedding of held-out samples (test or validation): the metrics that apply, on the originals.

When the store holds transformed copies, trustworthiness and k-NN accuracy are computed on the originals (the
paper's protocol) and the translation-invariance ratio on all samples. Import-light for a training worker: no
plotting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import EvaluateConfig
from pipeline.data.store import SampleStore
from pipeline.evaluate.metrics import cylinder_fit, invariance_ratio, knn_accuracy, trustworthiness


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
    def load(cls, store: SampleStore, split: str | None = None, originals: int | None = None, seed: int = 0) -> HeldOut:
        """The samples of ``split`` (default: the held-out split, "test" when the store has one); with
        ``originals``, only that many of its originals (drawn with ``seed``) with their transformed copies, and only
        those rows are read."""
        split = split or store.held_out_split
        keep = None
        if originals is not None:
            ids = store.column(split, "id")
            origin, transform = store.origins(split)
            own = ids[np.array([t is None for t in transform])]
            if originals < len(own):
                keep = ids[np.isin(origin, np.random.default_rng(seed).choice(own, originals, replace=False))]
        ids, features, labels = store.split(split, keep)
        origin, transform = store.origins(split, keep)
        names = [c for c in ("azimuth", "elevation", "lighting") if c in store.metadata_columns]
        meta = store.metadata(split, names, keep) if {"azimuth", "elevation"} <= set(names) else {}
        return cls(split, ids, features, labels, origin, transform, meta)

    @property
    def original(self) -> np.ndarray:
        return np.array([t is None for t in self.transform])


def score(data: HeldOut, embedding: np.ndarray, cfg: EvaluateConfig) -> dict[str, float]:
    """Every metric that applies: trustworthiness and k-NN accuracy on the originals; the invariance ratio
    when there are transformed copies; the cylinder and lighting invariance for views with azimuth/elevation."""
    original = data.original
    x, z, y = data.features[original], embedding[original], data.labels[original]
    # Every k fits the test split (checked before training); a small validation split skips a k it cannot take.
    metrics = {f"trustworthiness_{k}": trustworthiness(x, z, k) for k in cfg.trustworthiness_k if k < len(x) / 2}
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
