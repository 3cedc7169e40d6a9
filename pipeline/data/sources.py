"""Data sources (``data.source``): where a job's samples come from, as parts that are read one at a time.

A ``DataSource`` lists its ``parts`` (a file of the user's, or a built-in split such as MNIST's training digits)
without reading them, and a ``fingerprint`` that identifies their content (the sample store's key). Each part
feeds one split ("train" or "test") and gives its original samples when read (``PartSamples``); the data stage
does the rest the same way for every source (``stage.py``): the validation split held out of the training
originals, ids planned once from the parts' row counts (``layout.py``), the transformed copies and the shards
made part by part, in the driver or in Ray tasks.

A new source is one ``DataSource`` subclass plus its line in ``pipeline/config/choices.py`` (``DATA_SOURCES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import DataConfig


@dataclass(frozen=True)
class PartSamples:
    """The originals one part gives its split: ``features`` ``(n, *shape)``, ``labels`` (-1: none),
    ``source_index`` (each sample's row in the source) and metadata columns (name -> ``(n,)``).

    Features are float32, or integers stored as they are (uint8 pixels: 4x less disk, memory and I/O) whose
    values are ``features / divisor`` (255 for pixels in [0, 1])."""

    features: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    divisor: float = 1.0

    def as_float(self) -> np.ndarray:
        """The features' float32 values (divided in float64, then rounded)."""
        if self.features.dtype == np.float32 and self.divisor == 1.0:
            return self.features
        return (self.features / np.float64(self.divisor)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, selected: np.ndarray) -> PartSamples:
        """The samples at ``selected`` (indices or a mask), in the part's order."""
        return PartSamples(
            self.features[selected],
            self.labels[selected],
            self.source_index[selected],
            {k: v[selected] for k, v in self.metadata.items()},
            self.divisor,
        )


@dataclass(frozen=True)
class SourcePart:
    """One part of a source: read on its own, in the driver or in a Ray task (it must pickle)."""

    name: str  # how messages name it: a file, or e.g. "MNIST's train digits under ROOT"
    split: str  # "train" or "test"
    size: int  # bytes to read, roughly: small sources are read in the driver, large ones by Ray tasks

    def read(self) -> PartSamples:
        raise NotImplementedError

    def preview(self) -> tuple[PartSamples, int] | None:
        """Its first samples and its row count, when the part can tell them without being made whole (a part
        generated sample by sample); None: the data stage reads it to learn its facts."""
        return None


@dataclass(frozen=True)
class ArrayPart(SourcePart):
    """Samples already in memory (a notebook's arrays, a test's): read is a look-up."""

    samples: PartSamples

    def read(self) -> PartSamples:
        return self.samples


def array_parts(splits: dict[str, PartSamples]) -> list[SourcePart]:
    """One part per split of arrays in memory ("train", and "test" if held-out samples are given)."""
    return [
        ArrayPart(f"the {split} arrays", split, samples.features.nbytes, samples) for split, samples in splits.items()
    ]


class DataSource:
    """The parts of ``cfg``'s source under the data root ``root``, and what identifies them."""

    def __init__(self, cfg: DataConfig, root: Path) -> None:
        self.cfg, self.root = cfg, Path(root)

    def parts(self) -> list[SourcePart]:
        """The parts, training parts first, each split's in order; reads no samples (a missing source fails
        here, or is downloaded where the source allows it)."""
        raise NotImplementedError

    def fingerprint(self) -> Any:
        """What identifies the parts' content without reading it (JSON-serialisable)."""
        raise NotImplementedError

    def groups(self) -> np.ndarray | None:
        """A group per training sample (in order over the training parts) whose members are one sample in
        disguise, e.g. deformations of one digit: the validation split holds out whole groups, so none of them
        is trained on. None: every sample is its own group."""
        return None
