import math

import torch


def pair_at(distance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 2-D points ``distance`` apart along a diagonal, so both coordinates matter."""
    d = distance / math.sqrt(2)
    return torch.tensor([[0.3, -0.2]]), torch.tensor([[0.3 + d, -0.2 + d]])


def slope(loss, distance: float, label: int) -> float:
    """dL/dD of one pair at ``distance`` under ``loss`` (a ``PairLoss``; the pair weighs 1)."""
    d = torch.tensor(distance, requires_grad=True)
    z = torch.stack([torch.zeros(2), torch.stack([d, d]) / math.sqrt(2)])
    one = torch.tensor([0])
    total, *_ = loss.weighted(z, one, one + 1, torch.tensor([label]), torch.ones(1))
    total.backward()
    return d.grad.item()
