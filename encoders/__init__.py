"""Siamese encoders G_W and their losses (``encoders.losses``). Knows nothing of Ray or MLflow.

Encoders are built by name (``registry.py``: ``build_encoder("lenet", output_dim=2, input_shape=(1, 28, 28))``);
their names, classes and options are registered in ``pipeline/config/choices.py``, which imports nothing heavy,
so the job configuration checks them without torch. Names below are imported on first use (PEP 562), for the
same reason.
"""

from pipeline.lazy import lazy_exports

__all__ = [
    "LeNetEncoder",
    "MLPEncoder",
    "ResNetEncoder",
    "build_encoder",
    "build_loss",
    "contrastive_loss",
    "contrastive_loss_terms",
    "pair_distance",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "build_encoder": "encoders.registry",
        "LeNetEncoder": "encoders.lenet",
        "MLPEncoder": "encoders.mlp",
        "ResNetEncoder": "encoders.resnet",
        **dict.fromkeys(
            ("build_loss", "contrastive_loss", "contrastive_loss_terms", "pair_distance"), "encoders.losses"
        ),
    },
)
