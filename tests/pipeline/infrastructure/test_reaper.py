"""The watcher of a local Ray instance's driver, on real processes: a killed driver leaves nothing running."""

import os
import signal
import subprocess
import sys

import pytest

from pipeline.infrastructure.reaper import PROC, descendants, running
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not (PROC / "self" / "stat").is_file(), reason="the watcher reads /proc (Linux)")

# A driver that starts a child in a session of its own (as Ray's raylet starts its agents) and waits.
DRIVER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_killed_driver_takes_its_descendants_with_it_and_only_them():
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(driver.stdout.readline())
        [child] = [p for p in descendants(driver.pid) if p[0] == child_pid]
        watcher = subprocess.Popen(
            [sys.executable, "-m", "pipeline.infrastructure.reaper", str(driver.pid)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdout.readline() == "watching\n"  # it has seen the child: a kill now is covered
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        assert watcher.wait(timeout=10) == 0  # done once the driver's descendants are gone
        assert not running(child)
        assert bystander.poll() is None  # no other process is touched
    finally:
        for process in (bystander, driver):
            process.kill()
