import numpy as np
import pytest

from pipeline.pairs import NegativeSampler
from pipeline.train.batches import in_batch_step, per_pair_step


@pytest.fixture
def graph():
    rng = np.random.default_rng(0)
    n = 40
    left = rng.integers(0, n, 80)
    right = (left + rng.integers(1, n, 80)) % n
    return n, left, right, NegativeSampler(n, left, right)


def _pairs(step):
    return step.samples[step.left], step.samples[step.right]


def test_per_pair_step_mixes_ratio_negatives_with_equal_weights(graph):
    n, left, right, sampler = graph
    step = per_pair_step(left[:10], right[:10], sampler, 2.0, np.random.default_rng(1))
    a, b = _pairs(step)
    assert (step.label == 0).sum() == 10 and (step.label == 1).sum() == 20
    np.testing.assert_array_equal(a[:10], left[:10])
    np.testing.assert_array_equal(b[:10], right[:10])
    assert not sampler.is_similar(a[10:], b[10:]).any() and not (a == b).any()
    np.testing.assert_allclose(step.weight, 1 / 30)
    assert len(np.unique(step.samples)) == len(step.samples)  # each sample encoded once


def test_in_batch_step_scores_every_non_similar_pair_among_the_samples(graph):
    n, left, right, sampler = graph
    degree = np.maximum(sampler.degree(), 1).astype(float)
    step = in_batch_step(left[:8], right[:8], sampler, 1.0, degree)
    a, b = _pairs(step)
    u = len(step.samples)
    dis = step.label == 1
    assert not sampler.is_similar(a[dis], b[dis]).any() and not (a == b).any()
    iu, ju = np.triu_indices(u, k=1)
    similar_among = int(sampler.is_similar(step.samples[iu], step.samples[ju]).sum())
    assert similar_among >= 8  # at least the 8 drawn similar pairs
    assert dis.sum() == u * (u - 1) // 2 - similar_among
    assert step.weight.sum() == pytest.approx(1.0)
    assert step.weight[~dis].sum() == pytest.approx(0.5) and step.weight[dis].sum() == pytest.approx(0.5)
    # Importance weights: a pair of high-degree samples weighs less than a pair of low-degree ones.
    w = step.weight[dis]
    d = degree[a[dis]] * degree[b[dis]]
    assert np.corrcoef(w, 1 / d)[0, 1] == pytest.approx(1.0)


def test_cosine_learning_rate_starts_at_lr_and_ends_at_zero():
    from pipeline.config import TrainConfig
    from pipeline.train.loop import learning_rate

    cfg = TrainConfig(lr=0.01, lr_schedule="cosine")
    assert learning_rate(cfg, 0, 100) == pytest.approx(0.01)
    assert learning_rate(cfg, 50, 100) == pytest.approx(0.005)
    assert learning_rate(cfg, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(TrainConfig(lr=0.01, lr_schedule="constant"), 70, 100) == 0.01


def test_weighted_loss_in_per_pair_mode_is_the_mean_contrastive_loss(graph):
    import torch

    from encoders import contrastive_loss
    from pipeline.train.batches import step_pairs, weighted_loss

    n, left, right, sampler = graph
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    features = torch.randn(n, 3)
    pairs = step_pairs("per_pair", left[:6], right[:6], sampler, 1.0, np.ones(n), np.random.default_rng(0))
    loss, per_pair, _, y = weighted_loss(model, features, pairs, margin=1.0)
    a, b = pairs.samples[pairs.left], pairs.samples[pairs.right]
    expected = contrastive_loss(model(features[a]), model(features[b]), torch.from_numpy(pairs.label), 1.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert per_pair.shape == y.shape == (12,)


def test_bf16_autocast_keeps_the_loss_in_fp32_and_close_to_the_fp32_loss(graph):
    import torch

    from pipeline.train.batches import mixed_precision, step_pairs, weighted_loss

    n, left, right, sampler = graph
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    features = torch.randn(n, 3)
    pairs = step_pairs("per_pair", left[:6], right[:6], sampler, 1.0, np.ones(n), np.random.default_rng(0))
    cpu = torch.device("cpu")
    assert isinstance(mixed_precision(cpu), type(mixed_precision(cpu, "fp32")))  # auto = fp32 on CPU
    full, *_ = weighted_loss(model, features, pairs, margin=1.0)
    with mixed_precision(cpu, "bf16"):
        half, per_pair, _, _ = weighted_loss(model, features, pairs, margin=1.0)
    assert half.dtype == per_pair.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=0.05)
