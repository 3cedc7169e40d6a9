"""Chaos: a random Ray worker process SIGKILLed every ~15 s throughout `drlim run JOB`, against an undisturbed run.

The job runs twice through the real CLI, each in a fresh workdir: undisturbed, then with a killer that every
``--every`` seconds (jittered by up to a third) SIGKILLs one Ray worker process of the run chosen at random: a
kNN search task, a training worker or an idle pooled worker (not Ray Train's controller and bookkeeping actors,
whose loss ends a run by design, nor Ray's own daemons). The chaos run sets
``train.max_failures=-1`` (restart a lost worker however often). Checked: the run completes, its pair manifest
equals the undisturbed run's (counts, shards, checksums), and a model is registered. Printed: the kills, both
wall times and the slowdown (chaos / undisturbed).

    python benchmarks/chaos.py --data-root ../shared/data [--job mnist_4_9] [--every 15] [--set train.epochs=10]

Logs of both runs go to WORKDIR/{undisturbed,chaos}.log; stdout gets one Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("ray::RayTrainWorker", "ray::IndexPart", "ray::IDLE")  # process titles of Ray workers


def _victims(session: int, everything: bool = False) -> list[tuple[int, str]]:
    """Ray worker processes of the run started in ``session`` that a fault may take, or ``everything`` of the
    session (pid, name)."""
    table = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True).stdout
    rows = (line.split(None, 2) for line in table.splitlines())
    return [
        (int(pid), args.split()[0])
        for pid, sid, args in (r for r in rows if len(r) == 3)
        if int(sid) == session and (everything or args.startswith(TARGETS))
    ]


def _killer(session: int, every: float, stop: threading.Event, kills: list[str], seed: int) -> None:
    rng = random.Random(seed)
    while not stop.wait(every * rng.uniform(2 / 3, 4 / 3)):
        victims = _victims(session)
        if victims:
            pid, name = rng.choice(victims)
            try:
                os.kill(pid, signal.SIGKILL)
                kills.append(name)
            except ProcessLookupError:
                pass


def run(workdir: Path, args: list[str], log: Path, every: float | None, seed: int) -> tuple[int, float, list[str]]:
    """``drlim ARGS`` in ``workdir`` (its own session), killed at random every ``every`` s when given."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *args],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        kills: list[str] = []
        stop = threading.Event()
        killer = threading.Thread(target=_killer, args=(proc.pid, every, stop, kills, seed), daemon=True)
        if every:
            killer.start()
        try:
            code = proc.wait()
        finally:
            stop.set()
            seconds = time.perf_counter() - start
            for pid, _ in _victims(proc.pid, everything=True):  # what the run left behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return code, seconds, kills


def manifest(workdir: Path) -> dict:
    [pairs] = (workdir / "pairs").iterdir()
    found = json.loads((pairs / "manifest.json").read_text())
    found.get("knn", {}).pop("seconds", None)  # timings differ from run to run
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--job", default="mnist_4_9", help="a job in jobs/ (default mnist_4_9)")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between kills (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the choice of victims and the jitter")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="job overrides")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder")
    opts = parser.parse_args()
    root = opts.workdir or Path(tempfile.mkdtemp(prefix="drlim-chaos-"))
    job = [str(REPO / "jobs" / f"{opts.job}.yaml"), "--data-root", str(Path(opts.data_root).resolve())]
    job += [arg for kv in opts.set for arg in ("--set", kv)]
    figures = {}
    for name, every, extra in (("undisturbed", None, []), ("chaos", opts.every, ["--set", "train.max_failures=-1"])):
        workdir = root / name
        workdir.mkdir(parents=True)
        code, seconds, kills = run(workdir, ["run", *job, *extra], root / f"{name}.log", every, opts.seed)
        registered = "model:" in (root / f"{name}.log").read_text()
        figures[name] = (code, seconds, kills, registered, workdir)
        print(
            f"{name}: exit {code} in {seconds:.0f} s, {len(kills)} kills, log {root / f'{name}.log'}", file=sys.stderr
        )
    (code0, t0, _, reg0, w0), (code1, t1, kills, reg1, w1) = figures["undisturbed"], figures["chaos"]
    same_pairs = code0 == code1 == 0 and manifest(w0) == manifest(w1)
    by_name = ", ".join(f"{kills.count(n)} {n}" for n in sorted(set(kills))) or "none"
    print("| run | exit | wall s | processes killed | model registered | pair manifest |")
    print("|---|---|---|---|---|---|")
    print(f"| undisturbed | {code0} | {t0:.0f} | 0 | {'yes' if reg0 else 'no'} | |")
    print(
        f"| chaos (every ~{opts.every:.0f} s) | {code1} | {t1:.0f} | {len(kills)}: {by_name} | "
        f"{'yes' if reg1 else 'no'} | {'equal' if same_pairs else 'DIFFERENT'} |"
    )
    print(f"\nslowdown: {t1 / t0:.2f}x ({opts.job}, {' '.join(opts.set) or 'job defaults'})")
    return 0 if same_pairs and reg0 and reg1 else 1


if __name__ == "__main__":
    sys.exit(main())
