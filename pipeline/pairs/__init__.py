"""Pair stage: similar pairs from prior knowledge, written as Parquet shards; negatives stay implicit.

``similar.py`` runs the stage (sources, symmetrising, shards); ``knn.py`` searches FAISS in Ray tasks;
``prior.py`` and ``transforms.py`` are the other sources; ``shards.py`` holds the schema and the per-worker
reads; ``negatives.py`` draws dissimilar pairs lazily; ``catalog.py`` lists the index choices (import-light).
"""

from pipeline.lazy import lazy_exports

__all__ = ["NegativeSampler", "PairSet", "PairShare", "build_pairs", "check_pairs_config", "mutual_edges",
           "pairs_key", "similar_pairs"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "NegativeSampler": "pipeline.pairs.negatives",
    "PairSet": "pipeline.pairs.shards",
    "PairShare": "pipeline.pairs.shards",
    **{name: "pipeline.pairs.similar"
       for name in ("build_pairs", "check_pairs_config", "mutual_edges", "pairs_key", "similar_pairs")},
})
