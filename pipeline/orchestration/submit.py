"""Run a job on a Ray cluster through the Ray Jobs API: ``drlim submit``, ``status``, ``logs``, ``stop``.

The job runs there exactly as ``drlim run`` runs here: the entry point is ``python -m jobs.entry run JOB``
inside this project's source tree, shipped as the job's ``working_dir``. The project's requirements go along
as a ``pip`` runtime environment (Ray layers it over the image's packages, so an image that already has
them installs nothing), and the tracking server and data root are passed through as environment variables.
Paths (``--workdir``, ``--data-root``) are paths on the cluster: every node must see them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import tomllib

from pipeline.config import load_job
from pipeline.errors import DrlimError, first_line
from pipeline.infrastructure.process_env import environment

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
AGENT_WAIT_SECONDS = 60.0  # how long a just-started head may take to bring its job agent up
AGENT_RETRY_SECONDS = 2.0
# Variables a job needs on the cluster, passed through when they are set here.
PASSED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "DRLIM_DATA_ROOT",
)


class SubmitError(DrlimError):
    """The cluster could not be reached, refused the job, or the job failed."""


def resolve_address(address: str | None) -> str:
    """``--address``, else ``RAY_API_SERVER_ADDRESS``, else an ``http`` ``RAY_ADDRESS``, else the local head."""
    if address:
        if not address.startswith(("http://", "https://")):
            raise SubmitError(f"--address {address!r}: give the Jobs API URL of the head, e.g. {DEFAULT_ADDRESS}")
        return address.rstrip("/")
    for variable in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):  # RAY_ADDRESS may also be a GCS host:port
        value = os.environ.get(variable, "")
        if value.startswith(("http://", "https://")):
            return value.rstrip("/")
    return DEFAULT_ADDRESS


def requirements(project_root: Path = PROJECT_ROOT) -> list[str]:
    """The project's runtime requirements, as written in ``pyproject.toml``."""
    with open(project_root / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def entrypoint(job_file: str, overrides: list[str], workdir: str, data_root: str | None) -> str:
    args = ["python", "-m", "jobs.entry", "run", job_file, "--workdir", workdir]
    if data_root:
        args += ["--data-root", data_root]
    for override in overrides:
        args += ["--set", override]
    return shlex.join(args)


def runtime_env(ship_requirements: bool, project_root: Path = PROJECT_ROOT) -> dict[str, Any]:
    env: dict[str, Any] = {
        "working_dir": str(project_root),
        "env_vars": {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)},
    }
    if ship_requirements:
        env["pip"] = requirements(project_root)
    return env


def _job_file_in_project(job: Path, project_root: Path) -> str:
    try:
        return job.resolve().relative_to(project_root).as_posix()
    except ValueError:
        raise SubmitError(
            f"{job}: a submitted job file must lie inside the project ({project_root}), which is what ships to "
            f"the cluster; copy it into {project_root / 'jobs'}"
        ) from None


def _cluster_path(path: str) -> str:
    """Cloud URIs pass as they are; local paths become absolute (a relative path means nothing on the cluster)."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def auth_headers() -> dict[str, str]:
    """The bearer token for clusters with token authentication (Ray's default), from where Ray keeps it.

    Sent explicitly: Ray's client only adds it when RAY_AUTH_MODE=token was set before ``ray`` was imported.
    """
    token = os.environ.get("RAY_AUTH_TOKEN")
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and token_file.is_file():
        token = token_file.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def client(address: str | None):
    """A Jobs API client for the head at ``address``; errors say how to reach or start one."""
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    for noisy in ("ray.dashboard", "ray._private.runtime_env"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Ray lets these variables override an explicit address; they were already taken into account above.
    try:
        with environment({"RAY_API_SERVER_ADDRESS": None, "RAY_ADDRESS": None}):
            return JobSubmissionClient(url, headers=auth_headers())
    except Exception as exc:  # ConnectionError, AuthenticationError, version mismatch: all say why
        raise SubmitError(
            f"cannot use the Ray Jobs API at {url}: {first_line(exc)}. Start a cluster (infra/local/start.sh here, "
            f"infra/README.md for clusters), pass --address http://HEAD:8265, and for token authentication put "
            f"the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
        ) from None


def submit(
    job: Path,
    overrides: list[str],
    workdir: str,
    data_root: str | None = None,
    address: str | None = None,
    ship_requirements: bool = True,
    wait: bool = True,
) -> tuple[str, int]:
    """Submit ``job``; with ``wait``, stream its logs until it ends. Returns ``(submission id, exit code)``."""
    config = load_job(job, overrides)  # a bad job fails here, not minutes later on the cluster
    command = entrypoint(
        _job_file_in_project(job, PROJECT_ROOT),
        overrides,
        _cluster_path(workdir),
        _cluster_path(data_root) if data_root else None,
    )
    jobs = client(address)
    deadline = time.monotonic() + AGENT_WAIT_SECONDS
    while True:
        try:
            job_id = jobs.submit_job(
                entrypoint=command,
                runtime_env=runtime_env(ship_requirements),
                metadata={"drlim_job": config.name},
            )
            break
        except Exception as exc:
            if "No available agent" not in str(exc):
                raise SubmitError(f"the cluster at {resolve_address(address)} refused the job: {exc}") from None
            # A head that has just started answers before its job agent is up, and says to try again later.
            if time.monotonic() >= deadline:
                raise SubmitError(
                    f"the cluster at {resolve_address(address)} has no job agent after {AGENT_WAIT_SECONDS:.0f} s: "
                    "see dashboard_agent.log in the head's Ray logs (another Ray instance on the head's machine may "
                    "hold the agent's port 52365; infra/local/start.sh takes RAY_DASHBOARD_AGENT_PORT)"
                ) from None
            log.info("The cluster's job agent is not up yet; submitting again in %.0f s", AGENT_RETRY_SECONDS)
            time.sleep(AGENT_RETRY_SECONDS)
    log.info("Submitted %s as %s: %s", config.name, job_id, command)
    if not wait:
        return job_id, 0
    return job_id, follow(jobs, job_id)


def follow(jobs, job_id: str) -> int:
    """Stream ``job_id``'s logs to stdout until it ends; 0 when it succeeded, else 1 with its error on stderr."""

    async def tail() -> None:
        async for lines in jobs.tail_job_logs(job_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    asyncio.run(tail())
    status = jobs.get_job_status(job_id)
    while not status.is_terminal():  # the log stream can close a moment before the status settles
        time.sleep(0.5)
        status = jobs.get_job_status(job_id)
    if status.value == "SUCCEEDED":
        return 0
    info = jobs.get_job_info(job_id)
    print(f"drlim: job {job_id} {status.value.lower()}: {info.message}", file=sys.stderr)
    return 1


def describe(jobs, job_id: str) -> str:
    """One line: id, status and Ray's message for ``job_id``."""
    try:
        info = jobs.get_job_info(job_id)
    except Exception as exc:
        raise SubmitError(f"no job {job_id!r} on this cluster ({exc}); `ray job list` shows the ids") from None
    return f"{job_id}  {info.status.value}  {info.message or ''}".rstrip()
