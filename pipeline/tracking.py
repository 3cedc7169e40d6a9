"""MLflow: one run per pipeline invocation, the encoder logged with a signature and registered under an alias.

The model is logged in MLflow's ``pt2`` format (``torch.export``): it loads without unpickling code and
without this project installed, e.g. ``mlflow.pyfunc.load_model("models:/NAME@ALIAS").predict(images)``
with ``images`` float32 ``(n, 1, 28, 28)`` in [0, 1].
"""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.models import infer_signature

from pipeline.errors import TrackingError, first_line

log = logging.getLogger(__name__)


def check_tracking_server(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before any work, when an HTTP tracking server does not answer its health check."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except Exception as exc:
        problem = f"{exc.__class__.__name__}: {exc}"
    raise TrackingError(
        f"MLflow tracking server {uri} is not reachable ({problem}). Start it, fix MLFLOW_TRACKING_URI, "
        f"or unset MLFLOW_TRACKING_URI to use a local sqlite store in the working directory"
    )


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = artifact_root.resolve().as_uri() if artifact_root is not None else None
    return client.create_experiment(name, artifact_location=location)


def _param_value(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def start_run(tracking_uri: str, experiment: str, artifact_root: Path | None, run_name: str, params: dict[str, Any]):
    """Start (and make active) the run of this invocation, with the flattened job configuration as params."""
    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = ensure_experiment(MlflowClient(tracking_uri), experiment, artifact_root)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
    mlflow.log_params({k: _param_value(v) for k, v in params.items()})
    return run


def end_run(status: str) -> None:
    """End the active run; when the server is gone, say so and go on (the caller reports the real problem)."""
    try:
        mlflow.end_run(status)
    except Exception as exc:
        log.warning("Could not close the MLflow run (%s)", first_line(exc))


def log_encoder(model: torch.nn.Module, example: np.ndarray, registered_name: str, alias: str) -> tuple[str, str]:
    """Log ``model`` to the active run, register it and point ``alias`` at the new version.

    Returns ``(version, "models:/NAME@ALIAS")``.
    """
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
    )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(registered_name, alias, version)
    log.info("Registered %s version %s with alias @%s", registered_name, version, alias)
    return version, f"models:/{registered_name}@{alias}"


def log_missing_epochs(run_id: str, history: list[dict[str, float]]) -> None:
    """Log the epochs of ``history`` that the run lacks: rank 0 logs live, but epochs restored from a
    checkpoint of an earlier invocation (or lost to a tracking outage) would otherwise be missing."""
    client = MlflowClient()
    logged = {m.step for m in client.get_metric_history(run_id, "train/loss")}
    for entry in history:
        epoch = int(entry["epoch"])
        if epoch not in logged:
            mlflow.log_metrics({f"train/{k}": float(v) for k, v in entry.items()}, step=epoch)


def promote(tracking_uri: str, name: str, version: str, alias: str) -> None:
    """Point ``alias`` of registered model ``name`` at ``version``; errors name what exists instead."""
    from pydantic import ValidationError

    from pipeline.config import TrackingConfig

    try:
        TrackingConfig(alias=alias)
    except ValidationError as exc:
        raise TrackingError(f"alias {alias!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    check_tracking_server(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    except Exception as exc:
        raise TrackingError(f"could not list versions of {name!r} at {tracking_uri}: {exc}") from None
    if not versions:
        known = sorted(m.name for m in client.search_registered_models())
        raise TrackingError(f"no registered model {name!r} at {tracking_uri}; registered models: {known or 'none'}")
    if not version.isdigit() or int(version) not in versions:
        raise TrackingError(f"{name!r} has no version {version!r}; its versions are {versions}")
    client.set_registered_model_alias(name, alias, version)
    log.info("Alias @%s of %s now points at version %s", alias, name, version)
