"""``drlim run`` (every stage of a job), ``drlim pairs`` (the data and pair stages) and ``drlim validate``."""

from __future__ import annotations

import argparse
import logging

import yaml

from pipeline.cli.arguments import add_job, add_runtime
from pipeline.infrastructure.runtime import resolve_runtime

log = logging.getLogger("drlim")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "run",
        help="run the whole pipeline: data, pairs, training, evaluation, registry",
        description="Run every stage of a job and record it as one MLflow run. Stages reuse "
        "verified outputs of identical earlier runs; training resumes from its "
        "last checkpoint.",
    )
    add_job(p)
    add_runtime(p)
    p.set_defaults(func=run, stop_after="all")

    p = commands.add_parser(
        "pairs",
        help="build the sample store and the similar-pair shards only",
        description="Ingest the data and write the pair shards and manifest, without training.",
    )
    add_job(p)
    add_runtime(p)
    p.set_defaults(func=run, stop_after="pairs")

    p = commands.add_parser(
        "validate",
        help="check a job file and print the resolved configuration",
        description="Validate a job file (and overrides) without running anything.",
    )
    add_job(p)
    p.set_defaults(func=validate)


def validate(args: argparse.Namespace) -> None:
    from pipeline.config import load_job

    job = load_job(args.job, args.overrides)
    print(yaml.safe_dump(job.model_dump(), sort_keys=False), end="")


def run(args: argparse.Namespace) -> None:
    from pipeline.config import load_job

    job = load_job(args.job, args.overrides)  # a bad job fails in a second, before the stages are imported

    from pipeline.orchestration.run import run_job

    runtime = resolve_runtime(args.workdir, args.data_root, job.data.root)
    log.info(
        "Job %s: workdir %s, data root %s, MLflow %s",
        job.name,
        runtime.workdir,
        runtime.data_root,
        runtime.tracking_uri,
    )
    summary = run_job(job, runtime, stop_after=args.stop_after)
    print(f"samples: {summary.store.location} ({summary.store.manifest['rows']} samples)")
    print(f"pairs:   {summary.pairs.location} ({summary.pairs.manifest['similar_pairs']} similar pairs)")
    if args.stop_after == "all":
        for key, value in summary.metrics.items():  # the test split's
            print(f"{key + ':':<26} {value:.4f}")
        for key, value in summary.validation.items():
            print(f"{'val/' + key + ':':<26} {value:.4f}")
        for key, path in summary.files.items():
            print(f"{key + ':':<26} {path}")
        print(f"{'every row:':<26} {summary.every_row}")
        print(f"{'model:':<26} {summary.model_uri} (version {summary.model_version}, run {summary.run_id})")
        print(f"{'time:':<26} " + ", ".join(f"{k} {v:.0f}s" for k, v in summary.seconds.items()))
