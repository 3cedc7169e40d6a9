"""DrLIM against parametric contrastive neighbour embedding (CNE), on the same samples and the same wall clock.

The peer is parametric CNE from `contrastive-ne` (Damrich, Böhm, Hamprecht, Kobak, ICLR 2023: parametric
InfoNC-t-SNE, Neg-t-SNE, NCVis), the strongest parametric neighbour embedding on torch; install it with
``pip install -e ".[peers]"``. Both methods learn an encoder from the job's training samples and map the
held-out samples they never saw; both embeddings are scored by ``pipeline.evaluate.score``, the code behind
`drlim run`'s metrics (trustworthiness@5/@12 and 5-NN accuracy on the test originals).

- Samples: the job's sample store, built (or reused) by the real pipeline in ``--workdir``; ``--set`` overrides
  job fields as in `drlim run`.
- DrLIM: the job's training stage (``pipeline.train.train``: Ray Train, its workers, epochs and encoder) on
  the job's pair set, from scratch (fresh checkpoint folder); its wall seconds run from the call to the
  trained model, Ray Train start-up included, pair mining (the pairs stage, FAISS) excluded.
- CNE: ``cne.CNE(parametric=True)`` on the training features flattened to vectors; it builds its own kNN
  graph (annoy, k=15, CNE's default; built once, logged, outside the budget like DrLIM's pair mining). Its
  encoder is CNE's own MLP (784-100-100-100-2, ``mlp``) and/or the job's encoder (``job``: the paper's LeNet
  for the MNIST jobs), each trained by CNE with Adam for as many epochs as fit the budget: the DrLIM run's
  wall seconds, or ``--budget-seconds``. The count of epochs is the budget over the median epoch of a
  calibration fit (3 epochs, or fewer when they pass the budget); then a fresh fit runs that many epochs
  (CNE anneals its learning rate over them), and the table gives the seconds it took, set-up included. CNE
  runs in this process with as many torch threads as the DrLIM job's workers have CPUs (Ray is shut down
  first; ``OMP_WAIT_POLICY=PASSIVE`` unless set), on the GPU when there is one.

    python benchmarks/peers.py --data-root ../shared/data --job mnist_4_9
    python benchmarks/peers.py --data-root ../shared/data --job mnist_4_9 --set train.epochs=20 --loss-mode neg

Logs go to stderr; stdout gets one Markdown table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Before torch loads OpenMP: CNE trains in this process on several threads, and on a shared machine spinning
# OpenMP threads wait for preempted ones (CNE's MLP step: 140-180 ms with 2 spinning threads against 16-18 ms
# passive, 15 ms on 1 thread, measured here under load). DrLIM's workers run 1 thread each: no effect there.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from _common import REPO, job_parser, machine

from encoders import build_encoder
from pipeline.config import JobConfig, load_job
from pipeline.data import SampleStore
from pipeline.evaluate import HeldOut, embed, score

log = logging.getLogger("peers")


@dataclass
class Row:
    method: str
    metrics: dict[str, float]
    seconds: float
    epochs: int


def prepare(job: JobConfig, data_root: str, workdir: str):
    """The job's sample store and pair set, built or reused by the real pipeline (Ray stays up)."""
    from pipeline.infrastructure.runtime import resolve_runtime
    from pipeline.orchestration.run import run_job

    runtime = resolve_runtime(workdir, data_root, job.data.root)
    summary = run_job(job, runtime, stop_after="pairs")
    return runtime, summary.store, summary.pairs


def run_drlim(job: JobConfig, store: SampleStore, pairs, workdir: Path, held_out: HeldOut) -> Row:
    """The job's training stage from scratch, timed; scored as `drlim run` scores it."""
    from pipeline.train.stage import train

    # A fresh checkpoint folder: in the workdir an identical earlier run would be resumed, not retrained.
    scratch = Path(tempfile.mkdtemp(prefix="peers-", dir=workdir))
    try:
        start = time.perf_counter()
        result = train(job, store, pairs, scratch)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    embedding = embed(result.model, held_out.features, job.evaluate.batch_size)
    return Row(
        f"DrLIM ({job.encoder.name}, {job.train.mode})",
        score(held_out, embedding, job.evaluate),
        seconds,
        job.train.epochs,
    )


class Unflatten(torch.nn.Module):
    """Vectors back to the store's sample shape, for the job's encoder (CNE feeds flat rows)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def cne_network(kind: str, job: JobConfig, shape: tuple[int, ...], seed: int) -> torch.nn.Module:
    """The network CNE trains, taking flat rows: CNE's own MLP, or the job's encoder behind a reshape."""
    import cne

    torch.manual_seed(seed)
    if kind == "mlp":
        return cne.FCNetwork(int(np.prod(shape)), feat_dim=job.encoder.output_dim)
    return torch.nn.Sequential(Unflatten(shape), build_encoder(**job.encoder.spec(shape)))


class _Enough(Exception):
    """Raised from CNE's epoch callback to end a calibration fit once it has used the budget."""


def cne_fit(
    network: torch.nn.Module, x: np.ndarray, graph, epochs: int, args, seed: int, stop_after: float | None = None
) -> tuple[float, list[float]]:
    """Fit ``network`` with parametric CNE for ``epochs`` on the flat rows ``x``; returns the wall seconds of
    the whole fit and those of each epoch. ``stop_after``: end the fit after the epoch that passes these
    seconds (for calibration: the learning-rate schedule then is not the one of a finished fit)."""
    import cne

    ends: list[float] = []

    def clock(epoch, *_):
        if "cuda" in str(embedder.cne.device):
            torch.cuda.synchronize()
        ends.append(time.perf_counter())  # epoch -1: before the first epoch, after CNE's set-up
        if stop_after is not None and ends[-1] - start > stop_after:
            raise _Enough

    # CNE's parametric model: a frozen lookup of the training rows (its data loader yields pair indices),
    # then the network. ``init`` only gives CNE the number of samples (it calls ``len(init)``).
    model = torch.nn.Sequential(torch.nn.Embedding.from_pretrained(torch.from_numpy(x), freeze=True), network)
    embedder = cne.CNE(
        model=model,
        parametric=True,
        loss_mode=args.loss_mode,
        optimizer="adam",
        batch_size=args.cne_batch_size,
        negative_samples=args.cne_negatives,
        n_epochs=epochs,
        seed=seed,
        print_freq_epoch=max(1, epochs // 5),
        callback=clock,
        save_freq=1,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(_Enough):  # stdout is for the table
        embedder.fit(x, init=np.zeros((len(x), 2), np.float32), graph=graph)
    seconds = time.perf_counter() - start
    return seconds, list(np.diff(ends))


def knn_graph(x: np.ndarray, k: int):
    """CNE's own kNN graph of ``x`` (annoy, symmetrised), built by a zero-epoch fit."""
    import cne

    embedder = cne.CNE(model=torch.nn.Identity(), parametric=True, k=k, n_epochs=0, use_keops=False)
    with contextlib.redirect_stdout(sys.stderr):
        embedder.fit(x, init=np.zeros((len(x), 2), np.float32))
    return embedder.neighbor_mat


def run_cne(kind: str, job: JobConfig, store: SampleStore, held_out: HeldOut, graph, budget: float, args) -> Row:
    _, features, _ = store.split("train")
    shape = tuple(features.shape[1:])
    x = np.ascontiguousarray(features.reshape(len(features), -1), dtype=np.float32)
    seed = job.seed
    # Calibration: up to 3 epochs (fewer when they would pass the budget); the median epoch sets the count.
    _, times = cne_fit(cne_network(kind, job, shape, seed), x, graph, 3, args, seed, stop_after=budget)
    per_epoch = float(np.median(times))
    epochs = max(1, int(budget / per_epoch))
    log.info(
        "CNE %s: %.2f s per epoch (calibration epochs: %s s) -> %d epochs in %.1f s",
        kind,
        per_epoch,
        ", ".join(f"{t:.2f}" for t in times),
        epochs,
        budget,
    )
    network = cne_network(kind, job, shape, seed)
    seconds, _ = cne_fit(network, x, graph, epochs, args, seed)
    flat = held_out.features.reshape(len(held_out.features), -1)
    embedding = embed(network, flat, job.evaluate.batch_size)
    name = (
        "MLP 784-100-100-100"
        if kind == "mlp" and shape == (1, 28, 28)
        else ("MLP" if kind == "mlp" else job.encoder.name)
    )
    return Row(f"parametric CNE, {args.loss_mode} ({name})", score(held_out, embedding, job.evaluate), seconds, epochs)


def label(metric: str) -> str:
    for prefix, text in (("trustworthiness_", "trust@{}"), ("knn_accuracy_", "{}-NN")):
        if metric.startswith(prefix):
            return text.format(metric[len(prefix) :])
    return metric


def table(rows: list[Row]) -> str:
    keys = list(rows[0].metrics)
    lines = [
        "| method | " + " | ".join(label(k) for k in keys) + " | wall seconds | epochs |",
        "|---|" + "---|" * (len(keys) + 2),
    ]
    for r in rows:
        values = " | ".join(f"{r.metrics[k]:.4f}" if k in r.metrics else "–" for k in keys)
        lines.append(f"| {r.method} | {values} | {r.seconds:.1f} | {r.epochs} |")
    return "\n".join(lines)


def main() -> None:
    parser = job_parser(__doc__, "its samples, pairs, encoder and training are DrLIM's side")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a job field, as in `drlim run` (repeatable), e.g. train.epochs=20",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        help="CNE's wall-clock budget per encoder (default: the DrLIM training run's wall seconds)",
    )
    parser.add_argument(
        "--loss-mode",
        default="infonce",
        choices=["infonce", "neg", "nce"],
        help="CNE's loss: infonce = parametric InfoNC-t-SNE (t-SNE-like), neg = Neg-t-SNE (UMAP-like), nce = NCVis",
    )
    parser.add_argument("--seed", type=int, help="the job's seed (DrLIM) and CNE's (default: the job's)")
    parser.add_argument(
        "--cne-encoders",
        nargs="+",
        default=["mlp", "job"],
        choices=["mlp", "job"],
        help="mlp: CNE's own parametric network; job: the job's encoder (LeNet for MNIST)",
    )
    parser.add_argument("--cne-batch-size", type=int, default=1024, help="similar pairs per CNE step")
    parser.add_argument("--cne-negatives", type=int, default=5, help="CNE's negative samples per pair")
    parser.add_argument("--threads", type=int, help="CNE's torch threads (default: the DrLIM workers' CPUs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import cne  # noqa: F401
    except ImportError:
        parser.error('needs contrastive-ne: pip install -e ".[peers]"')

    overrides = args.overrides + ([f"seed={args.seed}"] if args.seed is not None else [])
    job = load_job(REPO / "jobs" / f"{args.job}.yaml", overrides)
    runtime, store, pairs = prepare(job, args.data_root, args.workdir)
    held_out = HeldOut.load(store)
    log.info(
        "%s; job %s: %d training samples, %d %s samples",
        machine(),
        job.name,
        store.manifest["splits"]["train"],
        len(held_out.ids),
        held_out.split,
    )

    import ray

    try:
        rows = [run_drlim(job, store, pairs, runtime.workspace, held_out)]
    finally:
        ray.shutdown()  # CNE gets the CPUs to itself, as DrLIM's workers had them
    budget = args.budget_seconds or rows[0].seconds
    torch.set_num_threads(args.threads or max(1, int(job.train.num_workers * job.train.cpus_per_worker)))
    _, features, _ = store.split("train")
    start = time.perf_counter()
    graph = knn_graph(np.ascontiguousarray(features.reshape(len(features), -1), dtype=np.float32), k=15)
    log.info(
        "CNE's kNN graph (annoy, k=15): %d edges in %.1f s (not in the budget)", graph.nnz, time.perf_counter() - start
    )
    for kind in args.cne_encoders:
        rows.append(run_cne(kind, job, store, held_out, graph, budget, args))
    print(table(rows))


if __name__ == "__main__":
    main()
