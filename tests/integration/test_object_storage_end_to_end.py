"""Samples and workdir on object storage, work on a multi-node cluster (a real S3 server on loopback, moto's; a
real 2-node Ray cluster, two raylets on this machine with one CPU and a cache folder of their own each):

- the MNIST 4/9 job's samples as folders of Parquet part files on S3: `drlim pairs` with the store written by
  Ray tasks and the index in two parts (one actor per node) gives the local run's pair manifest;
- `--workdir s3://...`: `drlim run` keeps the stores and checkpoints on S3, each node reads its own copy, and a
  second machine (a fresh driver cache) reuses all of it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from pipeline.infrastructure.location import CACHE_ENV
from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import cli_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

PER_DIGIT, TEST_PER_DIGIT = 300, 50
JOB = [
    str(REPO / "jobs" / "mnist_4_9.yaml"),
    "--set",
    f"data.train_per_digit={PER_DIGIT}",
    "--set",
    f"data.test_per_digit={TEST_PER_DIGIT}",
    "--set",
    "pairs.num_shards=4",
]


def _upload_mnist(s3: pafs.S3FileSystem, prefix: str) -> None:
    """The job's samples, in its order, as Parquet parts: training in three files, test in one."""
    from pipeline.data.mnist import load_mnist, select_digits

    for train, parts in ((True, 3), (False, 1)):
        images, labels = load_mnist(mnist_root(), train=train, download=False)
        chosen = select_digits(labels, [4, 9], PER_DIGIT if train else TEST_PER_DIGIT)
        x = (images[chosen] / 255.0).astype(np.float32).reshape(len(chosen), -1)
        for number, rows in enumerate(np.array_split(np.arange(len(chosen)), parts)):
            table = pa.table(
                {
                    "features": pa.FixedSizeListArray.from_arrays(pa.array(x[rows].ravel()), 784),
                    "label": labels[chosen][rows],
                }
            )
            pq.write_table(table, f"{prefix}/{'train' if train else 'test'}/part-{number}.parquet", filesystem=s3)


@pytest.fixture
def two_node_cluster(s3_server, tmp_path):
    """A Ray head and a second node on this machine, one CPU each, with copies of remote outputs in
    ``tmp_path/node-1`` and ``node-2`` as if on two disks (started after the S3 credentials are set: their
    workers read the bucket)."""
    from ray.cluster_utils import Cluster

    def node(number: int) -> dict:
        return {
            "num_cpus": 1,
            "object_store_memory": 200 << 20,
            "env_vars": {CACHE_ENV: str(tmp_path / f"node-{number}")},
        }

    cluster = Cluster(initialize_head=True, head_node_args={**node(1), "include_dashboard": False})
    cluster.add_node(**node(2))
    cluster.wait_for_nodes()
    yield cluster.address
    cluster.shutdown()


def _pairs(workdir, *args: str, **env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "pairs", *JOB, *args, "--workdir", str(workdir)],
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "Traceback" not in done.stderr
    (manifest,) = (workdir / "pairs").glob("*/manifest.json")
    return json.loads(manifest.read_text())


def test_parquet_folders_on_s3_through_a_two_node_cluster_give_the_local_pairs(s3_server, two_node_cluster, tmp_path):
    s3 = pafs.S3FileSystem(**s3_server)
    _upload_mnist(s3, "drlim/mnist49")
    options = json.dumps(s3_server)
    remote = _pairs(
        tmp_path / "remote",
        "--set",
        "data.source=parquet",
        "--set",
        "data.path=s3://drlim/mnist49/train",
        "--set",
        "data.test_path=s3://drlim/mnist49/test",
        "--set",
        f"data.storage_options={options}",
        "--set",
        "data.feature_shape=[1, 28, 28]",
        "--set",
        "pairs.index_parts=2",
        RAY_ADDRESS=two_node_cluster,
        DRLIM_INLINE_BYTES="0",  # the store written by Ray tasks, not the driver
    )
    local = _pairs(tmp_path / "local")
    assert remote["knn"]["index_parts"] == 2 and local["knn"]["index_parts"] == 1
    for key in ("n_samples", "similar_pairs", "counts_by_source", "degree_histogram", "num_shards"):
        assert remote[key] == local[key], key
    assert [s["sha256"] for s in remote["shards"]] == [s["sha256"] for s in local["shards"]]
    assert remote["similar_pairs"] > 2 * PER_DIGIT * 5 // 2  # 5-NN of 600 samples, symmetrised


def test_a_workdir_on_s3_holds_stores_and_checkpoints_each_node_reads_its_own_copy(
    s3_server, two_node_cluster, tmp_path
):
    host = s3_server["endpoint_override"].split("://", 1)[1]
    workdir = f"s3://drlim/work?endpoint_override={host}&scheme=http&region=us-east-1"
    job = [
        str(REPO / "jobs" / "mnist_4_9.yaml"),
        "--set",
        "data.train_per_digit=100",
        "--set",
        "data.test_per_digit=20",
        "--set",
        "train.epochs=2",
        "--set",
        "evaluate.thumbnails=5",
        "--set",
        "pairs.index=ivf",
        "--set",
        "pairs.index_parts=2",
        "--set",
        "tracking.registered_model=drlim-s3",
    ]

    def run(driver_cache: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "run", *job, "--workdir", workdir],
            env=cli_env(RAY_ADDRESS=two_node_cluster, **{CACHE_ENV: str(tmp_path / driver_cache)}),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        assert "Traceback" not in done.stderr
        return done.stdout + done.stderr

    first = run("driver")
    s3 = pafs.S3FileSystem(**s3_server)
    stored = [i.path for i in s3.get_file_info(pafs.FileSelector("drlim/work", recursive=True))]
    for stage in ("samples", "pairs"):
        assert len([p for p in stored if p.startswith(f"drlim/work/{stage}/") and p.endswith("/manifest.json")]) == 1
    assert any(p.startswith("drlim/work/checkpoints/") and "/checkpoint_" in p for p in stored)
    # Each node read the store (an index part, a training worker each) and the pair set from its own copy.
    for number in (1, 2):
        assert len(list((tmp_path / f"node-{number}" / "copies").glob("*/manifest.json"))) == 2, number
    assert list((tmp_path / "driver" / "workdirs").glob("*/mlflow.db"))  # the default MLflow store: local

    again = run("another-driver")  # another machine: nothing of the first run's local folders
    assert "Reusing sample store s3://drlim/work/samples/" in again
    assert "Reusing pair set s3://drlim/work/pairs/" in again
    assert "Resuming from the checkpoint after epoch 2" in again
    metrics = [re.findall(r"^([\w/]+):\s+(\d+\.\d{4})$", out, re.M) for out in (first, again)]  # test and val/
    assert metrics[0] and metrics[0] == metrics[1]
