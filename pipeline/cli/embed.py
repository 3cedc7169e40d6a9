"""``drlim embed``: embed any samples the data stage reads with a registered model, through Ray Data."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pipeline.cli.models import tracker
from pipeline.errors import ConfigError

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


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "embed",
        help="embed a file or folder of samples with a registered model (Ray Data)",
        description=EMBED_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  drlim embed --model models:/drlim-mnist-4-9@champion --input images.npy\n"
        "  drlim embed --model models:/my-model@champion --input "
        "'s3://bucket/samples/*.parquet' --output emb.parquet",
    )
    p.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/drlim-mnist-4-9@champion")
    p.add_argument(
        "--input",
        required=True,
        metavar="PATH",
        help="a .parquet/.npy/.npz file, a folder of them (part files, read in path order) or a glob; "
        "local, or a URI such as s3://bucket/prefix",
    )
    p.add_argument(
        "--key",
        metavar="NAME",
        help="the features: Parquet column or .npz array (default: 'features', "
        "else the only list column / the only array)",
    )
    p.add_argument(
        "--label-column",
        metavar="NAME",
        help="labels to keep beside each embedding (default: 'label' where a file has it, else -1)",
    )
    p.add_argument(
        "--no-scale",
        dest="scale_uint8",
        action="store_false",
        help="keep uint8 features as they are (for a model trained on your own uint8 files, which the "
        "data stage does not scale)",
    )
    p.add_argument(
        "--storage-option",
        dest="storage_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument of the URI scheme's pyarrow filesystem, e.g. "
        "endpoint_override=http://minio:9000 (repeatable; as data.storage_options)",
    )
    p.add_argument("--batch-size", type=int, metavar="N", help="samples per model call (default: 16 MB of features)")
    p.add_argument(
        "--output",
        type=Path,
        default=Path("embeddings.parquet"),
        help="Parquet folder to write (replaced if it exists; default: %(default)s)",
    )
    p.set_defaults(func=embed)


def embed(args: argparse.Namespace) -> None:
    from pipeline.embed.stage import embed as embed_files

    options = {}
    for item in args.storage_options:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--storage-option {item!r}: expected KEY=VALUE, e.g. endpoint_override=http://host:9000")
        options[name] = yaml.safe_load(value)
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    done = embed_files(
        tracker(None),
        args.model,
        args.input,
        args.output,
        key=args.key,
        label_column=args.label_column,
        scale_uint8=args.scale_uint8,
        storage_options=options,
        batch_size=args.batch_size,
    )
    print(
        f"wrote {done.rows} embeddings ({done.dim}-d) of {done.files} file(s) to {args.output}/ in "
        f"{done.seconds:.1f}s ({done.rows / done.seconds:,.0f} samples/s)"
    )
