"""Pair stage: similar pairs from prior knowledge, written as Parquet shards; negatives stay implicit.

``similar.py`` runs the stage with Ray tasks and actors; ``knn.py`` holds the FAISS index backends and
``knn_parts.py`` the index in parts (one actor each); ``edges.py`` turns a query shard's neighbours into pair rows;
``prior.py`` and ``transforms.py`` are the other sources; ``shards.py`` holds the schema, the per-shard writer and
the per-worker reads; ``negatives.py`` draws dissimilar pairs lazily; ``catalog.py`` lists the index choices.
"""

from pipeline.lazy import lazy_exports

__all__ = ["NegativeSampler", "PairSet", "PairShare", "build_pairs", "check_pairs_config", "pairs_key"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "NegativeSampler": "pipeline.pairs.negatives",
    "PairSet": "pipeline.pairs.shards",
    "PairShare": "pipeline.pairs.shards",
    **{name: "pipeline.pairs.stage"
       for name in ("build_pairs", "check_pairs_config", "pairs_key")},
})
