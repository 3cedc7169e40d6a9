"""The Ray-free training core as one process (rank 0, world 1), on random vectors and a random similar graph."""

import numpy as np
import pytest
import torch

from encoders.registry import build_encoder
from pipeline.config import TrainConfig
from pipeline.errors import StageError
from pipeline.pairs.shards import SOURCES, PairSet, both_ways, write_pair_shards
from pipeline.train.core import (
    InputNoise,
    TrainingCore,
    ema_update,
    epoch_metrics,
    learning_rate,
    pair_weights,
)
from pipeline.train.features import DeviceFeatures, StreamedFeatures

N = 60


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    rng = np.random.default_rng(0)
    left = rng.integers(0, N, 150)
    right = (left + rng.integers(1, N, 150)) % N
    directory = tmp_path_factory.mktemp("pairs")
    write_pair_shards(directory, both_ways(left, right, "knn"), N, num_shards=2, provenance={})
    return PairSet.open(directory).read_share(0, 1)


def _core(share, loss="contrastive", streamed_from=None, **train):
    torch.manual_seed(0)
    cfg = TrainConfig(**{"num_workers": 1, "batch_size": 16, "epochs": 3, "loss": loss, **train})
    matrix = np.random.default_rng(1).random((N, 8), dtype=np.float32)
    if streamed_from is None:
        features = DeviceFeatures(matrix, torch.device("cpu"))
    else:  # read by id from a memory map per step, as a worker does with train.features=stream
        np.save(streamed_from, matrix)
        features = StreamedFeatures(np.load(streamed_from, mmap_mode="r"), torch.device("cpu"))
    model = build_encoder("mlp", 2, {"hidden": 16}, input_shape=(8,))
    return TrainingCore(cfg, model, features, share, seed=0, device=torch.device("cpu"))


@pytest.mark.parametrize("mode", ["per_pair", "batch"])
@pytest.mark.parametrize("loss", ["contrastive", "neg", "infonce"])
def test_epochs_pull_similar_pairs_together_and_repeat_exactly_with_the_same_seed(share, loss, mode):
    first, second = _core(share, loss, mode=mode), _core(share, loss, mode=mode)
    ratios = []
    for epoch in range(3):
        sums, elapsed = first.run_epoch(epoch)
        assert torch.equal(sums, second.run_epoch(epoch)[0])
        metrics = epoch_metrics(sums, first.steps, elapsed, epoch, first.lr)
        ratios.append(metrics["similar_distance"] / metrics["dissimilar_distance"])
    assert ratios[-1] < ratios[0]
    assert first.per_rank == share.similar_pairs and first.steps == -(-first.per_rank // 16)  # each pair once


@pytest.mark.parametrize("prefetch", [0, 3])
def test_features_held_or_streamed_and_steps_prepared_ahead_or_not_give_the_same_epochs(share, prefetch, tmp_path):
    held = _core(share, mode="batch", prefetch=0)
    streamed = _core(share, streamed_from=tmp_path / "features.npy", mode="batch", prefetch=prefetch)
    for epoch in range(2):
        assert torch.equal(held.run_epoch(epoch)[0], streamed.run_epoch(epoch)[0])


def test_a_restored_state_continues_exactly_where_training_stopped(share, tmp_path):
    uninterrupted = _core(share, ema_decay=0.9)
    uninterrupted.run_epoch(0)
    torch.save(uninterrupted.state(), tmp_path / "state.pt")  # as a checkpoint holds it
    expected, _ = uninterrupted.run_epoch(1)

    resumed = _core(share, ema_decay=0.9)
    resumed.load_state(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(resumed.run_epoch(1)[0], expected)
    for name, value in uninterrupted.trained_weights().items():
        assert torch.equal(resumed.trained_weights()[name], value), name  # the weight average too


def test_the_learning_rate_follows_the_cosine_from_the_global_step():
    cfg = TrainConfig(lr=0.1)
    assert learning_rate(cfg, 0, 10) == pytest.approx(0.1)
    assert learning_rate(cfg, 5, 10) == pytest.approx(0.05)
    assert learning_rate(cfg, 10, 10) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(TrainConfig(lr=0.1, lr_schedule="constant"), 7, 10) == 0.1


def test_ema_moves_a_fraction_towards_the_weights_and_copies_integer_buffers():
    model = torch.nn.Linear(2, 1)
    model.register_buffer("steps", torch.tensor(3))
    ema = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    ema_update(ema, model, decay=0.75)
    assert torch.allclose(ema["weight"], 0.25 * model.weight.detach())
    assert torch.allclose(ema["bias"], 0.25 * model.bias.detach())
    assert ema["steps"].item() == 3


def test_input_noise_is_seeded_per_epoch_and_rank_and_off_at_zero():
    x = torch.zeros(4, 3)
    assert InputNoise(0.0, 0, 0, 0, torch.device("cpu"))(x) is x
    draw = InputNoise(0.5, 0, 1, 0, torch.device("cpu"))(x)
    assert torch.equal(draw, InputNoise(0.5, 0, 1, 0, torch.device("cpu"))(x))  # a resumed epoch repeats it
    assert not torch.equal(draw, InputNoise(0.5, 0, 2, 0, torch.device("cpu"))(x))
    assert not torch.equal(draw, InputNoise(0.5, 0, 1, 1, torch.device("cpu"))(x))
    big = InputNoise(0.5, 0, 1, 0, torch.device("cpu"))(torch.zeros(20000))
    assert big.std().item() == pytest.approx(0.5, rel=0.05) and abs(big.mean().item()) < 0.02


def test_training_with_input_noise_still_learns_and_repeats_exactly(share):
    first, second = (_core(share, "neg", mode="batch", input_noise=0.1) for _ in range(2))
    clean = _core(share, "neg", mode="batch")
    sums = [first.run_epoch(epoch)[0] for epoch in range(3)]
    assert all(torch.equal(s, second.run_epoch(epoch)[0]) for epoch, s in enumerate(sums))
    assert not torch.equal(sums[0], clean.run_epoch(0)[0])
    ratios = [s[3] / s[6] / (s[4] / s[7]) for s in sums]  # mean similar / mean dissimilar distance
    assert ratios[-1] < ratios[0]


def test_source_weights_are_normalised_to_mean_one_over_the_whole_pair_set(tmp_path):
    rng = np.random.default_rng(2)
    left = rng.integers(0, N, 120)
    right = (left + rng.integers(1, N, 120)) % N
    write_pair_shards(
        tmp_path,
        np.concatenate([both_ways(left[:90], right[:90], "knn"), both_ways(left[90:], right[90:], "transform")]),
        N,
        2,
        {},
    )
    whole = PairSet.open(tmp_path).read_share(0, 1, with_source=True)
    weights = pair_weights({"transform": 4.0}, whole)
    transform, knn = whole.source == SOURCES.index("transform"), whole.source == SOURCES.index("knn")
    assert transform.any() and knn.any()
    assert weights[transform] == pytest.approx(4 * weights[knn][0]) and np.ptp(weights[knn]) == 0
    assert weights.mean() == pytest.approx(1.0)  # the similar half keeps its total weight
    assert pair_weights({}, whole) is None
    with pytest.raises(StageError, match="with_source"):
        pair_weights({"transform": 4.0}, PairSet.open(tmp_path).read_share(0, 1))


def test_source_weights_of_one_train_exactly_as_none(share, tmp_path):
    plain = _core(share, "neg", mode="batch")
    write_pair_shards(
        tmp_path,
        both_ways(share.left[share.left < share.right], share.right[share.left < share.right], "knn"),
        N,
        2,
        {},
    )
    sourced = _core(
        PairSet.open(tmp_path).read_share(0, 1, with_source=True),
        "neg",
        mode="batch",
        source_weights={"knn": 1.0, "transform": 1.0},
    )
    assert torch.equal(plain.run_epoch(0)[0], sourced.run_epoch(0)[0])


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_an_epoch_resumed_from_a_checkpoint_within_it_continues_exactly(share, noise, monkeypatch):
    import copy

    import pipeline.train.core as core_module

    monkeypatch.setattr(core_module, "PACE_STEPS", 1)
    whole = _core(share, "neg", mode="batch", input_noise=noise, checkpoint_every=1e-9)  # a checkpoint every step
    places, states = [], []

    def save(place):
        places.append(place)
        states.append(copy.deepcopy(whole.state()))

    sums, _ = whole.run_epoch(0, save=save)
    assert [p.step for p in places] == list(range(1, whole.steps))
    middle = len(places) // 2
    resumed = _core(share, "neg", mode="batch", input_noise=noise)
    resumed.load_state(states[middle])
    again, _ = resumed.run_epoch(0, resume=places[middle])
    assert torch.equal(again, sums)  # the epoch's sums: the same curve
    for name, value in whole.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value)


def test_fractional_epochs_and_steps_set_the_length_and_the_learning_rate_schedule(share):
    half = _core(share, "neg", mode="batch", epochs=1.5)
    assert half.epochs == 2 and half.total_steps == round(1.5 * half.steps) and half.steps_in(1) < half.steps
    counted = _core(share, "neg", mode="batch", steps=5)
    assert counted.epochs == 1 and counted.steps_in(0) == 5


def test_the_learning_rate_scales_with_the_batch_by_the_stated_rule():
    from pipeline.config import TrainConfig
    from pipeline.train.core import learning_rate, peak_learning_rate

    cfg = TrainConfig(lr=0.001, batch_size=256, lr_schedule="constant")
    assert peak_learning_rate(cfg) == 0.001  # none: as given
    assert peak_learning_rate(cfg.model_copy(update={"lr_scaling": "sqrt"})) == pytest.approx(0.002)
    assert peak_learning_rate(cfg.model_copy(update={"lr_scaling": "linear"})) == pytest.approx(0.004)
    cosine = cfg.model_copy(update={"lr_scaling": "linear", "lr_schedule": "cosine"})
    assert learning_rate(cosine, 0, 100) == pytest.approx(0.004) and learning_rate(cosine, 50, 100) == pytest.approx(
        0.002
    )
