"""The per-worker training function run by Ray Train (also runs as one worker: rank 0, world 1).

A worker reads only its own pair shards (``PairSet.read_share``: the similar pairs of the samples it owns,
never all pairs); the rest is the Ray-free ``TrainingSession`` (``session.py``: features by id, the encoder, the
epochs, validation on rank 0). What is left here is Ray's part: the context, DDP, the checkpoint to resume from
and, every epoch, a checkpoint (``checkpoint.py``) reported to Ray Train and the epoch logged to MLflow from
rank 0.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import ray.train
import ray.train.torch
import torch

from pipeline.config import JobConfig
from pipeline.data.store import SampleStore
from pipeline.infrastructure.runtime import log_to_console
from pipeline.pairs.shards import PairSet
from pipeline.train import checkpoint
from pipeline.train.allocator import keep_freed_memory
from pipeline.train.core import EpochState
from pipeline.train.session import Progress, TrainingSession, epoch_line

log = logging.getLogger(__name__)


def _quiet_ray_train_reports() -> None:
    """Ray Train V2 logs every report and checkpoint of every worker at INFO (two lines per epoch and worker, each
    with the whole metrics dict); rank 0's epoch line says the same. Its warnings and errors still show."""
    for name in ("ray.train.v2._internal.execution.context", "ray.train.v2._internal.execution.storage"):
        logger = getattr(sys.modules.get(name), "logger", None)  # internal modules: skip if Ray renames them
        if isinstance(logger, logging.Logger):
            logger.setLevel(logging.WARNING)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    job = JobConfig.model_validate(config["job"])
    tracker = config.get("tracker")
    cfg = job.train
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    _quiet_ray_train_reports()
    if rank == 0:
        log_to_console()
    torch.set_num_threads(max(1, int(config["threads_per_worker"])))
    keep_freed_memory()  # else a CPU step hands its memory back to the OS and faults it in again (allocator.py)
    share = PairSet.open(config["pairs"]).read_share(rank, world, with_source=bool(cfg.source_weights))
    # Channels-last convolutions were measured: faster in one process, slower under DDP here (BENCHMARKS.md).
    # With local SGD the core averages the weights itself (averaging.py); else DDP averages the gradients.
    strategy = None if cfg.averaged_every(world) else "ddp"
    session = TrainingSession(
        job,
        SampleStore.open(config["samples"]),
        share,
        ray.train.torch.get_device(),
        rank,
        wrap=lambda model: ray.train.torch.prepare_model(model, parallel_strategy=strategy),
    )
    progress = session.resume(*checkpoint.latest(rank))
    resumed = progress.epoch or progress.within is not None
    if resumed and rank == 0:  # a re-run of the job, or Ray Train restarting the workers after a failure
        where = f" and step {progress.within.step} of the next" if progress.within is not None else ""
        log.info("Resuming from the checkpoint after epoch %d%s", progress.epoch, where)
        if tracker is not None:
            tracker.log_epoch({"resumed_from_epoch": progress.epoch}, progress.epoch)

    def epoch_done(metrics: dict[str, float], validation: dict[str, float], progress: Progress) -> None:
        if rank != 0:
            checkpoint.report(metrics, None)
            return
        log.info(epoch_line(progress, session.core.epochs, metrics, validation))
        checkpoint.report(metrics, session.state(progress))
        # After the checkpoint: an epoch lost to a worker failure is retrained, not logged twice.
        if tracker is not None:
            tracker.log_epoch(metrics, progress.epoch)
            if validation:
                tracker.log_epoch(validation, progress.epoch, prefix="val")

    def within_saved(progress: Progress, place: EpochState) -> None:
        # Every worker's place, rank 0's weights: every worker holds them at this step (DDP, or local SGD's
        # averaging step), and resumes from them with its own draws.
        metrics: dict[str, float] = {"epoch": progress.epoch, "step": place.step}
        checkpoint.report(metrics, session.state(progress) if rank == 0 else None, place, rank)
        if rank == 0:
            log.info("Checkpoint at step %d of epoch %d", place.step, place.epoch + 1)

    session.fit(progress, epoch_done, within_saved)
