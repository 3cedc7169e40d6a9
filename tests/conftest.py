"""Shared fixtures: a small local Ray instance per module, and where the real MNIST lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mnist_root() -> Path | None:
    """The real MNIST copy (DRLIM_DATA_ROOT, else ../shared/data beside the checkout), or None."""
    for candidate in (os.environ.get("DRLIM_DATA_ROOT"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from pipeline.runtime import use_local_ray_defaults

    use_local_ray_defaults()
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def mnist() -> Path:
    root = mnist_root()
    if root is None:
        pytest.skip("real MNIST not found: set DRLIM_DATA_ROOT to a folder holding MNIST/raw/")
    return root


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 2 MB filesystem (tmpfs) for full-disk tests; remount it with ``-o remount,size=...`` to grow it.
    Mounting needs root (as in CI here); elsewhere the test is skipped and says why."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (run the tests as root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)
