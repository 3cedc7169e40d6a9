"""The user's own samples (``data.source: parquet`` / ``numpy``): one part per file of ``data.path`` (training)
and ``data.test_path`` (held out), listed without reading a byte (``listing.py``) and read by ``formats.py``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pipeline.data.formats import read_samples
from pipeline.data.listing import SourceFile, fingerprint, list_source
from pipeline.data.sources import DataSource, PartSamples, SourcePart


@dataclass(frozen=True)
class FilePart(SourcePart):
    file: SourceFile
    feature_column: str
    label_column: str | None
    feature_shape: tuple[int, ...] | None

    def read(self) -> PartSamples:
        got = read_samples(self.file, self.feature_column, self.label_column, self.feature_shape)
        return PartSamples(got.features, got.labels, np.arange(len(got.labels)), got.metadata)


class FileSource(DataSource):
    @cached_property
    def listing(self) -> dict[str, list[SourceFile]]:
        """The files of each split ("train": data.path, "test": data.test_path); reads no data."""
        cfg = self.cfg
        return {
            split: list_source(value, key, self.root, cfg.storage_options)
            for split, key, value in (("train", "data.path", cfg.path), ("test", "data.test_path", cfg.test_path))
            if value
        }

    def parts(self) -> list[SourcePart]:
        cfg = self.cfg
        shape = tuple(cfg.feature_shape) if cfg.feature_shape else None
        return [
            FilePart(file.name, split, file.size, file, cfg.feature_column, cfg.label_column, shape)
            for split, files in self.listing.items()
            for file in files
        ]

    def fingerprint(self) -> dict[str, list]:
        return {split: fingerprint(files) for split, files in self.listing.items()}
