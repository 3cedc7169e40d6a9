import numpy as np
import pytest

from pipeline.pairs.negatives import NegativeSampler


@pytest.fixture
def graph():
    # 12 samples on a ring, each similar to its two ring neighbours, plus one chord.
    n = 12
    left = np.concatenate([np.arange(n), [0]])
    right = np.concatenate([(np.arange(n) + 1) % n, [6]])
    return n, left, right


def test_never_returns_self_or_similar_pairs(graph):
    n, left, right = graph
    sampler = NegativeSampler(n, left, right)
    i, j = sampler.sample(50_000, np.random.default_rng(0))
    similar = {(a, b) for a, b in zip(left, right)} | {(b, a) for a, b in zip(left, right)}
    assert len(i) == 50_000
    assert not (i == j).any()
    assert not any((a, b) in similar for a, b in zip(i.tolist(), j.tolist()))


def test_counts_of_implicit_dissimilar_pairs(graph):
    n, left, right = graph
    sampler = NegativeSampler(n, np.concatenate([left, right]), np.concatenate([right, left]))  # duplicates too
    assert sampler.n_similar == 13
    assert sampler.n_dissimilar == n * (n - 1) // 2 - 13


def test_covers_every_dissimilar_pair_uniformly(graph):
    from scipy.stats import chisquare

    n, left, right = graph
    sampler = NegativeSampler(n, left, right)
    i, j = sampler.sample(200_000, np.random.default_rng(1))
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    counts = np.bincount(lo * n + hi, minlength=n * n)
    observed = counts[counts > 0]
    assert len(observed) == sampler.n_dissimilar  # every dissimilar pair is drawn
    assert chisquare(observed).pvalue > 0.001


def test_deterministic_per_seed_epoch_rank(graph):
    sampler = NegativeSampler(*graph)
    a = sampler.sample(100, NegativeSampler.rng_for(0, 1, 0))
    b = sampler.sample(100, NegativeSampler.rng_for(0, 1, 0))
    c = sampler.sample(100, NegativeSampler.rng_for(0, 1, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rejects_ids_out_of_range_and_full_graphs():
    with pytest.raises(ValueError, match="ids must lie"):
        NegativeSampler(3, np.array([0]), np.array([3]))
    with pytest.raises(ValueError, match="no dissimilar pair"):
        NegativeSampler(3, np.array([0, 0, 1]), np.array([1, 2, 2]))


def test_is_similar_agrees_with_a_python_set_for_every_similar_pair_and_random_others():
    rng = np.random.default_rng(5)
    n = 500
    left = rng.integers(0, n, 3000)
    right = rng.integers(0, n, 3000)
    sampler = NegativeSampler(n, left, right)
    pairs = {(int(a), int(b)) for a, b in zip(left, right) if a != b}
    pairs |= {(b, a) for a, b in pairs}
    qi, qj = rng.integers(0, n, 50_000), rng.integers(0, n, 50_000)
    qi, qj = np.concatenate([left, right, qi]), np.concatenate([right, left, qj])
    expected = np.array([(int(a), int(b)) in pairs for a, b in zip(qi, qj)])
    np.testing.assert_array_equal(sampler.is_similar(qi, qj), expected)


def test_a_request_for_no_pairs_returns_two_empty_arrays(graph):
    # A last per_pair step of one similar pair asks for round(1 * 0.25) = 0 dissimilar pairs.
    i, j = NegativeSampler(*graph).sample(0, np.random.default_rng(0))
    assert len(i) == len(j) == 0 and i.dtype == j.dtype == np.int64
