"""Shared by the benchmark scripts: the pipeline's data and pairs, and a plain single-process training step.

The step is the one Ray Train workers run (``step_pairs`` + ``pipeline/train/core.optimizer_step``), without
Ray, so a benchmark measures the estimator and the encoder, not the cluster.
"""

from __future__ import annotations

import argparse
import logging
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from encoders import build_encoder
from encoders.losses import build_loss
from pipeline.config import load_job
from pipeline.data import SampleStore
from pipeline.pairs import PairSet
from pipeline.train.batches import ShareSampling, step_pairs
from pipeline.train.core import optimizer_step

REPO = Path(__file__).resolve().parents[1]
CONTRASTIVE = build_loss()  # the paper's loss, margin 1


@dataclass
class TrainingData:
    store: SampleStore
    pair_set: PairSet
    features: torch.Tensor  # training features, on the device
    left: np.ndarray
    right: np.ndarray
    sampling: ShareSampling  # the whole pair set as one worker's share


def prepare(job_name: str, data_root: str, workdir: str, device: torch.device) -> TrainingData:
    """Build (or reuse) the job's sample store and pair set with the real pipeline, then shut Ray down."""
    import ray

    from pipeline.infrastructure.runtime import resolve_runtime
    from pipeline.orchestration.run import run_job

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    job = load_job(REPO / "jobs" / f"{job_name}.yaml")
    runtime = resolve_runtime(workdir, data_root, job.data.root)
    summary = run_job(job, runtime, stop_after="pairs")
    ray.shutdown()
    return load(summary.store, summary.pairs, device)


def job_parser(doc: str, job_help: str) -> argparse.ArgumentParser:
    """The arguments of the benchmarks that run on a job's data: ``--data-root``, ``--job``, ``--workdir``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--job", default="mnist_4_9", help=f"a job in jobs/: {job_help}")
    parser.add_argument("--workdir", default="/tmp/drlim-bench", help="sample store and pair set (reused)")
    return parser


def load(store: SampleStore, pairs: PairSet, device: torch.device) -> TrainingData:
    _, x, _ = store.split("train")
    share = pairs.read_share(0, 1)  # every pair, both directions: one worker's share
    once = share.left < share.right  # draw each similar pair once per epoch; the odds of a sample are the same
    return TrainingData(
        store,
        pairs,
        torch.from_numpy(x).to(device),
        share.left[once],
        share.right[once],
        ShareSampling.from_share(share),
    )


def new_model(data: TrainingData, seed: int = 0) -> torch.nn.Module:
    """The paper's LeNet, seeded, on the data's device (as the training loop builds it)."""
    torch.manual_seed(seed)
    return build_encoder("lenet", 2, input_shape=tuple(data.features.shape[1:])).to(data.features.device)


def train_step(model, optimizer, data: TrainingData, mode: str, batch_size: int, ratio: float, rng) -> tuple[int, int]:
    """One optimiser step on ``batch_size`` uniformly drawn similar pairs; returns (pairs scored, samples encoded)."""
    pos = rng.integers(0, len(data.left), batch_size)
    return step_on(model, optimizer, data.features, data.left[pos], data.right[pos], data.sampling, mode, ratio, rng)


def step_on(
    model,
    optimizer,
    features: torch.Tensor,
    left: np.ndarray,
    right: np.ndarray,
    sampling: ShareSampling,
    mode: str,
    ratio: float,
    rng,
) -> tuple[int, int]:
    """One optimiser step on the similar pairs ``(left, right)`` (the workers' step: ``step_pairs`` +
    ``core.optimizer_step`` with the paper's loss); returns (pairs scored, samples encoded)."""
    pairs = step_pairs(mode, left, right, sampling, ratio, rng)
    x = features[torch.from_numpy(pairs.samples).to(features.device)]
    optimizer_step(model, optimizer, CONTRASTIVE, x, pairs)
    return len(pairs.label), len(pairs.samples)


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {gpu}"
