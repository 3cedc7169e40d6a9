"""``DrLIM``: the pipeline as a scikit-learn estimator, for notebooks and ``sklearn.pipeline.Pipeline``.

    from pipeline import DrLIM
    embedding = DrLIM().fit_transform(X)        # X: (n, ...) samples; embedding: (n, 2)
    DrLIM().fit(X).transform(X_new)             # a function: it maps samples it never saw

Underneath is what ``drlim run`` runs: the sample store, the pair stage (kNN, transformation, prior and label
pairs), the training core. A job file (``recipe``: a shipped recipe's name or a path, by default
``jobs/neighbour_embedding.yaml``) gives every setting; the constructor's arguments override the ones people tune
most, ``settings`` any other (``{"train.input_noise": 0.3}``). Small inputs are fitted in this process (no Ray, no
workdir left behind); large ones, or ``backend="ray"``, on Ray (a local instance, or ``RAY_ADDRESS``'s cluster).
With the same seed (``random_state``), a fit in this process trains exactly what ``drlim run`` of the equivalent
job (``job_``) trains.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from pipeline.config import JobConfig, load_job
from pipeline.errors import ConfigError, DataError
from pipeline.estimator.samples import as_table_or_array, file_source, is_files, labels_of
from pipeline.infrastructure.process_env import environment

log = logging.getLogger(__name__)

JOBS = Path(__file__).resolve().parents[2] / "jobs"
DEFAULT_RECIPE = "neighbour_embedding"
# Above this much of features a fit goes to Ray (backend "auto"): below it, one process with every core trains as
# fast as Ray Train's workers on one machine, without Ray's start.
IN_PROCESS_BYTES = 1 << 30


def recipe_path(recipe: str | os.PathLike | None) -> Path:
    """The job file of ``recipe``: a shipped recipe's name (``jobs/NAME.yaml``) or a path; None: the default."""
    name = os.fspath(recipe) if recipe is not None else DEFAULT_RECIPE
    shipped = JOBS / f"{name}.yaml"
    if "/" not in name and not name.endswith((".yaml", ".yml")):
        if not shipped.is_file():
            known = sorted(p.stem for p in JOBS.glob("*.yaml"))
            raise ConfigError(f"recipe {name!r}: no such shipped recipe; choose one of {known} or give a job file")
        return shipped
    return Path(name).expanduser()


class DrLIM(TransformerMixin, BaseEstimator):
    """A learned, out-of-sample map of samples to ``n_components`` dimensions (Hadsell, Chopra, LeCun 2006).

    Parameters left at None take the recipe's value. ``fit(X, y)`` uses ``y`` as prior knowledge: each labelled
    sample is also similar to ``n_neighbors`` others of its label (-1 or None: unlabelled, left to the kNN graph).
    ``X`` may be an array ``(n, ...)``, a pandas/pyarrow table (the ``feature_column`` list column, else numeric
    columns) or files (a path, folder, glob or URI of Parquet/NumPy files; then ``y`` may name their label column).
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        recipe: str | None = None,
        n_neighbors: int | None = None,
        loss: str | None = None,
        encoder: str | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        settings: dict[str, Any] | None = None,
        feature_column: str = "features",
        random_state: int | None = None,
        backend: str = "auto",
        tracking: bool | str = False,
        workdir: str | None = None,
        verbose: bool = True,
    ) -> None:
        self.n_components = n_components
        self.recipe = recipe
        self.n_neighbors = n_neighbors
        self.loss = loss
        self.encoder = encoder
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.settings = settings
        self.feature_column = feature_column
        self.random_state = random_state
        self.backend = backend
        self.tracking = tracking
        self.workdir = workdir
        self.verbose = verbose

    # -- the job -------------------------------------------------------------------------------------------------

    def resolve_job(self, overrides: dict[str, Any] | None = None) -> JobConfig:
        """The job this estimator runs: the recipe with the constructor's settings (and ``overrides``) on top."""
        chosen = {
            "encoder.output_dim": self.n_components,
            "pairs.k": self.n_neighbors,
            "train.loss": self.loss,
            "encoder.name": self.encoder,
            "train.epochs": self.epochs,
            "train.batch_size": self.batch_size,
            "train.lr": self.learning_rate,
            "seed": self.random_state,
        }
        given = {**{k: v for k, v in chosen.items() if v is not None}, **(self.settings or {}), **(overrides or {})}
        return load_job(recipe_path(self.recipe), [f"{key}={json.dumps(value)}" for key, value in given.items()])

    # -- fitting --------------------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> DrLIM:
        """Learn the map from ``X`` (and, when given, the labels ``y`` as prior-knowledge pairs)."""
        from pipeline.data.sources import PartSamples
        from pipeline.data.stage import ingest, ingest_arrays

        with _verbosity(self.verbose), self._workdir() as workdir:
            seed = self.random_state if self.random_state is not None else int(np.random.default_rng().integers(2**31))
            overrides: dict[str, Any] = {"seed": seed}
            if is_files(X):
                label_column = y if isinstance(y, str) else None  # files: y names their label column
                overrides["data"] = {**file_source(X), "label_column": label_column, **self._data_settings()}
                job = self._adapted(self.resolve_job(overrides), labelled=isinstance(y, str))
                store = ingest(job.data, Path.cwd(), workdir, job.evaluate.validation)
                self.input_shape_ = tuple(store.feature_shape)
                self.n_features_in_ = math.prod(self.input_shape_)
            else:
                features = self._validated(X, reset=True)
                labels = labels_of(y, len(features)) if y is not None else np.full(len(features), -1)
                job = self._adapted(self.resolve_job(overrides), labelled=bool((labels >= 0).any()), n=len(features))
                shape = tuple(job.data.feature_shape) if job.data.feature_shape else features.shape[1:]
                self.input_shape_ = tuple(int(d) for d in shape)
                samples = PartSamples(
                    features.reshape(len(features), *self.input_shape_), labels, np.arange(len(features))
                )
                store = ingest_arrays({"train": samples}, job.data, workdir, job.evaluate.validation)
            self._fit_store(job, store, workdir)
        return self

    def _data_settings(self) -> dict[str, Any]:
        return {k.split(".", 1)[1]: v for k, v in (self.settings or {}).items() if k.startswith("data.")}

    def _adapted(self, job: JobConfig, labelled: bool, n: int | None = None) -> JobConfig:
        """``job`` as this fit runs it: label pairs when there are labels, as many neighbours as the samples allow,
        one training worker for a fit in this process (``train_in_process``)."""
        changes: dict[str, Any] = {}
        sources = [s for s in job.pairs.sources if s != "label"] + (["label"] if labelled else [])
        if sources != job.pairs.sources:
            changes["pairs.sources"] = sources
        if n is not None and job.pairs.k >= n - 1:
            changes["pairs.k"] = max(1, n - 2)
            log.warning(
                "n_neighbors=%d needs more samples than the %d given; using %d", job.pairs.k, n, changes["pairs.k"]
            )
        if not self._on_ray(n):
            changes |= {"train.num_workers": 1, "train.cpus_per_worker": len(os.sched_getaffinity(0))}
        return self.resolve_job({"seed": job.seed, "data": job.data.model_dump(), **changes}) if changes else job

    def _on_ray(self, n: int | None, nbytes: int | None = None) -> bool:
        if self.backend not in ("auto", "ray", "process"):
            raise ConfigError(f"backend={self.backend!r}: choose 'auto', 'process' (this process) or 'ray'")
        if self.backend != "auto":
            return self.backend == "ray"
        return bool(os.environ.get("RAY_ADDRESS")) or (nbytes or 0) > IN_PROCESS_BYTES

    def _validated(self, X: Any, reset: bool) -> np.ndarray:
        X = as_table_or_array(X, self.feature_column)
        if not reset and len(getattr(X, "shape", ())) > 2:
            # Samples with a shape of their own (images) to map: their size is checked against the fitted
            # input's in transform; scikit-learn's column count (X.shape[1]) would say nothing about them.
            return check_array(X, dtype=np.float32, allow_nd=True)
        features: np.ndarray = validate_data(
            self, X, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_samples=2 if reset else 1
        )
        return features

    @contextlib.contextmanager
    def _workdir(self) -> Iterator[Path]:
        if self.workdir is not None:
            yield Path(self.workdir).expanduser().resolve()
            return
        with tempfile.TemporaryDirectory(prefix="drlim-") as folder:  # nothing left behind
            yield Path(folder)

    def _fit_store(self, job: JobConfig, store: Any, workdir: Path) -> None:
        """The pair and train stages on ``store``, here or on Ray; tracked in MLflow when asked."""
        from pipeline.evaluate.inference import embed
        from pipeline.infrastructure.executor import InProcess, OnRay
        from pipeline.pairs.stage import build_pairs

        on_ray = self._on_ray(None, int(np.prod(store.feature_shape)) * 4 * store.manifest["rows"])
        tracker = self._tracker(workdir)
        with tracker.run(job.tracking.experiment, job.name, job.flat()) if tracker else contextlib.nullcontext():
            pairs = build_pairs(job.pairs, store, workdir, OnRay() if on_ray else InProcess())
            if tracker:
                tracker.log_pairs(pairs.manifest, pairs.n_samples)
            if on_ray:
                from pipeline.train.stage import train

                result = train(job, store, pairs, workdir, tracker)
            else:
                from pipeline.train.session import train_in_process

                result = train_in_process(job, store, pairs)
            self.validation_ = self._validation(result.model, store, job)
            _, example, _ = store.split("train")
            if tracker:
                with tracker.required("training finished", "fit again once the tracking server is back"):
                    tracker.log_missing_epochs(result.history)
                    tracker.log_metrics({f"val/{k}": v for k, v in self.validation_.items()})
                    self.model_version_, self.model_uri_ = tracker.log_model(
                        result.model, example[:8], job.tracking.registered_model, job.tracking.alias
                    )
        self.encoder_ = result.model
        self.job_ = job
        self.history_ = result.history
        self.embedding_ = embed(self.encoder_, store.split("train")[1], job.evaluate.batch_size)

    def _validation(self, model: Any, store: Any, job: JobConfig) -> dict[str, float]:
        """Scores on the held-out validation split, when the job holds one out (``evaluate.validation``)."""
        if not store.manifest["splits"].get("validation"):
            return {}
        from pipeline.evaluate.inference import embed
        from pipeline.evaluate.scoring import HeldOut, score

        held = HeldOut.load(store, "validation")
        return score(held, embed(model, held.features, job.evaluate.batch_size), job.evaluate)

    def _tracker(self, workdir: Path) -> Any:
        if self.tracking is False:
            return None
        from pipeline.infrastructure.runtime import resolve_tracking_uri
        from pipeline.infrastructure.tracking import Tracker

        if self.tracking is True:
            root = Path(self.workdir).expanduser().resolve() if self.workdir else Path.cwd()
            uri = resolve_tracking_uri(root)
            tracker = Tracker(uri, root / "mlartifacts" if uri.startswith("sqlite:") else None)
        else:
            tracker = Tracker(str(self.tracking))
        tracker.check_server()
        return tracker

    # -- mapping --------------------------------------------------------------------------------------------------

    def transform(self, X: Any) -> np.ndarray:
        """The map of ``X`` (samples of the shape it was fitted on), ``(n, n_components)`` float32."""
        from pipeline.evaluate.inference import embed

        check_is_fitted(self, "encoder_")
        with _verbosity(self.verbose):
            if is_files(X):
                features = _read_files(X, self.feature_column)
            else:
                features = self._validated(X, reset=False)
            if math.prod(features.shape[1:]) != math.prod(self.input_shape_):
                raise DataError(
                    f"X: samples of shape {list(features.shape[1:])}, but the map was fitted on "
                    f"{list(self.input_shape_)}"
                )
            return embed(self.encoder_, features.reshape(len(features), *self.input_shape_))

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit(X, y)``; the map of ``X`` (``embedding_``)."""
        return self.fit(X, y).embedding_

    @classmethod
    def from_registry(cls, model_uri: str, tracking_uri: str | None = None, **params: Any) -> DrLIM:
        """A fitted estimator whose ``transform`` is a registered model, e.g. ``models:/drlim-mnist-all@champion``
        (``tracking_uri``: the store; default ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``)."""
        from pipeline.infrastructure.runtime import resolve_tracking_uri
        from pipeline.infrastructure.tracking import Tracker

        tracker = Tracker(tracking_uri or resolve_tracking_uri(Path.cwd()))
        found = tracker.model_input(model_uri)
        if found.shape is None:
            raise DataError(
                f"{model_uri}: its signature does not say what one sample's shape is; log it with "
                f"drlim run (or DrLIM(tracking=True).fit)"
            )
        estimator = cls(**params)
        from encoders.portable import Exported

        estimator.encoder_ = Exported(tracker.load_torch_model(found.uri))
        estimator.input_shape_ = found.shape
        estimator.n_features_in_ = math.prod(found.shape)
        estimator.model_uri_ = model_uri
        return estimator

    # -- portability ---------------------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the encoder in the registry's portable form (``torch.export``), not as Python classes."""
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives the instance's own __dict__
        if "encoder_" in state:
            import torch

            from encoders.portable import export_encoder

            example = torch.zeros((2, *self.input_shape_), dtype=torch.float32)
            state["encoder_"] = export_encoder(self.encoder_, example)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("encoder_"), bytes):
            from encoders.portable import load_encoder

            state = {**state, "encoder_": load_encoder(state["encoder_"])}
        super().__setstate__(state)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the map is float32, whatever the input
        return tags


def _read_files(X: str | os.PathLike, feature_column: str) -> np.ndarray:
    """Every sample of the files ``X`` names, in path order (as ``data.path`` lists them)."""
    from pipeline.data.formats import read_samples
    from pipeline.data.listing import list_source

    files = list_source(file_source(X)["path"], "X", Path.cwd())
    return np.concatenate([read_samples(f, feature_column, None, None).features for f in files])


@contextlib.contextmanager
def _verbosity(verbose: bool) -> Iterator[None]:
    """Progress as the CLI shows it (this project's log lines, progress bars), or nothing but warnings."""
    from pipeline.infrastructure.runtime import LOG_FORMAT

    logger = logging.getLogger("pipeline")
    saved = logger.level
    handler = None
    if not verbose:
        logger.setLevel(logging.WARNING)
    elif not logger.handlers and not logging.getLogger().handlers:  # a notebook: nothing configured yet
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        with environment({} if verbose else {"TQDM_DISABLE": "1"}):
            yield
    finally:
        logger.setLevel(saved)
        if handler is not None:
            logger.removeHandler(handler)
