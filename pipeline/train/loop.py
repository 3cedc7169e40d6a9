"""The per-worker training function run by Ray Train (also runs as one worker: rank 0, world 1).

A worker reads only its own pair shards (``PairSet.read_share``: the similar pairs of the samples it owns,
never all pairs) and fetches features by id (``pipeline/train/inputs.py``). Each step takes ``batch_size``
similar pairs from its share, adds lazily drawn dissimilar pairs (``pipeline/train/batches.py``), encodes the
step's samples once and minimises the weighted contrastive loss; on a GPU the next steps are prepared in a
background thread meanwhile (``train.prefetch``). Every epoch: metrics reduced over workers, reported to Ray
Train with a checkpoint (model, optimizer, weight average, epoch, history), and logged to MLflow from rank 0.
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from encoders.losses import build_loss
from encoders.registry import build_encoder
from pipeline.config import JobConfig, TrainConfig
from pipeline.data.store import SampleStore
from pipeline.errors import StageError
from pipeline.pairs.negatives import NegativeSampler
from pipeline.pairs.shards import PairSet
from pipeline.train.allocator import keep_freed_memory
from pipeline.train.batches import ShareSampling, mixed_precision, step_pairs, weighted_loss
from pipeline.train.inputs import StreamedFeatures, feature_table, prefetched

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
# Sums reduced across workers each epoch; the reported metrics are ratios of these. "loss" is the step's
# weighted loss summed over steps; the per-kind losses and distances are summed over pairs.
_SUMS = (
    "loss", "similar_loss", "dissimilar_loss", "similar_distance", "dissimilar_distance",
    "pairs", "similar", "dissimilar", "encoded",
)


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate at global ``step``: derived from the step alone, so resuming needs no scheduler state."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return cfg.lr


def ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights. Integer buffers (none in the shipped encoders) are copied."""
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                ema[name].lerp_(value, 1 - decay)
            else:
                ema[name].copy_(value)


def load_state(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    with checkpoint.as_directory() as directory:
        # weights_only: a checkpoint is data (tensors, numbers, lists), never code to execute.
        return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)


@torch.no_grad()
def _step_sums(loss, per_pair, distance, y, n_encoded: int) -> torch.Tensor:
    """This step's contribution to ``_SUMS``, kept on the device (no host sync per step)."""
    sim = (y == 0).to(per_pair.dtype)
    dis = 1 - sim
    values = [loss, (per_pair * sim).sum(), (per_pair * dis).sum(), (distance * sim).sum(),
              (distance * dis).sum(), sim.new_tensor(len(y)), sim.sum(), dis.sum(), sim.new_tensor(n_encoded)]
    return torch.stack([v.detach().to(torch.float64) for v in values])


def _epoch_metrics(sums: torch.Tensor, steps: int, elapsed: float, epoch: int, lr: float) -> dict[str, float]:
    """Epoch metrics from sums reduced over all workers (``steps`` counts every worker's steps)."""
    s = dict(zip(_SUMS, sums.tolist()))
    return {
        "epoch": epoch + 1,
        "loss": s["loss"] / steps,
        "similar_loss": s["similar_loss"] / max(s["similar"], 1),
        "dissimilar_loss": s["dissimilar_loss"] / max(s["dissimilar"], 1),
        "similar_distance": s["similar_distance"] / max(s["similar"], 1),
        "dissimilar_distance": s["dissimilar_distance"] / max(s["dissimilar"], 1),
        "pairs": s["pairs"],
        "pairs_per_second": s["pairs"] / elapsed,
        "samples_per_second": s["encoded"] / elapsed,
        "lr": lr,
    }


def _log_to_console() -> None:
    """Show this project's INFO logs from the worker (Ray forwards its output to the driver)."""
    logger = logging.getLogger("pipeline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
        _log_to_console()
    torch.set_num_threads(max(1, int(config["threads_per_worker"])))
    keep_freed_memory()  # else a CPU step hands its memory back to the OS and faults it in again (allocator.py)
    torch.manual_seed(job.seed)
    device = ray.train.torch.get_device()

    store = SampleStore(config["samples_dir"])
    features = feature_table(store.feature_matrix("train"), device, cfg.features)
    share = PairSet.open(config["pairs_dir"]).read_share(rank, world)
    sampling = ShareSampling.from_share(share)
    left, right = share.left, share.right
    # Every similar pair is held by the owners of both its ends, so an epoch -- as many similar pairs as there
    # are -- is half a share per worker; all take half the smallest share: the same (synchronised) steps.
    per_rank = min(share.pairs_per_rank) // 2
    if rank == 0:
        where = "streamed by id" if isinstance(features, StreamedFeatures) else "on the device"
        log.info("Worker 0 of %d: %d of %d similar pairs, both directions (every worker takes %d per epoch); "
                 "features (%.1f MiB) %s", world, len(left), 2 * share.similar_pairs, per_rank,
                 features.nbytes / 2**20, where)
    if per_rank == 0:
        raise StageError("a training worker got no similar pairs; lower train.num_workers or raise pairs.num_shards")
    steps = max(1, math.ceil(per_rank / cfg.batch_size))
    prefetch = cfg.prefetch if cfg.prefetch != "auto" else (2 if device.type == "cuda" else 0)

    spec = job.encoder.spec(store.feature_shape)
    # Channels-last convolutions were measured: faster in one process, slower under DDP here (BENCHMARKS.md).
    model = ray.train.torch.prepare_model(build_encoder(**spec))
    optimizer = make_optimizer(model.parameters(), cfg)
    criterion = build_loss(cfg.loss, cfg.loss_options, margin=cfg.margin)
    module = getattr(model, "module", model)
    # The weight average starts from the initial weights; DDP keeps the weights equal on every rank, so every
    # rank's average is the same and rank 0 checkpoints it.
    ema = {k: v.detach().clone() for k, v in module.state_dict().items()} if cfg.ema_decay is not None else None
    start_epoch, history = 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        state = load_state(checkpoint)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema = {k: v.to(device) for k, v in state["ema"].items()}
        start_epoch, history = int(state["epoch"]), list(state["history"])
        if rank == 0:  # a re-run of the job, or Ray Train restarting the workers after a failure
            log.info("Resuming from the checkpoint after epoch %d", start_epoch)
            if tracker is not None:
                tracker.log_epoch({"resumed_from_epoch": start_epoch}, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        rng = NegativeSampler.rng_for(job.seed, epoch, rank)
        order = rng.permutation(len(left))[:per_rank]

        def prepare(step: int, order=order, rng=rng):
            pos = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            pairs = step_pairs(cfg.mode, left[pos], right[pos], sampling, cfg.negatives_per_positive, rng)
            return pairs, features.fetch(pairs.samples)

        sums = torch.zeros(len(_SUMS), dtype=torch.float64, device=device)
        model.train()
        started = time.perf_counter()
        for step, (pairs, fetched) in enumerate(prefetched(prepare, steps, prefetch)):
            x = features.to_device(pairs.samples, fetched)
            with mixed_precision(device, cfg.precision):
                loss, per_pair, distance, y = weighted_loss(model, x, pairs, criterion)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, epoch * steps + step, cfg.epochs * steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema_update(ema, module, cfg.ema_decay)
            sums += _step_sums(loss, per_pair, distance, y, len(pairs.samples))
        elapsed = time.perf_counter() - started
        if world > 1:
            dist.all_reduce(sums)
        metrics = _epoch_metrics(sums.cpu(), steps * world, elapsed, epoch, optimizer.param_groups[0]["lr"])
        history.append(metrics)
        if rank == 0:
            log.info(
                "epoch %d/%d  loss %.4f  D(similar) %.3f  D(dissimilar) %.3f  %.0f pairs/s",
                epoch + 1, cfg.epochs, metrics["loss"], metrics["similar_distance"],
                metrics["dissimilar_distance"], metrics["pairs_per_second"],
            )
            with tempfile.TemporaryDirectory() as tmp:
                state = {
                    "model": module.state_dict(),
                    "ema": ema,
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "history": history,
                    "encoder": spec,
                }
                torch.save(state, Path(tmp) / STATE_FILE)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
            # After the checkpoint: an epoch lost to a worker failure is retrained, not logged twice.
            if tracker is not None:
                tracker.log_epoch(metrics, epoch + 1)
        else:
            ray.train.report(metrics, checkpoint=None)
