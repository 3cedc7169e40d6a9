"""``drlim models promote``: point an alias of a registered model at one of its versions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.infrastructure.runtime import resolve_tracking_uri

if TYPE_CHECKING:
    from pipeline.infrastructure.tracking import Tracker


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "models",
        help="manage registered models (promote a version to an alias)",
        description="Registered models in the MLflow store ($MLFLOW_TRACKING_URI, else WORKDIR/mlflow.db).",
    )
    actions = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    q = actions.add_parser(
        "promote",
        help="point an alias at a model version",
        description="Move ALIAS of registered model NAME to VERSION, e.g. "
        "drlim models promote drlim-mnist-4-9 3 --alias production.",
    )
    q.add_argument("name", help="registered model name")
    q.add_argument("version", help="model version number")
    q.add_argument("--alias", required=True, help="alias to move, e.g. champion or production")
    q.add_argument("--workdir", help="where the default MLflow store lives (default: current directory)")
    q.set_defaults(func=promote)


def tracker(workdir: str | None) -> Tracker:
    """The MLflow store of ``workdir`` (default: here), or ``$MLFLOW_TRACKING_URI``."""
    from pipeline.infrastructure.tracking import Tracker

    return Tracker(resolve_tracking_uri(Path(workdir or ".").resolve()))


def promote(args: argparse.Namespace) -> None:
    tracker(args.workdir).promote(args.name, args.version, args.alias)
    print(f"models:/{args.name}@{args.alias} -> version {args.version}")
