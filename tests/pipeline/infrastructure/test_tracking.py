"""The MLflow boundary against a real local MLflow store (sqlite + artifacts in a temporary folder)."""

import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from pipeline.errors import TrackingError
from pipeline.infrastructure.tracking import Tracker
from tests.conftest import REPO


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tracker with a started run in a fresh local store; the run is ended after the module's tests."""
    root = tmp_path_factory.mktemp("mlflow")
    tracker = Tracker(f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts")
    tracker.start_run("tests", "unit", {"train.epochs": 3, "data.digits": [4, 9]})
    yield tracker
    tracker.end_run("FINISHED")


def _metrics(tracker: Tracker) -> dict[str, float]:
    return MlflowClient(tracker.uri).get_run(tracker.run_id).data.metrics


def test_a_run_records_the_flattened_job_as_params(run):
    params = MlflowClient(run.uri).get_run(run.run_id).data.params
    assert params == {"train.epochs": "3", "data.digits": "4,9"}


def test_pairs_are_logged_as_counts_and_the_manifest(run, tmp_path):
    manifest = {"similar_pairs": 12, "dissimilar_pairs_implicit": 33, "knn": {"recall_at_k": 0.97}}
    run.log_pairs(manifest, n_samples=10)
    assert {k: v for k, v in _metrics(run).items() if k.startswith("pairs/")} == {
        "pairs/similar": 12,
        "pairs/dissimilar_implicit": 33,
        "pairs/n_samples": 10,
        "pairs/knn_recall": 0.97,
    }
    client = MlflowClient(run.uri)
    assert "pairs/manifest.json" in [f.path for f in client.list_artifacts(run.run_id, "pairs")]


def test_workers_log_epochs_through_a_plain_copy_and_the_job_fills_in_the_rest(run):
    worker = pickle.loads(pickle.dumps(run.for_workers()))  # what Ray ships to a training worker
    assert (worker.uri, worker.run_id, worker.artifact_root) == (run.uri, run.run_id, None)
    worker.log_epoch({"loss": 0.5}, 1)
    history = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    run.log_missing_epochs(history)  # epoch 1 is there already: only 2 and 3 are logged
    steps = MlflowClient(run.uri).get_metric_history(run.run_id, "train/loss")
    assert sorted((m.step, m.value) for m in steps) == [(1, 0.5), (2, 0.5), (3, pytest.approx(1 / 3))]


def test_epoch_logging_is_best_effort(caplog):
    Tracker("http://127.0.0.1:9", run_id="nope").log_epoch({"loss": 1.0}, 1)  # no server: a warning, no error
    assert "Could not log epoch 1 metrics to MLflow" in caplog.text
    Tracker("sqlite:///unused.db").log_epoch({"loss": 1.0}, 1)  # no run: nothing to do


def test_evaluation_metrics_and_files(run, tmp_path):
    (tmp_path / "embeddings.parquet").write_bytes(b"x")
    (tmp_path / "map.png").write_bytes(b"x")
    run.log_evaluation(
        {"trustworthiness_5": 0.9}, {"embeddings": tmp_path / "embeddings.parquet", "map": tmp_path / "map.png"}
    )
    assert _metrics(run)["test/trustworthiness_5"] == 0.9
    client = MlflowClient(run.uri)
    assert [f.path for f in client.list_artifacts(run.run_id, "plots")] == ["plots/map.png"]
    assert [f.path for f in client.list_artifacts(run.run_id, "embeddings")] == ["embeddings/embeddings.parquet"]


def test_the_folder_of_every_rows_embeddings_is_a_dataset_input_not_an_artifact(run, tmp_path):
    import json

    import mlflow
    import pyarrow.parquet as pq

    from pipeline.evaluate.embeddings import embeddings_table

    folder = tmp_path / "embeddings"
    folder.mkdir()
    for part in range(2):
        ids = np.arange(part * 3, part * 3 + 3)
        pq.write_table(embeddings_table(ids, "train", ids % 2, np.zeros((3, 2))), folder / f"part-{part}.parquet")
    run.log_embeddings_folder(folder, "unit-embeddings")
    inputs = MlflowClient(run.uri).get_run(run.run_id).inputs.dataset_inputs
    logged = next(i for i in inputs if i.dataset.name == "unit-embeddings")
    assert {t.key: t.value for t in logged.tags}["mlflow.data.context"] == "embeddings"
    assert json.loads(logged.dataset.source)["uri"] == str(folder.resolve())
    assert [c["name"] for c in json.loads(logged.dataset.schema)["mlflow_colspec"]][:3] == ["id", "split", "label"]
    assert "embeddings/part-0.parquet" not in [f.path for f in MlflowClient(run.uri).list_artifacts(run.run_id)]
    assert mlflow.data.get_source(logged).uri == str(folder.resolve())


def test_a_folder_another_run_logs_between_lookup_and_insert_is_reused(run, tmp_path, monkeypatch):
    """Two runs of one job log the same folder; the store's look-then-insert lets the second fail on the unique
    key. The retry finds the other run's row and links it."""
    import mlflow
    import pyarrow.parquet as pq
    from mlflow.exceptions import MlflowException

    from pipeline.evaluate.embeddings import embeddings_table

    folder = tmp_path / "raced"
    folder.mkdir()
    ids = np.arange(4)
    pq.write_table(embeddings_table(ids, "train", ids % 2, np.zeros((4, 2))), folder / "part-0.parquet")
    log_input, calls = mlflow.log_input, []

    def other_run_first(dataset, context=None, **kwargs):
        calls.append(context)
        if len(calls) == 1:  # the other run inserts the row, then this run's insert meets it
            other = MlflowClient(run.uri).create_run(mlflow.get_run(run.run_id).info.experiment_id)
            MlflowClient(run.uri).log_inputs(
                other.info.run_id, [mlflow.entities.DatasetInput(dataset._to_mlflow_entity())]
            )
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id")
        return log_input(dataset, context=context, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", other_run_first)
    run.log_embeddings_folder(folder, "raced-embeddings")
    assert calls == ["embeddings", "embeddings"]
    inputs = MlflowClient(run.uri).get_run(run.run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs].count("raced-embeddings") == 1


def test_the_model_is_registered_under_the_alias_promoted_and_loaded(run):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2))
    example = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    version, uri = run.log_model(model, example, "unit-model", "champion")
    assert (version, uri) == ("1", "models:/unit-model@champion")
    loaded = run.load_model(uri)
    np.testing.assert_allclose(loaded.predict(example), model(torch.from_numpy(example)).detach().numpy(), rtol=1e-5)
    takes = run.model_input(uri)  # from the signature; the alias pinned to the model itself
    assert (takes.shape, takes.dtype) == ((6,), "float32") and takes.uri.startswith("models:/m-")
    assert run.load_model(takes.uri).predict(example).shape == (4, 2)

    run.promote("unit-model", "1", "production")
    assert str(MlflowClient(run.uri).get_model_version_by_alias("unit-model", "production").version) == "1"
    with pytest.raises(TrackingError, match=r"'unit-model' has no version '7'; its versions are \[1\]"):
        run.promote("unit-model", "7", "production")
    with pytest.raises(TrackingError, match=r"no registered model 'other'.*registered models: \['unit-model'\]"):
        run.promote("other", "1", "production")
    with pytest.raises(TrackingError, match="alias 'latest': alias 'latest' is reserved by MLflow"):
        run.promote("unit-model", "1", "latest")
    with pytest.raises(TrackingError, match="could not load model models:/missing@champion from sqlite"):
        run.load_model("models:/missing@champion")


def test_required_logging_turns_any_failure_into_one_error_that_says_how_to_recover(run):
    with pytest.raises(TrackingError) as info, run.required("training finished", "The model is safe in X"):
        raise ConnectionError("server went away\nlong details")
    assert str(info.value) == (
        f"training finished but logging to MLflow ({run.uri}) failed: server went away. The model is safe in X"
    )


def test_an_unreachable_server_is_refused_before_any_work(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(TrackingError, match=f"MLflow tracking server http://127.0.0.1:{port} is not reachable"):
        Tracker(f"http://127.0.0.1:{port}").check_server(timeout=2)
    Tracker(f"sqlite:///{tmp_path / 'local.db'}").check_server()  # a local store needs no server: it is made here
    assert (tmp_path / "local.db").is_file()


def test_two_runs_starting_at_once_in_a_fresh_workdir_both_get_the_local_store(tmp_path):
    # Without the lock one of the two fails in MLflow's table creation (alembic: "Online migration expected to
    # match one row"), every time here.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = (
        "import sys; from pipeline.infrastructure.tracking import Tracker\n"
        "tracker = Tracker(sys.argv[1]); tracker.check_server(); tracker.start_run('drlim', 'x', {})\n"
        "tracker.end_run('FINISHED')"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", code, uri], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    assert MlflowClient(uri).search_experiments()  # the store works: its default experiment is there


def test_a_runs_files_download_quietly_and_only_those_it_has(run, tmp_path, capfd):
    import os

    picture = tmp_path / "map.png"
    picture.write_bytes(b"not really a png")
    run.log_evaluation({}, {"map": picture})
    found = run.download_run_files(run.run_id, ["plots/map.png", "plots/explorer.html"], tmp_path / "out")
    assert list(found) == ["plots/map.png"] and found["plots/map.png"].read_bytes() == b"not really a png"
    assert "Downloading artifacts" not in capfd.readouterr().err  # no progress bar per small file
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # the setting is the block's alone
