from pathlib import Path

from pipeline.runtime import (
    DATA_ROOT_ENV, LOCAL_RAY_ENV, resolve_data_root, resolve_runtime, resolve_tracking_uri, use_local_ray_defaults,
)


def test_the_data_root_comes_from_the_cli_then_the_job_then_the_environment_then_the_workdir(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert resolve_data_root(str(tmp_path / "cli"), str(tmp_path / "job"), tmp_path) == tmp_path / "cli"
    assert resolve_data_root(None, str(tmp_path / "job"), tmp_path) == tmp_path / "job"
    assert resolve_data_root(None, None, tmp_path) == tmp_path / "env"
    monkeypatch.delenv(DATA_ROOT_ENV)
    assert resolve_data_root(None, None, tmp_path) == tmp_path / "data"


def test_the_tracking_store_is_the_environments_or_an_absolute_sqlite_file_in_the_workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(Path("w")) == f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}"  # workers run elsewhere
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(Path("w")) == "http://127.0.0.1:5000"


def test_a_runtime_makes_its_workdir_and_a_local_store_keeps_artifacts_there(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runtime = resolve_runtime(str(tmp_path / "new" / "work"), None, str(tmp_path / "data"))
    assert runtime.workdir.is_dir() and runtime.data_root == tmp_path / "data"
    assert runtime.uses_local_store
    assert runtime.tracker().artifact_root == runtime.workdir / "mlartifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    remote = resolve_runtime(str(tmp_path), None, None)
    assert not remote.uses_local_store and remote.tracker().artifact_root is None  # the server decides


def test_a_local_ray_instance_gets_ray_trains_faster_polling_unless_the_user_set_it(monkeypatch):
    import os

    monkeypatch.delenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", raising=False)
    use_local_ray_defaults()
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == LOCAL_RAY_ENV["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"]
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "3")
    use_local_ray_defaults()
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "3"


def test_the_local_cluster_script_uses_the_same_ray_defaults():
    script = (Path(__file__).resolve().parents[2] / "infra" / "local" / "start.sh").read_text()
    for name, value in LOCAL_RAY_ENV.items():
        assert f"export {name}=${{{name}:-{value}}}" in script
