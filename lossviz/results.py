"""Frozen dataclasses of numpy arrays returned by every public compute function.

Torch stays inside lossviz; figures and the UI only ever see these. Grid convention, fixed once here:
`Surface.z[i, j]` is the value at `(xs[j], ys[i])`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Curve:
    """y(x) for one loss: values, derivative and any extra named series on the same x."""

    name: str  # registry key (used for colour)
    x: np.ndarray  # (P,)
    y: np.ndarray  # (P,)
    dy: np.ndarray | None = None  # (P,) derivative along the axis, by autograd
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    label: str = ""  # legend text; the loss title when empty


@dataclass(frozen=True)
class Surface:
    """A scalar field on a grid: z[i, j] is the value at (xs[j], ys[i])."""

    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    z: np.ndarray  # (ny, nx)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other fields on the same grid
    label: str = ""

    def __post_init__(self) -> None:
        if self.z.shape[:2] != (len(self.ys), len(self.xs)):
            raise ValueError(f"z has shape {self.z.shape}, expected ({len(self.ys)}, {len(self.xs)}, ...)")
