"""The paper's airplane experiment: one NORB airplane seen from 18 azimuths x 9 elevations under 6 lightings.

Two sources with the same layout (972 grey 96x96 images, metadata ``azimuth`` in degrees 0..340,
``elevation`` in degrees 30..70, ``lighting`` 0..5):

- ``read_norb_matrix`` / ``load_norb_airplane``: the official small NORB files (their binary matrix format),
  for users who have them; NORB cannot be downloaded by this project.
- ``render_airplane``: a **synthetic** stand-in, clearly not NORB: a simple airplane made of ellipsoids
  (fuselage, wings, tailplane, fin), ray cast orthographically at every view with Lambertian shading from 6
  light directions. It has what the experiment needs: views that change smoothly with azimuth and elevation
  (the plane is not front/back symmetric, so 360 degrees of azimuth are distinguishable) and lighting that
  changes pixels a lot without changing the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.sources import DataSource, PartSamples, SourcePart
from pipeline.errors import DataError

AZIMUTHS = np.arange(0, 360, 20)  # 18 views around the object
ELEVATIONS = np.arange(30, 75, 5)  # 9 camera elevations
LIGHTINGS = np.arange(6)
SIZE = 96

# --- the official small NORB files ------------------------------------------------------------------------

_MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32, 0x1E3D4C51: np.float32, 0x1E3D4C53: np.float64}
NORB_FILES = {part: f"smallnorb-5x46789x9x18x6x2x96x96-training-{part}.mat" for part in ("dat", "cat", "info")}
AIRPLANE = 2  # small NORB categories: 0 animal, 1 human, 2 airplane, 3 truck, 4 car


def read_norb_matrix(path: str | Path) -> np.ndarray:
    """A NORB binary matrix: int32 magic (element type), int32 ndim, max(3, ndim) int32 dims, then the data."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"NORB file {path} does not exist; put the small NORB training files there")
    raw = path.read_bytes()
    if len(raw) < 20:
        raise DataError(f"{path}: too short for a NORB matrix header ({len(raw)} bytes); the file is truncated")
    magic, ndim = np.frombuffer(raw[:8], dtype="<i4")
    if int(magic) & 0xFFFFFFFF not in _MAGIC or not 0 < ndim <= 16:
        raise DataError(f"{path}: not a NORB matrix (magic {int(magic) & 0xFFFFFFFF:#x}, ndim {ndim})")
    header = 8 + 4 * max(3, int(ndim))
    dims = np.frombuffer(raw[8:header], dtype="<i4")[:ndim]
    dtype = np.dtype(_MAGIC[int(magic) & 0xFFFFFFFF]).newbyteorder("<")
    count = int(np.prod(dims))
    if len(raw) - header < count * dtype.itemsize:
        raise DataError(
            f"{path}: holds {len(raw) - header} data bytes, its header announces {count * dtype.itemsize} "
            f"({list(dims)} of {dtype}); the file is truncated"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


def load_norb_airplane(root: str | Path, instance: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One airplane instance from the small NORB training files under ``root/norb``: left-camera images
    ``(972, 1, 96, 96)`` in [0, 1] and their metadata."""
    folder = Path(root) / "norb"
    images = read_norb_matrix(folder / NORB_FILES["dat"])
    category = read_norb_matrix(folder / NORB_FILES["cat"])
    info = read_norb_matrix(folder / NORB_FILES["info"])  # instance, elevation index, azimuth/10 (even), lighting
    chosen = np.flatnonzero((category == AIRPLANE) & (info[:, 0] == instance))
    if len(chosen) == 0:
        raise DataError(
            f"{folder}: no airplane with instance {instance}; set data.norb_instance to one of "
            f"{sorted(set(info[category == AIRPLANE, 0].tolist()))}"
        )
    meta = {
        "azimuth": info[chosen, 2].astype(np.float64) * 10,
        "elevation": 30.0 + 5 * info[chosen, 1],
        "lighting": info[chosen, 3].astype(np.int64),
    }
    return images[chosen, :1].astype(np.float32) / 255.0, meta


# --- the synthetic airplane ---------------------------------------------------------------------------------

# (centre, radii) of each ellipsoid in object coordinates: x towards the nose, y along the left wing, z up.
_PARTS = np.array(
    [
        [[0.10, 0.0, 0.00], [1.00, 0.14, 0.14]],  # fuselage
        [[0.15, 0.0, 0.00], [0.28, 0.95, 0.035]],  # wings
        [[-0.80, 0.0, 0.03], [0.14, 0.38, 0.025]],  # tailplane
        [[-0.82, 0.0, 0.20], [0.15, 0.025, 0.22]],  # fin
        [[1.00, 0.0, 0.03], [0.22, 0.10, 0.09]],  # cockpit / nose
    ]
)
# Light directions (unit vectors towards the light), fixed in the world: 6 lightings, as in NORB.
_LIGHTS = np.array(
    [
        [
            np.cos(np.radians(e)) * np.cos(np.radians(a)),
            np.cos(np.radians(e)) * np.sin(np.radians(a)),
            np.sin(np.radians(e)),
        ]
        for a, e in [(0, 60), (60, 20), (120, 45), (180, 70), (240, 30), (300, 50)]
    ]
)


def _view(azimuth: float, elevation: float, light: np.ndarray, size: int) -> np.ndarray:
    phi, theta = np.radians(azimuth), np.radians(elevation)
    towards_camera = np.array([np.cos(theta) * np.cos(phi), np.cos(theta) * np.sin(phi), np.sin(theta)])
    right = np.array([-np.sin(phi), np.cos(phi), 0.0])
    up = np.cross(towards_camera, right)
    s = np.linspace(-1.25, 1.25, size)
    u, v = np.meshgrid(s, -s)  # image rows go down
    origins = 5 * towards_camera + u[..., None] * right + v[..., None] * up  # (size, size, 3)
    direction = -towards_camera
    best_t = np.full((size, size), np.inf)
    normal = np.zeros((size, size, 3))
    for centre, radii in _PARTS:
        o = (origins - centre) / radii
        d = direction / radii
        a, b, c = d @ d, 2 * (o @ d), (o * o).sum(-1) - 1
        disc = b * b - 4 * a * c
        t = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
        hit = t < best_t
        best_t = np.where(hit, t, best_t)
        p = origins + np.where(np.isfinite(t), t, 0)[..., None] * direction
        n = (p - centre) / radii**2
        normal = np.where(hit[..., None], n / np.linalg.norm(n, axis=-1, keepdims=True), normal)
    shade = 0.15 + 0.85 * np.clip(normal @ light, 0, None)
    return np.where(np.isfinite(best_t), shade, 0.0).astype(np.float32)


def render_airplane(size: int = SIZE) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The synthetic airplane at every (azimuth, elevation, lighting): images ``(972, 1, size, size)``."""
    az, el, light = (g.ravel() for g in np.meshgrid(AZIMUTHS, ELEVATIONS, LIGHTINGS, indexing="ij"))
    images = np.stack([_view(float(a), float(e), _LIGHTS[li], size) for a, e, li in zip(az, el, light)])[:, None]
    return images, {
        "azimuth": az.astype(np.float64),
        "elevation": el.astype(np.float64),
        "lighting": light.astype(np.int64),
    }


# --- the data sources ------------------------------------------------------------------------------------------
# The paper maps the 972 views it trains on: one object's views have no held-out set, so one training part.


def _views(images: np.ndarray, meta: dict[str, np.ndarray]) -> PartSamples:
    return PartSamples(images, np.full(len(images), -1), np.arange(len(images)), meta)


@dataclass(frozen=True)
class NorbPart(SourcePart):
    root: Path
    instance: int

    def read(self) -> PartSamples:
        return _views(*load_norb_airplane(self.root, self.instance))


class NorbSource(DataSource):
    """``data.source: norb``: one airplane (``data.norb_instance``) from the small NORB files under ROOT/norb."""

    def _files(self) -> list[Path]:
        files = [self.root / "norb" / name for name in NORB_FILES.values()]
        for path in files:
            if not path.is_file():
                raise DataError(f"NORB file {path} does not exist; put the small NORB training files there")
        return files

    def parts(self) -> list[SourcePart]:
        size = sum(path.stat().st_size for path in self._files())
        return [
            NorbPart(
                f"the NORB airplane {self.cfg.norb_instance} under {self.root / 'norb'}",
                "train",
                size,
                self.root,
                self.cfg.norb_instance,
            )
        ]

    def fingerprint(self) -> dict[str, int]:
        return {path.name: path.stat().st_size for path in self._files()}


@dataclass(frozen=True)
class AirplanePart(SourcePart):
    def read(self) -> PartSamples:
        return _views(*render_airplane())


class AirplaneSource(DataSource):
    """``data.source: airplane``: the synthetic stand-in, rendered (``render_airplane``)."""

    def parts(self) -> list[SourcePart]:
        return [AirplanePart("the synthetic airplane", "train", 972 * SIZE * SIZE * 4)]

    def fingerprint(self) -> dict[str, int]:
        return {"renderer": 1}  # bump when render_airplane changes
