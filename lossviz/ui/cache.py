"""st.cache_data wrappers around lossviz.shapes; every argument is primitive and hashable.

Hyperparameters travel as sorted tuples of (name, value) pairs: `params_key({"gamma": 2.0})`. Curves are
cached one loss at a time, so moving one loss's slider recomputes only that loss. What is cached is what the
charts send: curves sampled adaptively (a few hundred points, kinks kept) and a simplex at screen resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from lossviz import shapes
from lossviz.results import Curve, Surface

ParamsKey = tuple[tuple[str, float], ...]
SIMPLEX_RESOLUTION = 81  # nodes per side: about 4 px per cell at the chart's size, under 100 KB of JSON


def params_key(params: Mapping[str, float]) -> ParamsKey:
    """A hashable, order-independent form of a params dict."""
    return tuple(sorted((str(k), float(v)) for k, v in params.items()))


@st.cache_data(max_entries=1024, show_spinner=False)
def loss_curve(
    name: str, params: ParamsKey, axis: str, n_classes: int, points: int = 2000,
    tolerance: float = shapes.PLOT_TOLERANCE,
) -> Curve:  # fmt: skip
    """Cached lossviz.shapes.loss_curve, sampled for a chart (dense grid of `points`, then adaptive)."""
    return shapes.loss_curve(
        name, dict(params), axis=axis, n_classes=n_classes, points=points, tolerance=tolerance,  # type: ignore[arg-type]
    )  # fmt: skip


@st.cache_data(max_entries=256, show_spinner=False)
def sweep_curves(
    name: str, param: str, n: int, params: ParamsKey, axis: str, n_classes: int, points: int = 2000,
    tolerance: float = shapes.PLOT_TOLERANCE,
) -> list[Curve]:  # fmt: skip
    """Cached lossviz.shapes.sweep_curves, sampled for a chart like loss_curve."""
    return shapes.sweep_curves(
        name, param, n=n, params=dict(params), axis=axis, n_classes=n_classes, points=points,  # type: ignore[arg-type]
        tolerance=tolerance,
    )  # fmt: skip


@st.cache_data(max_entries=128, show_spinner=False)
def simplex_surface(name: str, params: ParamsKey, resolution: int = SIMPLEX_RESOLUTION) -> Surface:
    """Cached lossviz.shapes.simplex_surface."""
    return shapes.simplex_surface(name, dict(params), resolution)


@st.cache_data(max_entries=1024, show_spinner=False)
def loss_properties(name: str, params: ParamsKey, axis: str, n_classes: int) -> dict[str, Any]:
    """Cached lossviz.shapes.loss_properties."""
    return shapes.loss_properties(name, dict(params), axis=axis, n_classes=n_classes)  # type: ignore[arg-type]
