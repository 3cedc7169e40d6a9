"""One worker's training, without Ray: what it trains with, its epochs, and what it hands on after each.

``TrainingSession`` builds a worker's inputs from the sample store and its share of the pair set (the features by
id, the encoder, the ``TrainingCore``, the validation probe on rank 0), runs the epochs from where a checkpoint
left off (``Progress``) and hands every epoch's metrics and validation scores to a callback. A Ray Train worker
(``worker.py``) reports a checkpoint there; a training in this process (``stage.train_in_process``) logs the line.
With several workers the epoch's sums are reduced over them (``torch.distributed``), so every rank reports the
same metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from encoders.registry import build_encoder
from pipeline.config import JobConfig
from pipeline.data.store import SampleStore
from pipeline.pairs.shards import PairSet, PairShare
from pipeline.train import checkpoint
from pipeline.train.core import EpochState, TrainingCore, epoch_metrics
from pipeline.train.features import StreamedFeatures, feature_table
from pipeline.train.validation import ValidationProbe

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict]
    checkpoint_path: str | None  # None: trained in this process, without checkpoints


@dataclass
class Progress:
    """Where a training stands: the epochs done, each one's metrics (``val_``-prefixed validation scores with
    them), the best validation epoch so far with its weights (``evaluate.select: best``), and this worker's place
    within the next epoch when a checkpoint was taken there (``within``)."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    within: EpochState | None = None

    @classmethod
    def of(cls, state: dict[str, Any] | None, within: dict[str, Any] | None = None) -> Progress:
        """The progress a checkpoint's state (and this worker's place within an epoch) records; a fresh one
        without."""
        if state is None:
            return cls()
        place = EpochState(**within) if within is not None else None
        return cls(int(state["epoch"]), list(state["history"]), state.get("best"), place)


EpochDone = Callable[[dict[str, float], dict[str, float], Progress], None]
WithinSaved = Callable[[Progress, EpochState], None]


class TrainingSession:
    """A worker's model, data and core; ``wrap`` prepares the encoder for its workers (DDP on Ray Train)."""

    def __init__(
        self,
        job: JobConfig,
        store: SampleStore,
        share: PairShare,
        device: torch.device,
        rank: int = 0,
        wrap: Callable[[torch.nn.Module], torch.nn.Module] = lambda model: model,
    ) -> None:
        self.job, self.rank, self.world = job, rank, share.world
        torch.manual_seed(job.seed)
        self.features = feature_table(store.feature_matrix("train"), device, job.train.features, store.feature_divisor)
        self.spec = job.encoder.spec(store.feature_shape)
        self.core = TrainingCore(
            job.train, wrap(build_encoder(**self.spec)), self.features, share, job.seed, device, rank
        )
        self.probe = ValidationProbe.for_store(store, job.evaluate) if rank == 0 else None
        if rank == 0:
            where = "streamed by id" if isinstance(self.features, StreamedFeatures) else "on the device"
            log.info(
                "Worker 0 of %d: %d of %d similar pairs, both directions (every worker takes %d per epoch); "
                "features (%.1f MiB) %s",
                self.world,
                len(share.left),
                2 * share.similar_pairs,
                self.core.per_rank,
                self.features.nbytes / 2**20,
                where,
            )

    def resume(self, state: dict[str, Any] | None, within: dict[str, Any] | None = None) -> Progress:
        """The progress of ``state`` (a checkpoint's; ``within``: this worker's place inside an epoch), its weights
        and optimizer loaded; a fresh start without."""
        if state is not None:
            self.core.load_state(state)
        return Progress.of(state, within)

    def state(self, progress: Progress) -> dict[str, Any]:
        """What a checkpoint holds (``checkpoint.py``): the core's state, the progress and the encoder's spec."""
        return {
            **self.core.state(),
            "epoch": progress.epoch,
            "history": progress.history,
            "encoder": self.spec,
            "best": progress.best,
        }

    def fit(self, progress: Progress, epoch_done: EpochDone, within_saved: WithinSaved | None = None) -> Progress:
        """Train from ``progress`` to the end, calling ``epoch_done(metrics, validation, progress)`` after each
        epoch and ``within_saved(progress, place)`` at each checkpoint within one (``train.checkpoint_every``)."""
        core, probe = self.core, self.probe
        for epoch in range(progress.epoch, core.epochs):
            resume, progress.within = progress.within, None
            save = None if within_saved is None else (lambda place: within_saved(progress, place))
            sums, elapsed = core.run_epoch(epoch, resume, save, self._progress_line(epoch))
            if self.world > 1:
                dist.all_reduce(sums)
            metrics = epoch_metrics(sums.cpu(), core.steps_in(epoch) * self.world, elapsed, epoch, core.lr)
            validation = {}
            if probe is not None and probe.due(epoch + 1, core.epochs):
                validation = probe.score(core.module, core.trained_weights())
                if progress.best is None or validation[probe.key] > progress.best["score"]:
                    weights = {k: v.detach().cpu().clone() for k, v in core.trained_weights().items()}
                    progress.best = {"epoch": epoch + 1, "score": validation[probe.key], "weights": weights}
            progress.epoch = epoch + 1
            progress.history.append({**metrics, **{f"val_{k}": v for k, v in validation.items()}})
            epoch_done(metrics, validation, progress)
        return progress

    def _progress_line(self, epoch: int) -> Callable[[int, int, float], None] | None:
        """Rank 0's line within a long epoch: steps done, pairs per second (this worker's), time left."""
        if self.rank != 0:
            return None
        core = self.core

        def line(step: int, steps: int, seconds: float) -> None:
            pace = seconds / step
            left = pace * (steps - step + sum(core.steps_in(e) for e in range(epoch + 1, core.epochs)))
            log.info(
                "epoch %d/%d  step %d/%d (%.0f%%)  %.1f ms a step  about %s left",
                epoch + 1,
                core.epochs,
                step,
                steps,
                100 * step / steps,
                1000 * pace,
                _duration(left),
            )

        return line


def _duration(seconds: float) -> str:
    return (
        f"{seconds / 3600:.1f} h"
        if seconds > 5400
        else f"{seconds / 60:.0f} min"
        if seconds > 90
        else (f"{seconds:.0f} s")
    )


def epoch_line(progress: Progress, epochs: int, metrics: dict[str, float], validation: dict[str, float]) -> str:
    """The log line of an epoch."""
    return (
        f"epoch {progress.epoch}/{epochs}  loss {metrics['loss']:.4f}  D(similar) "
        f"{metrics['similar_distance']:.3f}  D(dissimilar) {metrics['dissimilar_distance']:.3f}  "
        f"{metrics['pairs_per_second']:.0f} pairs/s" + "".join(f"  val {k} {v:.4f}" for k, v in validation.items())
    )


def train_in_process(job: JobConfig, store: SampleStore, pairs: PairSet, threads: int | None = None) -> TrainResult:
    """Fit ``job``'s encoder in this process, as one worker that holds the whole pair set: no Ray, no checkpoints.
    With ``train.num_workers: 1`` and as many ``threads`` as ``train.cpus_per_worker`` (the default) it trains what
    ``drlim run`` trains, step for step."""
    torch.set_num_threads(threads or max(1, int(job.train.cpus_per_worker)))
    use_gpu = job.train.use_gpu is True or (job.train.use_gpu == "auto" and torch.cuda.is_available())
    share = pairs.read_share(0, 1, with_source=bool(job.train.source_weights))
    session = TrainingSession(job, store, share, torch.device("cuda" if use_gpu else "cpu"))
    progress = session.fit(
        Progress(),
        lambda metrics, validation, progress: log.info(epoch_line(progress, session.core.epochs, metrics, validation)),
    )
    model = checkpoint.trained_model(session.state(progress), job.evaluate)
    return TrainResult(model, progress.history, None)
