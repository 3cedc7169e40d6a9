import math

import pytest
import torch

from encoders.losses import build_loss
from tests.encoders.losses.helpers import slope

# Pairs at D(0, 1) = 1, D(0, 2) = 3, D(1, 2) = 2, D(2, 3) = 5.
Z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 5.0]])
LEFT, RIGHT = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 2, 2, 3])
Y = torch.tensor([0, 1, 1, 0])  # similar, dissimilar, dissimilar, similar
W = torch.tensor([0.3, 0.1, 0.3, 0.3])


@pytest.mark.parametrize("rho", [1.0, 4.0])
def test_infonce_matches_closed_form(rho):
    total, per_pair, distance = build_loss("infonce", {"exaggeration": rho}).weighted(Z, LEFT, RIGHT, Y, W)
    # Zhat: the weighted mean of q = 1 / (1 + D^2) over the dissimilar pairs (D = 3, 2).
    zhat = (0.1 / 10 + 0.3 / 5) / 0.4
    attraction = [rho * math.log(2), rho * math.log(26)]  # -rho log q for D = 1, 5
    assert distance.tolist() == pytest.approx([1, 3, 2, 5])
    assert total.item() == pytest.approx(0.3 * sum(a + math.log(zhat) for a in attraction))
    assert per_pair.tolist() == pytest.approx([attraction[0], math.log(zhat), math.log(zhat), attraction[1]])


def test_infonce_with_a_heavier_tail_matches_closed_form():
    dof = 0.5
    total, per_pair, _ = build_loss("infonce", {"dof": dof}).weighted(Z, LEFT, RIGHT, Y, W)
    q = {d: (1 + d**2 / dof) ** -dof for d in (1, 3, 2, 5)}
    zhat = (0.1 * q[3] + 0.3 * q[2]) / 0.4
    attraction = [-math.log(q[1]), -math.log(q[5])]
    assert total.item() == pytest.approx(0.3 * sum(a + math.log(zhat) for a in attraction))
    assert per_pair.tolist() == pytest.approx([attraction[0], math.log(zhat), math.log(zhat), attraction[1]])


def test_one_similar_pair_against_its_own_negatives_is_infonce_without_the_positive_in_the_denominator():
    # Anchor 0: positive 1, negatives 2 (twice weighted); -log(q_01 / mean_k q_0k) = InfoNCE up to log(#negatives).
    z, left, right = Z[:3], torch.tensor([0, 0]), torch.tensor([1, 2])
    total, *_ = build_loss("infonce").weighted(z, left, right, torch.tensor([0, 1]), torch.tensor([1.0, 2.0]))
    assert total.item() == pytest.approx(-math.log((1 / 2) / (1 / 10)))


def test_the_normaliser_ignores_the_scale_of_the_dissimilar_weights():
    base, *_ = build_loss("infonce").weighted(Z, LEFT, RIGHT, Y, W)
    scaled, *_ = build_loss("infonce").weighted(Z, LEFT, RIGHT, Y, W * torch.tensor([1, 7, 7, 1]))
    assert scaled.item() == pytest.approx(base.item())


@pytest.mark.parametrize("dof", [1.0, 0.5])
@pytest.mark.parametrize("distance", [0.1, 1.0, 5.0])
def test_similar_pairs_are_pulled_together_and_dissimilar_ones_pushed_apart(distance, dof):
    loss = build_loss("infonce", {"dof": dof})
    assert slope(loss, distance, 0) > 0
    # A dissimilar pair acts through the normaliser of the similar pairs of its step.
    d = torch.tensor(distance, requires_grad=True)
    z = torch.cat([Z[:2], torch.stack([torch.zeros(()), d])[None]])
    total, *_ = loss.weighted(z, torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([0, 1]), torch.ones(2))
    total.backward()
    assert d.grad.item() < 0


def test_a_step_without_weighted_dissimilar_pairs_is_pure_attraction_with_finite_gradients():
    z = Z.clone().requires_grad_(True)
    total, per_pair, _ = build_loss("infonce").weighted(z, LEFT, RIGHT, Y, W * (Y == 0))
    assert total.item() == pytest.approx(0.3 * math.log(2) + 0.3 * math.log(26))
    assert per_pair[1].item() == 0.0
    total.backward()
    assert torch.isfinite(z.grad).all()


def test_bad_options_are_refused_naming_the_valid_ones():
    valid = r"valid options: \['exaggeration', 'dof'\]"
    with pytest.raises(ValueError, match=r"'infonce' has no options 'margin', 't'; " + valid):
        build_loss("infonce", {"margin": 1.0, "t": 0.5})
    with pytest.raises(ValueError, match="'exaggeration' must be a positive number, got -1"):
        build_loss("infonce", {"exaggeration": -1})
