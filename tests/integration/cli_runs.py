"""Helpers for integration tests that run the real CLI and real servers as separate processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, mnist_root

EPOCHS = 4
MNIST_SMALL = [
    "run",
    str(REPO / "jobs" / "mnist_4_9.yaml"),
    "--set",
    "data.train_per_digit=500",  # epochs of ~1 s: time to interrupt a run between checkpoints
    "--set",
    "data.test_per_digit=30",
    "--set",
    f"train.epochs={EPOCHS}",
    "--set",
    "evaluate.thumbnails=20",
    "--set",
    "tracking.registered_model=drlim-test",
]


def loss_curve(workdir: Path, run_id: str | None = None) -> list[tuple[int, float]]:
    """train/loss of ``run_id`` (default: the run of the champion) as (epoch, loss), in logging order."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run_id = run_id or client.get_model_version_by_alias("drlim-test", "champion").run_id
    history = client.get_metric_history(run_id, "train/loss")
    return [(m.step, m.value) for m in sorted(history, key=lambda m: (m.step, m.timestamp))]


@dataclass
class FinishedRun:
    workdir: Path
    output: str
    curve: list[tuple[int, float]]  # as logged by the run, before any test re-runs in its workdir


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without a cluster or tracking server of the caller's, with the real MNIST.

    The running interpreter's ``bin/`` comes first on PATH, so scripts that call ``ray`` and ``mlflow`` (the
    infra/local scripts) get the ones installed with this interpreter, activated venv or not.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(DRLIM_DATA_ROOT=str(mnist_root()), PYTHONUNBUFFERED="1", **extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def require_tools(env: dict[str, str], *names: str) -> None:
    """Fail with the fix named when a command-line tool of the project is not installed with this interpreter."""
    missing = [name for name in names if shutil.which(name, path=env["PATH"]) is None]
    if missing:
        raise AssertionError(
            f"{', '.join(missing)} not found beside {sys.executable} nor on PATH; activate the project's virtual "
            f"environment (e.g. source .venv/bin/activate) and run pip install -e '.[dev]' in it"
        )


def start_drlim(workdir: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """``drlim ARGS`` in its own session: the test can signal it and sweep up every Ray process it started."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=workdir,
        env=env or cli_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for ``proc`` and return its output; then kill whatever of its session is left."""
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    finally:
        kill_session(proc.pid)


def kill_session(sid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGKILL)
    table = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for pid, s in (line.split() for line in table.splitlines()):
        if int(s) == sid:  # Ray workers have process groups of their own inside the session
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def alive_in_session(sid: int) -> list[str]:
    """Live (not zombie) processes of session ``sid``, as "pid command"."""
    table = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,comm="], capture_output=True, text=True, check=True).stdout
    rows = [line.split(None, 3) for line in table.splitlines()]
    return [
        f"{pid} {comm}"
        for pid, s, stat, comm in (r for r in rows if len(r) == 4)
        if int(s) == sid and not stat.startswith("Z")
    ]


def latest_checkpoint_epoch(workdir: Path) -> int:
    """The epochs done in the newest whole checkpoint of a run under ``workdir`` (what a restart or a re-run
    resumes from, once Ray Train registers it), 0 when there is none yet: read from our own checkpoint format."""
    import torch

    epochs = [0]
    for state in (workdir / "checkpoints").glob("*/checkpoint_*/state.pt"):
        with contextlib.suppress(Exception):  # being written: the next look reads it
            epochs.append(int(torch.load(state, map_location="cpu", weights_only=True)["epoch"]))
    return max(epochs)


def wait_for_checkpoint(workdir: Path, proc: subprocess.Popen, timeout: float = 300) -> int:
    """Until Ray Train has registered a checkpoint; returns its epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if epoch := latest_checkpoint_epoch(workdir):
            return epoch
        if proc.poll() is not None:
            raise AssertionError(f"run ended before its first checkpoint:\n{proc.stdout.read()[-4000:]}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint within the time limit")


class LiveOutput:
    """The output of a ``start_drlim`` process, read as it comes, so a test can act on a line (use instead of
    ``finish``)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 300, count: int = 1) -> str:
        """The ``count``-th line holding ``text``, once it is out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if text in line]
            if len(found) >= count:
                return found[count - 1]
            if not self._reader.is_alive():
                raise AssertionError(f"run ended without printing {text!r}:\n{''.join(self.lines)[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s")

    def finish(self, timeout: float = 600) -> str:
        """Wait for the process and return all its output; then kill whatever of its session is left."""
        try:
            self.proc.wait(timeout)
            self._reader.join(timeout)
            return "".join(self.lines)
        finally:
            kill_session(self.proc.pid)


def start_mlflow_server(state: Path, port: int) -> subprocess.Popen:
    """A real ``mlflow server`` on 127.0.0.1:PORT (sqlite + local artifacts under ``state``), once healthy."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{state / 'mlflow.db'}",
            "--artifacts-destination",
            str(state / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            if server.poll() is not None:
                raise AssertionError(f"mlflow server exited with {server.returncode}") from None
            time.sleep(0.5)
    kill_session(server.pid)
    raise AssertionError("mlflow server did not become healthy within 120 s")
