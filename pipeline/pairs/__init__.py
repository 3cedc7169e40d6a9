"""Pair stage: similar pairs from prior knowledge, written as Parquet shards; negatives stay implicit.

``stage.py`` runs the stage with Ray tasks and actors; ``knn.py`` holds the FAISS index backends and
``knn_parts.py`` the index in parts (one actor each); ``pair_sources.py`` holds what a pair source offers, the kNN
source and a query shard's pair rows; ``prior.py`` and ``copies.py`` are the other sources; ``shards.py`` holds the
schema, the per-shard writer and the per-worker reads; ``negatives.py`` draws dissimilar pairs lazily.
"""

from pipeline.lazy import lazy_exports

__all__ = ["NegativeSampler", "PairSet", "PairShare", "build_pairs", "check_pairs_config", "pairs_key"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "NegativeSampler": "pipeline.pairs.negatives",
        "PairSet": "pipeline.pairs.shards",
        "PairShare": "pipeline.pairs.shards",
        **dict.fromkeys(("build_pairs", "check_pairs_config", "pairs_key"), "pipeline.pairs.stage"),
    },
)
