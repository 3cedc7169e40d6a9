"""The whole pipeline as one call, on tiny files, with a tracker that records what would go to MLflow."""

from __future__ import annotations

import pytest

from pipeline.config import load_job
from pipeline.errors import DataError, TrackingError
from pipeline.infrastructure.location import Location
from pipeline.infrastructure.runtime import Runtime
from pipeline.infrastructure.tracking import Tracker
from pipeline.orchestration.run import run_job


class RecordingTracker(Tracker):
    """Records the calls the job makes instead of talking to MLflow; ``fail_on`` makes one call raise."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__("recording://")
        self.calls: list[tuple[str, object]] = []
        self.fail_on = fail_on

    def _record(self, name: str, value: object = None) -> None:
        if name == self.fail_on:
            raise ConnectionError(f"{name} refused")
        self.calls.append((name, value))

    def check_server(self, timeout: float = 5.0) -> None:
        self._record("check_server")

    def start_run(self, experiment, run_name, params, parent_run_id=None):
        self._record("start_run", (experiment, run_name, params["train.epochs"]))
        self.run_id = "run-1"
        return self.run_id

    def end_run(self, status):
        self._record("end_run", status)

    def for_workers(self):
        return None  # workers would log to MLflow; here the job fills in every epoch at the end

    def log_metrics(self, metrics, step=None):
        self._record("log_metrics", sorted(metrics))

    def log_pairs(self, manifest, n_samples):
        self._record("log_pairs", (manifest["similar_pairs"], n_samples))

    def log_missing_epochs(self, history):
        self._record("log_missing_epochs", [int(h["epoch"]) for h in history])

    def log_evaluation(self, metrics, files, validation=None):
        self._record("log_evaluation", (sorted(metrics), sorted(files), sorted(validation or {})))

    def log_model(self, model, example, registered_name, alias):
        self._record("log_model", (registered_name, alias, example.shape))
        return "1", f"models:/{registered_name}@{alias}"


def _job(sample_files, root):
    sample_files.write_vectors(root / "train.parquet", n=120, d=6, seed=0)
    sample_files.write_vectors(root / "test.parquet", n=30, d=6, seed=1)
    return load_job(
        None,
        [
            "name=tiny",
            "data.source=parquet",
            "data.path=train.parquet",
            "data.test_path=test.parquet",
            "encoder.name=mlp",
            "encoder.options={hidden: 8}",
            "train.num_workers=1",
            "train.epochs=2",
            "train.batch_size=16",
            "pairs.num_shards=2",
            "evaluate.thumbnails=0",
            "evaluate.validation=30",
            "tracking.registered_model=tiny",
        ],
    )


@pytest.fixture(scope="module")
def finished(ray_local, sample_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    job = _job(sample_files, root)
    runtime = Runtime(workdir=Location.of(root / "work"), data_root=root, tracking_uri="recording://")
    tracker = RecordingTracker()
    return job, runtime, tracker, run_job(job, runtime, tracker=tracker)


def test_a_run_logs_pairs_epochs_evaluation_and_model_in_order_then_closes(finished):
    _, _, tracker, summary = finished
    names = [name for name, _ in tracker.calls]
    assert names == [
        "check_server",
        "start_run",
        "log_pairs",
        "log_missing_epochs",
        "log_evaluation",
        "log_metrics",
        "log_model",
        "log_metrics",
        "end_run",
    ]
    calls = dict(tracker.calls)
    assert calls["start_run"] == ("drlim", "tiny", 2)
    assert calls["log_pairs"] == (summary.pairs.manifest["similar_pairs"], 90)  # 30 held out for validation
    assert calls["log_missing_epochs"] == [1, 2]
    scores = ["knn_accuracy_5", "trustworthiness_12", "trustworthiness_5"]
    assert calls["log_evaluation"] == (scores, ["embeddings", "explorer", "map"], scores)  # test and validation
    assert calls["log_model"] == ("tiny", "champion", (8, 6))
    scored, seconds = [args for name, args in tracker.calls if name == "log_metrics"]
    assert scored == ["test/scored_samples", "validation/scored_samples"]  # the rows each split was scored on
    assert seconds == ["seconds/data_and_pairs", "seconds/evaluate", "seconds/train"]
    assert calls["end_run"] == "FINISHED"
    assert summary.model_uri == "models:/tiny@champion" and summary.run_id == "run-1"
    assert 0.0 <= summary.metrics["trustworthiness_5"] <= 1.0
    assert summary.files["embeddings"].is_file() and summary.files["embeddings"].parent.name == "run-1"


def test_a_tracking_failure_after_training_names_the_checkpoint_and_marks_the_run_failed(finished):
    job, runtime, _, _ = finished
    tracker = RecordingTracker(fail_on="log_model")
    with pytest.raises(TrackingError) as info:
        run_job(job, runtime, tracker=tracker)  # the same job: training resumes from its finished checkpoint
    message = str(info.value)
    assert message.startswith(
        "training finished but logging to MLflow (recording://) failed: log_model refused. "
        "The trained model is safe in the checkpoint "
    )
    assert str(runtime.workdir.child("checkpoints")) in message and "re-run the same command" in message
    assert tracker.calls[-1] == ("end_run", "FAILED")


def test_the_pairs_stage_alone_never_touches_the_tracker(finished):
    job, runtime, _, _ = finished
    tracker = RecordingTracker()
    summary = run_job(job, runtime, stop_after="pairs", tracker=tracker)
    assert tracker.calls == [] and summary.run_id is None
    assert (summary.pairs.directory / "manifest.json").is_file()


def test_too_few_held_out_samples_for_the_metrics_are_refused_before_training(ray_local, sample_files, tmp_path):
    job = _job(sample_files, tmp_path)
    sample_files.write_vectors(tmp_path / "test.parquet", n=20, d=6, seed=1)
    runtime = Runtime(workdir=Location.of(tmp_path / "work"), data_root=tmp_path, tracking_uri="recording://")
    with pytest.raises(
        DataError,
        match=r"evaluate.trustworthiness_k=\[5, 12\] and evaluate.knn_k=5 need more than "
        r"24 samples in the test split, and it has 20; add held-out samples",
    ):
        run_job(job, runtime, tracker=RecordingTracker())
    assert not (tmp_path / "work" / "checkpoints").exists()
