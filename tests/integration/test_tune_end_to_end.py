"""``drlim tune`` through the real CLI: real Ray Tune trials, each training through Ray Train, a real sqlite
MLflow store with one parent run and a child run per trial, the best trial registered under the alias; the
workdir (stores, Ray Train's and Ray Tune's records) on a real S3 server on loopback (moto's)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from tests.integration.cli_runs import cli_env

pytestmark = pytest.mark.integration


def _vectors(path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8)) * 3
    labels = np.arange(n) % 3
    x = (centres[labels] + rng.normal(size=(n, 8))).astype(np.float32)
    pq.write_table(
        pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 8), "label": labels}), path
    )


def test_a_small_search_registers_the_trial_with_the_best_validation_score(tmp_path, s3_server):
    _vectors(tmp_path / "train.parquet", 200, seed=0)
    _vectors(tmp_path / "test.parquet", 60, seed=1)
    (tmp_path / "job.yaml").write_text(
        textwrap.dedent("""
        name: tiny
        data: {source: parquet, path: train.parquet, test_path: test.parquet}
        encoder: {name: mlp, options: {hidden: 8}}
        train: {num_workers: 1, epochs: 1, batch_size: 16}
        pairs: {num_shards: 2}
        evaluate: {validation: 40, thumbnails: 0}
        tracking: {registered_model: tiny-tuned}
    """)
    )
    host = s3_server["endpoint_override"].split("://", 1)[1]
    workdir = f"s3://drlim/tune?endpoint_override={host}&scheme=http&region=us-east-1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "tune",
            "job.yaml",
            "--data-root",
            str(tmp_path),
            "--workdir",
            workdir,
            "--search",
            "train.loss=[neg, infonce]",
            "--concurrent",
            "2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env=cli_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", DRLIM_CACHE=str(tmp_path / "cache")),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "tune: 2/2 trials done, 0 running; best val/trustworthiness_5" in out  # progress
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| train.loss=")]
    assert len(rows) == 2
    best_line = next(line for line in proc.stdout.splitlines() if line.startswith("best: "))

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name == "drlim"]
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "tiny-tune"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["train.loss"] for r in children) == ["infonce", "neg"]
    assert all(r.info.status == "FINISHED" for r in [parent, *children])
    scores = {r.data.params["train.loss"]: r.data.metrics["val/trustworthiness_5"] for r in children}
    winner = max(scores, key=scores.get)
    assert best_line.startswith(f"best: train.loss={winner} ")  # chosen by the validation metric
    assert parent.data.params["best.train.loss"] == winner
    assert parent.data.metrics["best/val/trustworthiness_5"] == pytest.approx(scores[winner])
    assert all("test/trustworthiness_5" in r.data.metrics for r in children)  # recorded, not used to choose
    version = client.get_model_version_by_alias("tiny-tuned", "champion")
    assert version.run_id == parent.info.run_id
    s3 = pafs.S3FileSystem(**s3_server)  # every trial's checkpoints and Ray Tune's record went to the bucket
    stored = [i.path for i in s3.get_file_info(pafs.FileSelector("drlim/tune", recursive=True))]
    runs = {p.split("/")[3] for p in stored if p.startswith("drlim/tune/checkpoints/") and "/checkpoint_" in p}
    assert len(runs) == 2
    assert any(p.startswith("drlim/tune/tune/tiny-tune/") for p in stored)
