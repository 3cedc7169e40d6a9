"""The whole pipeline as one call: data -> pairs -> train -> evaluate, tracked in one MLflow run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline.config import EncoderConfig, JobConfig
from pipeline.data.stage import ingest
from pipeline.data.store import SampleStore
from pipeline.errors import ConfigError
from pipeline.infrastructure.runtime import Runtime, in_process, init_ray
from pipeline.pairs.shards import PairSet
from pipeline.pairs.stage import build_pairs, check_pairs_config

if TYPE_CHECKING:
    from pipeline.infrastructure.executor import Executor
    from pipeline.infrastructure.tracking import Tracker

log = logging.getLogger(__name__)

Stage = Literal["pairs", "all"]


@dataclass
class RunSummary:
    store: SampleStore
    pairs: PairSet
    run_id: str | None = None
    model_uri: str | None = None
    model_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # test: reported, never used to choose anything
    validation: dict[str, float] = field(default_factory=dict)  # what settings are chosen on
    files: dict[str, Path] = field(default_factory=dict)
    every_row: Path | None = None  # the embeddings of every row of every split (a folder of parts)
    seconds: dict[str, float] = field(default_factory=dict)


def run_job(job: JobConfig, runtime: Runtime, stop_after: Stage = "all", tracker: Tracker | None = None) -> RunSummary:
    """Run the stages of ``job``; every stage reuses finished, verified outputs of an identical earlier run.

    Everything MLflow sees goes through ``tracker`` (default: the runtime's store, see ``Runtime.tracker``).
    """
    tracker = (tracker or runtime.tracker()) if stop_after == "all" else None  # the pair stage logs nothing
    if tracker is not None:
        tracker.check_server()  # fail before any work when the server is down, not after an hour of training
    clock = time.perf_counter()
    # Before Ray: bad data fails in seconds.
    store = ingest(job.data, runtime.data_root, runtime.workdir, job.evaluate.validation)
    check_pairs_config(job.pairs, store)
    if stop_after == "all":
        from pipeline.evaluate.checks import check_evaluate_config

        check_evaluate_config(job.evaluate, store)
    init_ray()
    if stop_after == "all":
        # An encoder that cannot take these samples fails here, before the pairs, not inside a training worker. At
        # scale in a Ray task: torch costs a process ~650 MB that the driver need not hold during the pair stage.
        run = _executor(store)
        run.gather([run.task(check_encoder, job.encoder, store.feature_shape)], "check the encoder", unit="check")
    pairs = build_pairs(job.pairs, store, runtime.workdir)
    summary = RunSummary(store=store, pairs=pairs, seconds={"data_and_pairs": time.perf_counter() - clock})
    if tracker is not None:
        _train_and_evaluate(job, runtime, tracker, summary)
    return summary


def _executor(store: SampleStore) -> Executor:
    """Where the stages after the pairs run their own tasks: Ray for a store over ``runtime.INLINE_BYTES``, where
    the driver stays light; this process for a small one."""
    from pipeline.infrastructure.executor import InProcess, OnRay

    return InProcess() if in_process(store.feature_bytes) else OnRay()


def check_encoder(encoder: EncoderConfig, shape: tuple[int, ...]) -> None:
    """``ConfigError`` when the encoder cannot be built for samples of ``shape``."""
    from encoders.registry import build_encoder

    try:
        build_encoder(**encoder.spec(shape))
    except ValueError as exc:
        raise ConfigError(f"encoder: {exc}") from None


def _log_model(tracker: Tracker, model: Any, example: Any, name: str, alias: str) -> tuple[str, str]:
    return tracker.log_model(model, example, name, alias)


def _train_and_evaluate(job: JobConfig, runtime: Runtime, tracker: Tracker, summary: RunSummary) -> None:
    """The stages after the pairs, recorded in one MLflow run: training, evaluation, the registered model."""
    from pipeline.evaluate.stage import evaluate
    from pipeline.train.stage import train  # Ray Train: imported only when training

    store, pairs = summary.store, summary.pairs
    with tracker.run(job.tracking.experiment, job.name, job.flat()) as run_id:
        summary.run_id = run_id
        tracker.log_pairs(pairs.manifest, pairs.n_samples)
        clock = time.perf_counter()
        result = train(job, store, pairs, runtime.workdir, tracker)
        summary.seconds["train"] = time.perf_counter() - clock
        clock = time.perf_counter()
        title = f"DrLIM {job.name} ({store.held_out_split} samples)"
        executor = _executor(store)
        out_dir = runtime.workspace / "runs" / run_id
        evaluation = evaluate(result.model, store, job.evaluate, out_dir, title, executor, pairs)
        summary.metrics, summary.files, summary.validation = evaluation.metrics, evaluation.files, evaluation.validation
        summary.every_row = evaluation.every_row
        summary.seconds["evaluate"] = time.perf_counter() - clock
        recovery = (
            f"The trained model is safe in the checkpoint {result.checkpoint_path}; once the server is "
            f"back, re-run the same command: it resumes from that checkpoint and logs again without retraining"
        )
        with tracker.required("training finished", recovery):
            tracker.log_missing_epochs(result.history)
            tracker.log_evaluation(evaluation.metrics, evaluation.files, evaluation.validation)
            tracker.log_metrics({f"{split}/scored_samples": n for split, n in evaluation.scored.items()})
            if evaluation.every_row is not None:
                tracker.log_embeddings_folder(evaluation.every_row, f"{job.name}-embeddings")
            example = store.head(store.held_out_split, 8)  # the signature's example
            [(summary.model_version, summary.model_uri)] = executor.gather(
                [
                    executor.task(
                        _log_model, tracker, result.model, example, job.tracking.registered_model, job.tracking.alias
                    )
                ],
                "log the model",
                unit="model",
            )
            tracker.log_metrics({f"seconds/{k}": v for k, v in summary.seconds.items()})
