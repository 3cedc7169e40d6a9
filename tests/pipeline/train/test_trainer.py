"""The Ray Train stage on tiny real data: seeded runs repeat exactly, and a finished run resumes, not restarts.

Each mode's and loss's own determinism is tested on the Ray-free core (test_core.py); here, in one mode, what
the Ray Train wrapper adds: seeding inside the worker, checkpoint restore and the report of every epoch."""

import pytest

from pipeline.config import load_job
from pipeline.data import ingest
from pipeline.pairs import build_pairs
from pipeline.train import train

OVERRIDES = ["data.train_per_digit=60", "data.test_per_digit=10", "train.num_workers=1", "train.epochs=2",
             "train.batch_size=32"]


@pytest.fixture(scope="module")
def stores(ray_local, tmp_path_factory):
    from tests.conftest import mnist_root

    if mnist_root() is None:
        pytest.skip("real MNIST not found: set DRLIM_DATA_ROOT")
    workdir = tmp_path_factory.mktemp("train")
    job = load_job(None, OVERRIDES)
    store = ingest(job.data, mnist_root(), workdir)
    return job, store, build_pairs(job.pairs, store, workdir), workdir


def test_same_seed_same_losses_and_resume_does_not_retrain(stores, tmp_path):
    job, store, pairs, _ = stores
    first = train(job, store, pairs, tmp_path / "a")
    second = train(job, store, pairs, tmp_path / "b")
    assert [h["epoch"] for h in first.history] == [1, 2]
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]
    assert first.history[1]["loss"] < first.history[0]["loss"]

    resumed = train(job, store, pairs, tmp_path / "a")
    assert resumed.history == first.history  # picked up after epoch 2, trained nothing again
    for name, value in first.model.state_dict().items():
        assert resumed.model.state_dict()[name].equal(value)


def test_two_workers_reading_their_own_shares_learn_alike_with_features_streamed_or_held(stores, tmp_path):
    job, store, pairs, _ = stores
    two = [*OVERRIDES, "train.num_workers=2"]
    held = train(load_job(None, [*two, "train.features=device", "train.prefetch=0"]), store, pairs, tmp_path / "a")
    streamed = train(load_job(None, [*two, "train.features=stream", "train.prefetch=3"]), store, pairs, tmp_path / "b")
    assert [h["loss"] for h in held.history] == [h["loss"] for h in streamed.history]
    assert held.history[1]["loss"] < held.history[0]["loss"]
    assert [h["epoch"] for h in streamed.history] == [1, 2]
