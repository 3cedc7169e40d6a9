"""Training survives worker loss and interruption: the real CLI on a small MNIST subset, real Ray and MLflow.

One run meets both faults in turn, as a long run on a real cluster may:
- a Ray Train worker process is killed after the first checkpoint: Ray Train restarts the workers from that
  checkpoint, and the restart is in the logs and in the run's metrics;
- the run is then stopped (Ctrl-C): exit 130, and running the same command again reuses the sample store and
  pair set, continues from the last checkpoint, registers the model, and the finished loss curve equals an
  uninterrupted run's, epoch for epoch.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import mnist_root
from tests.integration.cli_runs import (
    EPOCHS,
    MNIST_SMALL,
    LiveOutput,
    cli_env,
    finish,
    loss_curve,
    start_drlim,
    wait_for_checkpoint,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]


def _train_worker_pids(session: int) -> list[int]:
    table = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in table.splitlines()]
    return [
        int(pid)
        for pid, sid, args in (r for r in rows if len(r) == 3)
        if int(sid) == session and args.startswith("ray::RayTrainWorker")
    ]


def _runs(workdir: Path) -> tuple:
    """A client of the workdir's store, and the job's MLflow runs in it, oldest first."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client, client.search_runs(experiments, order_by=["attribute.start_time ASC"])


def test_a_killed_worker_restarts_and_an_interrupted_run_continues_the_loss_curve(mnist_run, tmp_path):
    # Ray Train registers a checkpoint when its controller next polls the workers (every 2 s by default), not
    # when the checkpoint is written: polled every 0.2 s here, it is registered 0.6 s after its file appears,
    # while the epochs after it (about a second each) still train.
    proc = start_drlim(tmp_path, MNIST_SMALL, cli_env(RAY_TRAIN_HEALTH_CHECK_INTERVAL_S="0.2"))
    output = LiveOutput(proc)
    wait_for_checkpoint(tmp_path, proc)
    time.sleep(0.6)
    workers = _train_worker_pids(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)
    told = output.wait_for("Ray Train restarts the workers from the last checkpoint")  # said in one line
    assert re.search(r"Training worker \d failed \(\w+", told), told
    restart = output.wait_for("Resuming from the checkpoint after epoch")  # Ray Train's restart, in the logs
    proc.send_signal(signal.SIGINT)  # Ctrl-C while the restarted workers train
    out = output.finish()
    assert proc.returncode == 130, out[-6000:]
    assert "a re-run continues from them" in out
    restarted_from = int(restart.rsplit(" ", 1)[1])
    assert 1 <= restarted_from < EPOCHS, out[-6000:]

    again = start_drlim(tmp_path, MNIST_SMALL)
    out = finish(again)
    assert again.returncode == 0, out[-6000:]
    assert "models:/drlim-test@champion (version 1" in out  # registered
    assert "Reusing sample store" in out and "Reusing pair set" in out  # the finished stages, not built again
    resumed = [
        int(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "Resuming from the checkpoint after epoch" in line
    ]
    assert len(resumed) == 1 and restarted_from <= resumed[0] < EPOCHS, out[-6000:]  # not from 0, not done

    # The restored model, optimizer and per-epoch sampler seeds make the curve the uninterrupted one. An epoch
    # trained again after a restart is logged again only if the kill fell between a checkpoint and its
    # metrics; the last value of each epoch is the one that counts.
    curve = loss_curve(tmp_path)
    assert sorted({epoch for epoch, _ in curve}) == list(range(1, EPOCHS + 1))
    assert [loss for _, loss in sorted(dict(curve).items())] == pytest.approx(
        [loss for _, loss in mnist_run.curve], rel=1e-4
    )
    client, (interrupted, finished) = _runs(tmp_path)
    assert interrupted.info.status != "FINISHED" and finished.info.status == "FINISHED"
    resumes = client.get_metric_history(finished.info.run_id, "train/resumed_from_epoch")
    assert [m.value for m in resumes] == [resumed[0]]  # the resume, in the metrics


def test_a_run_stopped_within_an_epoch_resumes_there_on_the_same_loss_curve(mnist_run, tmp_path):
    # Checkpoints every few steps (train.checkpoint_every: seconds), which change nothing of what is trained: the
    # run's key, and its curve, are the uninterrupted run's.
    args = [*MNIST_SMALL, "--set", "train.checkpoint_every=0.05"]
    proc = start_drlim(tmp_path, args)
    output = LiveOutput(proc)
    epoch = output.wait_for("Checkpoint at step").split()[-1]
    # A second checkpoint within the same epoch: the first is registered by then (a report is a barrier).
    output.wait_for(f"of epoch {epoch}\n", count=2)
    proc.send_signal(signal.SIGINT)
    out = output.finish()
    assert proc.returncode == 130, out[-6000:]

    again = start_drlim(tmp_path, args)
    out = finish(again)
    assert again.returncode == 0, out[-6000:]
    resumed = [line for line in out.splitlines() if "Resuming from the checkpoint after epoch" in line]
    assert len(resumed) == 1 and " and step " in resumed[0], out[-6000:]  # within an epoch, not at its start
    curve = loss_curve(tmp_path)
    assert sorted({e for e, _ in curve}) == list(range(1, EPOCHS + 1))
    assert [loss for _, loss in sorted(dict(curve).items())] == pytest.approx(
        [loss for _, loss in mnist_run.curve], rel=1e-4
    )
