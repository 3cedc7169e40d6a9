"""The ``drlim`` command: its parser, whose subcommands each module of this package registers with their handler
(``set_defaults(func=...)``), and the one place where errors become one line and an exit status."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from pipeline.cli import cluster, embed, models, report, run, tune, view
from pipeline.errors import DrlimError, is_no_space, no_space
from pipeline.infrastructure.runtime import LOG_FORMAT, keep_ray_output_in_logs

EPILOG = """\
environment:
  DRLIM_DATA_ROOT      data root when neither --data-root nor data.root is given (holds MNIST/raw/)
  RAY_ADDRESS          run: attach to this Ray cluster instead of starting a local one
  RAY_API_SERVER_ADDRESS  submit/status/logs/stop: the head's Jobs API (default http://127.0.0.1:8265)
  MLFLOW_TRACKING_URI  tracking server; default: sqlite store WORKDIR/mlflow.db

examples:
  drlim run jobs/mnist_4_9.yaml --data-root ../shared/data
  drlim run jobs/mnist_4_9.yaml --set train.epochs=3 --set data.train_per_digit=500
  drlim tune jobs/mnist_4_9_ne.yaml --set evaluate.validation=0.1 --search train.lr=[0.0005,0.001]
  drlim embed --model models:/drlim-mnist-4-9@champion --input images.npy --output emb.parquet
  drlim submit jobs/mnist_4_9.yaml --address http://127.0.0.1:8265 --workdir /mnt/shared/drlim
"""

# In the order --help lists them.
COMMANDS = (run, tune, cluster, embed, models, report, view)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drlim",
        description="DrLIM: learn an invariant low-dimensional mapping from neighbourhood relations "
        "(FAISS pairs on Ray, Siamese training with Ray Train, MLflow tracking).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, and all that Ray's processes print (else only this project's lines)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Launched in the background by a script, a process starts with SIGINT ignored; Ctrl-C / kill -INT must
    # still stop a run cleanly (finished stages and checkpoints kept).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT)
    if not args.verbose:
        keep_ray_output_in_logs()
    for noisy in ("faiss", "alembic", "mlflow.store", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args) or 0
    except DrlimError as exc:
        print(f"drlim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drlim: interrupted; finished stages are kept and a re-run continues from them", file=sys.stderr)
        return 130
    except Exception as exc:  # a full disk met outside the stages' own writes (MLflow's store, a library's file)
        if not is_no_space(exc):
            raise
        written = getattr(exc, "filename", None)  # else: somewhere in the workdir
        where = written or getattr(args, "workdir", None) or Path.cwd()
        print(f"drlim: error: {no_space(where, written or 'the outputs of the run')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
