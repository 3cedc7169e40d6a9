"""Faults a user meets, through the real CLI on a small MNIST subset: a workdir on a filesystem that fills up, and
two runs of one job started together in a fresh workdir. Real Ray, MLflow (sqlite) and a real tmpfs."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import mnist_root
from tests.integration.cli_runs import MNIST_SMALL, finish, start_drlim

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

JOB = [*MNIST_SMALL, "--set", "train.epochs=2"]
RAY_NOISE = ("Traceback", "Bus error", "Error in training function", "(TrainController", "(PlacementGroupCleaner")


def _version(output: str) -> int:
    return int(re.search(r"models:/drlim-test@champion \(version (\d+),", output).group(1))


def test_a_full_disk_is_one_line_without_a_restart_and_the_rerun_with_room_reuses_the_finished_stages(
    small_filesystem: Path,
):
    # 2.5 MB hold the MLflow store, the sample store and the pair set; what training writes next does not fit:
    # its features' memory map or, when the MLflow store has grown less, its first checkpoint. A worker that hit
    # a full disk used to die of SIGBUS and Ray Train restarted it twice: now one line, no restart.
    subprocess.run(["mount", "-o", "remount,size=2560k", str(small_filesystem)], check=True)
    full = start_drlim(small_filesystem, JOB)
    out = finish(full)
    assert full.returncode == 2, out[-5000:]
    errors = [line for line in out.splitlines() if line.startswith("drlim: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"drlim: error: no space left on {small_filesystem} "), out
    assert "features-train.npy" in errors[0] or "checkpoints" in errors[0], errors[0]
    assert errors[0].endswith("free space or move --workdir; finished stages are kept")
    assert "restarts the workers" not in out  # stopped at the first occurrence
    assert not [noise for noise in RAY_NOISE if noise in out], out[-5000:]  # Ray's own lines stay in its logs
    assert not list(small_filesystem.glob("samples/*/.features-train.npy.*"))  # no temporary file left behind
    for features in small_filesystem.glob("samples/*/features-train.npy"):  # kept only whole (another worker's)
        manifest = json.loads((features.parent / "manifest.json").read_text())
        assert np.load(features, mmap_mode="r").shape[0] == manifest["splits"]["train"]

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_filesystem)], check=True)
    rerun = start_drlim(small_filesystem, JOB)
    out = finish(rerun)
    assert rerun.returncode == 0, out[-5000:]
    assert "Reusing sample store" in out and "Reusing pair set" in out
    assert _version(out) == 1


def test_two_runs_started_together_in_a_fresh_workdir_both_finish(tmp_path: Path):
    first = start_drlim(tmp_path, JOB)
    time.sleep(1)  # both create the MLflow store, the sample store and the pair set at about the same time
    second = start_drlim(tmp_path, JOB)
    outputs = [finish(first), finish(second)]
    for proc, out in zip((first, second), outputs):
        assert proc.returncode == 0, out[-5000:]
        assert not [noise for noise in RAY_NOISE if noise in out], out[-5000:]
    assert sorted(_version(out) for out in outputs) == [1, 2]
    assert len(list(tmp_path.glob("samples/*/manifest.json"))) == len(list(tmp_path.glob("pairs/*/manifest.json"))) == 1
    metrics = [[line for line in out.splitlines() if line.startswith("trustworthiness_5:")] for out in outputs]
    assert metrics[0] == metrics[1] and metrics[0]  # one training, resumed as finished by the other run
