"""Data stage: ingest a source once into the sample store.

``stage.py`` runs the stage; ``sources.py`` holds what every data source offers (parts, read one at a time) and
``mnist.py``, ``norb.py`` and ``files.py`` are the sources; ``layout.py`` plans the ids and a part's shards;
``store.py`` holds the schema and the reader; ``formats.py`` reads Parquet/NumPy files (the data stage and
``drlim embed`` alike) and ``listing.py`` finds them; ``transforms.py`` makes transformed copies.
"""

from pipeline.lazy import lazy_exports

__all__ = ["SampleStore", "ingest"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SampleStore": "pipeline.data.store",
        "ingest": "pipeline.data.stage",
    },
)
