"""A tracking server lost mid-run loses nothing: training finishes, the error says where the model is and what
to run, and re-running the same command once the server is back logs and registers it without retraining.
Real `mlflow server` on loopback, real Ray, the real CLI on a small MNIST subset."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import (
    cli_env,
    finish,
    free_ports,
    kill_session,
    start_drlim,
    start_mlflow_server,
    wait_for_checkpoint,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

EPOCHS = 3
ARGS = [
    "run",
    str(REPO / "jobs" / "mnist_4_9.yaml"),
    "--set",
    "data.train_per_digit=300",
    "--set",
    "data.test_per_digit=30",
    "--set",
    f"train.epochs={EPOCHS}",
    "--set",
    "train.num_workers=1",
    "--set",
    "evaluate.thumbnails=0",
    "--set",
    "tracking.registered_model=drlim-outage",
]


def test_server_lost_mid_run_keeps_the_model_and_a_rerun_logs_it(tmp_path):
    [port] = free_ports(1)
    state, workdir = tmp_path / "server", tmp_path / "work"
    workdir.mkdir()
    # A client that gives up quickly (MLflow's default retries a lost server for minutes).
    env = cli_env(
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="1",
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
    )
    server = start_mlflow_server(state, port)
    try:
        run = start_drlim(workdir, ARGS, env)
        wait_for_checkpoint(workdir, run)
        kill_session(server.pid)  # the server dies during training
        out = finish(run)
        assert run.returncode == 2, out[-4000:]
        error = out[out.index("drlim: error:") :]
        assert "training finished but logging to MLflow" in error and f"127.0.0.1:{port}" in error
        assert f"safe in the checkpoint {workdir / 'checkpoints'}" in error and "re-run the same command" in error
        assert not any(
            line.startswith("Traceback") for line in out.splitlines()
        )  # none of ours (Ray's actors prefix theirs)

        server = start_mlflow_server(state, port)  # back, with the same store
        again = start_drlim(workdir, ARGS, env)
        out = finish(again)
        assert again.returncode == 0, out[-4000:]
        assert f"Resuming from the checkpoint after epoch {EPOCHS}" in out
        assert f"epoch 1/{EPOCHS}" not in out  # nothing retrained
        assert "models:/drlim-outage@champion (version 1" in out

        import mlflow

        client = mlflow.MlflowClient(f"http://127.0.0.1:{port}")
        version = client.get_model_version_by_alias("drlim-outage", "champion")
        steps = sorted(m.step for m in client.get_metric_history(version.run_id, "train/loss"))
        assert steps == list(range(1, EPOCHS + 1))  # the epochs come from the checkpoint's history
    finally:
        kill_session(server.pid)
