"""The losses' names and options, without importing torch: the job configuration validates ``train.loss`` and
``train.loss_options`` from here (``tests/encoders/losses/test_names.py`` checks it against the loss classes).

Every option is a positive number; each loss module's docstring says what its options do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

DEFAULT_LOSS = "contrastive"

# name -> {option: default}; the defaults are those of the loss class's keyword arguments.
LOSS_OPTIONS: dict[str, dict[str, float]] = {
    "contrastive": {"margin": 1.0},
    "neg": {"exaggeration": 1.0, "normalization": 1.0},
    "infonce": {"exaggeration": 1.0},
}


def check_loss(name: str) -> None:
    """Raise ``ValueError`` naming the valid losses when ``name`` is not one."""
    if name not in LOSS_OPTIONS:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSS_OPTIONS)}")


def check_options(name: str, options: Mapping[str, float]) -> None:
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
