"""The train stage: fit the Siamese encoder with a Ray Train ``TorchTrainer``.

Checkpoints go to ``WORKDIR/checkpoints/<job>-<key>``; the key covers everything that changes the
training (samples, pairs, encoder, training settings, seed), so running the same job again resumes from the
last checkpoint instead of starting over, and a changed job trains afresh.
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, TrainingFailedError, UserCallback
from ray.train.torch import TorchTrainer

from encoders.registry import build_encoder
from pipeline.config import JobConfig
from pipeline.data.store import SampleStore
from pipeline.errors import DrlimError, StageError, first_line, is_no_space, is_permanent, no_space
from pipeline.infrastructure.atomic import content_hash, exclusive
from pipeline.pairs.shards import PairSet
from pipeline.infrastructure.location import Remote, checkpoint_storage
from pipeline.infrastructure.tracking import Tracker
from pipeline.train.worker import load_state, log_to_console, train_loop_per_worker

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict]
    checkpoint_path: str


def resolve_use_gpu(setting: bool | str) -> bool:
    if setting == "auto":
        return ray.cluster_resources().get("GPU", 0) > 0
    return bool(setting)


def train_run_name(job: JobConfig, store: SampleStore, pairs: PairSet) -> str:
    key = content_hash(
        {
            "samples": store.manifest["sha256"],
            "pairs": pairs.directory.name,
            "encoder": job.encoder.model_dump(),
            # Where features live, how far steps are prepared ahead and how often a lost worker is restarted
            # never change the result.
            "train": job.train.model_dump(exclude={"features", "prefetch", "max_failures"}),
            # Which samples are scored during training, how often, and which epoch is returned.
            "validation": job.evaluate.model_dump(include={"validation", "validation_every", "validation_samples",
                                                           "trustworthiness_k", "knn_k"}),
            "seed": job.seed,
        }
    )
    return f"{job.name}-{key}"


def train(
    job: JobConfig,
    store: SampleStore,
    pairs: PairSet,
    workdir: Path,
    tracker: Tracker | None = None,
    remote: Remote | None = None,
) -> TrainResult:
    """Fit ``job``'s encoder on ``pairs``; workers log each epoch through ``tracker`` (a copy of it) when given.

    Runs of the same training in one workdir take turns: the later one then resumes from (or simply reads) the
    earlier one's checkpoints instead of training into the same folder at the same time. With ``remote`` (a
    workdir on object storage) the checkpoints go to ``remote/checkpoints``."""
    name = train_run_name(job, store, pairs)
    run_dir = remote.child("checkpoints", name) if remote is not None else workdir / "checkpoints" / name
    waiting = f"Waiting for another run that is training into {run_dir}; this one continues from its checkpoints"
    with exclusive(workdir, f"train-{name}", waiting):
        return _train(job, store, pairs, run_dir, tracker)


def _train(job: JobConfig, store: SampleStore, pairs: PairSet, run_dir: Path | Remote,
           tracker: Tracker | None) -> TrainResult:
    cfg, name = job.train, run_dir.name
    # Read here from a local folder only; on object storage Ray Train starts and finds the checkpoints itself.
    finished = finished_training(run_dir, cfg.epochs) if isinstance(run_dir, Path) else None
    if finished is not None:  # a re-run: nothing to train, so no Ray Train start (~20 s) either
        state, path = finished
        log.info("Resuming from the checkpoint after epoch %d: training finished (%s)", cfg.epochs, path)
        if tracker is not None:
            tracker.log_epoch({"resumed_from_epoch": cfg.epochs}, cfg.epochs)
        return TrainResult(model=trained_model(state, job), history=list(state["history"]),
                           checkpoint_path=str(path))
    use_gpu = resolve_use_gpu(cfg.use_gpu)
    resources = {"CPU": cfg.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    log.info(
        "Training %s on %d %s worker(s) for %d epochs; checkpoints in %s",
        job.encoder.name, cfg.num_workers, "GPU" if use_gpu else "CPU", cfg.epochs, run_dir,
    )
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "job": job.model_dump(),
            # A local path, or a remote output of which each worker reads its own node's copy.
            "samples": store.remote or str(store.directory.resolve()),
            "pairs": pairs.remote or str(pairs.directory.resolve()),
            "threads_per_worker": max(1, int(cfg.cpus_per_worker)),
            "tracker": tracker.for_workers() if tracker is not None else None,
        },
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=name,
            **checkpoint_storage(run_dir),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            callbacks=[StopOnPermanentErrors()],
        ),
    )
    try:
        result = _fit(trainer)
    except TrainingFailedError as exc:
        cause = permanent_cause(exc)
        if isinstance(cause, DrlimError):
            raise cause from None
        if cause is not None and is_no_space(cause):
            raise no_space(getattr(cause, "filename", None) or run_dir, f"training outputs under {run_dir}") from None
        raise
    if result.checkpoint is None:
        raise StageError(f"training {name} finished without a checkpoint; see the worker logs above")
    state = load_state(result.checkpoint)
    return TrainResult(model=trained_model(state, job), history=list(state["history"]),
                       checkpoint_path=result.checkpoint.path)


def finished_training(run_dir: Path, epochs: int) -> tuple[dict[str, Any], Path] | None:
    """The state of the latest checkpoint in ``run_dir`` and its path when it holds all ``epochs``; else None.

    Read from Ray Train's record of the run's checkpoints; when that record is missing or cannot be read (a
    run interrupted while writing it, another Ray version), None: Ray Train then starts and decides.
    """
    try:
        latest = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())["latest_checkpoint_result"]
        if int(latest["metrics"]["epoch"]) != epochs:
            return None
        path = run_dir / latest["checkpoint_dir_name"]
        state = load_state(ray.train.Checkpoint(str(path)))
    except (OSError, ValueError, KeyError, TypeError, EOFError, RuntimeError, pickle.UnpicklingError):
        return None
    return (state, path) if int(state.get("epoch", -1)) == epochs else None


def trained_model(state: dict[str, Any], job: JobConfig) -> torch.nn.Module:
    """The model a finished training returns, from its last checkpoint's ``state``: the best validation epoch's
    weights with ``evaluate.select: best``, else the weight average (``train.ema_decay``) or the last weights."""
    model = build_encoder(**state["encoder"])
    best = state.get("best")
    if job.evaluate.select == "best" and best is not None:
        log.info("Returning the model of epoch %d, the best by validation %s (%.4f)", best["epoch"],
                 f"trustworthiness_{job.evaluate.trustworthiness_k[0]}", best["score"])
        model.load_state_dict(best["weights"])
    else:  # the raw weights only resume training when there is a weight average
        model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    return model.eval()


class PermanentWorkerError(Exception):
    """A training worker's error that a restart cannot cure (``errors.is_permanent``), carried to the driver."""

    @property
    def error(self) -> BaseException:
        return self.args[0]


class StopOnPermanentErrors(UserCallback):
    """Ends the run at a worker's first permanent error (bad data or settings, a full disk) with that error, and
    says in one line when Ray Train restarts the workers for any other.

    Ray Train retries every worker error up to ``train.max_failures`` times, from the last checkpoint: right for
    a lost worker or node, two wasted restarts for an error that comes back each time. This runs on Ray Train's
    controller; an error raised here is a controller error, which Ray Train does not retry.
    """

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        causes = {rank: getattr(error, "_base_exc", error)  # Ray Train wraps the worker's error with its traceback
                  for rank, error in worker_exceptions.items()}
        for cause in causes.values():
            if is_permanent(cause):
                raise PermanentWorkerError(cause)
        log_to_console()  # the controller is a Ray process of its own
        for rank, cause in sorted(causes.items()):
            log.warning("Training worker %d failed (%s: %s); Ray Train restarts the workers from the last "
                        "checkpoint, up to train.max_failures times", rank, type(cause).__name__, first_line(cause))


def permanent_cause(error: BaseException) -> BaseException | None:
    """The worker's error behind a run that ``StopOnPermanentErrors`` ended, else None."""
    failure = getattr(error, "controller_failure", None)
    return failure.error if isinstance(failure, PermanentWorkerError) else None


def _fit(trainer: TorchTrainer):
    """``trainer.fit()`` in a helper thread, so that Ctrl-C reaches the caller as ``KeyboardInterrupt``.

    From the main thread, Ray Train installs its own SIGINT handler, which ends the process with status 1
    and no word. The run's actors belong to this driver: they stop when it exits, and the checkpoints stay.
    """
    outcome: dict = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.2)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
