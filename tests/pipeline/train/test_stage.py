"""The Ray Train stage on tiny real data: two workers train and report every epoch, a finished run resumes, not
restarts, and an error a restart cannot cure ends the run at once.

Each mode's and loss's determinism, and features held or streamed, are tested on the Ray-free core
(test_core.py); that two seeded Ray Train runs of two workers repeat exactly, epoch for epoch, is the resume test
of tests/integration (an interrupted run's curve against an uninterrupted one's)."""

import pytest

from pipeline.config import load_job
from pipeline.data import ingest
from pipeline.pairs import build_pairs
from pipeline.train import train

OVERRIDES = [
    "data.train_per_digit=60",
    "data.test_per_digit=10",
    "train.num_workers=1",
    "train.epochs=2",
    "train.batch_size=32",
]


@pytest.fixture(scope="module")
def stores(ray_local, tmp_path_factory):
    from tests.conftest import mnist_root

    if mnist_root() is None:
        pytest.skip("real MNIST not found: set DRLIM_DATA_ROOT")
    workdir = tmp_path_factory.mktemp("train")
    job = load_job(None, OVERRIDES)
    store = ingest(job.data, mnist_root(), workdir)
    return job, store, build_pairs(job.pairs, store, workdir), workdir


@pytest.mark.parametrize("local_steps", [1, 3])  # DDP, and local SGD (the weights averaged every 3 steps)
def test_two_workers_train_report_every_epoch_and_a_finished_run_resumes_without_training(
    stores, tmp_path, local_steps
):
    _, store, pairs, _ = stores
    job = load_job(
        None,
        [
            *OVERRIDES,
            "train.num_workers=2",
            "train.features=stream",
            "train.prefetch=2",
            f"train.local_steps={local_steps}",
        ],
    )
    trained = train(job, store, pairs, tmp_path)
    assert [h["epoch"] for h in trained.history] == [1, 2]
    assert trained.history[1]["loss"] < trained.history[0]["loss"]

    resumed = train(job, store, pairs, tmp_path)
    assert resumed.history == trained.history  # picked up after epoch 2, trained nothing again
    for name, value in trained.model.state_dict().items():
        assert resumed.model.state_dict()[name].equal(value)


def test_a_finished_run_is_found_by_our_own_record_and_anything_unclear_is_left_to_ray_train(tmp_path):
    import torch
    from ray.train import Checkpoint

    from pipeline.infrastructure.location import Location
    from pipeline.train import checkpoint

    run = Location.of(tmp_path / "run")
    (run.path / "checkpoint_b").mkdir(parents=True)
    torch.save({"epoch": 2, "history": [{"epoch": 1}, {"epoch": 2}]}, run.path / "checkpoint_b" / "state.pt")
    length = {"epochs": 2, "steps": None}
    assert checkpoint.finished(run, length) is None  # no record: Ray Train starts and resumes by itself
    checkpoint.mark_finished(run, Checkpoint(str(run.path / "checkpoint_b")), length)
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoint_b", checkpoint.FINISHED_FILE]
    state, path = checkpoint.finished(run, length)
    assert state["epoch"] == 2 and path == str(run.path / "checkpoint_b")
    assert checkpoint.finished(run, {**length, "epochs": 3}) is None  # another training's length
    assert checkpoint.finished(run, {**length, "steps": 100}) is None
    (run.path / checkpoint.FINISHED_FILE).write_text('{"epochs": 2, "checkp')  # cut short
    assert checkpoint.finished(run, length) is None
    assert checkpoint.finished(Location.of(tmp_path / "never-ran"), length) is None


def test_a_worker_error_a_restart_cannot_cure_ends_the_run_at_once_with_its_own_message(
    stores, small_filesystem, tmp_path
):
    import shutil

    from pipeline.data.store import SampleStore
    from pipeline.errors import NoSpaceError

    job, store, pairs, _ = stores
    # The store on a filesystem with room for only half of the features' memory map, which a worker makes.
    shutil.copytree(store.directory, small_filesystem / "store", ignore=shutil.ignore_patterns("features-*"))
    needed = store.feature_matrix("train").nbytes
    (small_filesystem / "ballast").write_bytes(bytes(shutil.disk_usage(small_filesystem).free - needed // 2))
    # Retried, the error would end the run as Ray Train's WorkerGroupError after two restarts; stopped at the
    # first, it comes back as itself.
    with pytest.raises(NoSpaceError, match=f"^no space left on {small_filesystem} while writing the train features"):
        train(job, SampleStore.open(small_filesystem / "store"), pairs, tmp_path)  # train.max_failures: 2


def test_permanent_worker_errors_are_told_from_the_ones_a_restart_may_cure(monkeypatch, capsys):
    import logging

    from ray.train import ControllerError
    from ray.train.v2._internal.exceptions import UserExceptionWithTraceback

    from pipeline.errors import DataError
    from pipeline.train.stage import PermanentWorkerError, StopOnPermanentErrors, permanent_cause

    def wrapped(error):  # what Ray Train hands the callback: the worker's error with its traceback
        return UserExceptionWithTraceback(error, "Traceback ...")

    console = logging.getLogger("pipeline")  # the callback sends its lines to the console as in Ray's controller
    for attribute in ("handlers", "propagate", "level"):
        monkeypatch.setattr(console, attribute, getattr(console, attribute))  # restored after the test
    console.handlers = []
    stop = StopOnPermanentErrors()
    stop.after_exception(None, {0: wrapped(RuntimeError("lost\nmore")), 1: ConnectionError("reset")})  # retried
    told = capsys.readouterr().err
    assert "Training worker 0 failed (RuntimeError: lost); Ray Train restarts the workers" in told
    assert "Training worker 1 failed (ConnectionError: reset)" in told
    bad = DataError("sample 3 is NaN")
    with pytest.raises(PermanentWorkerError) as info:
        stop.after_exception(None, {0: wrapped(RuntimeError("lost")), 1: wrapped(bad)})
    assert permanent_cause(ControllerError(info.value)) is bad
    assert permanent_cause(ControllerError(RuntimeError("controller bug"))) is None
