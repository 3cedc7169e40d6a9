"""Siamese encoders G_W and their losses (``encoders.losses``). Knows nothing of Ray or MLflow.

Encoders are built by name (``registry.py``: ``build_encoder("lenet", output_dim=2, input_shape=(1, 28, 28))``);
the choices of encoders and losses and their options are listed in ``catalog.py``, which imports nothing
heavy, so the job configuration can check them without torch. Names below are imported on first use (PEP 562),
for the same reason.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ENCODER_OPTIONS": "encoders.catalog",
    "check_options": "encoders.catalog",
    "encoder_options": "encoders.catalog",
    "ENCODERS": "encoders.registry",
    "build_encoder": "encoders.registry",
    "LeNetEncoder": "encoders.lenet",
    "MLPEncoder": "encoders.mlp",
    "ResNetEncoder": "encoders.resnet",
    "DEFAULT_LOSS": "encoders.catalog",
    "LOSS_OPTIONS": "encoders.catalog",
    "LOSSES": "encoders.losses",
    "build_loss": "encoders.losses",
    "contrastive_loss": "encoders.losses",
    "contrastive_loss_terms": "encoders.losses",
    "pair_distance": "encoders.losses",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'encoders' has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(_EXPORTS[name]), name)
    return value
