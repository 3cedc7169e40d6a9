"""What a job may choose in its ``pairs`` section (import-light: the job configuration reads it at load time).

The FAISS index backends themselves are in ``knn.py``; each takes its defaults from ``INDEX_OPTIONS``.
"""

from __future__ import annotations

# name -> option -> default (None: derived from the data when the index is built, see knn.py)
INDEX_OPTIONS: dict[str, dict[str, int | None]] = {
    "flat": {},
    "ivf": {"nlist": None, "nprobe": 8, "train_size": None},
    "hnsw": {"m": 32, "ef_construction": 80, "ef_search": 64},
}


def check_index_options(name: str, options: dict[str, int | None] | None = None) -> dict[str, int | None]:
    """The options of index ``name`` with defaults filled in; ``ValueError`` names the valid choices."""
    if name not in INDEX_OPTIONS:
        raise ValueError(f"unknown index {name!r}; choose one of {sorted(INDEX_OPTIONS)}")
    defaults, options = INDEX_OPTIONS[name], options or {}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"index {name!r} has no option(s) {unknown}; valid options: {sorted(defaults) or 'none'}")
    bad = {k: v for k, v in options.items()
           if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1)}
    if bad:
        raise ValueError(f"index {name!r} options must be positive integers, got {bad}")
    return {**defaults, **options}
