"""Samples on object storage, work on a multi-node cluster: the MNIST 4/9 job's training and test samples as
folders of Parquet part files on a real S3 server on loopback (moto's), `drlim pairs` on a real 2-node Ray
cluster (two raylets on this machine, one CPU each) with the store written by Ray tasks and the index in two
parts (one actor per node); its pair manifest equals the local run's (the MNIST source, a local Ray instance)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, mnist_root
from tests.integration.cli_runs import cli_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mnist_root() is None, reason="real MNIST not found (set DRLIM_DATA_ROOT)"),
]

PER_DIGIT, TEST_PER_DIGIT = 300, 50
JOB = [str(REPO / "jobs" / "mnist_4_9.yaml"), "--set", f"data.train_per_digit={PER_DIGIT}",
       "--set", f"data.test_per_digit={TEST_PER_DIGIT}", "--set", "pairs.num_shards=4"]


def _upload_mnist(s3: pafs.S3FileSystem, prefix: str) -> None:
    """The job's samples, in its order, as Parquet parts: training in three files, test in one."""
    from pipeline.data.mnist import load_mnist, select_digits

    for train, parts in ((True, 3), (False, 1)):
        images, labels = load_mnist(mnist_root(), train=train, download=False)
        chosen = select_digits(labels, [4, 9], PER_DIGIT if train else TEST_PER_DIGIT)
        x = (images[chosen] / 255.0).astype(np.float32).reshape(len(chosen), -1)
        for number, rows in enumerate(np.array_split(np.arange(len(chosen)), parts)):
            table = pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x[rows].ravel()), 784),
                              "label": labels[chosen][rows]})
            pq.write_table(table, f"{prefix}/{'train' if train else 'test'}/part-{number}.parquet", filesystem=s3)


@pytest.fixture
def two_node_cluster(s3_server):
    """A Ray head and a second node on this machine, one CPU each (started after the S3 credentials are set:
    their workers read the bucket)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 200 << 20,
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=200 << 20)
    cluster.wait_for_nodes()
    yield cluster.address
    cluster.shutdown()


def _pairs(workdir, *args: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "pairs", *JOB, *args, "--workdir", str(workdir)],
                          env=cli_env(**env), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "Traceback" not in done.stderr
    (manifest,) = (workdir / "pairs").glob("*/manifest.json")
    return json.loads(manifest.read_text())


def test_parquet_folders_on_s3_through_a_two_node_cluster_give_the_local_pairs(s3_server, two_node_cluster,
                                                                              tmp_path):
    s3 = pafs.S3FileSystem(**s3_server)
    _upload_mnist(s3, "drlim/mnist49")
    options = json.dumps(s3_server)
    remote = _pairs(
        tmp_path / "remote",
        "--set", "data.source=parquet", "--set", "data.path=s3://drlim/mnist49/train",
        "--set", "data.test_path=s3://drlim/mnist49/test", "--set", f"data.storage_options={options}",
        "--set", "data.feature_shape=[1, 28, 28]", "--set", "pairs.index_parts=2",
        RAY_ADDRESS=two_node_cluster, DRLIM_INLINE_BYTES="0",  # the store written by Ray tasks, not the driver
    )
    local = _pairs(tmp_path / "local")
    assert remote["knn"]["index_parts"] == 2 and local["knn"]["index_parts"] == 1
    for key in ("n_samples", "similar_pairs", "counts_by_source", "degree_histogram", "num_shards"):
        assert remote[key] == local[key], key
    assert [s["sha256"] for s in remote["shards"]] == [s["sha256"] for s in local["shards"]]
    assert remote["similar_pairs"] > 2 * PER_DIGIT * 5 // 2  # 5-NN of 600 samples, symmetrised
