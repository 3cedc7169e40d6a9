"""Host memory allocator settings for training processes.

With glibc's defaults, a CPU training step frees its activations and gradients (a few MiB) back to the
operating system and the next step faults the same pages in again: on this project's 2-core machine the
LeNet step spent ~30 % of its time in the kernel (``madvise`` and page faults) in a Ray Train worker, whose
training function runs in a thread with its own malloc arena, and in one process too, depending on the heap's
layout. Keeping freed memory in the process removes that: where it struck, pairs/s rose 1.5-1.6x
(BENCHMARKS.md). The cost: a worker's resident memory stays near its peak instead of shrinking between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h). 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Let glibc keep up to ``TRIM_THRESHOLD`` of freed memory, and serve blocks below ``MMAP_THRESHOLD`` from
    its heap instead of fresh mappings. Returns whether the settings took (False off Linux/glibc: a no-op)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or one without mallopt (e.g. musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not done:
        log.debug("glibc refused the malloc settings; keeping its defaults")
    return done
