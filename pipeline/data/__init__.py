"""Data stage: ingest a source once into the sample store.

``ingestion.py`` runs the stage; ``store.py`` holds the schema; ``mnist.py``, ``norb.py`` and ``files.py``
read the sources; ``transforms.py`` makes transformed copies; ``catalog.py`` and ``paths.py`` are what the
job configuration checks against (import-light).
"""

from pipeline.lazy import lazy_exports

__all__ = ["SampleStore", "ingest"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "SampleStore": "pipeline.data.store",
    "ingest": "pipeline.data.stage",
})
