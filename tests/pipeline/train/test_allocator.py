import ctypes.util
import subprocess
import sys

import pytest

from pipeline.train import allocator

GLIBC = sys.platform.startswith("linux") and ctypes.util.find_library("c") == "libc.so.6"

# In a child process: malloc settings are process-wide and cannot be undone. Prints the bytes glibc serves from
# fresh mappings while a 16 MiB block is alive, and the free bytes its heap keeps after the block is freed.
CHILD = """
import ctypes, importlib.util, sys
spec = importlib.util.spec_from_file_location("allocator", sys.argv[2])  # alone: pipeline.train imports Ray
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in fields]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype = Info, ctypes.c_void_p
libc.malloc.argtypes, libc.free.argtypes = [ctypes.c_size_t], [ctypes.c_void_p]
if sys.argv[1] == "kept":
    assert module.keep_freed_memory()
block = libc.malloc(16 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(mapped, libc.mallinfo2().fordblks)
"""


def _child(variant: str) -> tuple[int, int]:
    command = [sys.executable, "-c", CHILD, variant, allocator.__file__]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    mapped, kept = map(int, out.stdout.split())
    return mapped, kept


@pytest.mark.skipif(not GLIBC, reason="glibc malloc settings")
def test_kept_memory_serves_blocks_from_the_heap_and_keeps_them_after_free():
    mapped, _ = _child("default")
    assert mapped >= 16 << 20  # glibc's default: a fresh mapping, returned to the OS on free
    mapped, kept = _child("kept")
    assert mapped < 16 << 20 and kept >= 16 << 20  # from the heap, and still there for the next step


def test_not_linux_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_a_c_library_without_mallopt_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: "libmissing-c.so.99")
    assert allocator.keep_freed_memory() is False
