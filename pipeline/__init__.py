"""drlim: Dimensionality Reduction by Learning an Invariant Mapping, as a Ray + MLflow pipeline.

Stages (one package each): ``data`` (sample store) -> ``pairs`` (similar pairs + lazy negatives)
-> ``train`` (Ray Train) -> ``evaluate`` (embeddings, metrics, plots); ``embed`` maps any samples through a
registered model; ``infrastructure.tracking`` talks to MLflow. From Python: ``from pipeline import DrLIM``, a
scikit-learn estimator over the same stages (``estimator/``).
"""

__version__ = "0.1.0"

import logging as _logging

# faiss logs each failed attempt to load an AVX build at INFO, which reads like an error in every worker.
_logging.getLogger("faiss.loader").setLevel(_logging.WARNING)

from pipeline.lazy import lazy_exports  # noqa: E402  (after the logging setting above)

__all__ = ["DrLIM"]
__getattr__, __dir__ = lazy_exports(__name__, {"DrLIM": "pipeline.estimator.estimator"})
