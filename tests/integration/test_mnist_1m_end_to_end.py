"""jobs/mnist_1m.yaml end to end at 20 000 digits: the deformed-digit source made by Ray tasks, a FAISS
index-factory index, training on Ray Train, every row embedded by Ray tasks and recorded in MLflow, metrics on a
seeded sample of the real test digits. Real local Ray, real sqlite MLflow store, real FAISS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import cli_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]


def test_the_million_digit_job_runs_end_to_end_at_twenty_thousand(tmp_path):
    args = [
        "run",
        str(REPO / "jobs" / "mnist_1m.yaml"),
        "--workdir",
        str(tmp_path),
        "--set",
        "data.samples=20000",
        "--set",
        "pairs.index=PCA32,IVF128,Flat,RFlat",  # cells for 18 000 rows, not a million
        "--set",
        "train.epochs=0.5",
        "--set",
        "evaluate.scored_samples=2000",
        "--set",
        "evaluate.thumbnails=20",
    ]
    # A 1 MB threshold: the data stage and every-row embedding take their Ray-task paths, as at a million.
    env = cli_env(DRLIM_INLINE_BYTES=str(1 << 20))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    (tmp_path / "output.txt").write_text(output)

    [store_dir] = (tmp_path / "samples").iterdir()
    store = json.loads((store_dir / "manifest.json").read_text())
    assert store["feature_dtype"] == "uint8" and store["splits"]["test"] == 10_000
    assert store["splits"]["train"] + store["splits"]["validation"] == 20_000
    [pairs_dir] = (tmp_path / "pairs").iterdir()
    pairs = json.loads((pairs_dir / "manifest.json").read_text())
    assert pairs["knn"]["index"] == "PCA32,IVF128,Flat,RFlat" and pairs["knn"]["recall_at_k"] > 0.8

    [run_dir] = (tmp_path / "runs").iterdir()
    every = pq.read_table(run_dir / "embeddings")  # every row of every split
    assert every.num_rows == 30_000 and sorted(every.column("id").to_pylist()) == list(range(30_000))
    test_rows = every.filter(pc.equal(every.column("split"), "test"))
    assert np.isfinite(np.stack(test_rows.column("embedding").to_numpy(zero_copy_only=False))).all()
    assert "on a seeded sample of 2000 of its 10000 samples" in output

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = client.get_model_version_by_alias("drlim-mnist-1m", "champion")
    run = client.get_run(version.run_id)
    assert run.data.metrics["test/scored_samples"] == 2000
    # Half an epoch of 18 000 digits: far from the job's map, but well above chance (0.1) on unseen digits.
    assert run.data.metrics["test/knn_accuracy_5"] > 0.3 and run.data.metrics["test/trustworthiness_5"] > 0.7
    [dataset] = [d for d in run.inputs.dataset_inputs if d.dataset.name == "mnist_1m-embeddings"]
    assert json.loads(dataset.dataset.source)["uri"] == str((run_dir / "embeddings").resolve())
    assert Path(json.loads(dataset.dataset.source)["uri"]).is_dir()
