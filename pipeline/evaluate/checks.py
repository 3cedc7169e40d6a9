"""What the evaluate stage needs of a store, checked before training: import-light (no scikit-learn or torch), for
the driver."""

from __future__ import annotations

from pipeline.config import EvaluateConfig
from pipeline.data.store import SampleStore
from pipeline.errors import DataError


def check_evaluate_config(cfg: EvaluateConfig, store: SampleStore) -> None:
    """Refuse, before training, metrics the held-out samples are too few for; the error names the keys.

    The test split must take every metric. A small validation split needs only what chooses (trustworthiness at
    the first k, k-NN accuracy); ``score`` leaves out a larger k it cannot take."""
    copies = sum(len(v) for v in (store.manifest.get("provenance", {}).get("transforms") or {}).values())
    checks = (
        (
            store.held_out_split,
            max(cfg.trustworthiness_k),
            "add held-out samples (data.test_path, data.test_per_digit)",
        ),
        ("validation", cfg.trustworthiness_k[0], "raise evaluate.validation"),
    )
    for split, k, fix in checks:
        n = store.manifest["splits"].get(split, 0) // (1 + copies)  # the metrics score the originals
        if split == "validation" and n == 0:
            continue
        need = max(2 * k, cfg.knn_k)
        if n <= need:
            raise DataError(
                f"evaluate.trustworthiness_k={cfg.trustworthiness_k} and evaluate.knn_k={cfg.knn_k} need more than "
                f"{need} samples in the {split} split, and it has {n}; {fix} or lower those k"
            )
