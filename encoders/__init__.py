"""Siamese encoders G_W and their losses. Knows nothing of Ray or MLflow.

Encoders are built by name (``build_encoder("lenet", output_dim=2, input_shape=(1, 28, 28))``, ``registry.py``);
the choices and their options are listed in ``catalog.py``, which imports nothing heavy, so the job
configuration can check them without torch. Names below are imported on first use (PEP 562), for the same
reason.
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
    "contrastive_loss": "encoders.loss",
    "contrastive_loss_terms": "encoders.loss",
    "pair_distance": "encoders.loss",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'encoders' has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(_EXPORTS[name]), name)
    return value
