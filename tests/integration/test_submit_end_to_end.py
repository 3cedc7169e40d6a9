"""Cluster path end to end on loopback: a real `ray start --head` and a real `mlflow server` (infra/local),
a small job submitted with `drlim submit` through the Ray Jobs API, and the registered model loaded by a
separate client process from the tracking server. Both servers are stopped, also when a test fails."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import alive_in_session, cli_env, free_ports, require_tools

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

SMALL = [
    "--set",
    "data.train_per_digit=100",
    "--set",
    "data.test_per_digit=30",
    "--set",
    "train.epochs=1",
    "--set",
    "train.num_workers=1",
    "--set",
    "evaluate.thumbnails=10",
    "--set",
    "tracking.registered_model=drlim-submitted",
]


def _sessions_alive(sids: dict[str, str]) -> list[str]:
    """Live (not zombie) processes in the servers' sessions."""
    return [f"{server}: {process}" for server, sid in sids.items() for process in alive_in_session(int(sid))]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Ray head + MLflow server from infra/local/start.sh on free loopback ports; stopped by stop.sh."""
    state = tmp_path_factory.mktemp("local")
    ray_port, dashboard, client, agent, mlflow_port = free_ports(5)
    env = cli_env(
        DRLIM_LOCAL_DIR=str(state),
        RAY_PORT=str(ray_port),
        RAY_DASHBOARD_PORT=str(dashboard),
        RAY_CLIENT_PORT=str(client),
        RAY_EXTRA_ARGS=f"--dashboard-agent-listen-port {agent}",
        RAY_OBJECT_STORE_MB="200",
        RAY_TEMP_DIR=tempfile.mkdtemp(prefix="drlim-ray-", dir="/tmp"),  # socket paths must stay short
        MLFLOW_PORT=str(mlflow_port),
    )
    require_tools(env, "ray", "mlflow")
    sids = {}
    try:
        started = subprocess.run(
            ["bash", str(REPO / "infra/local/start.sh")], env=env, capture_output=True, text=True, timeout=180
        )
        sids = {s: (state / f"{s}.sid").read_text() for s in ("ray", "mlflow") if (state / f"{s}.sid").exists()}
        assert started.returncode == 0, started.stderr + (state / "ray.log").read_text()
        assert f"export RAY_API_SERVER_ADDRESS=http://127.0.0.1:{dashboard}" in started.stdout
        env["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{dashboard}"
        env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{mlflow_port}"
        yield env
    finally:
        subprocess.run(["bash", str(REPO / "infra/local/stop.sh")], env=env, timeout=120)
        left = _sessions_alive(sids)  # nothing of either server may outlive the test
        assert not left, f"processes left behind: {left}"


def _drlim(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _listening(port: int) -> list[str]:
    """Hex local addresses of the TCP sockets listening on ``port``, from /proc (no tools needed)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_local_servers_listen_on_loopback(servers):
    dashboard = int(servers["RAY_API_SERVER_ADDRESS"].rsplit(":", 1)[1])
    mlflow_port = int(servers["MLFLOW_TRACKING_URI"].rsplit(":", 1)[1])
    for port in (dashboard, mlflow_port):
        addresses = _listening(port)
        assert addresses and set(addresses) == {"0100007F"}, (port, addresses)  # 127.0.0.1, little-endian hex


def test_submitted_job_registers_a_model_that_a_client_loads(servers, tmp_path):
    # --no-deps: this cluster runs in the test's own environment, as a cluster whose image has the packages does.
    # The pip layer itself is Ray's (30-50 s here, and it asks the package index); what we ship in it is checked
    # in tests/pipeline/test_submit.py.
    job = REPO / "jobs" / "mnist_4_9.yaml"
    proc = _drlim(
        servers,
        "submit",
        str(job),
        "--no-deps",
        "--workdir",
        str(tmp_path / "work"),
        "--data-root",
        str(mnist_root()),
        *SMALL,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "models:/drlim-submitted@champion (version 1" in proc.stdout  # the job's own output, streamed
    job_id = proc.stdout.strip().splitlines()[-1].removeprefix("job: ").strip()
    status = _drlim(servers, "status", job_id, cwd=tmp_path)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout

    # A separate client process, knowing only the tracking server, loads the model by alias and embeds images.
    client = _client_script(mnist_root())
    loaded = subprocess.run(
        [sys.executable, "-c", client], cwd=tmp_path, env=servers, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr[-4000:]
    n, dim, finite, spread = loaded.stdout.split()
    assert (n, dim, finite) == ("16", "2", "True") and float(spread) > 0


def _client_script(data_root: Path) -> str:
    return (
        "import mlflow, numpy as np, torchvision\n"
        f"test = torchvision.datasets.MNIST(root={str(data_root)!r}, train=False, download=False)\n"
        "images = (test.data[:16].numpy()[:, None] / 255.0).astype(np.float32)\n"
        "model = mlflow.pyfunc.load_model('models:/drlim-submitted@champion')\n"
        "out = np.asarray(model.predict(images))\n"
        "print(len(out), out.shape[1], bool(np.isfinite(out).all()), float(out.std(axis=0).min()))\n"
    )


def test_failing_job_exits_non_zero_with_its_error(servers, tmp_path):
    missing = tmp_path / "no-data-here"
    proc = _drlim(
        servers,
        "submit",
        str(REPO / "jobs" / "mnist_4_9.yaml"),
        "--no-deps",
        "--workdir",
        str(tmp_path / "work"),
        "--data-root",
        str(missing),
        "--set",
        "data.download=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "failed" in proc.stderr and str(missing) in proc.stderr  # Ray's message carries the job's last logs


def test_unreachable_cluster_is_a_clear_error(servers, tmp_path):
    closed = socket.socket()  # bound, never listening: connections are refused
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    proc = _drlim(
        servers,
        "submit",
        str(REPO / "jobs" / "mnist_4_9.yaml"),
        "--workdir",
        str(tmp_path),
        "--address",
        f"http://127.0.0.1:{port}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    closed.close()
    assert f"cannot use the Ray Jobs API at http://127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
