"""The real CLI on a user's own Parquet files: vectors with metadata, pairs from a metadata rule and kNN on an
approximate index, an MLP encoder, real Ray, real sqlite MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration


def views(n_azimuth: int, elevations: list[float], lightings: int, seed: int) -> pa.Table:
    """Vectors that vary smoothly with (azimuth, elevation) plus a lighting offset: a toy airplane."""
    rng = np.random.default_rng(seed)
    az, el, light = np.meshgrid(
        np.arange(n_azimuth) * 360.0 / n_azimuth, elevations, np.arange(lightings), indexing="ij"
    )
    az, el, light = az.ravel(), el.ravel(), light.ravel()
    basis = np.random.default_rng(0).normal(size=(5, 32))
    code = np.stack([np.cos(np.radians(az)), np.sin(np.radians(az)), el / 10, light / 4, np.ones_like(az)], 1)
    x = (code @ basis + 0.01 * rng.normal(size=(len(az), 32))).astype(np.float32)
    return pa.table(
        {
            "features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 32),
            "azimuth": az,
            "elevation": el,
            "lighting": light.astype(np.int64),
        }
    )


def test_parquet_job_with_a_metadata_rule_and_an_mlp(tmp_path):
    pq.write_table(views(18, [0, 5, 10, 15], 3, seed=1), tmp_path / "train.parquet")
    pq.write_table(views(18, [2.5, 12.5], 1, seed=2), tmp_path / "test.parquet")
    job = tmp_path / "views.yaml"
    job.write_text(
        textwrap.dedent(f"""
        name: views
        data: {{source: parquet, path: {tmp_path / "train.parquet"}, test_path: {tmp_path / "test.parquet"},
                label_column: null}}
        pairs:
          sources: [knn, prior]
          k: 3
          index: hnsw
          index_options: {{m: 8}}
          recall_queries: 100
          prior:
            adjacent: {{azimuth: {{step: 20, period: 360}}, elevation: {{step: 5}}}}
            max_differing: 1
        encoder: {{name: mlp, output_dim: 3, options: {{hidden: 20, layers: 1, activation: tanh}}}}
        train: {{epochs: 2, num_workers: 1, batch_size: 32}}
        evaluate: {{thumbnails: 0}}
        tracking: {{registered_model: drlim-views}}
    """)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(job)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]

    [pairs_dir] = (tmp_path / "pairs").iterdir()
    manifest = json.loads((pairs_dir / "manifest.json").read_text())
    # evaluate.validation's default holds a tenth of the 216 training views (22) out of the pairs
    assert manifest["n_samples"] == 18 * 4 * 3 - 22 and manifest["counts_by_source"]["prior"] > 0
    assert manifest["knn"]["index"] == "hnsw" and 0 < manifest["knn"]["recall_at_k"] <= 1
    [run_dir] = (tmp_path / "runs").iterdir()
    table = pq.read_table(run_dir / "embeddings.parquet")
    assert table.num_rows == 36 and table.schema.field("embedding").type.list_size == 3
    assert "knn_accuracy_5" not in proc.stdout  # no labels, no classification score
    assert "trustworthiness_5" in proc.stdout and "models:/drlim-views@champion (version 1" in proc.stdout
    assert "val/trustworthiness_5" in proc.stdout and "val/trustworthiness_12" not in proc.stdout  # 22: too few
