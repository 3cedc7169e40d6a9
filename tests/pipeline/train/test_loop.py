"""The weight average kept with train.ema_decay."""

import torch

from pipeline.train.loop import ema_update


def test_ema_moves_a_fraction_towards_the_weights_and_copies_integer_buffers():
    model = torch.nn.Linear(2, 1)
    model.register_buffer("steps", torch.tensor(3))
    ema = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    ema_update(ema, model, decay=0.75)
    assert torch.allclose(ema["weight"], 0.25 * model.weight.detach())
    assert torch.allclose(ema["bias"], 0.25 * model.bias.detach())
    assert ema["steps"].item() == 3
