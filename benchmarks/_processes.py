"""A command run in a session of its own while every process of it is sampled from /proc once a second.

Reported (``Measured``): wall seconds, the driver's peak resident set (``/usr/bin/time -v``), and over the
processes of the session (Ray's too): the largest resident set of one process (and how much of it is Ray's
object store, shared memory the process has touched), the largest private part (RSS less shared memory), the
largest sum over processes (which counts shared pages once per process).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    returncode: int
    seconds: float
    output: str  # stdout and stderr, interleaved
    driver_bytes: int
    largest_bytes: int
    largest_shared_bytes: int
    largest_name: str
    largest_private_bytes: int
    largest_private_name: str
    sum_bytes: int

    def gib(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 1),
            "driver_peak_rss_gib": round(self.driver_bytes / 2**30, 3),
            "largest_process_gib": round(self.largest_bytes / 2**30, 3),
            "largest_process_object_store_gib": round(self.largest_shared_bytes / 2**30, 3),
            "largest_process": self.largest_name,
            "largest_private_gib": round(self.largest_private_bytes / 2**30, 3),
            "largest_private_process": self.largest_private_name,
            "all_processes_peak_sum_gib": round(self.sum_bytes / 2**30, 2),
        }


def rss_by_process(session: int) -> dict[int, tuple[str, int, int]]:
    """pid -> (command, resident bytes, of which shared memory: Ray's object store) of every process in the Linux
    session ``session``."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:  # after ")": state, ppid, pgrp, session
                continue
            pid = int(status.parent.name)
            text = (status.parent / "status").read_text()
            rss, shared = (int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024 for key in ("VmRSS", "RssShmem"))
            found[pid] = ((status.parent / "cmdline").read_text().replace("\0", " ")[:80], rss, shared)
        except (OSError, AttributeError, IndexError, ValueError):
            continue
    return found


def run_measured(command: list[str], env: dict[str, str] | None = None, echo: bool = True) -> Measured:
    """Run ``command`` under ``/usr/bin/time -v`` in a session of its own, sampling its processes; its output is
    echoed to stderr as it comes (``echo``) and kept."""
    start = time.perf_counter()
    process = subprocess.Popen(
        ["/usr/bin/time", "-v", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )
    peak_one, peak_private, peak_sum, stop = (0, 0, ""), (0, ""), 0, threading.Event()

    def sample() -> None:
        nonlocal peak_one, peak_private, peak_sum
        while not stop.is_set():
            found = rss_by_process(process.pid)
            found.pop(process.pid, None)  # /usr/bin/time itself
            if found:
                peak_sum = max(peak_sum, sum(rss for _, rss, _ in found.values()))
                name, rss, shared = max(found.values(), key=lambda item: item[1])
                if rss > peak_one[0]:
                    peak_one = (rss, shared, name)
                name, rss, shared = max(found.values(), key=lambda item: item[1] - item[2])
                if rss - shared > peak_private[0]:
                    peak_private = (rss - shared, name)
            time.sleep(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if echo:
            sys.stderr.write(line)
    process.wait()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    output = "".join(lines)
    driver = re.search(r"Maximum resident set size \(kbytes\): (\d+)", output)
    return Measured(
        process.returncode,
        seconds,
        output,
        int(driver.group(1)) * 1024 if driver else 0,
        peak_one[0],
        peak_one[1],
        peak_one[2],
        peak_private[0],
        peak_private[1],
        peak_sum,
    )
