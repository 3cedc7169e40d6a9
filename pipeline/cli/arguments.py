"""Arguments several commands share: the job file and its overrides, where a run reads and writes, the Jobs API."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_job(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", type=Path, help="job file (YAML), e.g. jobs/mnist_4_9.yaml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a job field, e.g. --set train.epochs=3 (repeatable; value parsed as YAML)",
    )


def add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding MNIST/raw/ (overrides data.root and DRLIM_DATA_ROOT)")
    p.add_argument(
        "--workdir",
        help="where the sample store, pairs, checkpoints, runs and the default MLflow store "
        "go (default: current directory); a URI such as s3://bucket/prefix keeps the "
        "stores and checkpoints on object storage, each node reading its own copy",
    )


def add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        help="Jobs API of the head (default: $RAY_API_SERVER_ADDRESS, an http "
        "$RAY_ADDRESS, else http://127.0.0.1:8265)",
    )
