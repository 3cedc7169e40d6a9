"""The evaluate stage: embed the held-out split, score it (``scoring.py``), write ``embeddings.parquet`` and
maps; the validation split, when the store has one, is scored too (never drawn, never used for test figures).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline.config import EvaluateConfig
from pipeline.data.store import SampleStore
from pipeline.evaluate.embeddings import embeddings_table
from pipeline.evaluate.inference import embed
from pipeline.evaluate.plots import cylinder_views, scatter_map, thumbnail_map
from pipeline.evaluate.scoring import HeldOut, score
from pipeline.explore.page import write_page
from pipeline.explore.run_map import run_map
from pipeline.infrastructure.atomic import atomic_path

if TYPE_CHECKING:
    from pipeline.pairs.shards import PairSet

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    metrics: dict[str, float]  # on the held-out split (test)
    files: dict[str, Path]
    validation: dict[str, float] = field(default_factory=dict)  # on the validation split, when there is one


def evaluate(
    model: torch.nn.Module,
    store: SampleStore,
    cfg: EvaluateConfig,
    out_dir: Path,
    title: str,
    pairs: PairSet | None = None,
) -> Evaluation:
    """Embed the held-out split, compute metrics, write ``embeddings.parquet``, PNG maps and the interactive map
    (``explorer.html``: with ``pairs``, the similar pairs of a sample of training samples too) into ``out_dir``."""
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
        points = run_map(data, embedding, store, pairs, lambda x: embed(model, x, cfg.batch_size), title)
        files["explorer"] = write_page(out_dir / "explorer.html", [points])
    validation = {}
    if store.manifest["splits"].get("validation"):
        held = HeldOut.load(store, "validation")
        validation = score(held, embed(model, held.features, cfg.batch_size), cfg)
        log.info("Validation metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in validation.items()))
    return Evaluation(metrics=metrics, files=files, validation=validation)
