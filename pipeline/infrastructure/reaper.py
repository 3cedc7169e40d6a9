"""A local Ray instance ends with the drlim process that started it, even when that process is killed.

At a normal exit Ray stops the processes of a local instance itself. After a SIGKILL of the driver its GCS and
raylet go too, but the agents the raylet started (``DashboardAgent``, ``RuntimeEnvAgent``) first try to report
the raylet's death to the GCS that is gone, and live on for a minute or more. ``watch_this_process`` starts a
small watcher (``python -m pipeline.infrastructure.reaper PID``, in a session of its own so that Ctrl-C in a
terminal does not stop it) that notes the driver's descendants five times a second and, once the driver is gone,
kills those still running. A process is known by its pid and start time, so a reused pid is never hit. Linux only
(it reads ``/proc``); elsewhere nothing is watched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.2  # a walk of /proc takes ~2 ms here
PROC = Path("/proc")
_watchers: list[subprocess.Popen] = []  # held for the life of the process (Python warns of a dropped Popen)

Identity = tuple[int, int]  # pid, start time (clock ticks after boot)


def watch_this_process() -> None:
    """Start the watcher of this process's descendants (before starting a local Ray instance); returns once it has
    noted them, so that a kill right after this call is covered too."""
    if not (PROC / "self" / "stat").is_file():
        return
    watcher = subprocess.Popen(
        [sys.executable, "-m", "pipeline.infrastructure.reaper", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert watcher.stdout is not None  # a pipe, as asked
    watcher.stdout.readline()  # "watching", or nothing if it failed to start
    _watchers.append(watcher)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (command) ": the command may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def running(process: Identity) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[2] == process[1] and stat[0] not in ("Z", "X")


def descendants(pid: int) -> set[Identity]:
    """Every process below ``pid`` in the process tree now."""
    children: dict[int, list[Identity]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def reap_after(
    driver: Identity, poll_seconds: float = POLL_SECONDS, watching: Callable[[], None] = lambda: None
) -> list[int]:
    """Wait for ``driver`` to end, then kill the descendants it had that still run; returns their pids.
    ``watching`` is called once their first census is taken."""
    known = descendants(driver[0])
    watching()
    while running(driver):
        time.sleep(poll_seconds)
        known |= descendants(driver[0])
    killed = []
    for process in known:
        if process[0] != os.getpid() and running(process):  # the watcher is the driver's child too
            try:
                os.kill(process[0], signal.SIGKILL)
                killed.append(process[0])
            except ProcessLookupError:
                pass
    return killed


def _say_watching() -> None:
    print("watching", flush=True)
    sys.stdout.close()  # nothing more for the driver to read; a write to a dead driver's pipe would fail


if __name__ == "__main__":
    pid = int(sys.argv[1])
    if (stat := _stat(pid)) is not None:  # else ended before the watcher started: its children were never seen
        reap_after((pid, stat[2]), watching=_say_watching)
