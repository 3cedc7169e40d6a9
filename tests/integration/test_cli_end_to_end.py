"""The real CLI end to end on a small MNIST subset: real local Ray, real sqlite MLflow store, real FAISS."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import EPOCHS, cli_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]


def _drlim(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=workdir,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"drlim {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-5000:]}")
    return proc


def test_run_writes_every_stage(mnist_run):
    workdir = mnist_run.workdir
    [pairs_dir] = (workdir / "pairs").iterdir()
    manifest = json.loads((pairs_dir / "manifest.json").read_text())
    assert manifest["n_samples"] == 1000
    assert 2 * manifest["similar_pairs"] == sum(s["rows"] for s in manifest["shards"]) > 0  # both directions
    assert manifest["dissimilar_pairs_implicit"] == 1000 * 999 // 2 - manifest["similar_pairs"]
    [run_dir] = (workdir / "runs").iterdir()
    table = pq.read_table(run_dir / "embeddings.parquet")
    assert table.num_rows == 60 and set(table.column("label").to_pylist()) == {4, 9}
    for png in ("map.png", "map_thumbnails.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((workdir / "checkpoints").iterdir())
    assert "models:/drlim-test@champion (version 1" in mnist_run.output
    # Progress is one line per epoch from rank 0, not Ray Train's line per report and worker.
    assert f"epoch 1/{EPOCHS}" in mnist_run.output and "Reporting training result" not in mnist_run.output


def test_mlflow_run_has_params_metrics_and_artifacts(mnist_run):
    import mlflow

    workdir = mnist_run.workdir
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    version = client.get_model_version_by_alias("drlim-test", "champion")
    run = client.get_run(version.run_id)
    assert run.data.params["train.epochs"] == str(EPOCHS) and run.data.params["data.digits"] == "4,9"
    for key in ("test/trustworthiness_5", "test/trustworthiness_12", "test/knn_accuracy_5", "pairs/similar"):
        assert run.data.metrics[key] > 0
    assert [epoch for epoch, _ in mnist_run.curve] == list(range(1, EPOCHS + 1))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/map.png", "plots/map_thumbnails.png", "plots/explorer.html"}


def test_registered_model_loads_by_alias_in_a_new_process_and_embeds(mnist_run):
    workdir = mnist_run.workdir
    [run_dir] = (workdir / "runs").iterdir()
    table = pq.read_table(run_dir / "embeddings.parquet")
    script = textwrap.dedent(
        f"""
        import mlflow, numpy as np
        from pipeline.data.mnist import load_mnist, select_digits
        mlflow.set_tracking_uri("sqlite:///{workdir / "mlflow.db"}")
        model = mlflow.pyfunc.load_model("models:/drlim-test@champion")
        images, labels = load_mnist("{mnist_root()}", train=False, download=False)
        idx = select_digits(labels, [4, 9], 30)
        np.save("{workdir / "client.npy"}", model.predict((images[idx, None] / 255.0).astype(np.float32)))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=cli_env(), timeout=300)
    from_client = np.load(workdir / "client.npy")
    from_pipeline = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    assert from_client.shape == (60, 2)
    np.testing.assert_allclose(from_client, from_pipeline, rtol=1e-4, atol=1e-5)


def test_embed_command_reads_uint8_images(mnist_run):
    workdir = mnist_run.workdir
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    np.save(workdir / "images.npy", images)
    env_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "embed",
            "--model",
            "models:/drlim-test@champion",
            "--input",
            "images.npy",
            "--output",
            "out.parquet",
        ],
        cwd=workdir,
        env={**cli_env(), "MLFLOW_TRACKING_URI": env_uri},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert pq.read_table(workdir / "out.parquet").num_rows == 7


def test_models_promote_moves_an_alias_and_names_the_versions_that_exist(mnist_run):
    import mlflow

    workdir = mnist_run.workdir
    _drlim(workdir, "models", "promote", "drlim-test", "1", "--alias", "production")
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("drlim-test", "production").version) == "1"
    bad = _drlim(workdir, "models", "promote", "drlim-test", "9", "--alias", "production", check=False)
    assert bad.returncode == 2 and "has no version '9'; its versions are [1]" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_bad_job_fails_before_work_with_a_clear_message(tmp_path):
    proc = _drlim(tmp_path, "run", str(REPO / "jobs" / "mnist_4_9.yaml"), "--set", "train.margn=2", check=False)
    assert proc.returncode == 2
    assert "unknown key 'train.margn'; did you mean 'train.margin'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "samples").exists()


def test_missing_data_root_names_the_path(tmp_path):
    proc = _drlim(
        tmp_path,
        "pairs",
        str(REPO / "jobs" / "mnist_4_9.yaml"),
        "--data-root",
        str(tmp_path / "nowhere"),
        "--set",
        "data.download=false",
        check=False,
    )
    assert proc.returncode == 2
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in proc.stderr and "--data-root" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_tracking_server_fails_before_any_work(tmp_path):
    env = {**cli_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # discard port: nothing listens
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(REPO / "jobs" / "mnist_4_9.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "MLflow tracking server http://127.0.0.1:9 is not reachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "samples").exists()
