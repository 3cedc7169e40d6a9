"""infra/local/start.sh's checks that run before it starts anything (the servers themselves: test_submit_end_to_end)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.integration.cli_runs import free_ports


def test_a_taken_port_is_one_line_naming_the_setting_that_moves_it_and_nothing_starts(tmp_path: Path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        names = ("RAY_PORT", "RAY_CLIENT_PORT", "RAY_DASHBOARD_AGENT_PORT", "MLFLOW_PORT")
        ports = dict(zip(names, map(str, free_ports(4))))
        env = {**os.environ, **ports, "RAY_DASHBOARD_PORT": str(port), "DRLIM_LOCAL_DIR": str(tmp_path / "state")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
        done = subprocess.run(
            ["bash", str(REPO / "infra" / "local" / "start.sh")], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"start.sh: port {port} is taken by another process; set RAY_DASHBOARD_PORT to a free port"
    )
    assert not (tmp_path / "state").exists()  # checked before anything was made or started
