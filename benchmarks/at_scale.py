"""DrLIM at a million rows against umap-learn and parametric CNE, on the same samples, scored by the same code.

Two data sets:

- ``digits``: ``jobs/mnist_1m.yaml`` (MNIST's training digits and their deformations, ``data.samples`` of them;
  MNIST's real test digits held out);
- ``clusters``: a folder of Parquet files (``benchmarks/pairs_at_scale.py generate``) and a held-out folder of
  the same clusters (``generate --seed 1``), mapped by ``--job`` (default: ``jobs/neighbour_embedding.yaml``)
  with ``data.source: parquet``.

In one run of this script, one method after another (nothing else should run on the machine):

1. ``drlim run`` end to end as a user runs it (ingest, pairs, training, evaluation, every row embedded,
   registry), measured by ``_processes.run_measured``: wall time, seconds per stage (from its MLflow run), the
   driver's peak memory and the largest process's;
2. umap-learn in a process of its own: ``UMAP().fit`` on the training rows of drlim's sample store (the same
   samples; the validation rows drlim held out are left out of both), then ``transform`` of the test rows; fit
   and transform seconds, peak memory. ``--umap-rows`` fits it on a seeded subset when all would not finish;
3. parametric CNE (contrastive-ne, ``--cne-loss``, its own MLP) in a process of its own at drlim's wall clock:
   its kNN graph (annoy) and its training together get drlim's end-to-end seconds (the epochs that fit, from a
   one-epoch calibration that is not counted).

Every method's test embedding is scored by ``pipeline.evaluate.score`` on the same seeded sample of the test
split drlim's run scores (``evaluate.scored_samples``): trust@5, trust@12, 5-NN (leave-one-out within the test
map) and the train -> test 5-NN classifier of Parametric UMAP's paper (``transfer_knn_accuracy``).

    python benchmarks/at_scale.py digits --data-root ../shared/data --workdir /tmp/at-scale/digits
    python benchmarks/pairs_at_scale.py generate --rows 1000000 --dim 32 --files 8 --out /tmp/scale/1m
    python benchmarks/pairs_at_scale.py generate --rows 20000 --dim 32 --files 1 --out /tmp/scale/1m-test --seed 1
    python benchmarks/at_scale.py clusters --train /tmp/scale/1m --test /tmp/scale/1m-test --workdir /tmp/at-scale/c

Logs go to stderr; stdout gets a Markdown table and the JSON of every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("at_scale")


# ----------------------------------------------------------------------------------------------- the methods


def run_drlim(job: Path, workdir: Path, data_root: str | None, overrides: list[str]) -> dict:
    from _processes import run_measured

    command = [sys.executable, "-m", "pipeline.cli", "run", str(job), "--workdir", str(workdir)]
    command += ["--data-root", data_root] if data_root else []
    for override in overrides:
        command += ["--set", override]
    measured = run_measured(command)
    if measured.returncode:
        raise SystemExit(f"drlim run failed ({measured.returncode}); its output is above")
    found = {key: re.search(rf"^{key}:\s+(\S+)", measured.output, re.M) for key in ("samples", "every row", "model")}
    run_id = re.search(r"\(version \S+, run (\w+)\)", measured.output)
    if not all(found.values()) or run_id is None:
        raise SystemExit("drlim run's summary lines (samples, every row, model) are missing from its output")
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    metrics = client.get_run(run_id.group(1)).data.metrics
    return {
        "store": found["samples"].group(1),  # type: ignore[union-attr]
        "every_row": found["every row"].group(1),  # type: ignore[union-attr]
        "stages": {k.split("/", 1)[1]: round(v, 1) for k, v in metrics.items() if k.startswith("seconds/")},
        "recall_at_5": metrics.get("pairs/knn_recall"),
        **measured.gib(),
    }


def run_peer(method: str, store: str, out: Path, extra: list[str]) -> dict:
    """A peer in a process of its own (this script's ``peer`` command), measured; its figures."""
    from _processes import run_measured

    command = [sys.executable, __file__, "peer", method, "--store", store, "--out", str(out), *extra]
    measured = run_measured(command, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    if measured.returncode:
        raise SystemExit(f"{method} failed ({measured.returncode}); its output is above")
    return {**json.loads(out.with_suffix(".json").read_text()), **measured.gib()}


def peer_umap(store, out: Path, rows: int | None) -> dict:
    import umap

    ids, x, _ = store.split("train")
    if rows is not None and rows < len(ids):
        keep = np.sort(np.random.default_rng(0).choice(len(ids), rows, replace=False))
        ids, x = ids[keep], x[keep]
    x = x.reshape(len(x), -1)
    start = time.perf_counter()
    mapper = umap.UMAP(n_components=2, verbose=True).fit(x)
    fit = time.perf_counter() - start
    test_ids, test_x, _ = store.split("test")
    start = time.perf_counter()
    test_z = mapper.transform(test_x.reshape(len(test_x), -1))
    transform = time.perf_counter() - start
    np.savez(out, train_ids=ids, train=mapper.embedding_, test_ids=test_ids, test=test_z)
    return {"fit_seconds": round(fit, 1), "transform_seconds": round(transform, 1), "fit_rows": len(ids)}


def peer_cne(store, out: Path, budget: float, loss: str) -> dict:
    import torch
    from peers import cne_fit, cne_network, knn_graph

    from pipeline.config import JobConfig
    from pipeline.evaluate.inference import embed

    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    ids, x, _ = store.split("train")
    x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    start = time.perf_counter()
    graph = knn_graph(x, k=15)
    graph_seconds = time.perf_counter() - start
    settings = argparse.Namespace(loss_mode=loss, cne_batch_size=1024, cne_negatives=5)
    job = JobConfig()
    _, times = cne_fit(cne_network("mlp", job, (x.shape[1],), 0), x, graph, 1, settings, 0)  # calibration
    epochs = max(1, int((budget - graph_seconds) / times[0]))
    log.info(
        "CNE: graph %.0f s, %.1f s an epoch -> %d epochs in the %.0f s left",
        graph_seconds,
        times[0],
        epochs,
        budget - graph_seconds,
    )
    network = cne_network("mlp", job, (x.shape[1],), 0)
    fit, _ = cne_fit(network, x, graph, epochs, settings, 0)
    test_ids, test_x, _ = store.split("test")
    np.savez(
        out,
        train_ids=ids,
        train=embed(network, x, 65536),
        test_ids=test_ids,
        test=embed(network, test_x.reshape(len(test_x), -1), 65536),
    )
    return {
        "graph_seconds": round(graph_seconds, 1),
        "fit_seconds": round(fit, 1),
        "epochs": epochs,
        "seconds_counted": round(graph_seconds + fit, 1),
    }


# ------------------------------------------------------------------------------------------------- scoring


def score_all(
    store_path: str, embeddings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], scored_samples: int
) -> dict[str, dict[str, float]]:
    """Each method's (train ids, train map, test ids, test map), scored on one seeded sample of the test split."""
    from pipeline.config import EvaluateConfig
    from pipeline.data.store import SampleStore
    from pipeline.evaluate.metrics import transfer_knn_accuracy
    from pipeline.evaluate.scoring import HeldOut, score

    store = SampleStore.open(store_path)
    cfg = EvaluateConfig(scored_samples=scored_samples)
    held = HeldOut.load(store, "test", scored_samples)
    train_ids = store.column("train", "id")
    train_labels = store.column("train", "label")
    scores = {}
    for method, (tr_ids, tr_z, te_ids, te_z) in embeddings.items():
        z = te_z[np.searchsorted(te_ids, held.ids)]
        metrics = score(held, z, cfg)
        labels = train_labels[np.searchsorted(train_ids, tr_ids)]
        metrics["transfer_knn_accuracy_5"] = transfer_knn_accuracy(tr_z, labels, z, held.labels, 5)
        scores[method] = metrics
    return scores


def drlim_embeddings(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(folder, columns=["id", "split", "embedding"])
    out = []
    for split in ("train", "test"):
        rows = table.filter(pc.equal(table.column("split"), split)).sort_by("id")
        out += [rows.column("id").to_numpy(), np.stack(rows.column("embedding").to_numpy(zero_copy_only=False))]
    return out[0], out[1], out[2], out[3]


def saved(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as f:
        return f["train_ids"], f["train"], f["test_ids"], f["test"]


# ---------------------------------------------------------------------------------------------------- main


def compare(args: argparse.Namespace, job: Path, overrides: list[str]) -> None:
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict] = {"drlim": run_drlim(job, workdir, getattr(args, "data_root", None), overrides)}
    store, budget = figures["drlim"]["store"], figures["drlim"]["seconds"]
    embeddings = {"drlim": drlim_embeddings(figures["drlim"]["every_row"])}
    if "umap" in args.peers:
        extra = ["--rows", str(args.umap_rows)] if args.umap_rows else []
        figures["umap"] = run_peer("umap", store, workdir / "umap.npz", extra)
        embeddings["umap"] = saved(workdir / "umap.npz")
    if "cne" in args.peers:
        extra = ["--budget", str(budget), "--loss", args.cne_loss]
        figures["cne"] = run_peer("cne", store, workdir / "cne.npz", extra)
        embeddings["cne"] = saved(workdir / "cne.npz")
    scores = score_all(store, embeddings, args.scored_samples)
    for method in figures:
        figures[method]["scores"] = {k: round(v, 4) for k, v in scores[method].items()}
    print(table(figures))
    print(json.dumps(figures, indent=2))


def table(figures: dict[str, dict]) -> str:
    names = {"drlim": "drlim run (end to end)", "umap": "umap-learn (fit + transform)", "cne": "parametric CNE"}
    header = "| method | trust@5 | trust@12 | 5-NN (test map) | 5-NN train→test | wall s | driver GiB | largest GiB |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for method, f in figures.items():
        s = f["scores"]
        lines.append(
            f"| {names[method]} | {s['trustworthiness_5']:.4f} | {s['trustworthiness_12']:.4f} | "
            f"{s['knn_accuracy_5']:.4f} | {s['transfer_knn_accuracy_5']:.4f} | {f['seconds']:.0f} | "
            f"{f['driver_peak_rss_gib']:.2f} | {f['largest_process_gib']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("digits", "clusters"):
        p = sub.add_parser(name, help=f"compare on the {name} data set")
        p.add_argument("--workdir", type=Path, required=True, help="drlim's workdir and the peers' outputs")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--peers", nargs="*", default=["umap", "cne"], choices=["umap", "cne"])
        p.add_argument("--umap-rows", type=int, help="fit umap-learn on a seeded subset of this many rows")
        p.add_argument("--cne-loss", default="neg", choices=["neg", "infonce", "nce"])
        p.add_argument("--scored-samples", type=int, default=10_000, help="test originals scored (seeded)")
        if name == "digits":
            p.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
            p.add_argument("--samples", type=int, default=1_000_000, help="data.samples")
        else:
            p.add_argument("--train", type=Path, required=True, help="folder of training Parquet files")
            p.add_argument("--test", type=Path, required=True, help="folder of held-out Parquet files")
            p.add_argument("--job", type=Path, default=REPO / "jobs" / "neighbour_embedding.yaml")
    peer = sub.add_parser("peer", help="(internal) run one peer on a sample store")
    peer.add_argument("method", choices=["umap", "cne"])
    peer.add_argument("--store", required=True)
    peer.add_argument("--out", type=Path, required=True)
    peer.add_argument("--rows", type=int)
    peer.add_argument("--budget", type=float)
    peer.add_argument("--loss", default="neg")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(REPO))
    if args.command == "peer":
        from pipeline.data.store import SampleStore

        store = SampleStore.open(args.store)
        if args.method == "umap":
            result = peer_umap(store, args.out, args.rows)
        else:
            result = peer_cne(store, args.out, args.budget, args.loss)
        args.out.with_suffix(".json").write_text(json.dumps(result))
    elif args.command == "digits":
        overrides = [f"data.samples={args.samples}", f"evaluate.scored_samples={args.scored_samples}", *args.overrides]
        compare(args, REPO / "jobs" / "mnist_1m.yaml", overrides)
    else:
        overrides = [
            "data.source=parquet",
            f"data.path={args.train.resolve()}",
            f"data.test_path={args.test.resolve()}",
            "data.label_column=label",
            f"evaluate.scored_samples={args.scored_samples}",
            *args.overrides,
        ]
        compare(args, args.job, overrides)


if __name__ == "__main__":
    main()
