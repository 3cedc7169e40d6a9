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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on a real Ray instance (the ``ray_local`` fixture) is an integration test: ``pytest -m "not
    integration"`` (``make test-unit``) runs the rest in under two minutes."""
    for item in items:
        if "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from pipeline.infrastructure.runtime import use_local_ray_defaults

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
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (run the tests as root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 HTTP server on loopback (moto's), with a bucket ``drlim``; yields the ``storage_options`` that
    reach it (pyarrow's S3FileSystem arguments) and sets the AWS variables a user would."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ACCESS_KEY_ID="drlim-test", AWS_SECRET_ACCESS_KEY="drlim-test", AWS_DEFAULT_REGION="us-east-1"
    )
    options = {"endpoint_override": f"http://{host}:{port}", "scheme": "http", "region": "us-east-1"}
    from pyarrow import fs

    fs.S3FileSystem(**options, allow_bucket_creation=True).create_dir("drlim")
    yield options
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
