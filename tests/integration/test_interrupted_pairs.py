"""A driver killed (SIGKILL) in the middle of the pair stage leaves nothing a re-run mistakes for finished work,
and no process of the local Ray instance it started lives on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import alive_in_session, cli_env, kill_session

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

ARGS = [
    "pairs",
    str(REPO / "jobs" / "mnist_4_9.yaml"),
    "--set",
    "data.train_per_digit=400",
    "--set",
    "data.test_per_digit=20",
]


def _command(workdir: Path) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "pipeline.cli", *ARGS, "--workdir", str(workdir)], cli_env()


def _manifest(workdir: Path) -> dict:
    [directory] = [d for d in (workdir / "pairs").iterdir() if not d.name.startswith(".")]
    return json.loads((directory / "manifest.json").read_text())


def test_killed_pair_stage_then_rerun_equals_an_uninterrupted_run(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    command, env = _command(killed)
    # Own session, so that killing it also kills the local Ray instance it started.
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        if "NN graph of" in line or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone, as the OOM killer would
    proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while (left := alive_in_session(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    kill_session(proc.pid)
    assert "NN graph of" in line, "the pair stage never started"
    assert left == [], f"the killed driver's Ray processes outlived it by 10 s: {left}"
    finished = list((killed / "pairs").glob("*/manifest.json")) if (killed / "pairs").exists() else []
    assert finished == []  # nothing that looks complete

    for workdir in (killed, clean):
        command, env = _command(workdir)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    assert _manifest(killed)["shards"] == _manifest(clean)["shards"]  # same files, same checksums
