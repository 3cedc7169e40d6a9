import logging
import os
import re
from pathlib import Path

from pipeline.infrastructure.runtime import (
    DATA_ROOT_ENV,
    LOCAL_RAY_ENV,
    LOG_FORMAT,
    RAY_FORWARDED_NOISE,
    keep_ray_output_in_logs,
    resolve_data_root,
    resolve_runtime,
    resolve_tracking_uri,
    use_local_ray_defaults,
)
from tests.conftest import REPO


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
    assert runtime.workdir.path == runtime.workspace == tmp_path / "new" / "work" and runtime.workspace.is_dir()
    assert runtime.data_root == tmp_path / "data" and runtime.uses_local_store
    assert runtime.tracker().artifact_root == runtime.workspace / "mlartifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    remote = resolve_runtime(str(tmp_path), None, None)
    assert not remote.uses_local_store and remote.tracker().artifact_root is None  # the server decides


def test_a_local_ray_instance_gets_ray_trains_faster_polling_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", raising=False)
    use_local_ray_defaults()
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == LOCAL_RAY_ENV["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"]
    monkeypatch.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "3")
    use_local_ray_defaults()
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "3"


def test_the_local_cluster_script_uses_the_same_ray_defaults():
    script = (REPO / "infra" / "local" / "start.sh").read_text()
    for name, value in LOCAL_RAY_ENV.items():
        assert f"export {name}=${{{name}:-{value}}}" in script


def test_of_what_ray_forwards_only_this_projects_log_lines_reach_the_terminal(monkeypatch):
    def ours(logger: str, message: str) -> str:
        record = logging.LogRecord(logger, logging.WARNING, __file__, 1, message, None, None)
        return logging.Formatter(LOG_FORMAT).format(record)

    shown = [
        ours("pipeline.train.worker", "epoch 1/4  loss 0.0491"),
        ours("pipeline.train.stage", "worker 1 failed"),
        ours("encoders.lenet", "built"),
    ]
    hidden = [  # seen on a terminal here: a cleaner thread's traceback with two local instances, Ray's chatter
        "Traceback (most recent call last):",
        "ConnectionError: Found multiple active Ray instances: {'192.0.2.2:42769', '192.0.2.2:43227'}.",
        "Setting up process group for: env:// [rank=0, world_size=2]",
        "[2026-12-02 02:49:05,990 E 31022 31133] core_worker.cc:2465: Actor with class name: 'PreemptionWatcher'",
        ours("ray.train", "Started training worker group of size 2"),
    ]
    noise = re.compile(RAY_FORWARDED_NOISE)  # Ray skips the forwarded lines it finds (re.search) in them
    assert [line for line in shown + hidden if not noise.search(line)] == shown

    monkeypatch.delenv("RAY_DEDUP_LOGS_SKIP_REGEX", raising=False)
    keep_ray_output_in_logs()
    assert os.environ["RAY_DEDUP_LOGS_SKIP_REGEX"] == RAY_FORWARDED_NOISE
    monkeypatch.setenv("RAY_DEDUP_LOGS_SKIP_REGEX", "mine")
    keep_ray_output_in_logs()
    assert os.environ["RAY_DEDUP_LOGS_SKIP_REGEX"] == "mine"  # the user's own is kept
