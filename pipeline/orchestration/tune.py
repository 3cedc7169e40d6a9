"""``drlim tune``: a grid of training settings on Ray Tune, chosen by a validation metric.

The data and pair stages run once, on the driver; every trial (a Ray Tune function trial) trains through the
same Ray Train path as ``drlim run`` (``train``), scores the validation and test splits, and reports them.
MLflow holds one parent run for the search and one child run per trial. The best trial by ``metric`` (a
validation metric: test figures are recorded, never used to choose) is registered from its checkpoint and gets
the alias. Progress: one line per trial that starts or ends, with trials done / running and the best so far.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from pipeline.config import JobConfig
from pipeline.errors import ConfigError, StageError
from pipeline.evaluate.stage import evaluate
from pipeline.infrastructure.runtime import Runtime
from pipeline.infrastructure.tracking import Tracker
from pipeline.orchestration.run import run_job
from pipeline.orchestration.search import grid, trial_jobs
from pipeline.train import checkpoint
from pipeline.train.stage import train

log = logging.getLogger(__name__)


@dataclass
class TuneSummary:
    run_id: str  # the parent MLflow run
    trials: list[dict[str, Any]]  # per trial: overrides, metrics (val/..., test/...), child run, checkpoint
    best: dict[str, Any]
    model_uri: str
    model_version: str


def _trial(config: dict[str, Any], shared: dict[str, Any]) -> None:
    """One trial, in its own Ray Tune actor: train, score validation and test, log a child run, report."""
    job = JobConfig.model_validate(config["trial"]["job"])
    point = config["trial"]["point"]
    store, pairs, workdir = shared["store"], shared["pairs"], shared["workdir"]
    tracker = Tracker(shared["uri"], shared["artifact_root"])
    with tracker.run(
        job.tracking.experiment, f"{job.name} {' '.join(point)}", job.flat(), parent_run_id=shared["parent_run_id"]
    ) as run_id:
        started = time.perf_counter()
        result = train(job, store, pairs, workdir, tracker)
        evaluation = evaluate(result.model, store, job.evaluate, workdir.workspace / "runs" / run_id, title=job.name)
        with tracker.required("the trial trained", f"Its checkpoint is {result.checkpoint_path}"):
            tracker.log_missing_epochs(result.history)
            tracker.log_evaluation(evaluation.metrics, evaluation.files, evaluation.validation)
    tune.report(
        {
            **{f"val/{k}": v for k, v in evaluation.validation.items()},
            **{f"test/{k}": v for k, v in evaluation.metrics.items()},
            "seconds": time.perf_counter() - started,
            "run_id": run_id,
            "checkpoint_path": result.checkpoint_path,
        }
    )


def _point(trial) -> str:
    return " ".join(trial.config["trial"]["point"])


class _Progress(tune.Callback):
    """One line whenever a trial starts or ends: done / running / total and the best ``metric`` so far."""

    def __init__(self, total: int, metric: str, mode: str) -> None:
        self.total, self.metric, self.mode = total, metric, mode
        self.done, self.running = 0, 0
        self.best: tuple[float, str] | None = None

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.running += 1
        log.info("tune: trial %s started (%s)", trial.trial_id, _point(trial))
        self._line()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.done, self.running = self.done + 1, self.running - 1
        value = (trial.last_result or {}).get(self.metric)
        if value is not None and (self.best is None or (value > self.best[0]) == (self.mode == "max")):
            self.best = (value, _point(trial))
        self._line()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.done, self.running = self.done + 1, self.running - 1
        log.warning("tune: trial %s (%s) failed; see its log above", trial.trial_id, _point(trial))
        self._line()

    def _line(self) -> None:
        best = f"; best {self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else ""
        log.info("tune: %d/%d trials done, %d running%s", self.done, self.total, self.running, best)


def tune_job(
    path: Path,
    overrides: list[str],
    search: dict[str, list],
    runtime: Runtime,
    metric: str = "val/trustworthiness_5",
    mode: str = "max",
    concurrent: int = 1,
) -> TuneSummary:
    """Search ``search`` (key -> values) around the job at ``path``; register the best trial's model."""
    if not metric.startswith("val/"):
        raise ConfigError(
            f"--metric {metric}: settings are chosen on validation metrics (val/...); test "
            f"metrics are recorded but never used to choose"
        )
    points = grid(search)
    jobs = trial_jobs(path, overrides, points)
    base = jobs[0]
    if not base.evaluate.validation:
        raise ConfigError(
            "drlim tune chooses on the validation split, and the job sets evaluate.validation: 0; "
            "add --set evaluate.validation=0.1"
        )
    tracker = runtime.tracker()
    tracker.check_server()
    shared_stages = run_job(base, runtime, stop_after="pairs")  # built once; every trial reads them
    with tracker.run(
        base.tracking.experiment, f"{base.name}-tune", {**base.flat(), **{f"search.{k}": v for k, v in search.items()}}
    ) as parent:
        shared = {
            "store": shared_stages.store,
            "pairs": shared_stages.pairs,
            "workdir": runtime.workdir,
            "uri": tracker.uri,
            "artifact_root": tracker.artifact_root,
            "parent_run_id": parent,
        }
        log.info("tune: %d trials of %s, %d at a time, chosen by %s (%s)", len(points), path, concurrent, metric, mode)
        tuner = tune.Tuner(
            # A trial only drives its Ray Train workers, which hold the CPUs: it reserves no CPU, a little memory.
            tune.with_resources(tune.with_parameters(_trial, shared=shared), {"cpu": 0, "memory": 256 * 2**20}),
            param_space={
                "trial": tune.grid_search(
                    [{"job": job.model_dump(), "point": point} for job, point in zip(jobs, points)]
                )
            },
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(
                name=f"{base.name}-tune",
                verbose=0,
                callbacks=[_Progress(len(points), metric, mode)],
                # Ray Tune keeps the trials' records beside the checkpoints.
                **runtime.workdir.child("tune", f"{base.name}-tune").ray_storage(),
            ),
        )
        results = tuner.fit()
        trials = []
        for result in results:
            if result.error is None and metric in result.metrics:
                point = result.config["trial"]["point"]
                trials.append(
                    {
                        "point": point,
                        **{
                            k: v
                            for k, v in result.metrics.items()
                            if k.startswith(("val/", "test/", "seconds", "run_id", "checkpoint_path"))
                        },
                    }
                )
        if not trials:
            raise StageError(f"no trial finished with {metric}; see the trials' errors above")
        best = (max if mode == "max" else min)(trials, key=lambda t: t[metric])
        best_job = jobs[points.index(best["point"])]
        # The path is inside the workdir's filesystem (Location.ray_storage).
        model = checkpoint.trained_model(checkpoint.at(runtime.workdir, best["checkpoint_path"]), best_job.evaluate)
        with tracker.required("the search finished", f"The best trial's checkpoint is {best['checkpoint_path']}"):
            tracker.log_metrics({f"best/{k}": v for k, v in best.items() if k.startswith(("val/", "test/"))})
            tracker.log_params({f"best.{p.split('=', 1)[0]}": p.split("=", 1)[1] for p in best["point"]})
            _, example, _ = shared_stages.store.split(shared_stages.store.held_out_split)
            version, uri = tracker.log_model(model, example[:8], base.tracking.registered_model, base.tracking.alias)
    return TuneSummary(run_id=parent, trials=trials, best=best, model_uri=uri, model_version=version)
