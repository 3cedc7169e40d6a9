"""The pair stage at scale, as a user runs it: ``drlim pairs`` on a folder of Parquet files, memory per process.

``generate`` writes N x D float32 clustered samples (1 000 Gaussian clusters; a ``label`` column holds the
cluster) as a folder of ``--files`` Parquet files, one file at a time. ``run`` runs ``drlim pairs`` on such a
folder (``pairs.index: ivf``, k = 5, 16 pair shards) under ``/usr/bin/time -v`` (the driver's
peak RSS) while a sampler reads every process of the run from /proc once a second: the largest resident set of
one process (and how much of it is Ray's object store, shared memory that the process has touched), the largest
private part (RSS less shared memory) and the largest sum (which counts shared pages once per process).
Reported: wall time, driver peak RSS, the largest process, recall@5 from the manifest.

    python benchmarks/pairs_at_scale.py generate --rows 10000000 --dim 32 --files 20 --out /tmp/scale/10m
    python benchmarks/pairs_at_scale.py run --data /tmp/scale/10m --workdir /tmp/scale/work-10m
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLUSTERS = 1000


def generate(rows: int, dim: int, files: int, out: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(CLUSTERS, dim)).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    for number, part in enumerate(np.array_split(np.arange(rows), files)):
        label = rng.integers(0, CLUSTERS, len(part))
        x = centres[label] + rng.normal(size=(len(part), dim)).astype(np.float32)
        table = pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim), "label": label})
        pq.write_table(table, out / f"part-{number:05d}.parquet")
        print(f"wrote {out / f'part-{number:05d}.parquet'} ({len(part):,} rows)", flush=True)


def _rss_by_process(session: int) -> dict[int, tuple[str, int, int]]:
    """pid -> (command, resident bytes, of which shared memory: Ray's object store) of every process in the Linux
    session ``session``."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:  # after ")": state, ppid, pgrp, session
                continue
            pid = int(status.parent.name)
            text = (status.parent / "status").read_text()
            rss, shared = (int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024 for key in ("VmRSS", "RssShmem"))
            found[pid] = ((status.parent / "cmdline").read_text().replace("\0", " ")[:80], rss, shared)
        except (OSError, AttributeError, IndexError, ValueError):
            continue
    return found


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
    start = time.perf_counter()
    # A session of its own: every process of the run (Ray's too) is found by its session id.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak_one, peak_private, peak_sum, stop = (0, 0, ""), (0, ""), 0, threading.Event()

    def sample() -> None:
        nonlocal peak_one, peak_private, peak_sum
        while not stop.is_set():
            found = _rss_by_process(process.pid)
            if found:
                peak_sum = max(peak_sum, sum(rss for _, rss, _ in found.values()))
                name, rss, shared = max(found.values(), key=lambda item: item[1])
                if rss > peak_one[0]:
                    peak_one = (rss, shared, name)
                name, rss, shared = max(found.values(), key=lambda item: item[1] - item[2])
                if rss - shared > peak_private[0]:
                    peak_private = (rss - shared, name)
            time.sleep(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    sys.stderr.write(stderr[-4000:])
    if process.returncode:
        raise SystemExit(f"drlim pairs failed ({process.returncode})")
    driver = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1)) * 1024
    manifest = json.loads(max((workdir / "pairs").glob("*/manifest.json"), key=os.path.getmtime).read_text())
    return {
        "seconds": round(seconds, 1),
        "driver_peak_rss_gib": round(driver / 2**30, 3),
        "largest_process_gib": round(peak_one[0] / 2**30, 3),
        "largest_process_object_store_gib": round(peak_one[1] / 2**30, 3),
        "largest_process": peak_one[2],
        "largest_private_gib": round(peak_private[0] / 2**30, 3),
        "largest_private_process": peak_private[1],
        "all_processes_peak_sum_gib": round(peak_sum / 2**30, 2),
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
    go = sub.add_parser("run", help="run drlim pairs on a generated folder and measure it")
    go.add_argument("--data", type=Path, required=True)
    go.add_argument("--workdir", type=Path, required=True)
    go.add_argument("--index", default="ivf")
    go.add_argument("--nprobe", type=int, help="ivf: cells searched per query (default: the index's, 8)")
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.rows, args.dim, args.files, args.out)
    else:
        options = {"nprobe": args.nprobe} if args.nprobe else {}
        print(json.dumps(run(args.data, args.workdir, args.index, options), indent=2))


if __name__ == "__main__":
    main()
