"""The airplane job through the real CLI (synthetic airplane, prior-knowledge pairs only, MLP to 3-D)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_airplane_job_reports_the_cylinder_metrics_and_draws_it(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "run",
            str(REPO / "jobs" / "norb_airplane.yaml"),
            "--set",
            "train.epochs=1",
            "--set",
            "train.num_workers=1",
            "--set",
            "evaluate.thumbnails=5",
            "--set",
            "tracking.registered_model=drlim-airplane-test",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    assert "(13446 similar pairs)" in proc.stdout  # the hand-counted rule on the 18 x 9 x 6 grid
    for metric in ("azimuth_circular_correlation", "elevation_spearman", "lighting_invariance_ratio"):
        assert f"{metric}:" in proc.stdout
    [run_dir] = (tmp_path / "runs").iterdir()
    assert (run_dir / "map_cylinder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The interactive map is 3-D, holds every view with every similar pair, colourable by the views' metadata.
    from pipeline.explore.page import read_page

    [(meta, _)] = read_page((run_dir / "explorer.html").read_text())
    assert meta["dim"] == 3 and meta["n"] == 972 and meta["pairs"]["count"] == 13446
    assert {"azimuth", "elevation", "lighting"} <= {column["name"] for column in meta["columns"]}
