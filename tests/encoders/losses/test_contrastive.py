import pytest
import torch

from encoders import contrastive_loss, contrastive_loss_terms
from encoders.losses import build_loss
from tests.encoders.losses.helpers import pair_at, slope


@pytest.mark.parametrize("distance", [0.0, 0.25, 0.9, 1.0, 1.1, 3.0])
@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
def test_loss_matches_closed_form(distance, margin):
    z1, z2 = pair_at(distance)
    similar = contrastive_loss(z1, z2, torch.tensor([0]), margin).item()
    dissimilar = contrastive_loss(z1, z2, torch.tensor([1]), margin).item()
    assert similar == pytest.approx(0.5 * distance**2, abs=1e-6)
    assert dissimilar == pytest.approx(0.5 * max(0.0, margin - distance) ** 2, abs=1e-6)


def test_batch_loss_is_mean_of_pairs():
    z1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    z2 = torch.tensor([[3.0, 4.0], [0.6, 0.8], [1.0, 1.0]])  # distances 5, 1, 0
    y = torch.tensor([0, 1, 1])
    expected = (0.5 * 25 + 0.5 * (2 - 1) ** 2 + 0.5 * 2**2) / 3
    assert contrastive_loss(z1, z2, y, margin=2.0).item() == pytest.approx(expected)


def test_dissimilar_pair_beyond_margin_has_no_loss_or_gradient():
    z1, z2 = pair_at(1.5)
    z2.requires_grad_(True)
    loss = contrastive_loss(z1, z2, torch.tensor([1]), margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(z2.grad == 0)


@pytest.mark.parametrize(("label", "distance", "direction"), [(0, 0.8, -1), (0, 2.0, -1), (1, 0.3, +1), (1, 0.95, +1)])
def test_gradient_step_moves_pairs_the_right_way(label, distance, direction):
    z1, z2 = pair_at(distance)
    z2.requires_grad_(True)
    contrastive_loss(z1, z2, torch.tensor([label]), margin=1.0).backward()
    with torch.no_grad():
        stepped = z2 - 0.01 * z2.grad
    new_distance = torch.linalg.norm(stepped - z1).item()
    assert (new_distance - distance) * direction > 0


def test_coincident_dissimilar_pair_has_finite_gradient():
    z = torch.zeros(1, 2, requires_grad=True)
    loss = contrastive_loss(z, torch.zeros(1, 2), torch.tensor([1]), margin=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.5)
    assert torch.isfinite(z.grad).all()


def test_terms_return_distances_and_reject_bad_margin():
    z1, z2 = pair_at(0.7)
    _, distance = contrastive_loss_terms(z1, z2, torch.tensor([0]), margin=1.0)
    assert distance.item() == pytest.approx(0.7, abs=1e-6)
    with pytest.raises(ValueError, match="margin"):
        contrastive_loss(z1, z2, torch.tensor([0]), margin=0.0)


def test_the_contrastive_loss_class_weighs_the_closed_form_and_checks_its_margin():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.6, 0.8]])  # D(0, 1) = 5, D(0, 2) = 1
    left, right, y, w = torch.tensor([0, 0]), torch.tensor([1, 2]), torch.tensor([0, 1]), torch.tensor([0.25, 0.75])
    total, per_pair, distance = build_loss("contrastive", margin=2.0).weighted(z, left, right, y, w)
    assert per_pair.tolist() == pytest.approx([0.5 * 25, 0.5 * 1])
    assert distance.tolist() == pytest.approx([5.0, 1.0])
    assert total.item() == pytest.approx(0.25 * 12.5 + 0.75 * 0.5)
    with pytest.raises(ValueError, match="'margin' must be a positive number"):
        build_loss("contrastive", margin=0.0)


@pytest.mark.parametrize(("distance", "label", "sign"), [(0.5, 0, 1), (2.0, 0, 1), (0.5, 1, -1), (0.9, 1, -1)])
def test_similar_pairs_are_pulled_together_and_dissimilar_ones_within_the_margin_pushed_apart(distance, label, sign):
    assert slope(build_loss("contrastive"), distance, label) * sign > 0
