"""The pipeline as a scikit-learn estimator (``DrLIM``): ``estimator.py`` holds it, ``samples.py`` reads what its
``fit`` and ``transform`` take (arrays, tables, files)."""

from pipeline.lazy import lazy_exports

__all__ = ["DrLIM"]
__getattr__, __dir__ = lazy_exports(__name__, {"DrLIM": "pipeline.estimator.estimator"})
