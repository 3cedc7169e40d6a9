import numpy as np
import pytest
import torch

from encoders.losses import LOSSES, build_loss
from pipeline.pairs.shards import PairSet, both_ways, write_pair_shards
from pipeline.train.batches import (
    ShareSampling,
    in_batch_step,
    mixed_precision,
    per_pair_step,
    step_pairs,
    weighted_loss,
)

N = 40


@pytest.fixture
def pair_set(tmp_path):
    rng = np.random.default_rng(0)
    left = rng.integers(0, N, 80)
    right = (left + rng.integers(1, N, 80)) % N
    write_pair_shards(tmp_path, both_ways(left, right, "knn"), N, num_shards=4, provenance={})
    return PairSet.open(tmp_path)


@pytest.fixture
def graph(pair_set):
    """The whole pair set as one worker's share (every pair, both directions), its sampling, a set of them."""
    share = pair_set.read_share(0, 1)
    return share, ShareSampling.from_share(share), set(zip(share.left.tolist(), share.right.tolist()))


def _pairs(step):
    return step.samples[step.left], step.samples[step.right]


def test_per_pair_step_mixes_ratio_negatives_with_equal_weights(graph):
    share, sampling, similar = graph
    left, right = share.left[:10], share.right[:10]
    step = per_pair_step(left, right, sampling, 2.0, np.random.default_rng(1))
    a, b = _pairs(step)
    assert (step.label == 0).sum() == 10 and (step.label == 1).sum() == 20
    np.testing.assert_array_equal(a[:10], left)
    np.testing.assert_array_equal(b[:10], right)
    assert not any((i, j) in similar for i, j in zip(a[10:].tolist(), b[10:].tolist())) and not (a == b).any()
    np.testing.assert_allclose(step.weight, 1 / 30)
    assert len(np.unique(step.samples)) == len(step.samples)  # each sample encoded once


def test_in_batch_step_scores_every_non_similar_pair_among_the_samples(graph):
    share, sampling, similar = graph
    step = in_batch_step(share.left[:8], share.right[:8], sampling, 1.0)
    a, b = _pairs(step)
    u = len(step.samples)
    dis = step.label == 1
    assert not any((i, j) in similar for i, j in zip(a[dis].tolist(), b[dis].tolist())) and not (a == b).any()
    iu, ju = np.triu_indices(u, k=1)
    similar_among = sum((int(i), int(j)) in similar for i, j in zip(step.samples[iu], step.samples[ju]))
    assert similar_among >= 8  # at least the 8 drawn similar pairs
    assert dis.sum() == u * (u - 1) // 2 - similar_among
    assert step.weight.sum() == pytest.approx(1.0)
    assert step.weight[~dis].sum() == pytest.approx(0.5) and step.weight[dis].sum() == pytest.approx(0.5)
    # Importance weights 1 / (d_u d_v): a pair of high-degree samples weighs less than a pair of low-degree ones.
    degree = np.bincount(share.left, minlength=N)
    np.testing.assert_allclose(
        step.weight[dis] * degree[a[dis]] * degree[b[dis]], step.weight[dis][0] * degree[a[dis][0]] * degree[b[dis][0]]
    )


@pytest.mark.parametrize("world", [2, 3])
def test_workers_never_score_a_similar_pair_as_dissimilar_with_only_their_share(pair_set, world):
    left, right = pair_set.read()
    similar = set(zip(left.tolist(), right.tolist()))
    similar |= {(b, a) for a, b in similar}
    for rank in range(world):
        share = pair_set.read_share(rank, world)
        sampling = ShareSampling.from_share(share)
        rng = np.random.default_rng(rank)
        for mode in ("per_pair", "batch"):
            for _ in range(20):
                pos = rng.integers(0, len(share.left), 8)
                step = step_pairs(mode, share.left[pos], share.right[pos], sampling, 1.0, rng)
                a, b = _pairs(step)
                dis = step.label == 1
                assert dis.any() and not (a == b).any()
                assert not any((i, j) in similar for i, j in zip(a[dis].tolist(), b[dis].tolist()))
                assert (share.owned[a[dis]] | share.owned[b[dis]]).all()  # one end owned: similarity known


def test_workers_draw_negatives_from_disjoint_parts_that_cover_every_dissimilar_pair(pair_set):
    left, right = pair_set.read()
    similar = set(zip(left.tolist(), right.tolist())) | set(zip(right.tolist(), left.tolist()))
    everything = {(a, b) for a in range(N) for b in range(N) if a != b and (a, b) not in similar}
    world, parts, scales = 2, [], []
    for rank in range(world):
        sampling = ShareSampling.from_share(pair_set.read_share(rank, world))
        i, j = sampling.sampler.sample(100_000, np.random.default_rng(rank))
        drawn = set(zip(i.tolist(), j.tolist()))
        assert len(drawn) == sampling.sampler.n_dissimilar  # all of the worker's part, uniformly enough to hit each
        parts.append(drawn)
        scales.append((sampling.similar_scale, sampling.dissimilar_scale))
    assert parts[0].isdisjoint(parts[1]) and parts[0] | parts[1] == everything
    # Scaled by their share, the workers' halves average to the whole: the scales sum to the number of workers.
    assert sum(s for s, _ in scales) == pytest.approx(world) and sum(d for _, d in scales) == pytest.approx(world)


def _worker_steps(pair_set, world: int, count: int):
    """Per worker of ``world``: its share and ``count`` seeded in-batch steps of 6 similar pairs drawn from it."""
    for rank in range(world):
        share = pair_set.read_share(rank, world)
        sampling = ShareSampling.from_share(share)
        rng = np.random.default_rng(10 + rank)
        draws = (rng.integers(0, len(share.left), 6) for _ in range(count))
        yield share, (in_batch_step(share.left[pos], share.right[pos], sampling, 1.0) for pos in draws)


@pytest.mark.parametrize("world", [1, 2])
def test_the_workers_average_estimates_the_mean_over_all_dissimilar_pairs(pair_set, world):
    """Monte Carlo over many steps: the weighted in-batch dissimilar term, averaged over workers as DDP does,
    matches the plain mean over every dissimilar pair of a degree-dependent quantity (which uniform weights
    over in-batch pairs would overestimate: high-degree samples are in more steps)."""
    left, right = pair_set.read()
    degree = np.bincount(np.concatenate([left, right]), minlength=N).astype(float)
    similar = set(zip(left.tolist(), right.tolist())) | set(zip(right.tolist(), left.tolist()))
    dissimilar = np.array([(a, b) for a in range(N) for b in range(a + 1, N) if (a, b) not in similar])
    value = degree[dissimilar[:, 0]] + degree[dissimilar[:, 1]]
    target = value.mean()
    estimates, naive = [], []
    for _share, steps in _worker_steps(pair_set, world, 3000):
        totals, plain = [], []
        for step in steps:
            dis = step.label == 1
            a, b = _pairs(step)
            pair_value = degree[a[dis]] + degree[b[dis]]
            totals.append((step.weight[dis] * pair_value).sum() / 0.5)  # the dissimilar half weighs 1/2
            plain.append(pair_value.mean())
        estimates.append(np.mean(totals))
        naive.append(np.mean(plain))
    assert np.mean(estimates) == pytest.approx(target, rel=0.03)
    assert np.mean(naive) > target * 1.05  # without the weights the estimate would be off


def test_weighted_loss_in_per_pair_mode_is_the_mean_contrastive_loss(graph):
    from encoders import contrastive_loss

    share, sampling, _ = graph
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    features = torch.randn(N, 3)
    pairs = step_pairs("per_pair", share.left[:6], share.right[:6], sampling, 1.0, np.random.default_rng(0))
    loss, per_pair, _, y = weighted_loss(model, features[pairs.samples], pairs, build_loss())
    a, b = pairs.samples[pairs.left], pairs.samples[pairs.right]
    expected = contrastive_loss(model(features[a]), model(features[b]), torch.from_numpy(pairs.label), 1.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert per_pair.shape == y.shape == (12,)


@pytest.mark.parametrize("mode", ["per_pair", "batch"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_weighted_loss_takes_every_loss_in_both_modes(graph, name, mode):
    share, sampling, _ = graph
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    features = torch.randn(N, 3)
    pairs = step_pairs(mode, share.left[:6], share.right[:6], sampling, 2.0, np.random.default_rng(0))
    loss, per_pair, distance, y = weighted_loss(model, features[pairs.samples], pairs, build_loss(name))
    z = model(features[pairs.samples])
    assert per_pair.shape == distance.shape == y.shape == pairs.label.shape
    torch.testing.assert_close(distance, torch.linalg.norm(z[pairs.left] - z[pairs.right], dim=1))
    if name != "infonce":  # pairwise: the step's loss is the weighted sum of its pairs' losses
        assert loss.item() == pytest.approx((per_pair * torch.from_numpy(pairs.weight)).sum().item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(model.weight.grad).all() and model.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["per_pair", "batch"])
def test_weighted_infonce_normalises_by_the_weighted_mean_similarity_of_the_dissimilar_pairs(graph, mode):
    share, sampling, _ = graph
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    features = torch.randn(N, 3)
    pairs = step_pairs(mode, share.left[:6], share.right[:6], sampling, 2.0, np.random.default_rng(0))
    loss, *_ = weighted_loss(model, features[pairs.samples], pairs, build_loss("infonce", {"exaggeration": 2}))
    z = model(features[pairs.samples]).detach().numpy().astype(np.float64)
    q = 1 / (1 + ((z[pairs.left] - z[pairs.right]) ** 2).sum(axis=1))
    sim, w = pairs.label == 0, pairs.weight
    zhat = (w[~sim] * q[~sim]).sum() / w[~sim].sum()
    # The similar weights sum to 1 / (1 + r): the loss is (mean attraction + log Zhat) / (1 + r).
    assert w[sim].sum() == pytest.approx(1 / 3)
    assert loss.item() == pytest.approx((w[sim] * (-2 * np.log(q[sim]) + np.log(zhat))).sum(), rel=1e-5)
    if mode == "per_pair":  # uniform draws: Zhat is the plain mean
        assert zhat == pytest.approx(q[~sim].mean())


@pytest.mark.parametrize("world", [1, 2])
def test_infonce_normaliser_estimates_each_workers_mean_similarity_of_its_dissimilar_pairs(pair_set, world):
    """Monte Carlo over batch steps, with an embedding where samples of high degree (which are in more steps)
    sit close together: log Zhat estimates log E[q] over the worker's dissimilar pairs D_r, and the workers'
    average the same over all of D, which the unweighted mean over in-batch pairs would overestimate."""
    left, right = pair_set.read()
    degree = np.bincount(np.concatenate([left, right]), minlength=N).astype(float)
    similar = set(zip(left.tolist(), right.tolist())) | set(zip(right.tolist(), left.tolist()))
    embedding = torch.from_numpy(np.stack([3 / degree, np.zeros(N)], axis=1)).float()

    def log_mean_q(pairs):
        a, b = np.array(pairs).T
        return np.log(np.mean(1 / (1 + ((embedding[a] - embedding[b]) ** 2).sum(dim=1).numpy())))

    loss = build_loss("infonce")
    estimates, naive = [], []
    for share, steps in _worker_steps(pair_set, world, 1000):
        log_zhat, plain = [], []
        for step in steps:
            _, per_pair, distance, y = weighted_loss(torch.nn.Identity(), embedding[step.samples], step, loss)
            dis = y == 1
            log_zhat.append(per_pair[dis][0].item())  # every dissimilar pair reports the step's log Zhat
            plain.append(np.log(np.mean(1 / (1 + distance[dis].numpy() ** 2))))
        owned = np.flatnonzero(share.owned)
        d_r = [(a, b) for a in owned for b in range(N) if a != b and (a, b) not in similar]
        assert np.mean(log_zhat) == pytest.approx(log_mean_q(d_r), abs=0.04)
        estimates.append(np.mean(log_zhat))
        naive.append(np.mean(plain))
    target = log_mean_q([(a, b) for a in range(N) for b in range(N) if a != b and (a, b) not in similar])
    assert np.mean(estimates) == pytest.approx(target, abs=0.04)
    assert np.mean(naive) > target + 0.06  # without the weights the estimate would be off


def test_bf16_autocast_keeps_the_loss_in_fp32_and_close_to_the_fp32_loss(graph):
    share, sampling, _ = graph
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    features = torch.randn(N, 3)
    pairs = step_pairs("per_pair", share.left[:6], share.right[:6], sampling, 1.0, np.random.default_rng(0))
    x = features[pairs.samples]
    cpu = torch.device("cpu")
    assert isinstance(mixed_precision(cpu), type(mixed_precision(cpu, "fp32")))  # auto = fp32 on CPU
    full, *_ = weighted_loss(model, x, pairs, build_loss())
    with mixed_precision(cpu, "bf16"):
        half, per_pair, _, _ = weighted_loss(model, x, pairs, build_loss())
    assert half.dtype == per_pair.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=0.05)


def test_one_worker_share_is_every_pair_both_ways(pair_set):
    share = pair_set.read_share(0, 1)
    left, right = pair_set.read()
    assert share.owned.all() and share.pairs_per_rank == [2 * len(left)]
    unordered = np.unique(
        np.stack([np.minimum(share.left, share.right), np.maximum(share.left, share.right)], 1), axis=0
    )
    lo, hi = unordered[:, 0], unordered[:, 1]
    order = np.lexsort((right, left))
    np.testing.assert_array_equal(lo, left[order])
    np.testing.assert_array_equal(hi, right[order])


@pytest.mark.parametrize("mode", ["per_pair", "batch"])
def test_per_pair_similar_weights_scale_each_drawn_similar_pair(graph, mode):
    share, sampling, _ = graph
    left, right = share.left[:8], share.right[:8]
    plain = step_pairs(mode, left, right, sampling, 1.0, np.random.default_rng(0))
    scaled = np.linspace(0.5, 2.0, 8)
    weighted = step_pairs(mode, left, right, sampling, 1.0, np.random.default_rng(0), scaled)
    np.testing.assert_array_equal(weighted.label, plain.label)
    similar = weighted.label == 0
    np.testing.assert_allclose(weighted.weight[similar], plain.weight[similar] * scaled)
    np.testing.assert_array_equal(weighted.weight[~similar], plain.weight[~similar])  # the dissimilar half as it was
