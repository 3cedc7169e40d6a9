"""Evaluate stage: held-out embeddings as Parquet, metrics and pictures.

``evaluation.py`` runs the stage; ``scoring.py`` scores an embedding of test or validation samples;
``embeddings.py`` holds the embeddings schema; ``inference.py`` maps samples through an encoder; ``metrics.py``
and ``plots.py`` compute and draw.
"""

from pipeline.lazy import lazy_exports

__all__ = [
    "EMBEDDINGS_SCHEMA_VERSION",
    "Evaluation",
    "HeldOut",
    "check_evaluate_config",
    "embed",
    "embeddings_table",
    "evaluate",
    "invariance_ratio",
    "knn_accuracy",
    "score",
    "trustworthiness",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EMBEDDINGS_SCHEMA_VERSION": "pipeline.evaluate.embeddings",
        "embeddings_table": "pipeline.evaluate.embeddings",
        "Evaluation": "pipeline.evaluate.stage",
        "evaluate": "pipeline.evaluate.stage",
        "HeldOut": "pipeline.evaluate.scoring",
        "check_evaluate_config": "pipeline.evaluate.checks",
        "score": "pipeline.evaluate.scoring",
        "embed": "pipeline.evaluate.inference",
        "invariance_ratio": "pipeline.evaluate.metrics",
        "knn_accuracy": "pipeline.evaluate.metrics",
        "trustworthiness": "pipeline.evaluate.metrics",
    },
)
