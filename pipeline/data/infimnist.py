"""A million MNIST digits and more (``data.source: infimnist``): MNIST's training digits, each deformed many times.

The recipe of infiMNIST / MNIST8M (Loosli, Canu, Bottou 2007; the distortions of Simard, Steinkraus, Platt 2003):
sample ``i`` of ``data.samples`` is training digit ``i mod m`` of the ``m`` originals of ``data.digits``, as it
is for ``i < m`` and deformed for the rest: a random affine map (rotation, scale, shear, shift) composed with an
elastic field (uniform random displacements smoothed by a Gaussian), sampled bilinearly and rounded to uint8
pixels. Each block of ``BLOCK`` samples draws its deformations from a generator seeded by the block's number, so
a sample is the same however the data set is cut into parts (one Ray task each, in the data stage). The held-out
split stays MNIST's real test digits. Metadata: ``copy`` (0 for the originals, then 1, 2, ... per pass) and
``mnist_index`` (the digit's row in its MNIST file). The validation split holds out whole digits, each with all its
deformations (``groups``), so no deformation of a validation digit is trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.data.mnist import RAW_FILES, MnistPart, MnistSource, load_mnist, raw_dir, select_digits
from pipeline.data.sources import DataSource, PartSamples, SourcePart

BLOCK = 4096  # samples per seeded block of deformations
PART_BLOCKS = 16  # blocks per part (one Ray task): 65 536 digits, 51 MB of pixels
SEED = 20070101  # the deformations' seed, fixed: a data set is the same on every run

# Strength of the distortions (pixels of 28 x 28 digits, angles in degrees): mild, as infiMNIST's, so a copy stays
# its digit to a pixel-space 1-NN classifier fitted on 10 000 originals 90 % of the time (96 % for the originals;
# 75 % with twice the shift, 1.5x the rest): the kNN graph over a million digits keeps their classes apart.
ROTATION, SCALE, SHEAR, SHIFT = 8.0, 0.08, 0.15, 1.0
ELASTIC_SIGMA, ELASTIC_ALPHA = 4.0, 10.0


def deform(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``images`` (n, 28, 28) uint8, each under its own random affine map and elastic field, as uint8."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    n, h, w = images.shape
    angle = np.radians(rng.uniform(-ROTATION, ROTATION, n))
    scale = 1 + rng.uniform(-SCALE, SCALE, (n, 2))
    shear = rng.uniform(-SHEAR, SHEAR, n)
    shift = rng.uniform(-SHIFT, SHIFT, (n, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    # Output pixel p (row, column) reads the input at A (p - centre) + centre + shift + elastic(p).
    a = np.empty((n, 2, 2))
    a[:, 0, 0], a[:, 0, 1] = cos * scale[:, 0], -sin * scale[:, 0] + shear
    a[:, 1, 0], a[:, 1, 1] = sin * scale[:, 1], cos * scale[:, 1]
    rows, cols = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    grid = np.stack([rows, cols])  # (2, h, w)
    source = np.einsum("nij,jhw->nihw", a, grid) + np.array([(h - 1) / 2, (w - 1) / 2])[None, :, None, None]
    source += shift[:, :, None, None]
    field = rng.uniform(-1, 1, (2, n, h, w))
    source += ELASTIC_ALPHA * np.moveaxis(gaussian_filter(field, sigma=(0, 0, ELASTIC_SIGMA, ELASTIC_SIGMA)), 0, 1)
    which = np.broadcast_to(np.arange(n)[:, None, None], (n, h, w))
    coords = np.stack([which, source[:, 0], source[:, 1]])
    out = map_coordinates(images.astype(np.float32), coords, order=1, mode="constant", cval=0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class DeformedPart(SourcePart):
    """Samples ``start`` to ``stop`` of the data set: originals and deformed copies of the chosen digits."""

    root: Path
    digits: tuple[int, ...]
    start: int
    stop: int

    def read(self) -> PartSamples:
        images, labels = load_mnist(self.root, train=True, download=False)
        originals = select_digits(labels, list(self.digits), None)
        m = len(originals)
        blocks = []
        for block in range(self.start // BLOCK, math.ceil(self.stop / BLOCK)):
            # The whole block, whatever part of it this part keeps: its deformations are drawn for all of it.
            ids = np.arange(block * BLOCK, (block + 1) * BLOCK)
            rows = originals[ids % m]
            pixels = images[rows]
            copies = ids >= m
            if copies.any():
                pixels = pixels.copy()
                pixels[copies] = deform(pixels[copies], np.random.default_rng([SEED, block]))
            blocks.append((ids, rows, pixels))
        ids = np.concatenate([b[0] for b in blocks])
        keep = (ids >= self.start) & (ids < self.stop)
        rows = np.concatenate([b[1] for b in blocks])[keep]
        pixels = np.concatenate([b[2] for b in blocks])[keep]
        meta = {"copy": ids[keep] // m, "mnist_index": rows}
        return PartSamples(pixels[:, None], labels[rows], np.arange(len(rows)), meta, divisor=255.0)

    def preview(self) -> tuple[PartSamples, int]:
        return replace(self, stop=self.start + 1).read(), self.stop - self.start


@dataclass(frozen=True)
class TestDigits(MnistPart):
    """MNIST's real test digits, as originals (``copy`` 0)."""

    def read(self) -> PartSamples:
        digits = super().read()
        return PartSamples(
            digits.features,
            digits.labels,
            digits.source_index,
            {"copy": np.zeros(len(digits), np.int64), "mnist_index": digits.source_index},
            digits.divisor,
        )


class InfiniteMnistSource(DataSource):
    """``data.samples`` training digits made from MNIST's training set; MNIST's test digits held out."""

    def parts(self) -> list[SourcePart]:
        test = MnistSource(self.cfg, self.root).parts()[-1]  # finds (or downloads) and checks MNIST's files
        assert isinstance(test, MnistPart)
        root, per_part, total = test.root, BLOCK * PART_BLOCKS, self.cfg.samples
        train: list[SourcePart] = [
            DeformedPart(
                f"MNIST's digits, deformed, {start}-{min(start + per_part, total)}",
                "train",
                (min(start + per_part, total) - start) * 784,
                root,
                tuple(self.cfg.digits),
                start,
                min(start + per_part, total),
            )
            for start in range(0, total, per_part)
        ]
        return [*train, TestDigits(test.name, "test", test.size, root, test.digits, test.per_digit)]

    def groups(self) -> np.ndarray:
        """Sample i is digit i mod m of the m originals: the validation split holds out digits with all their
        deformations."""
        _, labels = load_mnist(self.root, train=True, download=False)
        return np.arange(self.cfg.samples) % len(select_digits(labels, list(self.cfg.digits), None))

    def fingerprint(self) -> dict[str, object]:
        sizes = {
            name: (raw_dir(self.root) / name).stat().st_size
            for name in RAW_FILES
            if (raw_dir(self.root) / name).is_file()
        }
        deformations = [SEED, BLOCK, ROTATION, SCALE, SHEAR, SHIFT, ELASTIC_SIGMA, ELASTIC_ALPHA]
        return {"mnist": sizes, "samples": self.cfg.samples, "deformations": deformations}
