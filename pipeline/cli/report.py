"""``drlim report``: run the paper's experiments and the baselines, and write docs/results.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.arguments import add_runtime
from pipeline.infrastructure.runtime import resolve_runtime


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "report",
        help="run the paper's experiments, the ten-digit job and baselines; write docs/results.md",
        description="Run every shipped experiment (reusing finished stages in --workdir), fit "
        "PCA, Isomap and LLE on the same samples, and regenerate the results page.",
    )
    add_runtime(p)
    p.add_argument("--out", type=Path, default=Path("docs/results.md"), help="Markdown page to write")
    p.add_argument("--jobs", nargs="+", help="only these experiments (job names), e.g. mnist_4_9")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> None:
    from pipeline.orchestration.report import report as write_report

    runtime = resolve_runtime(args.workdir, args.data_root, None)
    print(f"wrote {write_report(runtime, args.out.resolve(), args.jobs)}")
