import math

import pytest
import torch

from encoders.losses import build_loss
from tests.encoders.losses.helpers import pair_at, slope


def _closed_form(distance: float, label: int, rho: float, zbar: float, dof: float = 1.0) -> float:
    xi = (1 + distance**2 / dof) ** -dof / zbar
    return -rho * math.log(xi / (xi + 1)) if label == 0 else -math.log(1 / (xi + 1))


@pytest.mark.parametrize("distance", [0.0, 0.5, 1.0, 2.0, 7.0])
@pytest.mark.parametrize(
    ("rho", "zbar", "dof"), [(1.0, 1.0, 1.0), (4.0, 1.0, 1.0), (1.0, 30.0, 1.0), (1.0, 1.0, 0.5), (2.0, 3.0, 0.3)]
)
def test_neg_matches_closed_form(distance, rho, zbar, dof):
    loss = build_loss("neg", {"exaggeration": rho, "normalization": zbar, "dof": dof})
    z1, z2 = pair_at(distance)
    for label in (0, 1):
        per_pair, d = loss.terms(z1, z2, torch.tensor([label]))
        expected = _closed_form(distance, label, rho, zbar, dof)
        assert per_pair.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
        assert d.item() == pytest.approx(distance, abs=1e-6)


def test_umaps_loss_at_the_default_normalisation():
    # Zbar = 1: log(2 + D^2) for a similar pair, log((2 + D^2) / (1 + D^2)) for a dissimilar one.
    z1, z2 = pair_at(2.0)
    per_pair, _ = build_loss("neg").terms(z1.repeat(2, 1), z2.repeat(2, 1), torch.tensor([0, 1]))
    assert per_pair.tolist() == pytest.approx([math.log(6), math.log(6 / 5)], rel=1e-6)


def test_far_pairs_and_a_large_normalisation_stay_finite_and_exact():
    # xi / (xi + 1) would round to 0 here; the softplus form keeps the value (log(1 + D^2) + log Zbar).
    z1, z2 = pair_at(1e4)
    z1.requires_grad_(True)
    per_pair, _ = build_loss("neg", {"normalization": 1e30}).terms(
        z1.repeat(2, 1), z2.repeat(2, 1), torch.tensor([0, 1])
    )
    assert per_pair[0].item() == pytest.approx(math.log1p(1e8) + math.log(1e30), rel=1e-5)
    assert 0 < per_pair[1].item() < 1e-30
    per_pair.sum().backward()
    assert torch.isfinite(z1.grad).all()


@pytest.mark.parametrize(("zbar", "dof"), [(1.0, 1.0), (100.0, 1.0), (1.0, 0.5)])
@pytest.mark.parametrize("distance", [0.1, 1.0, 5.0])
def test_similar_pairs_are_pulled_together_and_dissimilar_ones_pushed_apart(distance, zbar, dof):
    loss = build_loss("neg", {"normalization": zbar, "dof": dof})
    assert slope(loss, distance, 0) > 0
    assert slope(loss, distance, 1) < 0


def test_exaggeration_scales_only_the_attraction():
    z1, z2 = pair_at(1.5)
    y = torch.tensor([0, 1])
    plain, _ = build_loss("neg").terms(z1.repeat(2, 1), z2.repeat(2, 1), y)
    exaggerated, _ = build_loss("neg", {"exaggeration": 3.0}).terms(z1.repeat(2, 1), z2.repeat(2, 1), y)
    assert exaggerated.tolist() == pytest.approx([3 * plain[0].item(), plain[1].item()])


def test_a_heavier_tail_repels_far_pairs_more():
    # q ~ D^(-2a) far out: at a = 0.5 a dissimilar pair at D = 5 still feels a stronger push than under Cauchy.
    assert slope(build_loss("neg", {"dof": 0.5}), 5.0, 1) < slope(build_loss("neg"), 5.0, 1) < 0


def test_bad_options_are_refused_naming_the_valid_ones():
    valid = r"valid options: \['exaggeration', 'normalization', 'dof'\]"
    with pytest.raises(ValueError, match=r"loss 'neg' has no option 'z'; " + valid):
        build_loss("neg", {"z": 1.0})
    with pytest.raises(ValueError, match="'normalization' must be a positive number, got 0"):
        build_loss("neg", {"normalization": 0})
    with pytest.raises(ValueError, match="'exaggeration' must be a positive number"):
        build_loss("neg", {"exaggeration": float("nan")})
