"""``drlim tune``: a grid of training settings on Ray Tune, chosen by a validation metric."""

from __future__ import annotations

import argparse

from pipeline.cli.arguments import add_job, add_runtime
from pipeline.infrastructure.runtime import resolve_runtime


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "tune",
        help="search training settings on Ray Tune, chosen by a validation metric",
        description="Build the job's data and pairs once, train one trial per point of the "
        "grid of --search values (each through Ray Train, each a child MLflow run "
        "of one parent run), score every trial on the validation split and "
        "register the best trial's model under the job's alias. Test metrics are "
        "recorded, never used to choose.",
    )
    add_job(p)
    p.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="KEY=[V1,V2,...]",
        required=True,
        help="a training setting and its values (YAML list), e.g. --search train.lr=[0.0003,0.001] "
        "(repeatable: the grid is every combination)",
    )
    p.add_argument(
        "--metric",
        default="val/trustworthiness_5",
        help="validation metric that picks the best trial (default: %(default)s)",
    )
    p.add_argument(
        "--mode",
        choices=["max", "min"],
        default="max",
        help="max for scores, min for e.g. val/invariance_ratio (default: %(default)s)",
    )
    p.add_argument(
        "--concurrent",
        type=int,
        default=1,
        help="trials at a time (each uses train.num_workers workers; default: %(default)s)",
    )
    add_runtime(p)
    p.set_defaults(func=tune)


def tune(args: argparse.Namespace) -> None:
    from pipeline.config import load_job
    from pipeline.orchestration.search import parse_search

    search = parse_search(args.search)
    job = load_job(args.job, args.overrides)  # fails on a bad job before anything starts or is imported

    from pipeline.orchestration.tune import tune_job

    runtime = resolve_runtime(args.workdir, args.data_root, job.data.root)
    summary = tune_job(args.job, args.overrides, search, runtime, args.metric, args.mode, args.concurrent)
    names = {k for t in summary.trials for k in t if k.startswith(("val/", "test/"))}
    # The metric that chooses first, the other validation metrics, then the test ones (reported only).
    shown = [args.metric, *sorted(names - {args.metric}, key=lambda k: (k.startswith("test/"), k))]
    print("| trial | " + " | ".join(shown) + " | seconds |")
    print("|---" * (len(shown) + 2) + "|")
    for trial in sorted(summary.trials, key=lambda t: t[args.metric], reverse=args.mode == "max"):
        cells = " | ".join(f"{trial.get(k, float('nan')):.4f}" for k in shown)
        print(f"| {' '.join(trial['point'])} | {cells} | {trial['seconds']:.0f} |")
    print(f"best: {' '.join(summary.best['point'])} ({args.metric} {summary.best[args.metric]:.4f})")
    print(f"model: {summary.model_uri} (version {summary.model_version}, parent run {summary.run_id})")
