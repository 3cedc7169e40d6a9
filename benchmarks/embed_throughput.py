"""``drlim embed`` on Ray Data against a plain single process: same model, same data, same machine, same run.

- the model: an MLP encoder (``encoders.mlp``, input (1, 28, 28), untrained: the weights do not change the
  cost) logged and registered in a temporary MLflow sqlite store, as ``drlim run`` registers its models;
- the data: ``--rows`` random float32 samples of 784 values (the model's input size) as a Parquet folder of
  ``--files`` part files (a fixed-size list column ``features``), written once and reused;
- plain process: a fresh Python process that loads the registered model (``mlflow.pyfunc``), reads every file
  with pyarrow and predicts it in batches of ``--batch-size``, torch using every core; timed from its start to
  its end, as the Ray path's actors are (their interpreter, imports and model loading count); run before and
  after the Ray path and averaged (the machine drifts). Its rate once the model is loaded is shown too;
- drlim embed without Ray (``use_ray=False``, in a fresh process timed the same way): the library's reading,
  checks, reshaping and writing in one process, which separates their cost from Ray's;
- drlim embed on Ray Data (``use_ray=True``): the library function as the command calls it, from listing the
  files to the renamed output folder; Ray itself is started before the clock starts (a cluster is up before a
  job runs), its actors are not.

    python benchmarks/embed_throughput.py                     # 1 000 000 rows in 10 files (3 GiB in --workdir)
    python benchmarks/embed_throughput.py --rows 20000        # a quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SHAPE = (1, 28, 28)


def register_model(workdir: Path, hidden: int, layers: int):
    """An MLP encoder registered as models:/embed-bench@champion in ``workdir``'s sqlite store."""
    import torch

    from encoders import build_encoder
    from pipeline.infrastructure.tracking import Tracker

    tracker = Tracker(f"sqlite:///{workdir / 'mlflow.db'}", workdir / "mlartifacts")
    tracker.check_server()
    with tracker.run("embed-bench", "model", {"hidden": hidden, "layers": layers}):
        torch.manual_seed(0)
        model = build_encoder("mlp", 2, {"hidden": hidden, "layers": layers}, input_shape=SHAPE)
        example = np.random.default_rng(0).random((8, *SHAPE), dtype=np.float32)
        _, uri = tracker.log_model(model, example, "embed-bench", "champion")
    return tracker, uri


def write_data(folder: Path, rows: int, files: int) -> int:
    """``rows`` random samples in ``files`` Parquet parts (kept between runs of the same size); returns bytes."""
    done = folder / f"rows-{rows}-files-{files}"
    if not done.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        rng = np.random.default_rng(0)
        d = int(np.prod(SHAPE))
        for i, part in enumerate(np.array_split(np.arange(rows), files)):
            x = rng.random((len(part), d), dtype=np.float32)
            column = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), d)
            pq.write_table(pa.table({"features": column}), tmp / f"part-{i:05d}.parquet")
        (tmp / done.name).mkdir()  # a marker: the folder is complete (hidden from the listing: no .parquet)
        tmp.rename(folder)
    return sum(p.stat().st_size for p in folder.glob("*.parquet"))


def plain_process(tracker, uri: str, folder: Path, batch_size: int, threads: int) -> dict[str, float]:
    """The whole folder through the model in this process: rows, and seconds to load the model and to predict."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = tracker.load_model(uri)
    loaded = time.perf_counter()
    rows = 0
    for path in sorted(folder.glob("*.parquet")):
        column = pq.read_table(path, columns=["features"]).column("features").combine_chunks()
        x = column.flatten().to_numpy().reshape(len(column), *SHAPE)
        for i in range(0, len(x), batch_size):
            model.predict(x[i : i + batch_size])
        rows += len(x)
    return {"rows": rows, "load": loaded - start, "predict": time.perf_counter() - loaded}


def library(tracker, uri: str, folder: Path, out: Path, batch_size: int, use_ray: bool) -> dict[str, float]:
    """``pipeline.embed.stage.embed`` over the folder: rows, seconds, actors."""
    from pipeline.embed.stage import embed

    done = embed(tracker, uri, str(folder), out, batch_size=batch_size, use_ray=use_ray)
    shutil.rmtree(out)
    return {"rows": done.rows, "seconds": done.seconds, "actors": done.actors}


def in_fresh_process(path: str, args: argparse.Namespace, batch: int) -> dict[str, float]:
    """Run ``--child path`` in a new interpreter; its figures plus ``wall``: seconds from its start to its end."""
    command = [sys.executable, __file__, "--child", path, "--workdir", str(args.workdir), "--batch-size", str(batch)]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def child(path: str, workdir: Path, batch: int) -> None:
    from pipeline.infrastructure.tracking import Tracker

    tracker = Tracker(f"sqlite:///{workdir / 'model' / 'mlflow.db'}")
    uri = "models:/embed-bench@champion"
    if path == "plain":
        figures = plain_process(tracker, uri, workdir / "data", batch, os.cpu_count() or 1)
    else:
        figures = library(tracker, uri, workdir / "data", workdir / "out", batch, use_ray=False)
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=128, help="MLP width (the encoder's default)")
    parser.add_argument("--layers", type=int, default=2, help="MLP hidden layers (the encoder's default)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per model call on every path (default: the library's, 16 MB of features)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/drlim-embed-bench"), help="model store, data (reused) and outputs"
    )
    parser.add_argument("--child", choices=["plain", "inline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    if args.child:
        child(args.child, args.workdir, args.batch_size)
        return
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pipeline.embed.stage").setLevel(logging.INFO)

    from pipeline.embed.predict import batch_rows
    from pipeline.infrastructure.runtime import init_ray

    workdir = args.workdir
    shutil.rmtree(workdir / "model", ignore_errors=True)
    (workdir / "model").mkdir(parents=True)
    register_model(workdir / "model", args.hidden, args.layers)
    size = write_data(workdir / "data", args.rows, args.files)
    batch = args.batch_size or batch_rows(SHAPE)
    threads = os.cpu_count() or 1
    print(
        f"{args.rows:,} rows x {int(np.prod(SHAPE))} float32 in {args.files} Parquet files ({size / 2**30:.2f} GiB); "
        f"MLP {args.layers}x{args.hidden} -> 2; batches of {batch} rows; {threads} CPUs",
        flush=True,
    )

    first = in_fresh_process("plain", args, batch)
    inline = in_fresh_process("inline", args, batch)
    init_ray()
    from pipeline.infrastructure.tracking import Tracker

    on_ray = library(
        Tracker(f"sqlite:///{workdir / 'model' / 'mlflow.db'}"),
        "models:/embed-bench@champion",
        workdir / "data",
        workdir / "out",
        batch,
        use_ray=True,
    )
    second = in_fresh_process("plain", args, batch)
    assert first["rows"] == inline["rows"] == on_ray["rows"] == args.rows
    n = args.rows
    plain = n / ((first["wall"] + second["wall"]) / 2)
    steady = n / ((first["predict"] + second["predict"]) / 2)
    print(
        f"plain process ({threads} torch threads):    {plain:10,.0f} rows/s  ({first['wall']:.1f} s, then "
        f"{second['wall']:.1f} s; {steady:,.0f} rows/s once the model is loaded)"
    )
    print(f"drlim embed, one process (no Ray): {n / inline['wall']:10,.0f} rows/s  ({inline['wall']:.1f} s)")
    print(
        f"drlim embed on Ray Data ({on_ray['actors']} actors): {n / on_ray['seconds']:10,.0f} rows/s  "
        f"({on_ray['seconds']:.1f} s)"
    )
    print(f"Ray Data / plain process: {n / on_ray['seconds'] / plain:.2f}x")


if __name__ == "__main__":
    main()
