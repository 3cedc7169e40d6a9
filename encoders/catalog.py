"""The encoders and losses a job may name, and their options (import-light: the job configuration reads it at
load time, without torch).

The encoder classes are in ``lenet.py``, ``mlp.py`` and ``resnet.py``, the losses in ``losses/``; tests keep
these tables equal to their constructors' keyword options (and the losses' defaults).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# name -> keyword options besides output_dim (and input_shape, which comes from the data)
ENCODER_OPTIONS: dict[str, tuple[str, ...]] = {
    "lenet": ("c1", "c3", "activation", "pool"),
    "mlp": ("hidden", "layers", "activation"),
    "resnet18": ("projection",),
}


def encoder_options(name: str) -> list[str]:
    """The keyword options encoder ``name`` accepts besides ``output_dim``."""
    if name not in ENCODER_OPTIONS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODER_OPTIONS)}")
    return list(ENCODER_OPTIONS[name])


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the valid options when ``options`` has a key the encoder does not take."""
    valid = encoder_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"encoder {name!r} has no option(s) {unknown}; valid options: {valid}")


# Losses (train.loss, train.loss_options); every option is a positive number, each loss module says what
# its options do.
DEFAULT_LOSS = "contrastive"

# name -> {option: default}; the defaults are those of the loss class's keyword arguments.
LOSS_OPTIONS: dict[str, dict[str, float]] = {
    "contrastive": {"margin": 1.0},
    "neg": {"exaggeration": 1.0, "normalization": 1.0, "dof": 1.0},
    "infonce": {"exaggeration": 1.0, "dof": 1.0},
}


def check_loss(name: str) -> None:
    """Raise ``ValueError`` naming the valid losses when ``name`` is not one."""
    if name not in LOSS_OPTIONS:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSS_OPTIONS)}")


def check_loss_options(name: str, options: Mapping[str, float]) -> None:
    """Raise ``ValueError`` naming the valid options when ``options`` has one the loss ``name`` does not take, or
    a value that is not a positive number."""
    check_loss(name)
    valid = list(LOSS_OPTIONS[name])
    unknown = [key for key in options if key not in valid]
    if unknown:
        listed = ", ".join(map(repr, unknown))
        raise ValueError(f"loss {name!r} has no option{'s' if len(unknown) > 1 else ''} {listed}; "
                         f"valid options: {valid}")
    for key, value in options.items():
        # bool is an int; a number the loss cannot use (0, negative, inf, nan) is refused here, not mid-training.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
            raise ValueError(f"loss {name!r}: option {key!r} must be a positive number, got {value!r}")
