"""The whole pipeline as one call: data -> pairs -> train -> evaluate, tracked in one MLflow run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mlflow

from encoders import build_encoder
from pipeline import tracking
from pipeline.config import JobConfig
from pipeline.data import SampleStore, ingest
from pipeline.errors import ConfigError, TrackingError, first_line
from pipeline.pairs import PairSet, build_pairs, check_pairs_config
from pipeline.runtime import Runtime, init_ray

log = logging.getLogger(__name__)

Stage = Literal["pairs", "all"]


@dataclass
class RunSummary:
    store: SampleStore
    pairs: PairSet
    run_id: str | None = None
    model_uri: str | None = None
    model_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_job(job: JobConfig, runtime: Runtime, stop_after: Stage = "all") -> RunSummary:
    """Run the stages of ``job``; every stage reuses finished, verified outputs of an identical earlier run."""
    if stop_after == "all":
        # Fail before any work when the tracking server is down, not after an hour of training.
        tracking.check_tracking_server(runtime.tracking_uri)
    clock = time.perf_counter()
    store = ingest(job.data, runtime.data_root, runtime.workdir)  # before Ray: bad data fails in seconds
    try:  # an encoder that cannot take these samples fails here, not inside a Ray worker
        build_encoder(**job.encoder.spec(store.feature_shape))
    except ValueError as exc:
        raise ConfigError(f"encoder: {exc}") from None
    check_pairs_config(job.pairs, store)
    init_ray()
    pairs = build_pairs(job.pairs, store, runtime.workdir)
    summary = RunSummary(store=store, pairs=pairs, seconds={"data_and_pairs": time.perf_counter() - clock})
    if stop_after == "pairs":
        return summary

    from pipeline.evaluate import evaluate
    from pipeline.train import train

    artifact_root = runtime.workdir / "mlartifacts" if runtime.uses_local_store else None
    run = tracking.start_run(runtime.tracking_uri, job.tracking.experiment, artifact_root, job.name, job.flat())
    summary.run_id = run.info.run_id
    status = "FAILED"
    try:
        mlflow.log_dict(pairs.manifest, "pairs/manifest.json")
        pair_metrics = {
            "pairs/similar": pairs.manifest["similar_pairs"],
            "pairs/dissimilar_implicit": pairs.manifest["dissimilar_pairs_implicit"],
            "pairs/n_samples": pairs.n_samples,
        }
        recall = pairs.manifest.get("knn", {}).get("recall_at_k")
        if recall is not None:
            pair_metrics["pairs/knn_recall"] = recall
        mlflow.log_metrics(pair_metrics)
        clock = time.perf_counter()
        result = train(job, store, pairs, runtime.workdir, runtime.tracking_uri, summary.run_id)
        summary.seconds["train"] = time.perf_counter() - clock
        clock = time.perf_counter()
        out_dir = runtime.workdir / "runs" / summary.run_id
        title = f"DrLIM {job.name} ({store.held_out_split} samples)"
        evaluation = evaluate(result.model, store, job.evaluate, out_dir, title=title)
        summary.metrics, summary.files = evaluation.metrics, evaluation.files
        summary.seconds["evaluate"] = time.perf_counter() - clock
        try:
            tracking.log_missing_epochs(summary.run_id, result.history)
            mlflow.log_metrics({f"test/{k}": v for k, v in evaluation.metrics.items()})
            for key, path in evaluation.files.items():
                mlflow.log_artifact(str(path), artifact_path="embeddings" if key == "embeddings" else "plots")
            _, example, _ = store.split(store.held_out_split)
            summary.model_version, summary.model_uri = tracking.log_encoder(
                result.model, example[:8], job.tracking.registered_model, job.tracking.alias
            )
            mlflow.log_metrics({f"seconds/{k}": v for k, v in summary.seconds.items()})
        except Exception as exc:
            raise TrackingError(
                f"training finished but logging to MLflow ({runtime.tracking_uri}) failed: {first_line(exc)}. The "
                f"trained model is safe in the checkpoint {result.checkpoint_path}; once the server is back, re-run "
                f"the same command: it resumes from that checkpoint and logs again without retraining"
            ) from None
        status = "FINISHED"
    finally:
        tracking.end_run(status)  # best effort: a lost server must not hide the error above
    return summary
