"""A driver killed in the middle of the pair stage leaves nothing a re-run mistakes for finished work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import cli_env, kill_session

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

ARGS = ["pairs", str(REPO / "jobs" / "mnist_4_9.yaml"), "--set", "data.train_per_digit=400",
        "--set", "data.test_per_digit=20"]


def _command(workdir: Path) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "pipeline.cli", *ARGS, "--workdir", str(workdir)], cli_env()


def _manifest(workdir: Path) -> dict:
    [directory] = [d for d in (workdir / "pairs").iterdir() if not d.name.startswith(".")]
    return json.loads((directory / "manifest.json").read_text())


def test_killed_pair_stage_then_rerun_equals_an_uninterrupted_run(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    command, env = _command(killed)
    # Own session, so that killing it also kills the local Ray instance it started.
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        if "NN graph of" in line or time.monotonic() > deadline:
            break
    kill_session(proc.pid)
    proc.wait(timeout=60)
    assert "NN graph of" in line, "the pair stage never started"
    finished = [d for d in (killed / "pairs").glob("*/manifest.json")] if (killed / "pairs").exists() else []
    assert finished == []  # nothing that looks complete

    for workdir in (killed, clean):
        command, env = _command(workdir)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    assert _manifest(killed)["shards"] == _manifest(clean)["shards"]  # same files, same checksums
