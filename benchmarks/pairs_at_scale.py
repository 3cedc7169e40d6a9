"""The pair stage at scale, as a user runs it: ``drlim pairs`` on a folder of Parquet files, memory per process.

``generate`` writes N x D float32 clustered samples (1 000 Gaussian clusters; a ``label`` column holds the
cluster) as a folder of ``--files`` Parquet files, one file at a time (``--seed``: another draw of the same
clusters, e.g. a held-out folder). ``run`` runs ``drlim pairs`` on such a folder (``pairs.index: ivf``, k = 5,
16 pair shards) measured by ``_processes.run_measured`` (the driver's peak RSS, the largest process, sampled
from /proc). Reported: wall time, memory, recall@5 from the manifest.

    python benchmarks/pairs_at_scale.py generate --rows 10000000 --dim 32 --files 20 --out /tmp/scale/10m
    python benchmarks/pairs_at_scale.py run --data /tmp/scale/10m --workdir /tmp/scale/work-10m
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _processes import run_measured

CLUSTERS = 1000


def generate(rows: int, dim: int, files: int, out: Path, seed: int = 0) -> None:
    """The clusters' centres are always seed 0's; ``seed`` draws the samples (seed 0: the folders made before)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(CLUSTERS, dim)).astype(np.float32)
    if seed:
        rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for number, part in enumerate(np.array_split(np.arange(rows), files)):
        label = rng.integers(0, CLUSTERS, len(part))
        x = centres[label] + rng.normal(size=(len(part), dim)).astype(np.float32)
        table = pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim), "label": label})
        pq.write_table(table, out / f"part-{number:05d}.parquet")
        print(f"wrote {out / f'part-{number:05d}.parquet'} ({len(part):,} rows)", flush=True)


def run(data: Path, workdir: Path, index: str = "ivf", options: dict[str, int] | None = None) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    job = workdir / "scale.yaml"
    job.write_text(
        f"name: scale\ndata:\n  source: parquet\n  path: {data.resolve()}\n  label_column: label\n"
        f"pairs:\n  k: 5\n  index: {index}\n  index_options: {json.dumps(options or {})}\n"
        f"  num_shards: 16\nencoder:\n  name: mlp\n"
    )
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "pipeline.cli",
        "pairs",
        str(job),
        "--workdir",
        str(workdir),
    ]
    measured = run_measured(command, echo=False)
    sys.stderr.write(measured.output[-4000:])
    if measured.returncode:
        raise SystemExit(f"drlim pairs failed ({measured.returncode})")
    manifest = json.loads(max((workdir / "pairs").glob("*/manifest.json"), key=os.path.getmtime).read_text())
    return {
        **measured.gib(),
        "recall_at_5": manifest["knn"].get("recall_at_k"),
        "similar_pairs": manifest["similar_pairs"],
        "index_parts": manifest["knn"]["index_parts"],
        "index_options": manifest["knn"]["options"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the clustered samples as a folder of Parquet files")
    gen.add_argument("--rows", type=int, default=10_000_000)
    gen.add_argument("--dim", type=int, default=32)
    gen.add_argument("--files", type=int, default=20)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0, help="another seed: other samples of the same clusters")
    go = sub.add_parser("run", help="run drlim pairs on a generated folder and measure it")
    go.add_argument("--data", type=Path, required=True)
    go.add_argument("--workdir", type=Path, required=True)
    go.add_argument("--index", default="ivf")
    go.add_argument("--nprobe", type=int, help="ivf: cells searched per query (default: the index's, 8)")
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.rows, args.dim, args.files, args.out, args.seed)
    else:
        options = {"nprobe": args.nprobe} if args.nprobe else {}
        print(json.dumps(run(args.data, args.workdir, args.index, options), indent=2))


if __name__ == "__main__":
    main()
