"""What feeds a worker's steps: the features of a step's samples, fetched by id, and steps prepared ahead.

``train.features`` picks where the training features live:
- ``device``: the whole split is copied to the device once; a step gathers rows there (nothing to transfer).
- ``stream``: the split stays a memory map of the sample store (``SampleStore.feature_matrix``); a step reads
  only its samples' rows, into pinned memory on a GPU, and copies them to the device without blocking.
- ``auto``: ``device`` when the split takes at most a quarter of the device's free memory (the machine's
  available memory on CPU), else ``stream``.

``prefetched`` runs the preparation of the next steps (similar pairs, lazy negatives, feature rows) in a
background thread, so the accelerator does not wait for it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

PLACEMENTS = ("auto", "device", "stream")


def as_values(stored: torch.Tensor, divisor: float) -> torch.Tensor:
    """Features as stored (float32, or e.g. uint8 pixels) as the float32 values the encoder takes: divided in
    float64, then rounded, which gives exactly the sample store's own values (``SampleStore.as_float``)."""
    if stored.dtype == torch.float32:
        return stored
    return (stored.to(torch.float64) / divisor).to(torch.float32)


class DeviceFeatures:
    """The whole feature matrix on the device, as stored (uint8 pixels take a quarter of float32's room); a step
    indexes it there and casts its rows."""

    def __init__(self, matrix: np.ndarray, device: torch.device, divisor: float = 1.0) -> None:
        self.data = torch.from_numpy(np.array(matrix)).to(device)  # read it all, once
        self.nbytes, self.divisor = matrix.nbytes, divisor

    def fetch(self, ids: np.ndarray) -> None:
        return None  # nothing to prepare on the host

    def to_device(self, ids: np.ndarray, fetched: None) -> torch.Tensor:
        return as_values(self.data[torch.from_numpy(ids).to(self.data.device)], self.divisor)


class StreamedFeatures:
    """Rows read by id from a memory-mapped matrix, pinned on a GPU, copied to the device per step as stored and
    cast there."""

    def __init__(self, matrix: np.ndarray, device: torch.device, divisor: float = 1.0) -> None:
        self.matrix, self.device, self.pin = matrix, device, device.type == "cuda"
        self.nbytes, self.divisor = matrix.nbytes, divisor

    def fetch(self, ids: np.ndarray) -> torch.Tensor:
        rows = torch.from_numpy(self.matrix[ids])  # reads just these rows (a step's ids come sorted)
        return rows.pin_memory() if self.pin else rows

    def to_device(self, ids: np.ndarray, fetched: torch.Tensor) -> torch.Tensor:
        return as_values(fetched.to(self.device, non_blocking=self.pin), self.divisor)


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def feature_table(
    matrix: np.ndarray, device: torch.device, placement: str, divisor: float = 1.0
) -> DeviceFeatures | StreamedFeatures:
    """The feature table for ``placement`` (one of ``PLACEMENTS``) of the memory-mapped ``matrix`` (features as
    stored, their values ``matrix / divisor``)."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown feature placement {placement!r}; choose one of {list(PLACEMENTS)}")
    if placement == "auto":
        placement = "device" if matrix.nbytes <= _free_bytes(device) // 4 else "stream"
    table = DeviceFeatures if placement == "device" else StreamedFeatures
    return table(matrix, device, divisor)


_DONE = object()


def prefetched(make: Callable[[int], Any], count: int, depth: int) -> Iterator[Any]:
    """``make(0), make(1), ... make(count - 1)``, computed up to ``depth`` items ahead in a background thread
    (in order, so a generator used inside ``make`` is consumed exactly as inline); ``depth`` 0 = inline."""
    if depth == 0:
        for i in range(count):
            yield make(i)
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for i in range(count):
                if not offer(make(i)):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            offer(exc)

    thread = threading.Thread(target=produce, name="step-prefetch", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the consumer stopped early (an error, or the epoch cut short): let the producer end
        thread.join()
