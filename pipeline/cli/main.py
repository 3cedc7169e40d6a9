"""The ``drlim`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from pipeline.errors import DrlimError, is_no_space, no_space
from pipeline.infrastructure.runtime import LOG_FORMAT, keep_ray_output_in_logs, resolve_runtime, resolve_tracking_uri

log = logging.getLogger("drlim")

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


EMBED_DESCRIPTION = """\
Embed every sample of --input with a model from MLflow (e.g. models:/NAME@ALIAS).

reads     what data.path takes: a .parquet/.npy/.npz file, a folder of them (part files, in path order) or a
          glob, local or a URI (s3://..., gs://...). Features: a Parquet list column or an (n, ...) array of
          numbers (--key), labels optional (--label-column). They are reshaped to the model's input (its MLflow
          signature) when the sizes agree, e.g. 784 values to (1, 28, 28); uint8 features are scaled by 1/255.
writes    the Parquet folder --output: part-NNNNN.parquet, one per input file, with the columns of a run's
          embeddings table: id (0, 1, ... in file order), split ('input'), label (-1: none), origin_id,
          transform, embedding (fixed-size list of float32). It is complete or absent, never half-written.
runs      on Ray Data when the input is over 64 MB (RAY_ADDRESS, else a local Ray): one actor per CPU, at most
          one per file, each loading the model once; smaller inputs in this process.
"""


def _add_job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", type=Path, help="job file (YAML), e.g. jobs/mnist_4_9.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a job field, e.g. --set train.epochs=3 (repeatable; value parsed as YAML)")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding MNIST/raw/ (overrides data.root and DRLIM_DATA_ROOT)")
    p.add_argument("--workdir", help="where the sample store, pairs, checkpoints, runs and the default MLflow store "
                                     "go (default: current directory); a URI such as s3://bucket/prefix keeps the "
                                     "stores and checkpoints on object storage, each node reading its own copy")


def _add_address_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="Jobs API of the head (default: $RAY_API_SERVER_ADDRESS, an http "
                                     "$RAY_ADDRESS, else http://127.0.0.1:8265)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drlim",
        description="DrLIM: learn an invariant low-dimensional mapping from neighbourhood relations "
                    "(FAISS pairs on Ray, Siamese training with Ray Train, MLflow tracking).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and all that Ray's processes print (else only this project's lines)")
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

    p = sub.add_parser("tune", help="search training settings on Ray Tune, chosen by a validation metric",
                       description="Build the job's data and pairs once, train one trial per point of the grid "
                                   "of --search values (each through Ray Train, each a child MLflow run of one "
                                   "parent run), score every trial on the validation split and register the best "
                                   "trial's model under the job's alias. Test metrics are recorded, never used "
                                   "to choose.")
    _add_job_args(p)
    p.add_argument("--search", action="append", default=[], metavar="KEY=[V1,V2,...]", required=True,
                   help="a training setting and its values (YAML list), e.g. --search train.lr=[0.0003,0.001] "
                        "(repeatable: the grid is every combination)")
    p.add_argument("--metric", default="val/trustworthiness_5", help="validation metric that picks the best "
                   "trial (default: %(default)s)")
    p.add_argument("--mode", choices=["max", "min"], default="max", help="max for scores, min for e.g. "
                   "val/invariance_ratio (default: %(default)s)")
    p.add_argument("--concurrent", type=int, default=1, help="trials at a time (each uses train.num_workers "
                   "workers; default: %(default)s)")
    _add_runtime_args(p)

    p = sub.add_parser("submit", help="run a job on a Ray cluster through the Ray Jobs API",
                       description="Ship this project to a Ray cluster and run `drlim run JOB` there as a Ray "
                                   "job: the source tree as working_dir, the project's requirements as a pip "
                                   "runtime env, MLFLOW_TRACKING_* and DRLIM_DATA_ROOT passed through. Streams "
                                   "the job's logs and exits non-zero when the job fails.")
    _add_job_args(p)
    p.add_argument("--workdir", required=True,
                   help="working directory ON THE CLUSTER (every node must see it), e.g. /mnt/shared/drlim")
    p.add_argument("--data-root", help="data root on the cluster (default: the job's, then DRLIM_DATA_ROOT there)")
    _add_address_arg(p)
    p.add_argument("--no-deps", dest="ship_requirements", action="store_false",
                   help="don't ship the requirements (the cluster's image already has them)")
    p.add_argument("--no-wait", dest="wait", action="store_false", help="print the job id and return at once")

    for name, text in (("status", "show a submitted job's status"), ("logs", "print a submitted job's logs"),
                       ("stop", "stop a submitted job")):
        p = sub.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]} (Ray Jobs API).")
        p.add_argument("job_id", help="the id `drlim submit` printed, e.g. raysubmit_AbC123")
        _add_address_arg(p)
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="keep streaming until the job ends")

    p = sub.add_parser("validate", help="check a job file and print the resolved configuration",
                       description="Validate a job file (and overrides) without running anything.")
    _add_job_args(p)

    p = sub.add_parser("embed", help="embed a file or folder of samples with a registered model (Ray Data)",
                       description=EMBED_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  drlim embed --model models:/drlim-mnist-4-9@champion --input images.npy\n"
                              "  drlim embed --model models:/my-model@champion --input 's3://bucket/samples/*.parquet' "
                              "--output emb.parquet")
    p.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/drlim-mnist-4-9@champion")
    p.add_argument("--input", required=True, metavar="PATH",
                   help="a .parquet/.npy/.npz file, a folder of them (part files, read in path order) or a glob; "
                        "local, or a URI such as s3://bucket/prefix")
    p.add_argument("--key", metavar="NAME", help="the features: Parquet column or .npz array (default: 'features', "
                   "else the only list column / the only array)")
    p.add_argument("--label-column", metavar="NAME", help="labels to keep beside each embedding (default: 'label' "
                   "where a file has it, else -1)")
    p.add_argument("--no-scale", dest="scale_uint8", action="store_false",
                   help="keep uint8 features as they are (for a model trained on your own uint8 files, which the "
                        "data stage does not scale)")
    p.add_argument("--storage-option", dest="storage_options", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the URI scheme's pyarrow filesystem, e.g. "
                        "endpoint_override=http://minio:9000 (repeatable; as data.storage_options)")
    p.add_argument("--batch-size", type=int, metavar="N", help="samples per model call (default: 16 MB of features)")
    p.add_argument("--output", type=Path, default=Path("embeddings.parquet"),
                   help="Parquet folder to write (replaced if it exists; default: %(default)s)")

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

    p = sub.add_parser("report",
                       help="run the paper's experiments, the ten-digit job and baselines; write docs/results.md",
                       description="Run every shipped experiment (reusing finished stages in --workdir), fit "
                                   "PCA, Isomap and LLE on the same samples, and regenerate the results page.")
    _add_runtime_args(p)
    p.add_argument("--out", type=Path, default=Path("docs/results.md"), help="Markdown page to write")
    p.add_argument("--jobs", nargs="+", help="only these experiments (job names), e.g. mnist_4_9")
    return parser


def _tracker(workdir: str | None):
    """The MLflow store of ``workdir`` (default: here), or ``$MLFLOW_TRACKING_URI``."""
    from pipeline.infrastructure.tracking import Tracker

    return Tracker(resolve_tracking_uri(Path(workdir or ".").resolve()))


def _cmd_promote(args: argparse.Namespace) -> None:
    _tracker(args.workdir).promote(args.name, args.version, args.alias)
    print(f"models:/{args.name}@{args.alias} -> version {args.version}")


def _cmd_report(args: argparse.Namespace) -> None:
    from pipeline.orchestration.report import report

    runtime = resolve_runtime(args.workdir, args.data_root, None)
    print(f"wrote {report(runtime, args.out.resolve(), args.jobs)}")


def _cmd_validate(args: argparse.Namespace) -> None:
    import yaml

    from pipeline.config import load_job

    job = load_job(args.job, args.overrides)
    print(yaml.safe_dump(job.model_dump(), sort_keys=False), end="")


def _cmd_run(args: argparse.Namespace, stop_after: str) -> None:
    from pipeline.config import load_job

    job = load_job(args.job, args.overrides)  # a bad job fails in a second, before the stages are imported

    from pipeline.orchestration.run import run_job

    runtime = resolve_runtime(args.workdir, args.data_root, job.data.root)
    log.info("Job %s: workdir %s, data root %s, MLflow %s", job.name, runtime.workdir,
             runtime.data_root, runtime.tracking_uri)
    summary = run_job(job, runtime, stop_after=stop_after)
    print(f"pairs:   {summary.pairs.location} "
          f"({summary.pairs.manifest['similar_pairs']} similar pairs)")
    if stop_after == "all":
        for key, value in summary.metrics.items():  # the test split's
            print(f"{key + ':':<26} {value:.4f}")
        for key, value in summary.validation.items():
            print(f"{'val/' + key + ':':<26} {value:.4f}")
        for key, path in summary.files.items():
            print(f"{key + ':':<26} {path}")
        print(f"{'model:':<26} {summary.model_uri} (version {summary.model_version}, run {summary.run_id})")
        print(f"{'time:':<26} " + ", ".join(f"{k} {v:.0f}s" for k, v in summary.seconds.items()))


def _cmd_tune(args: argparse.Namespace) -> None:
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


def _cmd_submit(args: argparse.Namespace) -> int:
    from pipeline.orchestration.submit import submit

    job_id, code = submit(args.job, args.overrides, args.workdir, args.data_root, args.address,
                          args.ship_requirements, args.wait)
    print(f"job: {job_id}" + ("" if args.wait else f"  (drlim logs {job_id} --follow)"))
    return code


def _cmd_job(args: argparse.Namespace) -> int:
    from pipeline.orchestration.submit import client, describe, follow

    jobs = client(args.address)
    print(describe(jobs, args.job_id))  # also checks that the job exists
    if args.command == "stop":
        jobs.stop_job(args.job_id)
        print(f"stop requested for {args.job_id}")
    elif args.command == "logs":
        if args.follow:
            return follow(jobs, args.job_id)
        print(jobs.get_job_logs(args.job_id), end="")
    return 0


def _cmd_embed(args: argparse.Namespace) -> None:
    import yaml

    from pipeline.embed.stage import embed
    from pipeline.errors import ConfigError

    options = {}
    for item in args.storage_options:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--storage-option {item!r}: expected KEY=VALUE, e.g. endpoint_override=http://host:9000")
        options[name] = yaml.safe_load(value)
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    done = embed(_tracker(None), args.model, args.input, args.output, key=args.key, label_column=args.label_column,
                 scale_uint8=args.scale_uint8, storage_options=options, batch_size=args.batch_size)
    print(f"wrote {done.rows} embeddings ({done.dim}-d) of {done.files} file(s) to {args.output}/ in "
          f"{done.seconds:.1f}s ({done.rows / done.seconds:,.0f} samples/s)")


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
        elif args.command == "tune":
            _cmd_tune(args)
        elif args.command == "submit":
            return _cmd_submit(args)
        elif args.command in ("status", "logs", "stop"):
            return _cmd_job(args)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
