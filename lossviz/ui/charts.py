"""Draw a figure builder's output with st.plotly_chart, building each distinct figure once.

Plotly's object model validates every property as a figure is built: the four Calibration figures take about a
second to build and a rerun with unchanged settings rebuilt them all. Figure builders are pure (panels in,
figure out), so the figure's JSON is cached by the builder and its inputs, and a rerun that asks for the same
figure hands Streamlit the cached JSON without validating it again.

    charts.show(st, figures.reliability_figure, key="cal.fig.reliability", panels=panels, overlay=overlay)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import plotly.io
import streamlit as st

from lossviz.ui import margins

SPECS_KEPT = 256  # figures kept across sessions; each is at most the 150 KB chart budget


def show(
    container: Any,
    builder: Callable[..., go.Figure],
    /,
    *,
    key: str | None = None,
    on_select: Any = "ignore",
    selection_mode: Any = ("points", "box", "lasso"),
    **inputs: Any,
) -> Any:
    """container.plotly_chart(builder(**inputs)) with the figure built once per distinct inputs.

    Returns what st.plotly_chart returns (the selection state when on_select is set).
    """
    spec = figure_json(builder, **inputs)
    # Validated when it was built; without validation a cached figure is rebuilt in milliseconds.
    figure = go.Figure(json.loads(spec), _validate=False)
    return container.plotly_chart(figure, key=key, on_select=on_select, selection_mode=selection_mode)


def plot(container: Any, figure: go.Figure, **options: Any) -> Any:
    """container.plotly_chart(figure) for a figure drawn once (a live view's frame): margins reserved as for
    every cached figure, so it is laid out once."""
    return container.plotly_chart(margins.reserve(figure), **options)


def figure_json(builder: Callable[..., go.Figure], /, **inputs: Any) -> str:
    """The JSON of builder(**inputs), from the cache when this builder already drew these inputs."""
    return _cached_json(f"{builder.__module__}.{builder.__qualname__}", builder, inputs)


@st.cache_data(max_entries=SPECS_KEPT, show_spinner=False)
def _cached_json(name: str, _builder: Callable[..., go.Figure], inputs: dict[str, Any]) -> str:
    # Keyed by the builder's qualified name (the function object is left out of the hash, hence the
    # underscore) and by the inputs, which Streamlit hashes by value (numpy arrays by their bytes).
    return plotly.io.to_json(margins.reserve(_builder(**inputs)), validate=False)


def figure_cache_clear() -> None:
    """Forget every cached figure (tests; st.cache_data.clear() does it too)."""
    _cached_json.clear()
