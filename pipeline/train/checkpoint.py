"""The training checkpoint: the one place that knows its format.

A checkpoint is a Ray Train checkpoint folder holding ``state.pt`` (from rank 0): the model's weights, the
optimizer's state, the weight average (``train.ema_decay``), the epochs done, the history of every epoch's
metrics, the encoder's spec (``EncoderConfig.spec``) and the best validation epoch (``evaluate.select: best``).
Every worker reports one after every epoch (``report``: a barrier), and every ``train.checkpoint_every`` seconds
within a long epoch; one taken within an epoch also holds each worker's place there (``within-<rank>.pt``: the
next step, the epoch's sums so far, its generators' states), which Ray Train merges into the same folder. A worker
restarted by Ray Train, or a re-run of the same job, resumes from the latest (``latest``), within an epoch on the
same loss curve. When a training ends the driver records which checkpoint holds it (``mark_finished``: a file of
ours beside Ray Train's), so that a re-run finds a finished training (``finished``) without starting Ray Train.
``trained_model`` is the model a finished training returns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from encoders.registry import build_encoder
from pipeline.config import EvaluateConfig
from pipeline.infrastructure.location import Location
from pipeline.train.core import EpochState

if TYPE_CHECKING:
    import ray.train

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
WITHIN_FILE = "within-{rank}.pt"  # a worker's place within an epoch, in a checkpoint taken there
FINISHED_FILE = "drlim-finished.json"  # in the run's folder: which checkpoint holds the finished training


def report(
    metrics: dict[str, float], state: dict[str, Any] | None, within: EpochState | None = None, rank: int = 0
) -> None:
    """Report to Ray Train (a barrier: every worker calls it as often), with a checkpoint holding ``state`` (rank
    0) and this worker's place ``within`` an epoch, when taken there; without a checkpoint when neither."""
    import ray.train

    if state is None and within is None:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if state is not None:
            torch.save(state, Path(tmp) / STATE_FILE)
        if within is not None:
            torch.save(dataclasses.asdict(within), Path(tmp) / WITHIN_FILE.format(rank=rank))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def load(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    with checkpoint.as_directory() as directory:
        # weights_only: a checkpoint is data (tensors, numbers, lists), never code to execute.
        return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)


def latest(rank: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """In a Ray Train worker: the state of the run's latest checkpoint and, when it was taken within an epoch,
    worker ``rank``'s place there; ``(None, None)`` for a fresh run."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None, None
    with checkpoint.as_directory() as directory:
        within = Path(directory) / WITHIN_FILE.format(rank=rank)
        place = torch.load(within, map_location="cpu", weights_only=True) if within.is_file() else None
    return load(checkpoint), place


def at(run_dir: Location, path: str) -> dict[str, Any]:
    """The state of the checkpoint at ``path`` inside ``run_dir``'s filesystem (as Ray Train names it)."""
    import ray.train

    return load(ray.train.Checkpoint(path, run_dir.filesystem()[0]))


def mark_finished(run_dir: Location, checkpoint: ray.train.Checkpoint, length: dict[str, Any]) -> None:
    """Record that the training in ``run_dir`` of ``length`` (its train.epochs and train.steps) finished in
    ``checkpoint``."""
    run_dir.write_json(FINISHED_FILE, {**length, "checkpoint": Path(checkpoint.path).name})


def finished(run_dir: Location, length: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The state of the checkpoint that holds the finished training of ``length`` in ``run_dir`` and its path;
    else None (never ran, unfinished, or a record that cannot be read: Ray Train then starts and resumes from the
    latest checkpoint itself)."""
    try:
        record = run_dir.read_bytes(FINISHED_FILE)
        if record is None:
            return None
        found = json.loads(record)
        if any(found.get(key) != value for key, value in length.items()):
            return None
        path = f"{run_dir.filesystem()[1]}/{found['checkpoint']}"
        return at(run_dir, path), path
    except (OSError, ValueError, KeyError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError):
        return None


def trained_model(state: dict[str, Any], evaluate: EvaluateConfig) -> torch.nn.Module:
    """The model a finished training returns, from its last checkpoint's ``state``: the best validation epoch's
    weights with ``evaluate.select: best``, else the weight average (``train.ema_decay``) or the last weights."""
    model = build_encoder(**state["encoder"])
    best = state.get("best")
    if evaluate.select == "best" and best is not None:
        log.info(
            "Returning the model of epoch %d, the best by validation %s (%.4f)",
            best["epoch"],
            f"trustworthiness_{evaluate.trustworthiness_k[0]}",
            best["score"],
        )
        model.load_state_dict(best["weights"])
    else:  # the raw weights only resume training when there is a weight average
        model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    return model.eval()
