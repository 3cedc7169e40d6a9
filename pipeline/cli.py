"""The ``drlim`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.errors import DrlimError

log = logging.getLogger("drlim")

EPILOG = """\
environment:
  DRLIM_DATA_ROOT      data root when neither --data-root nor data.root is given (holds MNIST/raw/)
  RAY_ADDRESS          attach to this Ray cluster instead of starting a local one
  MLFLOW_TRACKING_URI  tracking server; default: sqlite store WORKDIR/mlflow.db

examples:
  drlim run jobs/mnist_4_9.yaml --data-root ../shared/data
  drlim run jobs/mnist_4_9.yaml --set train.epochs=3 --set data.train_per_digit=500
  drlim embed --model models:/drlim-mnist-4-9@champion --input images.npy --output emb.parquet
"""


def _add_job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", type=Path, help="job file (YAML), e.g. jobs/mnist_4_9.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job field, e.g. --set train.epochs=3 (repeatable; value parsed as YAML)")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding MNIST/raw/ (overrides data.root and DRLIM_DATA_ROOT)")
    p.add_argument("--workdir", help="where the sample store, pairs, checkpoints, runs and the default "
                                     "MLflow store go (default: current directory)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drlim",
        description="DrLIM: learn an invariant low-dimensional mapping from neighbourhood relations "
                    "(FAISS pairs on Ray, Siamese training with Ray Train, MLflow tracking).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the whole pipeline: data, pairs, training, evaluation, registry",
                       description="Run every stage of a job and record it as one MLflow run. Stages reuse "
                                   "verified outputs of identical earlier runs; training resumes from its "
                                   "last checkpoint.")
    _add_job_args(p)
    _add_runtime_args(p)

    p = sub.add_parser("pairs", help="build the sample store and the similar-pair shards only",
                       description="Ingest the data and write the pair shards and manifest, without training.")
    _add_job_args(p)
    _add_runtime_args(p)

    p = sub.add_parser("validate", help="check a job file and print the resolved configuration",
                       description="Validate a job file (and overrides) without running anything.")
    _add_job_args(p)

    p = sub.add_parser("embed", help="embed images with a registered model",
                       description="Load a model from MLflow (e.g. models:/NAME@ALIAS) and embed images from "
                                   "a .npy/.npz file: float32 in [0,1] or uint8 in [0,255], shape (n,28,28) "
                                   "or (n,1,28,28).")
    p.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/drlim-mnist-4-9@champion")
    p.add_argument("--input", required=True, type=Path, help=".npy file, or .npz with --key")
    p.add_argument("--key", help="array name inside a .npz file (default: its only array)")
    p.add_argument("--output", type=Path, default=Path("embeddings.parquet"), help="Parquet file to write")

    p = sub.add_parser("models", help="manage registered models (promote a version to an alias)",
                       description="Registered models in the MLflow store ($MLFLOW_TRACKING_URI, else "
                                   "WORKDIR/mlflow.db).")
    models = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    q = models.add_parser("promote", help="point an alias at a model version",
                          description="Move ALIAS of registered model NAME to VERSION, e.g. "
                                      "drlim models promote drlim-mnist-4-9 3 --alias production.")
    q.add_argument("name", help="registered model name")
    q.add_argument("version", help="model version number")
    q.add_argument("--alias", required=True, help="alias to move, e.g. champion or production")
    q.add_argument("--workdir", help="where the default MLflow store lives (default: current directory)")

    p = sub.add_parser("report", help="run the paper's experiments and baselines, write docs/results.md",
                       description="Run every shipped experiment (reusing finished stages in --workdir), fit "
                                   "PCA, Isomap and LLE on the same samples, and regenerate the results page.")
    _add_runtime_args(p)
    p.add_argument("--out", type=Path, default=Path("docs/results.md"), help="Markdown page to write")
    p.add_argument("--jobs", nargs="+", help="only these experiments (job names), e.g. mnist_4_9")
    return parser


def _cmd_promote(args: argparse.Namespace) -> None:
    from pipeline.runtime import resolve_tracking_uri
    from pipeline.tracking import promote

    uri = resolve_tracking_uri(Path(args.workdir or ".").resolve())
    promote(uri, args.name, args.version, args.alias)
    print(f"models:/{args.name}@{args.alias} -> version {args.version}")


def _cmd_report(args: argparse.Namespace) -> None:
    from pipeline.report import report
    from pipeline.runtime import resolve_runtime

    runtime = resolve_runtime(args.workdir, args.data_root, None)
    print(f"wrote {report(runtime, args.out.resolve(), args.jobs)}")


def _cmd_validate(args: argparse.Namespace) -> None:
    import yaml

    from pipeline.config import load_job

    job = load_job(args.job, args.overrides)
    print(yaml.safe_dump(job.model_dump(), sort_keys=False), end="")


def _cmd_run(args: argparse.Namespace, stop_after: str) -> None:
    from pipeline.config import load_job
    from pipeline.job import run_job
    from pipeline.runtime import resolve_runtime

    job = load_job(args.job, args.overrides)
    runtime = resolve_runtime(args.workdir, args.data_root, job.data.root)
    log.info("Job %s: workdir %s, data root %s, MLflow %s", job.name, runtime.workdir, runtime.data_root,
             runtime.tracking_uri)
    summary = run_job(job, runtime, stop_after=stop_after)
    print(f"pairs:   {summary.pairs.directory} ({summary.pairs.manifest['similar_pairs']} similar pairs)")
    if stop_after == "all":
        for key, value in summary.metrics.items():
            print(f"{key + ':':<22} {value:.4f}")
        for key, path in summary.files.items():
            print(f"{key + ':':<22} {path}")
        print(f"{'model:':<22} {summary.model_uri} (version {summary.model_version}, run {summary.run_id})")
        print(f"{'time:':<22} " + ", ".join(f"{k} {v:.0f}s" for k, v in summary.seconds.items()))


def _cmd_embed(args: argparse.Namespace) -> None:
    from pipeline.embed_cli import embed_file

    n = embed_file(args.model, args.input, args.output, args.key)
    print(f"wrote {n} embeddings to {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss", "alembic", "mlflow.store", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "validate":
            _cmd_validate(args)
        elif args.command in ("run", "pairs"):
            _cmd_run(args, stop_after="all" if args.command == "run" else "pairs")
        elif args.command == "embed":
            _cmd_embed(args)
        elif args.command == "report":
            _cmd_report(args)
        elif args.command == "models":
            _cmd_promote(args)
    except DrlimError as exc:
        print(f"drlim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drlim: interrupted; finished stages are kept and a re-run continues from them", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
