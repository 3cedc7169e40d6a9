"""drlim: Dimensionality Reduction by Learning an Invariant Mapping, as a Ray + MLflow pipeline.

Stages (one package each): ``data`` (sample store) -> ``pairs`` (similar pairs + lazy negatives)
-> ``train`` (Ray Train) -> ``evaluate`` (embeddings, metrics, plots); ``tracking`` talks to MLflow.
"""

__version__ = "0.1.0"

import logging as _logging

# faiss logs each failed attempt to load an AVX build at INFO, which reads like an error in every worker.
_logging.getLogger("faiss.loader").setLevel(_logging.WARNING)
