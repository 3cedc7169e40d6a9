"""``drlim view``: the maps to show for a run id, a model URI (the run that logged it) or an embeddings file or
folder, as the explorer's encoded maps (``pipeline.explore``), to serve on loopback or write as one page."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from pipeline.errors import DataError
from pipeline.explore.encoding import encode
from pipeline.explore.folder import embedding_files, read_embeddings
from pipeline.explore.page import Encoded, read_page

if TYPE_CHECKING:
    from pipeline.infrastructure.tracking import Tracker

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"[0-9a-f]{32}")
PAGE, EMBEDDINGS = "plots/explorer.html", "embeddings"  # a run's artifacts (see Tracker.log_evaluation)


def load_maps(target: str, tracker: Tracker, scratch: Path) -> list[Encoded]:
    """The maps ``target`` names: a run id, a model URI, or an embeddings Parquet file or folder."""
    if target.startswith(("models:/", "runs:/")):
        return run_maps(tracker.run_of_model(target), tracker, scratch)
    if Path(target).exists():
        return [encode(read_embeddings(Path(target)))]
    if RUN_ID.fullmatch(target):
        return run_maps(target, tracker, scratch)
    raise DataError(
        f"{target}: no such file or folder, and not a run id (32 hex digits) or a model URI (models:/NAME@ALIAS); "
        "give one of those, or an embeddings Parquet file or folder"
    )


def run_maps(run_id: str, tracker: Tracker, scratch: Path) -> list[Encoded]:
    """A run's map: its logged page's points (thumbnails, pairs, neighbours) when the page holds every point of its
    embeddings artifact, else every row of those (the page holds a sample of them)."""
    if tracker.uri.startswith("sqlite:///") and not Path(tracker.uri.removeprefix("sqlite:///")).is_file():
        raise DataError(
            f"no MLflow store at {tracker.uri.removeprefix('sqlite:///')}, so no run {run_id}; run drlim view where "
            "drlim run ran, or pass --workdir, or set MLFLOW_TRACKING_URI"
        )
    files = tracker.download_run_files(run_id, [PAGE, EMBEDDINGS], scratch / run_id)
    if EMBEDDINGS not in files and PAGE not in files:
        raise DataError(f"run {run_id} logged no embeddings and no map (did its evaluation finish?)")
    embedded = embedding_files(files[EMBEDDINGS]) if EMBEDDINGS in files else []
    ids = np.concatenate([pq.read_table(f, columns=["id"]).column("id").to_numpy() for f in embedded] or [[]])
    if PAGE in files:
        maps = read_page(files[PAGE].read_text(encoding="utf-8"), f"run {run_id}'s {PAGE}")
        if np.isin(ids, np.frombuffer(maps[0][1]["id"], maps[0][0]["id_dtype"])).all():
            return maps
    log.info("Showing all %d embeddings of run %s; thumbnails and pairs are on its page (a sample)", len(ids), run_id)
    return [encode(read_embeddings(files[EMBEDDINGS], f"run {run_id}"))]
