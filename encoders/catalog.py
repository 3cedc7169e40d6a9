"""The encoders a job may name and their options (import-light: the job configuration reads it at load time).

The encoder classes are in ``lenet.py``, ``mlp.py`` and ``resnet.py``; a test keeps this table equal to their
constructors' keyword options.
"""

from __future__ import annotations

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
