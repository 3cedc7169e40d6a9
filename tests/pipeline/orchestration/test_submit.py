"""``drlim submit``'s pieces that need no cluster: addresses, entry point, runtime env, tokens, refusals."""

import shlex
import socket

import pytest

from pipeline.orchestration.submit import (
    DEFAULT_ADDRESS,
    SubmitError,
    _cluster_path,
    _job_file_in_project,
    auth_headers,
    client,
    entrypoint,
    requirements,
    resolve_address,
    runtime_env,
)
from tests.conftest import REPO


def test_the_address_comes_from_the_flag_then_the_environment_then_the_local_head(monkeypatch):
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # a GCS address, not the Jobs API: ignored
    assert resolve_address(None) == DEFAULT_ADDRESS
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert resolve_address(None) == "http://head:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://jobs:8265")
    assert resolve_address(None) == "http://jobs:8265"
    assert resolve_address("https://cluster.example:443/") == "https://cluster.example:443"
    with pytest.raises(SubmitError, match="give the Jobs API URL of the head, e.g. http://127.0.0.1:8265"):
        resolve_address("head:8265")


def test_the_entry_point_runs_the_job_with_its_overrides_quoted():
    line = entrypoint("jobs/mnist_4_9.yaml", ["data.digits=[1, 7]"], "/mnt/w", "/mnt/data")
    assert shlex.split(line) == [
        "python",
        "-m",
        "jobs.entry",
        "run",
        "jobs/mnist_4_9.yaml",
        "--workdir",
        "/mnt/w",
        "--data-root",
        "/mnt/data",
        "--set",
        "data.digits=[1, 7]",
    ]


def test_the_runtime_env_ships_the_project_its_requirements_and_the_tracking_variables(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.delenv("DRLIM_DATA_ROOT", raising=False)
    env = runtime_env(ship_requirements=True)
    assert env["working_dir"] == str(REPO)
    assert env["env_vars"] == {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    assert env["pip"] == requirements() and any(r.startswith("ray[") for r in env["pip"])
    assert "pip" not in runtime_env(ship_requirements=False)


def test_job_files_must_lie_inside_the_shipped_project(tmp_path):
    assert _job_file_in_project(REPO / "jobs" / "mnist_4_9.yaml", REPO) == "jobs/mnist_4_9.yaml"
    with pytest.raises(SubmitError, match="must lie inside the project"):
        _job_file_in_project(tmp_path / "job.yaml", REPO)


def test_cluster_paths_are_absolute_and_uris_pass_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _cluster_path("w") == str(tmp_path / "w")
    assert _cluster_path("s3://bucket/w") == "s3://bucket/w"


def test_the_token_comes_from_the_environment_or_the_token_file(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    assert auth_headers() == {}
    (tmp_path / "token").write_text("abc\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert auth_headers() == {"Authorization": "Bearer abc"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "xyz")
    assert auth_headers() == {"Authorization": "Bearer xyz"}


def test_no_cluster_at_the_address_is_one_error_that_says_how_to_start_one():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(
        SubmitError, match=f"cannot use the Ray Jobs API at http://127.0.0.1:{port}: .*infra/local/start.sh"
    ):
        client(f"http://127.0.0.1:{port}")


class _StartingHead:
    """A Jobs API client whose head answers "No available agent" (as a just-started one does) ``busy`` times."""

    def __init__(self, busy: int, message: str = "No available agent to submit job, please try again later.."):
        self.busy, self.message, self.calls = busy, message, 0

    def submit_job(self, **kwargs) -> str:
        self.calls += 1
        if self.calls <= self.busy:
            raise RuntimeError(f"Request failed with status code 500: {self.message}")
        return "raysubmit_1"


def test_a_head_whose_job_agent_is_not_up_yet_is_asked_again(monkeypatch):
    from pipeline.orchestration import submit as submit_module

    head = _StartingHead(busy=2)
    monkeypatch.setattr(submit_module, "client", lambda address: head)
    monkeypatch.setattr(submit_module, "AGENT_RETRY_SECONDS", 0.01)
    job = REPO / "jobs" / "mnist_4_9.yaml"
    assert submit_module.submit(job, [], "/tmp/work", wait=False) == ("raysubmit_1", 0)
    assert head.calls == 3

    never = _StartingHead(busy=10**6)  # its agent never comes up (its port taken by another Ray instance)
    monkeypatch.setattr(submit_module, "client", lambda address: never)
    monkeypatch.setattr(submit_module, "AGENT_WAIT_SECONDS", 0.05)
    with pytest.raises(SubmitError, match="has no job agent after 0 s: see dashboard_agent.log .*52365"):
        submit_module.submit(job, [], "/tmp/work", wait=False)

    other = _StartingHead(busy=1, message="runtime_env is invalid")  # any other refusal: at once, one line
    monkeypatch.setattr(submit_module, "client", lambda address: other)
    with pytest.raises(SubmitError, match="refused the job: .*runtime_env is invalid"):
        submit_module.submit(job, [], "/tmp/work", wait=False)
    assert other.calls == 1
