"""An estimator fit in this process and ``drlim run`` of the equivalent job (same seed, real Ray Train) learn the
same map: the held-out samples' embeddings are equal."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline import DrLIM
from tests.conftest import REPO
from tests.pipeline.conftest import write_parquet

pytestmark = pytest.mark.integration


def test_a_fit_here_equals_drlim_run_of_its_job(tmp_path, mnist):
    from pipeline.data.mnist import load_mnist

    images, _ = load_mnist(mnist, train=True)
    held, _ = load_mnist(mnist, train=False)
    x = images[:800].reshape(800, -1).astype(np.float32) / 255
    test = held[:200].reshape(200, -1).astype(np.float32) / 255
    estimator = DrLIM(epochs=3, random_state=0, verbose=False).fit(x)

    write_parquet(tmp_path / "data" / "train.parquet", x)
    write_parquet(tmp_path / "data" / "test.parquet", test)
    job = estimator.job_.model_dump()
    job["data"] = {"source": "parquet", "path": "train.parquet", "test_path": "test.parquet", "label_column": None}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "run",
            str(tmp_path / "job.yaml"),
            "--data-root",
            str(tmp_path / "data"),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert estimator.job_.train.num_workers == 1  # one worker, as many threads as the fit here used
    table = pq.read_table(next((tmp_path / "work" / "runs").glob("*/embeddings.parquet")))
    embedding = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(
        estimator.transform(test), embedding[np.argsort(table.column("id").to_numpy())], atol=1e-6
    )


@pytest.fixture
def ray_started_here():
    """The Ray instance a ``backend="ray"`` fit starts in this process stays up for the user's next fit (as Ray
    Data's does); a test shuts it down so later tests start their own."""
    yield
    import ray

    ray.shutdown()


def test_a_fit_on_ray_equals_the_fit_here(tmp_path, ray_started_here):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(300, 6)) + 5 * rng.integers(0, 3, 300)[:, None]).astype(np.float32)
    here = DrLIM(epochs=2, random_state=0, verbose=False).fit(x)
    on_ray = DrLIM(epochs=2, random_state=0, verbose=False, backend="ray", workdir=str(tmp_path)).fit(x)
    assert (tmp_path / "checkpoints").is_dir()  # trained by Ray Train, checkpoints in the workdir
    np.testing.assert_allclose(on_ray.transform(x), here.transform(x), atol=1e-6)
