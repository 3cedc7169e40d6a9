"""MLflow, and only here: one run per pipeline invocation, the encoder logged and registered under an alias.

``Tracker`` is the one boundary: the job starts a run and logs pairs, evaluation and the model through it,
training workers log their epochs through a copy of it, and ``drlim embed`` / ``drlim models`` load and
promote models through it. The outage policy lives here too:

- before any work, an HTTP tracking server must answer its health check (``check_server``);
- a worker's per-epoch logging is best effort (one retry, 10 s timeout, a warning): the checkpoint keeps every
  number, and the job logs the epochs a run lacks at the end (``log_missing_epochs``);
- what a run cannot do without (evaluation, the model) is logged inside ``required``: any MLflow failure
  there becomes one ``TrackingError`` that says how to recover;
- closing the run is best effort, so a lost server never hides the error that ended the run (``run``: the one
  lifecycle of a run, which ``drlim run``, ``drlim tune`` and its trials share).

The model is logged in MLflow's ``pt2`` format (``torch.export``): it loads without unpickling code and
without this project installed, e.g. ``mlflow.pyfunc.load_model("models:/NAME@ALIAS").predict(images)``
with ``images`` float32 ``(n, 1, 28, 28)`` in [0, 1].
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric

from pipeline.errors import TrackingError, first_line
from pipeline.infrastructure.atomic import exclusive
from pipeline.infrastructure.process_env import environment

log = logging.getLogger(__name__)


def _param_value(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _mlflow_type(arrow_type: Any) -> str:
    """An MLflow column type for an embeddings column (a fixed-size list is a binary blob to MLflow's schema)."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "long"
    return "string" if pa.types.is_string(arrow_type) else "binary"


@dataclass(frozen=True)
class ModelInput:
    """What a logged model takes, as its signature says: ``shape`` of one sample (None: no signature, or not one
    tensor of fixed size) and the numpy ``dtype``; ``uri`` pins the model itself (``models:/m-<id>``)."""

    uri: str
    shape: tuple[int, ...] | None
    dtype: str


@dataclass
class Tracker:
    """A tracking store (``uri``) and, once started or attached, one run in it. Plain data: Ray ships a copy
    of it to every training worker."""

    uri: str
    artifact_root: Path | None = None  # where a local store keeps artifacts; None: the server decides
    run_id: str | None = None

    def check_server(self, timeout: float = 5.0) -> None:
        """Fail fast, before any work, when an HTTP tracking server does not answer its health check; create a
        local sqlite store first thing, one run at a time (two runs starting together in a fresh workdir would
        both create its tables, and one would fail)."""
        if self.uri.startswith("sqlite:///"):
            database = Path(self.uri.removeprefix("sqlite:///"))
            waiting = f"Waiting for another run that is creating the MLflow store {database}"
            with exclusive(database.parent, "mlflow-store", waiting):
                self._client().search_experiments(max_results=1)  # creates and upgrades the tables if needed
            return
        if not self.uri.startswith(("http://", "https://")):
            return
        try:
            with urllib.request.urlopen(self.uri.rstrip("/") + "/health", timeout=timeout) as response:
                if response.status == 200:
                    return
                problem = f"HTTP {response.status}"
        except Exception as exc:
            problem = f"{exc.__class__.__name__}: {exc}"
        raise TrackingError(
            f"MLflow tracking server {self.uri} is not reachable ({problem}). Start it, fix MLFLOW_TRACKING_URI, "
            f"or unset MLFLOW_TRACKING_URI to use a local sqlite store in the working directory"
        )

    def _client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def start_run(
        self, experiment: str, run_name: str, params: dict[str, Any], parent_run_id: str | None = None
    ) -> str:
        """Start (and make active in this process) the run of this invocation, with ``params`` logged; a child of
        ``parent_run_id`` when given (a ``drlim tune`` trial)."""
        mlflow.set_tracking_uri(self.uri)
        client = self._client()
        found = client.get_experiment_by_name(experiment)
        location = self.artifact_root.resolve().as_uri() if self.artifact_root is not None else None
        experiment_id = found.experiment_id if found else client.create_experiment(experiment, location)
        self.run_id = mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, parent_run_id=parent_run_id
        ).info.run_id
        self.log_params(params)
        return self.run_id

    @contextlib.contextmanager
    def run(
        self, experiment: str, run_name: str, params: dict[str, Any], parent_run_id: str | None = None
    ) -> Iterator[str]:
        """One run for the block (``start_run``), its id yielded; it ends FINISHED when the block completes and
        FAILED when it raises (``end_run``: best effort, so a lost server never hides the error that ended it)."""
        run_id = self.start_run(experiment, run_name, params, parent_run_id)
        status = "FAILED"
        try:
            yield run_id
            status = "FINISHED"
        finally:
            self.end_run(status)

    def log_params(self, params: dict[str, Any]) -> None:
        mlflow.log_params({k: _param_value(v) for k, v in params.items()})

    def end_run(self, status: str) -> None:
        """End the active run; when the server is gone, say so and go on (the caller reports the real problem)."""
        # A store that cannot be written (a full disk) makes MLflow's database layer log the whole traceback
        # before it raises; the one line below says it instead.
        store_log = logging.getLogger("mlflow.store.db.utils")
        level = store_log.level
        store_log.setLevel(logging.CRITICAL)
        try:
            mlflow.end_run(status)
        except Exception as exc:
            log.warning("Could not close the MLflow run (%s)", first_line(exc))
        finally:
            store_log.setLevel(level)

    @contextlib.contextmanager
    def required(self, done: str, recovery: str) -> Iterator[None]:
        """Logging the run cannot do without: an MLflow failure inside becomes one ``TrackingError`` saying what
        was ``done``, what failed, and ``recovery`` (what is safe, and how to log it again)."""
        try:
            yield
        except Exception as exc:
            raise TrackingError(
                f"{done} but logging to MLflow ({self.uri}) failed: {first_line(exc)}. {recovery}"
            ) from None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)

    def log_pairs(self, manifest: dict[str, Any], n_samples: int) -> None:
        """The pair manifest as an artifact; counts (and kNN recall when measured) as metrics."""
        mlflow.log_dict(manifest, "pairs/manifest.json")
        metrics = {
            "pairs/similar": manifest["similar_pairs"],
            "pairs/dissimilar_implicit": manifest["dissimilar_pairs_implicit"],
            "pairs/n_samples": n_samples,
        }
        recall = manifest.get("knn", {}).get("recall_at_k")
        if recall is not None:
            metrics["pairs/knn_recall"] = recall
        self.log_metrics(metrics)

    def for_workers(self) -> Tracker | None:
        """What training workers log their epochs through: this store and run, as plain data (None: no run)."""
        return Tracker(self.uri, run_id=self.run_id) if self.run_id else None

    def log_epoch(self, metrics: dict[str, float], epoch: int, prefix: str = "train") -> None:
        """``<prefix>/<name>`` metrics at step ``epoch``, from any process; best effort (see the module doc)."""
        if self.run_id is None:
            return
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # don't stall training for minutes
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        try:
            now = int(time.time() * 1000)
            self._client().log_batch(
                self.run_id, metrics=[Metric(f"{prefix}/{k}", float(v), now, epoch) for k, v in metrics.items()]
            )
        except Exception as exc:
            log.warning("Could not log epoch %d metrics to MLflow (%s); training goes on", epoch, first_line(exc))

    def log_missing_epochs(self, history: list[dict[str, float]]) -> None:
        """Log the epochs of ``history`` the run lacks: epochs restored from a checkpoint of an earlier
        invocation, or lost to a tracking outage."""
        assert self.run_id is not None, "log_missing_epochs logs into a started run"
        logged = {m.step for m in self._client().get_metric_history(self.run_id, "train/loss")}
        for entry in history:  # validation scores are kept as val_<name>
            if int(entry["epoch"]) not in logged:
                named = {f"val/{k[4:]}" if k.startswith("val_") else f"train/{k}": v for k, v in entry.items()}
                self.log_metrics(named, step=int(entry["epoch"]))

    def log_evaluation(
        self, metrics: dict[str, float], files: dict[str, Path], validation: dict[str, float] | None = None
    ) -> None:
        """``test/<name>`` and ``val/<name>`` metrics; the embeddings under ``embeddings/``, pictures under
        ``plots/``."""
        self.log_metrics(
            {**{f"test/{k}": v for k, v in metrics.items()}, **{f"val/{k}": v for k, v in (validation or {}).items()}}
        )
        for key, path in files.items():
            mlflow.log_artifact(str(path), artifact_path="embeddings" if key == "embeddings" else "plots")

    def log_embeddings_folder(self, folder: Path, name: str) -> None:
        """The folder of every row's embeddings as the run's dataset input (context ``embeddings``): its location,
        a digest of its parts and its schema, not a copy of the rows (``mlflow.log_input``)."""
        import hashlib

        import pyarrow.parquet as pq
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types import ColSpec, Schema

        parts = sorted(folder.glob("*.parquet"))
        digest = hashlib.sha256("".join(f"{p.name}:{p.stat().st_size};" for p in parts).encode()).hexdigest()[:16]
        schema = pq.read_schema(parts[0])
        columns = Schema([ColSpec(_mlflow_type(schema.field(c).type), c) for c in schema.names])
        with warnings.catch_warnings():  # MLflow registers its local-folder source twice, and says so
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str(folder.resolve()))
        dataset = MetaDataset(source, name=name, digest=digest, schema=columns)  # type: ignore[abstract]
        try:
            mlflow.log_input(dataset, context="embeddings")
        except Exception as error:  # two runs of one job log the same folder: the store looks, then inserts
            if "UNIQUE constraint" not in str(error):
                raise
            mlflow.log_input(dataset, context="embeddings")  # the other run's row is there now: it is reused

    def log_model(self, model: Any, example: np.ndarray, registered_name: str, alias: str) -> tuple[str, str]:
        """Log ``model`` (a torch module) to the run with a signature, register it and point ``alias`` at the
        new version. Returns ``(version, "models:/NAME@ALIAS")``. Works in any process (a Ray task: the export
        takes a few hundred MB the driver need not hold), the run named by its id."""
        import torch
        from mlflow.models import infer_signature

        assert self.run_id is not None, "log_model logs into a started run"
        mlflow.set_tracking_uri(self.uri)
        model = model.cpu().eval()
        with torch.no_grad():
            output = model(torch.from_numpy(example)).numpy()
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            serialization_format="pt2",
            registered_model_name=registered_name,
            # The defaults (pinned torch, cloudpickle) name what a pt2 graph needs; left out, MLflow infers them
            # by reloading the model in a subprocess, which costs ~6 s a model.
            pip_requirements=mlflow.pytorch.get_default_pip_requirements(),
            run_id=self.run_id,
        )
        version = str(info.registered_model_version)
        self._client().set_registered_model_alias(registered_name, alias, version)
        log.info("Registered %s version %s with alias @%s", registered_name, version, alias)
        return version, f"models:/{registered_name}@{alias}"

    def load_model(self, model_uri: str, check_requirements: bool = True) -> Any:
        """A registered or logged model as an MLflow pyfunc (``.predict(array)``); errors say what to check.
        ``check_requirements=False`` skips MLflow's warning about pip requirements of the model that this
        environment lacks (~2 s: it maps every installed package), for the many actors of ``drlim embed``."""
        mlflow.set_tracking_uri(self.uri)
        try:
            return mlflow.pyfunc.load_model(model_uri, suppress_warnings=not check_requirements)
        except Exception as exc:
            raise TrackingError(
                f"could not load model {model_uri} from {self.uri}: {first_line(exc)}. Check the name and alias "
                f"(e.g. models:/drlim-mnist-4-9@champion) and MLFLOW_TRACKING_URI"
            ) from None

    def load_torch_model(self, model_uri: str) -> Any:
        """A registered or logged model as the torch module it was logged as (a ``torch.export`` graph module);
        errors say what to check."""
        mlflow.set_tracking_uri(self.uri)
        try:
            return mlflow.pytorch.load_model(model_uri, map_location="cpu")
        except Exception as exc:
            raise TrackingError(
                f"could not load model {model_uri} from {self.uri}: {first_line(exc)}. Check the name and alias "
                f"(e.g. models:/drlim-mnist-4-9@champion) and MLFLOW_TRACKING_URI"
            ) from None

    def model_input(self, model_uri: str) -> ModelInput:
        """What ``model_uri`` takes, from its signature (its ``MLmodel`` file only: the weights stay where they are),
        and the URI of that very model, so that every process loads the same one even if the alias moves."""
        mlflow.set_tracking_uri(self.uri)
        try:
            info = mlflow.models.get_model_info(model_uri)
        except Exception as exc:
            raise TrackingError(
                f"could not load model {model_uri} from {self.uri}: {first_line(exc)}. Check the name and alias "
                f"(e.g. models:/drlim-mnist-4-9@champion) and MLFLOW_TRACKING_URI"
            ) from None
        # A registry URI resolves to the model's own (models:/m-<id>); a path or runs:/ URI is one model already.
        pinned = model_uri.startswith("models:/") and str(info.model_uri).startswith("models:/")
        uri = info.model_uri if pinned else model_uri
        inputs = info.signature.inputs if info.signature is not None else None
        if inputs is None or not inputs.is_tensor_spec() or len(inputs.inputs) != 1:
            return ModelInput(uri, None, "float32")  # no tensor to match: the features go as they are
        spec = inputs.inputs[0]
        dims = tuple(int(d) for d in spec.shape[1:])  # the first is the batch (-1)
        return ModelInput(uri, dims if dims and min(dims) > 0 else None, np.dtype(spec.type).name)

    def run_of_model(self, model_uri: str) -> str:
        """The id of the run that logged ``model_uri`` (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``,
        ``runs:/``)."""
        mlflow.set_tracking_uri(self.uri)
        try:
            run_id = mlflow.models.get_model_info(model_uri).run_id
        except Exception as exc:
            raise TrackingError(
                f"could not find model {model_uri} in {self.uri}: {first_line(exc)}. Check the name and alias "
                f"(e.g. models:/drlim-mnist-4-9@champion) and MLFLOW_TRACKING_URI"
            ) from None
        if not run_id:
            raise TrackingError(f"model {model_uri} was not logged by a run; give its run id instead")
        return str(run_id)

    def download_run_files(self, run_id: str, paths: list[str], out: Path) -> dict[str, Path]:
        """The artifacts ``paths`` of run ``run_id`` that it has, downloaded under ``out`` (path -> local copy)."""
        client = self._client()
        try:
            client.get_run(run_id)
        except Exception as exc:
            raise TrackingError(
                f"no run {run_id} in {self.uri} ({first_line(exc)}); check the id (drlim run prints it) and "
                f"MLFLOW_TRACKING_URI or --workdir"
            ) from None
        found = {}
        quiet = {
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        }
        with environment(quiet):  # a few small files: no progress bar per file (a user's setting still wins)
            for path in paths:
                folder = path.rpartition("/")[0]
                if path in {a.path for a in client.list_artifacts(run_id, folder or None)}:
                    found[path] = Path(client.download_artifacts(run_id, path, str(out)))
        return found

    def promote(self, name: str, version: str, alias: str) -> None:
        """Point ``alias`` of registered model ``name`` at ``version``; errors name what exists instead."""
        from pydantic import ValidationError

        from pipeline.config import TrackingConfig

        try:
            TrackingConfig(alias=alias)
        except ValidationError as exc:
            raise TrackingError(f"alias {alias!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        self.check_server()
        client = self._client()
        try:
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        except Exception as exc:
            raise TrackingError(f"could not list versions of {name!r} at {self.uri}: {first_line(exc)}") from None
        if not versions:
            known = sorted(m.name for m in client.search_registered_models())
            raise TrackingError(f"no registered model {name!r} at {self.uri}; registered models: {known or 'none'}")
        if not version.isdigit() or int(version) not in versions:
            raise TrackingError(f"{name!r} has no version {version!r}; its versions are {versions}")
        client.set_registered_model_alias(name, alias, version)
        log.info("Alias @%s of %s now points at version %s", alias, name, version)
