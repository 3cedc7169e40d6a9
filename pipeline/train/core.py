"""The training core, without Ray: one worker's epochs over its share of the similar pairs.

An epoch draws ``batch_size`` similar pairs per step from the worker's share, adds lazily drawn dissimilar pairs
(``batches.py``: which pairs a step scores and how they are weighted), encodes the step's samples once,
minimises the weighted loss (``train.loss``), sets the learning rate from the global step (``learning_rate``:
resuming needs no scheduler state) and updates the weight average. It returns the epoch's sums; the caller
reduces them over workers and turns them into metrics (``epoch_metrics``).

The Ray Train worker (``loop.py``) wraps this with the context, DDP, checkpoints and reporting; the benchmarks
and the unit tests run it as one process (rank 0, world 1, the whole pair set as the share). With
``train.local_steps`` > 1 the model is not wrapped for DDP: the core averages the weights across workers itself
(``averaging.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from encoders.losses import PairLoss, build_loss
from pipeline.config import TrainConfig
from pipeline.config.choices import OPTIMIZERS
from pipeline.errors import StageError
from pipeline.pairs.negatives import NegativeSampler
from pipeline.pairs.shards import SOURCES, PairShare
from pipeline.train.averaging import average_across_workers, floating_tensors
from pipeline.train.batches import ShareSampling, StepPairs, mixed_precision, step_pairs, weighted_loss
from pipeline.train.features import DeviceFeatures, StreamedFeatures, prefetched

PACE_STEPS = 20  # steps timed before checkpoints within an epoch are spaced (train.checkpoint_every)
PROGRESS_SECONDS = 30.0  # between two progress lines within an epoch

# Sums reduced across workers each epoch; the reported metrics are ratios of these. "loss" is the step's
# weighted loss summed over steps; the per-kind losses and distances are summed over pairs.
SUMS = (
    "loss",
    "similar_loss",
    "dissimilar_loss",
    "similar_distance",
    "dissimilar_distance",
    "pairs",
    "similar",
    "dissimilar",
    "encoded",
)


def make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer`` over ``params``, with the fields of ``train`` it takes (``OPTIMIZERS``)."""
    optimizer: torch.optim.Optimizer = OPTIMIZERS.build(cfg.optimizer, None, params, settings=cfg.model_dump())
    return optimizer


LR_SCALING = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}  # exponent of batch_size / lr_reference_batch


def peak_learning_rate(cfg: TrainConfig) -> float:
    """``train.lr`` scaled for ``train.batch_size`` by ``train.lr_scaling``: lr x (batch / reference)^p with p = 0
    (none), 1/2 (sqrt: keeps the variance of Adam's update per sample seen) or 1 (linear: SGD's rule)."""
    return cfg.lr * (cfg.batch_size / cfg.lr_reference_batch) ** LR_SCALING[cfg.lr_scaling]


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate at global ``step``: derived from the step alone, so resuming needs no scheduler state."""
    peak = peak_learning_rate(cfg)
    if cfg.lr_schedule == "cosine":
        return peak * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return peak


def ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights. Integer buffers (none in the shipped encoders) are copied."""
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                ema[name].lerp_(value, 1 - decay)
            else:
                ema[name].copy_(value)


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: PairLoss,
    x: torch.Tensor,
    pairs: StepPairs,
    precision: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``x`` (the features of ``pairs.samples``) once, minimise the step's weighted loss by one optimizer
    step; returns (loss, per-pair loss, per-pair distance, labels) for the epoch's sums."""
    with mixed_precision(x.device, precision):
        loss, per_pair, distance, y = weighted_loss(model, x, pairs, criterion)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, per_pair, distance, y


def pair_weights(weights: dict[str, float], share: PairShare) -> np.ndarray | None:
    """Per similar pair of the share, the weight of its pair source divided by the mean weight over every similar
    pair of the set (``batches.py``); None without ``weights`` (every pair weighs 1)."""
    if not weights:
        return None
    if share.source is None or share.pairs_by_source is None:
        raise StageError("train.source_weights needs each pair's source: read the share with_source=True")
    raw = np.array([weights.get(name, 1.0) for name in SOURCES])
    counts = np.array([share.pairs_by_source.get(name, 0) for name in SOURCES], np.float64)
    table: np.ndarray = raw / (counts @ raw / counts.sum())
    return table[share.source]


class InputNoise:
    """x -> x + N(0, std^2) per element, from a generator seeded by (seed, epoch, rank) as the pairs are (resuming
    an epoch repeats it); the identity for std 0. Noise teaches the encoder to map a sample's surroundings near
    it, which is where unseen samples fall. ``state``/``load``: its place, for a checkpoint within an epoch."""

    def __init__(self, std: float, seed: int, epoch: int, rank: int, device: torch.device) -> None:
        self.std = std
        self.generator = None
        if std:
            self.generator = torch.Generator(device)
            self.generator.manual_seed(int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None:
            return x
        return x + self.std * torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)

    def state(self) -> torch.Tensor | None:
        return None if self.generator is None else self.generator.get_state()

    def load(self, state: torch.Tensor | None) -> None:
        if self.generator is not None and state is not None:
            self.generator.set_state(state)


@dataclass
class EpochState:
    """A worker's place within an epoch, for a checkpoint there: the next step, the epoch's sums and seconds so
    far, and its generators' states (the pairs' and negatives' draws, the input noise)."""

    epoch: int
    step: int
    sums: torch.Tensor
    elapsed: float
    rng: Mapping[str, Any]
    noise: torch.Tensor | None = None


@torch.no_grad()
def step_sums(loss, per_pair, distance, y, n_encoded: int) -> torch.Tensor:
    """This step's contribution to ``SUMS``, kept on the device (no host sync per step)."""
    sim = (y == 0).to(per_pair.dtype)
    dis = 1 - sim
    values = [
        loss,
        (per_pair * sim).sum(),
        (per_pair * dis).sum(),
        (distance * sim).sum(),
        (distance * dis).sum(),
        sim.new_tensor(len(y)),
        sim.sum(),
        dis.sum(),
        sim.new_tensor(n_encoded),
    ]
    return torch.stack([v.detach().to(torch.float64) for v in values])


def epoch_metrics(sums: torch.Tensor, steps: int, elapsed: float, epoch: int, lr: float) -> dict[str, float]:
    """Epoch metrics from sums reduced over all workers (``steps`` counts every worker's steps)."""
    s = dict(zip(SUMS, sums.tolist()))
    return {
        "epoch": epoch + 1,
        "loss": s["loss"] / steps,
        "similar_loss": s["similar_loss"] / max(s["similar"], 1),
        "dissimilar_loss": s["dissimilar_loss"] / max(s["dissimilar"], 1),
        "similar_distance": s["similar_distance"] / max(s["similar"], 1),
        "dissimilar_distance": s["dissimilar_distance"] / max(s["dissimilar"], 1),
        "pairs": s["pairs"],
        "pairs_per_second": s["pairs"] / elapsed,
        "samples_per_second": s["encoded"] / elapsed,
        "lr": lr,
    }


class TrainingCore:
    """One worker's model, optimizer, loss and weight average over its share of the pairs, epoch by epoch.

    ``model`` may be wrapped for DDP (the weights live in ``model.module`` then); the weight average starts from
    the initial weights, and DDP keeps the weights equal on every rank, so every rank's average is the same.
    With ``train.local_steps`` H > 1 and a share of several workers, ``model`` must not be wrapped: every H steps
    and at the end of each epoch the core averages the weights over the workers (and, at the epoch's end, the
    weight average), so between epochs every rank holds the same weights, as under DDP.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        features: DeviceFeatures | StreamedFeatures,
        share: PairShare,
        seed: int,
        device: torch.device,
        rank: int = 0,
    ) -> None:
        self.cfg, self.model, self.features = cfg, model, features
        self.seed, self.device, self.rank = seed, device, rank
        self.module = getattr(model, "module", model)
        self.local_steps = cfg.averaged_every(share.world)
        if self.local_steps and self.module is not model:
            raise StageError("train.local_steps > 1 averages the weights itself: build the model without DDP")
        self.sampling = ShareSampling.from_share(share)
        self.left, self.right = share.left, share.right
        self.pair_weight = pair_weights(cfg.source_weights, share)
        self.per_rank = share.per_epoch
        if self.per_rank == 0:
            raise StageError(
                "a training worker got no similar pairs; lower train.num_workers or raise pairs.num_shards"
            )
        self.steps = max(1, math.ceil(self.per_rank / cfg.batch_size))  # a whole epoch's
        self.total_steps = cfg.steps or max(1, round(cfg.epochs * self.steps))  # train.steps, or epochs of them
        self.epochs = math.ceil(self.total_steps / self.steps)
        self.world = share.world
        self.prefetch = cfg.prefetch if cfg.prefetch != "auto" else (2 if device.type == "cuda" else 0)
        self.optimizer = make_optimizer(model.parameters(), cfg)
        self.criterion = build_loss(cfg.loss, cfg.loss_options, **cfg.model_dump())
        if self.local_steps:
            self.average_weights()  # one start for all (the workers seed alike; this makes sure)
        self.ema = (
            {k: v.detach().clone() for k, v in self.module.state_dict().items()} if cfg.ema_decay is not None else None
        )

    def average_weights(self, with_ema: bool = False) -> None:
        """Local SGD's synchronisation: the weights (and the weight average) <- their mean over the workers."""
        average_across_workers(floating_tensors(self.module.state_dict()))
        if with_ema and self.ema is not None:
            average_across_workers(floating_tensors(self.ema))

    def steps_in(self, epoch: int) -> int:
        """The steps of ``epoch``: all of an epoch's, but for a last one cut short by fractional epochs."""
        return min(self.steps, self.total_steps - epoch * self.steps)

    def run_epoch(
        self,
        epoch: int,
        resume: EpochState | None = None,
        save: Callable[[EpochState], None] | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> tuple[torch.Tensor, float]:
        """Train one epoch (seeded by ``seed``, ``epoch`` and rank), from its start or from where ``resume`` left
        off; returns this worker's ``SUMS`` and seconds. ``save`` gets the worker's ``EpochState`` every
        ``train.checkpoint_every`` seconds or so, at the same steps on every worker (with local SGD, at averaging
        steps); ``progress(step, steps, seconds)`` is called every ``PROGRESS_SECONDS``."""
        cfg, features = self.cfg, self.features
        rng = NegativeSampler.rng_for(self.seed, epoch, self.rank)
        order = rng.permutation(len(self.left))[: self.per_rank]
        noise = InputNoise(cfg.input_noise, self.seed, epoch, self.rank, self.device)
        sums = torch.zeros(len(SUMS), dtype=torch.float64, device=self.device)
        start, before = 0, 0.0
        if resume is not None:
            rng.bit_generator.state = resume.rng
            noise.load(resume.noise)
            start, sums, before = resume.step, resume.sums.to(self.device), resume.elapsed

        def prepare(i: int) -> tuple[StepPairs, Any, Mapping[str, Any]]:
            step = start + i
            pos = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            weight = 1.0 if self.pair_weight is None else self.pair_weight[pos]
            pairs = step_pairs(
                cfg.mode, self.left[pos], self.right[pos], self.sampling, cfg.negatives_per_positive, rng, weight
            )
            return pairs, features.fetch(pairs.samples), rng.bit_generator.state  # the draws after this step

        count = self.steps_in(epoch)
        every = 0  # steps between checkpoints within the epoch, from the first steps' pace
        self.model.train()
        started = shown = time.perf_counter()
        for step, (pairs, fetched, drawn) in enumerate(prefetched(prepare, count - start, self.prefetch), start):
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, epoch * self.steps + step, self.total_steps)
            x = noise(features.to_device(pairs.samples, fetched))
            terms = optimizer_step(self.model, self.optimizer, self.criterion, x, pairs, cfg.precision)
            if self.local_steps and (step + 1) % self.local_steps == 0 and step + 1 < count:
                self.average_weights()
            if self.ema is not None and cfg.ema_decay is not None:
                ema_update(self.ema, self.module, cfg.ema_decay)
            sums += step_sums(*terms, len(pairs.samples))
            if save is not None and cfg.checkpoint_every and step + 1 - start == PACE_STEPS:
                every = self.checkpoint_steps(time.perf_counter() - started)
            if every and (step + 1) % every == 0 and step + 1 < count:
                assert save is not None
                save(
                    EpochState(
                        epoch, step + 1, sums.clone(), before + time.perf_counter() - started, drawn, noise.state()
                    )
                )
            if progress is not None and time.perf_counter() - shown > PROGRESS_SECONDS:
                shown = time.perf_counter()
                progress(step + 1, count, before + shown - started)
        if self.local_steps:
            self.average_weights(with_ema=True)
        return sums, before + time.perf_counter() - started

    def checkpoint_steps(self, seconds: float) -> int:
        """Steps between checkpoints within an epoch: ``train.checkpoint_every`` seconds at the pace of the first
        ``PACE_STEPS`` steps, the slowest worker's (the same count on every worker, who all report together), a
        multiple of local SGD's averaging interval (where every worker holds the same weights)."""
        pace = torch.tensor([seconds / PACE_STEPS], dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(pace, op=dist.ReduceOp.MAX)
        steps = max(1, round(self.cfg.checkpoint_every / float(pace)))
        return steps if not self.local_steps else math.ceil(steps / self.local_steps) * self.local_steps

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def trained_weights(self) -> dict[str, torch.Tensor]:
        """The weights of the trained model: the weight average when there is one, else the current weights."""
        return self.ema if self.ema is not None else self.module.state_dict()

    def state(self) -> dict[str, Any]:
        """What resuming needs (the epoch and history are the caller's)."""
        return {"model": self.module.state_dict(), "ema": self.ema, "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema = {k: v.to(self.device) for k, v in state["ema"].items()}
