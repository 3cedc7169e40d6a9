"""drlim: Dimensionality Reduction by Learning an Invariant Mapping, as a Ray + MLflow pipeline.

Stages (one package each): ``data`` (sample store) -> ``pairs`` (similar pairs + lazy negatives)
-> ``train`` (Ray Train) -> ``evaluate`` (embeddings, metrics, plots); ``tracking`` talks to MLflow.
"""

__version__ = "0.1.0"
