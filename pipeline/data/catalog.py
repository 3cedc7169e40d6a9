"""What a job may choose in its ``data`` section (import-light: the job configuration reads it at load time).

The transforms themselves are in ``transforms.py`` (a test keeps the two in step).
"""

from __future__ import annotations

TRANSFORM_NAMES = ("rotate", "shift_x", "shift_y")


def check_transforms(spec: dict[str, list[float]]) -> None:
    """Raise ``ValueError`` naming the problem for an unknown transform or an unusable parameter list."""
    for name, values in spec.items():
        if name not in TRANSFORM_NAMES:
            raise ValueError(f"unknown transform {name!r}; choose from {list(TRANSFORM_NAMES)}")
        if not values:
            raise ValueError(f"transform {name!r} needs at least one parameter, e.g. {name}: [-3, 3]")
        if len(set(values)) != len(values):
            raise ValueError(f"transform {name!r} repeats a parameter: {values}")
        if name.startswith("shift") and any(int(v) != v for v in values):
            raise ValueError(f"transform {name!r} shifts by whole pixels, got {values}")
