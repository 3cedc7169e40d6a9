"""The session's one real run of the MNIST 4/9 job on a small subset (see ``cli_runs.MNIST_SMALL``), shared by
the tests that read what it wrote and the tests that compare an interrupted run's loss curve with it: a CLI run
costs ~45 s here."""

from __future__ import annotations

import pytest

from tests.conftest import mnist_root
from tests.integration.cli_runs import MNIST_SMALL, FinishedRun, finish, loss_curve, start_drlim


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory) -> FinishedRun:
    if mnist_root() is None:
        pytest.skip("real MNIST not found (set DRLIM_DATA_ROOT)")
    workdir = tmp_path_factory.mktemp("mnist_run")
    proc = start_drlim(workdir, MNIST_SMALL)
    out = finish(proc)
    assert proc.returncode == 0, out[-5000:]
    return FinishedRun(workdir, out, loss_curve(workdir))
