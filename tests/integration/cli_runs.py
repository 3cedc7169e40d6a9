"""Helpers for integration tests that run the real CLI and real servers as separate processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import mnist_root


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
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=workdir, env=env or cli_env(),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """Wait for ``proc`` and return its output; then kill whatever of its session is left."""
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    finally:
        kill_session(proc.pid)


def kill_session(sid: int) -> None:
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    table = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for pid, s in (line.split() for line in table.splitlines()):
        if int(s) == sid:  # Ray workers have process groups of their own inside the session
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for_checkpoint(workdir: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until Ray Train has registered a checkpoint (what a restart or a re-run resumes from)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for snapshot in (workdir / "checkpoints").glob("*/checkpoint_manager_snapshot.json"):
            try:
                if json.loads(snapshot.read_text())["checkpoint_results"]:
                    return
            except (ValueError, KeyError):  # being written
                pass
        if proc.poll() is not None:
            raise AssertionError(f"run ended before its first checkpoint:\n{proc.stdout.read()[-4000:]}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint within the time limit")


def start_mlflow_server(state: Path, port: int) -> subprocess.Popen:
    """A real ``mlflow server`` on 127.0.0.1:PORT (sqlite + local artifacts under ``state``), once healthy."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{state / 'mlflow.db'}", "--artifacts-destination", str(state / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
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
