"""st.cache_data wrappers around lossviz compute; every argument is primitive and hashable.

Hyperparameters travel as sorted tuples of (name, value) pairs: `params_key({"gamma": 2.0})`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from lossviz import shapes
from lossviz.results import Curve, Surface

ParamsKey = tuple[tuple[str, float], ...]
LossesKey = tuple[tuple[str, ParamsKey], ...]


def params_key(params: Mapping[str, float]) -> ParamsKey:
    """A hashable, order-independent form of a params dict."""
    return tuple(sorted((str(k), float(v)) for k, v in params.items()))


def losses_key(selection: Mapping[str, Mapping[str, float]]) -> LossesKey:
    """A hashable form of {loss: params}, keeping the selection order (it sets the legend order)."""
    return tuple((name, params_key(params)) for name, params in selection.items())


@st.cache_data(max_entries=256, show_spinner=False)
def loss_curves(
    task: str, selection: LossesKey, axis: str, n_classes: int, points: int = 2000
) -> list[Curve]:
    """Cached lossviz.shapes.loss_curves."""
    return shapes.loss_curves(
        task,  # type: ignore[arg-type]
        [(name, dict(params)) for name, params in selection],
        axis=axis,  # type: ignore[arg-type]
        n_classes=n_classes,
        points=points,
    )


@st.cache_data(max_entries=256, show_spinner=False)
def sweep_curves(
    name: str, param: str, n: int, params: ParamsKey, axis: str, n_classes: int, points: int = 2000
) -> list[Curve]:
    """Cached lossviz.shapes.sweep_curves."""
    return shapes.sweep_curves(
        name,
        param,
        n=n,
        params=dict(params),
        axis=axis,
        n_classes=n_classes,
        points=points,  # type: ignore[arg-type]
    )


@st.cache_data(max_entries=128, show_spinner=False)
def simplex_surface(name: str, params: ParamsKey, resolution: int = 121) -> Surface:
    """Cached lossviz.shapes.simplex_surface."""
    return shapes.simplex_surface(name, dict(params), resolution)


@st.cache_data(max_entries=1024, show_spinner=False)
def loss_properties(name: str, params: ParamsKey, axis: str, n_classes: int) -> dict[str, Any]:
    """Cached lossviz.shapes.loss_properties."""
    return shapes.loss_properties(name, dict(params), axis=axis, n_classes=n_classes)  # type: ignore[arg-type]
