"""The train stage: fit the Siamese encoder with a Ray Train ``TorchTrainer``.

Checkpoints go to ``WORKDIR/checkpoints/<job>-<key>`` (``checkpoint.py`` holds their format); the key covers
everything that changes the training (samples, pairs, encoder, training settings, seed), so running the same job
again resumes from the last checkpoint instead of starting over, and a changed job trains afresh.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import ray
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig, TrainingFailedError, UserCallback
from ray.train.torch import TorchTrainer

from pipeline.config import JobConfig
from pipeline.data.store import SampleStore
from pipeline.errors import DrlimError, StageError, first_line, is_no_space, is_permanent, no_space
from pipeline.infrastructure.atomic import content_hash, exclusive
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.runtime import init_ray
from pipeline.infrastructure.tracking import Tracker
from pipeline.pairs.shards import PairSet
from pipeline.train import checkpoint
from pipeline.train.session import TrainResult
from pipeline.train.worker import log_to_console, train_loop_per_worker

log = logging.getLogger(__name__)


def resolve_use_gpu(setting: bool | str) -> bool:
    if setting == "auto":
        return ray.cluster_resources().get("GPU", 0) > 0
    return bool(setting)


def train_run_name(job: JobConfig, store: SampleStore, pairs: PairSet) -> str:
    key = content_hash(
        {
            "samples": store.manifest["sha256"],
            "pairs": pairs.location.name,
            "encoder": job.encoder.model_dump(),
            # Where features live, how far steps are prepared ahead and how often a lost worker is restarted
            # never change the result.
            # Checkpoints within an epoch resume on the same curve: their spacing changes nothing either. A new
            # field at its default leaves the key of a run of before it.
            "train": job.train.model_dump(
                exclude={
                    "features",
                    "prefetch",
                    "max_failures",
                    "checkpoint_every",
                    *({"steps"} if job.train.steps is None else ()),
                    *({"lr_scaling", "lr_reference_batch"} if job.train.lr_scaling == "none" else ()),
                }
            ),
            # Which samples are scored during training, how often, and which epoch is returned.
            "validation": job.evaluate.model_dump(
                include={"validation", "validation_every", "validation_samples", "trustworthiness_k", "knn_k"}
            ),
            "seed": job.seed,
        }
    )
    return f"{job.name}-{key}"


def train(
    job: JobConfig, store: SampleStore, pairs: PairSet, workdir: str | Path | Location, tracker: Tracker | None = None
) -> TrainResult:
    """Fit ``job``'s encoder on ``pairs``; workers log each epoch through ``tracker`` (a copy of it) when given.

    Checkpoints go to ``workdir/checkpoints/<job>-<key>`` (a local folder or object storage). Runs of the same
    training in one workdir take turns: the later one then resumes from (or simply reads) the earlier one's
    checkpoints instead of training into the same folder at the same time."""
    workdir = Location.of(workdir)
    name = train_run_name(job, store, pairs)
    run_dir = workdir.child("checkpoints", name)
    waiting = f"Waiting for another run that is training into {run_dir}; this one continues from its checkpoints"
    with exclusive(workdir.workspace, f"train-{name}", waiting):
        return _train(job, store, pairs, run_dir, tracker)


def _train(
    job: JobConfig, store: SampleStore, pairs: PairSet, run_dir: Location, tracker: Tracker | None
) -> TrainResult:
    cfg, name = job.train, run_dir.name
    length = {"epochs": cfg.epochs, "steps": cfg.steps}
    finished = checkpoint.finished(run_dir, length)
    if finished is not None:  # a re-run: nothing to train, so no Ray Train start (~20 s) either
        state, path = finished
        log.info("Resuming from the checkpoint after epoch %d: training finished (%s)", state["epoch"], path)
        if tracker is not None:
            tracker.log_epoch({"resumed_from_epoch": state["epoch"]}, state["epoch"])
        return TrainResult(
            model=checkpoint.trained_model(state, job.evaluate), history=list(state["history"]), checkpoint_path=path
        )
    init_ray()
    use_gpu = resolve_use_gpu(cfg.use_gpu)
    resources = {"CPU": cfg.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    log.info(
        "Training %s on %d %s worker(s) for %s; checkpoints in %s",
        job.encoder.name,
        cfg.num_workers,
        "GPU" if use_gpu else "CPU",
        f"{cfg.steps} steps" if cfg.steps is not None else f"{cfg.epochs:g} epoch{'' if cfg.epochs == 1 else 's'}",
        run_dir,
    )
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "job": job.model_dump(),
            # Each worker reads its own node's copy of these.
            "samples": store.location,
            "pairs": pairs.location,
            "threads_per_worker": max(1, int(cfg.cpus_per_worker)),
            "tracker": tracker.for_workers() if tracker is not None else None,
        },
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=name,
            **run_dir.ray_storage(),
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
            written = getattr(cause, "filename", None) or str(run_dir)
            raise no_space(written, f"training outputs under {run_dir}") from None
        raise
    if result.checkpoint is None:
        raise StageError(f"training {name} finished without a checkpoint; see the worker logs above")
    state = checkpoint.load(result.checkpoint)
    checkpoint.mark_finished(run_dir, result.checkpoint, length)
    return TrainResult(
        model=checkpoint.trained_model(state, job.evaluate),
        history=list(state["history"]),
        checkpoint_path=result.checkpoint.path,
    )


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
        causes = {
            rank: getattr(error, "_base_exc", error)  # Ray Train wraps the worker's error with its traceback
            for rank, error in worker_exceptions.items()
        }
        for cause in causes.values():
            if is_permanent(cause):
                raise PermanentWorkerError(cause)
        log_to_console()  # the controller is a Ray process of its own
        for rank, cause in sorted(causes.items()):
            log.warning(
                "Training worker %d failed (%s: %s); Ray Train restarts the workers from the last "
                "checkpoint, up to train.max_failures times",
                rank,
                type(cause).__name__,
                first_line(cause),
            )


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
