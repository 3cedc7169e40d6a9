"""Local SGD (train.local_steps): the weights averaged across a real two-process gloo group, and the training core
leaving every rank with the same weights (and weight average) after each epoch."""

import multiprocessing
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist

from encoders.registry import build_encoder
from pipeline.config import TrainConfig
from pipeline.errors import StageError
from pipeline.pairs.shards import PairSet, both_ways, write_pair_shards
from pipeline.train.averaging import average_across_workers
from pipeline.train.core import TrainingCore
from pipeline.train.features import DeviceFeatures

N = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, pairs: str, out: str) -> None:
    """One of two workers: average two tensors, then train two epochs of local SGD; saves what it ends with."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    tensors = [torch.full((2, 3), float(rank)), torch.full((4,), 10.0 * rank, dtype=torch.float64)]
    average_across_workers(tensors)

    torch.manual_seed(rank)  # unlike the Ray Train workers, different starts: the core makes them one
    cfg = TrainConfig(num_workers=2, batch_size=8, epochs=2, local_steps=3, ema_decay=0.9, input_noise=0.1)
    matrix = np.random.default_rng(1).random((N, 8), dtype=np.float32)
    model = build_encoder("mlp", 2, {"hidden": 16}, input_shape=(8,))
    core = TrainingCore(
        cfg,
        model,
        DeviceFeatures(matrix, torch.device("cpu")),
        PairSet.open(pairs).read_share(rank, 2),
        seed=0,
        device=torch.device("cpu"),
        rank=rank,
    )
    start = {k: v.clone() for k, v in core.module.state_dict().items()}
    for epoch in (0, 1):
        core.run_epoch(epoch)
    torch.save(
        {
            "tensors": tensors,
            "start": start,
            "weights": core.module.state_dict(),
            "ema": core.trained_weights(),
            "steps": core.steps,
        },
        out,
    )
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    """A random similar graph of N samples as a pair set of two shards (under ``pairs``)."""
    directory = tmp_path_factory.mktemp("local_sgd")
    rng = np.random.default_rng(0)
    left = rng.integers(0, N, 150)
    right = (left + rng.integers(1, N, 150)) % N
    write_pair_shards(directory / "pairs", both_ways(left, right, "knn"), N, num_shards=2, provenance={})
    return directory


@pytest.fixture(scope="module")
def two_ranks(directory):
    port, spawn = _free_port(), multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=_rank, args=(r, port, str(directory / "pairs"), str(directory / f"{r}.pt")))
        for r in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    return [torch.load(directory / f"{r}.pt", weights_only=True) for r in range(2)]


def test_tensors_of_any_float_type_become_their_mean_over_the_workers(two_ranks):
    for result in two_ranks:
        first, second = result["tensors"]
        assert torch.equal(first, torch.full((2, 3), 0.5))
        assert torch.equal(second, torch.full((4,), 5.0, dtype=torch.float64))


def test_in_one_process_averaging_changes_nothing():
    tensor = torch.arange(4.0)
    average_across_workers([tensor])
    assert torch.equal(tensor, torch.arange(4.0))


def test_local_sgd_starts_both_workers_alike_and_ends_each_epoch_with_the_same_weights(two_ranks):
    first, second = two_ranks
    assert first["steps"] == second["steps"] > 3  # several averages inside an epoch, one at its end
    for key in ("start", "weights", "ema"):
        for name, value in first[key].items():
            assert torch.equal(value, second[key][name]), (key, name)
    assert any(not torch.equal(first["start"][n], first["weights"][n]) for n in first["start"])  # it trained


def test_local_steps_refuse_a_model_wrapped_for_ddp(directory):
    class Wrapped(torch.nn.Module):  # what DDP looks like to the core: the weights in .module
        def __init__(self, module):
            super().__init__()
            self.module = module

    cfg = TrainConfig(num_workers=2, local_steps=4)
    model = Wrapped(build_encoder("mlp", 2, {"hidden": 4}, input_shape=(8,)))
    with pytest.raises(StageError, match="local_steps"):
        TrainingCore(
            cfg,
            model,
            DeviceFeatures(np.zeros((N, 8), np.float32), torch.device("cpu")),
            PairSet.open(directory / "pairs").read_share(0, 2),
            0,
            torch.device("cpu"),
        )
