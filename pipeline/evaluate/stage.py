"""The evaluate stage: embed every row of the store (``every_row.py``: one task per shard, the folder
``embeddings/``), score the held-out split (``scoring.py``) on a seeded sample of at most
``evaluate.scored_samples`` originals (all of them when it holds fewer: exact), write ``embeddings.parquet`` (the
held-out split) and maps; the validation split, when the store has one, is scored the same way (never drawn, never
used for test figures). The driver reads back the held-out embeddings and the features of the scored sample only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipeline.config import EvaluateConfig
from pipeline.data.store import SampleStore
from pipeline.evaluate.every_row import embed_store, read_split
from pipeline.evaluate.plots import cylinder_views, scatter_map, thumbnail_map
from pipeline.evaluate.scoring import HeldOut, score
from pipeline.explore.page import write_page
from pipeline.explore.run_map import run_map
from pipeline.infrastructure.atomic import atomic_path
from pipeline.infrastructure.executor import Executor, InProcess

if TYPE_CHECKING:
    from pipeline.pairs.shards import PairSet

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    metrics: dict[str, float]  # on the held-out split (test)
    files: dict[str, Path]
    validation: dict[str, float] = field(default_factory=dict)  # on the validation split, when there is one
    scored: dict[str, int] = field(default_factory=dict)  # split -> the originals its metrics were computed on
    every_row: Path | None = None  # the folder of the embeddings of every row (every split)


def evaluate(
    model: torch.nn.Module,
    store: SampleStore,
    cfg: EvaluateConfig,
    out_dir: Path,
    title: str,
    run: Executor | None = None,
    pairs: PairSet | None = None,
) -> Evaluation:
    """Embed every row of ``store`` into ``out_dir/embeddings/`` with ``run``'s tasks (default: in this process),
    then score the held-out and validation splits and draw the maps in one more task (``score_and_draw``): the
    driver holds neither features nor embeddings."""
    run = run or InProcess()
    folder = embed_store(model, store, out_dir / "embeddings", run, cfg.batch_size)
    [evaluation] = run.gather(
        [run.task(score_and_draw, store, folder, cfg, out_dir, title, pairs, here=True)], "score", unit="split"
    )
    return evaluation


def score_and_draw(
    store: SampleStore, folder: Path, cfg: EvaluateConfig, out_dir: Path, title: str, pairs: PairSet | None = None
) -> Evaluation:
    """Score the held-out split (and the validation split) of ``store`` from the embeddings in ``folder``, write
    ``embeddings.parquet`` (the held-out split), the PNG maps and the interactive map (``explorer.html``: the scored
    sample and, with ``pairs``, training samples with their similar pairs) into ``out_dir``."""
    store = store.here()
    split = store.held_out_split
    if split != "test":
        log.warning("The sample store has no test split: evaluating on the training samples (set data.test_path)")
    table = read_split(folder, split)
    embedding = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    labels = table.column("label").to_numpy()
    data, metrics = _scored(store, split, table, embedding, cfg)
    log.info(
        "Held-out (%s split) metrics%s: %s",
        split,
        _on(data, table),
        ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
    )
    scored = {split: int(data.original.sum())}

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"embeddings": out_dir / "embeddings.parquet"}
    with atomic_path(files["embeddings"]) as tmp:
        pq.write_table(table, tmp)
    if embedding.shape[1] >= 2:
        files["map"] = scatter_map(embedding, labels, out_dir / "map.png", title)
        original = data.original
        x, z, y = data.features[original], _rows(table, embedding, data.ids)[original], data.labels[original]
        if x.ndim >= 3:  # images: draw some on the map, as the paper's figures do
            files["map_thumbnails"] = thumbnail_map(z, x, y, out_dir / "map_thumbnails.png", title, cfg.thumbnails)
        if data.meta and embedding.shape[1] >= 3:
            files["map_cylinder"] = cylinder_views(
                _rows(table, embedding, data.ids),
                data.meta["azimuth"],
                data.meta["elevation"],
                out_dir / "map_cylinder.png",
                title,
            )
        transform = np.asarray(table.column("transform").to_pylist(), dtype=object)
        if any(t is not None for t in transform):
            tags = np.where([t is None for t in transform], "original", transform).astype(str)
            files["map_transforms"] = scatter_map(
                embedding, tags, out_dir / "map_transforms.png", f"{title}, by transform", legend="transform"
            )
        points = run_map(
            data, _rows(table, embedding, data.ids), store, pairs, lambda ids: _embedded(folder, "train", ids), title
        )
        files["explorer"] = write_page(out_dir / "explorer.html", [points])
    validation: dict[str, float] = {}
    if store.manifest["splits"].get("validation"):
        held_table = read_split(folder, "validation")
        held_embedding = np.stack(held_table.column("embedding").to_numpy(zero_copy_only=False))
        held, validation = _scored(store, "validation", held_table, held_embedding, cfg)
        scored["validation"] = int(held.original.sum())
        log.info(
            "Validation metrics%s: %s", _on(held, held_table), ", ".join(f"{k}={v:.4f}" for k, v in validation.items())
        )
    return Evaluation(metrics=metrics, files=files, validation=validation, scored=scored, every_row=folder)


def _scored(
    store: SampleStore, split: str, table: pa.Table, embedding: np.ndarray, cfg: EvaluateConfig
) -> tuple[HeldOut, dict[str, float]]:
    """The samples of ``split`` the metrics are computed on (a seeded sample of ``cfg.scored_samples`` originals
    with their copies; all when fewer), and the metrics."""
    data = HeldOut.load(store, split, cfg.scored_samples)
    return data, score(data, _rows(table, embedding, data.ids), cfg)


def _rows(table: pa.Table, embedding: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The rows of ``embedding`` (ordered as ``table``, by id) of the samples ``ids`` (sorted)."""
    all_ids = table.column("id").to_numpy()
    return embedding[np.searchsorted(all_ids, ids)]


def _embedded(folder: Path, split: str, ids: np.ndarray) -> np.ndarray:
    """The embeddings of the samples ``ids`` (sorted) of ``split``, read back from the every-row folder."""
    table = read_split(folder, split)
    return _rows(table, np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), ids)


def _on(data: HeldOut, table: pa.Table) -> str:
    rows = table.num_rows
    return "" if len(data.ids) == rows else f" on a seeded sample of {len(data.ids)} of its {rows} samples"
