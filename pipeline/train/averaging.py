"""Local SGD (``train.local_steps`` H > 1): every worker takes H optimizer steps alone, then all average their
weights, instead of averaging gradients every step (DDP).

Why: on CPU the gradient all-reduce of a small encoder over gloo roughly doubles a worker's step (the 4 x 256 MLP
of ``jobs/mnist_all.yaml``: 13.0 ms a step and worker under DDP against 6.1 ms in one process), so two DDP workers
on two cores score no more pairs per second than one process; averaging every H steps pays that cost once per
H steps (16: 9.4 ms a step, 1.39x the pairs per second; ``benchmarks/local_sgd.py``, BENCHMARKS.md).
A GPU cluster, where the all-reduce overlaps the backward pass, keeps H = 1.

What it optimises: each worker's step minimises its own share's part of the loss, scaled so that the mean over
workers is the whole loss (``batches.py``). Averaging the weights after H steps from a common start equals
averaging the H summed updates, which to first order in the learning rate is H steps on the averaged gradient,
i.e. DDP's path; the difference is second order in lr * H and is what "local SGD" studies (Stich, ICLR 2019;
Lin et al., ICLR 2020), where small H trains as well as fully synchronous steps. Optimizer state (Adam's moments)
stays each worker's own. Whether it holds for a job is a validation question, so H is a setting, chosen like the
others.

A weight average (``train.ema_decay``) is linear in the weights, so averaging every worker's average gives the
average of the averaged weights: it is averaged at the end of each epoch with the weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist


def floating_tensors(state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The tensors of ``state`` (a state dict, whose tensors share memory with the module) that are averaged:
    the floating-point ones (integer buffers, e.g. a batch-norm step count, are the same on every worker)."""
    return [t for t in state.values() if t.is_floating_point()]


@torch.no_grad()
def average_across_workers(tensors: Iterable[torch.Tensor]) -> None:
    """In place: every tensor <- its mean over the process group's workers, in one all-reduce of their
    concatenation (one call's latency rather than one per tensor). A no-op in one process."""
    tensors = list(tensors)
    if not tensors or not dist.is_initialized() or dist.get_world_size() == 1:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
