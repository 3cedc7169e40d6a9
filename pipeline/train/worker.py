"""The per-worker training function run by Ray Train (also runs as one worker: rank 0, world 1).

A worker reads only its own pair shards (``PairSet.read_share``: the similar pairs of the samples it owns,
never all pairs) and fetches features by id (``pipeline/train/features.py``); the epochs themselves are the
Ray-free ``TrainingCore`` (``core.py``). What is left here is Ray's part: the context, DDP, checkpoint restore
and, every epoch, metrics reduced over workers, validation on rank 0 (``validation.py``; the best epoch's
weights are kept for ``evaluate.select: best``), a checkpoint (model, optimizer, weight average, epoch,
history, best) reported to Ray Train, and the epoch logged to MLflow from rank 0.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from encoders.registry import build_encoder
from pipeline.config import JobConfig
from pipeline.data.store import SampleStore
from pipeline.infrastructure.runtime import LOG_FORMAT
from pipeline.pairs.shards import PairSet
from pipeline.train import checkpoint
from pipeline.train.allocator import keep_freed_memory
from pipeline.train.core import TrainingCore, epoch_metrics
from pipeline.train.features import StreamedFeatures, feature_table
from pipeline.train.validation import ValidationProbe

log = logging.getLogger(__name__)


def log_to_console() -> None:
    """Show this project's INFO logs from a Ray process (Ray forwards its output to the driver), in LOG_FORMAT:
    the driver shows Ray's forwarded lines in that format only, unless --verbose."""
    logger = logging.getLogger("pipeline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # Ray's worker root handler would print each line again


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
    torch.manual_seed(job.seed)
    device = ray.train.torch.get_device()

    store = SampleStore.open(config["samples"])
    features = feature_table(store.feature_matrix("train"), device, cfg.features)
    share = PairSet.open(config["pairs"]).read_share(rank, world, with_source=bool(cfg.source_weights))
    spec = job.encoder.spec(store.feature_shape)
    # Channels-last convolutions were measured: faster in one process, slower under DDP here (BENCHMARKS.md).
    # With local SGD the core averages the weights itself (averaging.py); else DDP averages the gradients.
    strategy = None if cfg.averaged_every(world) else "ddp"
    model = ray.train.torch.prepare_model(build_encoder(**spec), parallel_strategy=strategy)
    core = TrainingCore(cfg, model, features, share, job.seed, device, rank)
    probe = ValidationProbe.for_store(store, job.evaluate) if rank == 0 else None
    if rank == 0:
        where = "streamed by id" if isinstance(features, StreamedFeatures) else "on the device"
        log.info(
            "Worker 0 of %d: %d of %d similar pairs, both directions (every worker takes %d per epoch); "
            "features (%.1f MiB) %s",
            world,
            len(share.left),
            2 * share.similar_pairs,
            core.per_rank,
            features.nbytes / 2**20,
            where,
        )

    start_epoch, history, best = 0, [], None
    state = checkpoint.latest()
    if state is not None:
        core.load_state(state)
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), state.get("best")
        if rank == 0:  # a re-run of the job, or Ray Train restarting the workers after a failure
            log.info("Resuming from the checkpoint after epoch %d", start_epoch)
            if tracker is not None:
                tracker.log_epoch({"resumed_from_epoch": start_epoch}, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        sums, elapsed = core.run_epoch(epoch)
        if world > 1:
            dist.all_reduce(sums)
        metrics = epoch_metrics(sums.cpu(), core.steps * world, elapsed, epoch, core.lr)
        validation = {}
        if probe is not None and probe.due(epoch + 1, cfg.epochs):
            validation = probe.score(core.module, core.trained_weights())
            if best is None or validation[probe.key] > best["score"]:
                best = {
                    "epoch": epoch + 1,
                    "score": validation[probe.key],
                    "weights": {k: v.detach().cpu().clone() for k, v in core.trained_weights().items()},
                }
        history.append({**metrics, **{f"val_{k}": v for k, v in validation.items()}})
        if rank == 0:
            log.info(
                "epoch %d/%d  loss %.4f  D(similar) %.3f  D(dissimilar) %.3f  %.0f pairs/s%s",
                epoch + 1,
                cfg.epochs,
                metrics["loss"],
                metrics["similar_distance"],
                metrics["dissimilar_distance"],
                metrics["pairs_per_second"],
                "".join(f"  val {k} {v:.4f}" for k, v in validation.items()),
            )
            checkpoint.report(
                metrics, {**core.state(), "epoch": epoch + 1, "history": history, "encoder": spec, "best": best}
            )
            # After the checkpoint: an epoch lost to a worker failure is retrained, not logged twice.
            if tracker is not None:
                tracker.log_epoch(metrics, epoch + 1)
                if validation:
                    tracker.log_epoch(validation, epoch + 1, prefix="val")
        else:
            checkpoint.report(metrics, None)
