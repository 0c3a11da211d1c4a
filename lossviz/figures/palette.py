"""One palette and one Plotly layout template for every page: a loss keeps its colour everywhere.

Colours: D3 category10, then 20 darker or shifted hues readable on white, ordered so that neighbouring slots
(neighbouring losses of one family in the registry) differ most (Ware, Information Visualization, ch. 4).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
    "#bcbd22", "#000080", "#e6550d", "#006400", "#800000", "#4b0082", "#d4a017", "#ff1493", "#222222",
    "#2f4f4f", "#7cb518", "#4169e1", "#ff6347", "#00a6a6", "#8b008b", "#a0522d", "#556b2f", "#dc143c",
    "#1e90ff", "#b8860b", "#6a5acd",
)  # fmt: skip
SEQUENTIAL = "Viridis"  # families of curves (sweeps) and heat maps
FONT = "Inter, 'Source Sans Pro', Helvetica, Arial, sans-serif"

# name -> slot in PALETTE; filled in registry order so losses of one task get consecutive, distinct colours
_SLOTS: dict[str, int] = {}


def assign_order(groups: Iterable[Iterable[str]]) -> None:
    """Give each loss the next free colour slot of its group (a task), in order; existing slots never move."""
    for group in groups:
        names = list(group)
        used = {_SLOTS[n] for n in names if n in _SLOTS}
        next_slot = 0
        for name in names:
            if name in _SLOTS:
                continue
            while next_slot in used and len(used) < len(PALETTE):
                next_slot += 1
            _SLOTS[name] = next_slot % len(PALETTE)
            used.add(_SLOTS[name])
            next_slot += 1


def color_for(name: str) -> str:
    """The colour of a loss: its assigned slot, or a stable hash of its name when none was assigned."""
    slot = _SLOTS.get(name)
    if slot is None:
        slot = zlib.crc32(name.encode()) % len(PALETTE)  # stable across processes, unlike hash()
    return PALETTE[slot]


def sequential_colors(n: int) -> list[str]:
    """n colours along the sequential scale, dark to light (for a swept hyperparameter, low to high)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return sample_colorscale(SEQUENTIAL, [i / max(1, n - 1) * 0.9 for i in range(n)])  # stop before yellow


TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family=FONT, size=13, color="#262730"),
        title=dict(font=dict(size=16), x=0.0, xanchor="left", y=0.97, yanchor="top"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(PALETTE),
        margin=dict(l=60, r=20, t=50, b=50),
        hovermode="closest",
        hoverlabel=dict(font=dict(family=FONT, size=12)),
        xaxis=dict(
            showgrid=True, gridcolor="#e6e6e6", zeroline=True, zerolinecolor="#b0b0b0", linecolor="#999",
            ticks="outside", showline=True, title=dict(standoff=8),
        ),
        yaxis=dict(
            showgrid=True, gridcolor="#e6e6e6", zeroline=True, zerolinecolor="#b0b0b0", linecolor="#999",
            ticks="outside", showline=True, title=dict(standoff=8),
        ),
        legend=dict(orientation="h", yanchor="top", y=-0.26, x=0.0, xanchor="left", font=dict(size=12)),
        colorscale=dict(sequential=SEQUENTIAL),
    )
)  # fmt: skip


def styled_figure(title: str = "", x_title: str = "", y_title: str = "", height: int = 420) -> go.Figure:
    """An empty figure with the shared template, a title and axis titles."""
    fig = go.Figure(layout=dict(template=TEMPLATE, height=height))
    fig.update_layout(title=dict(text=title), xaxis_title=x_title, yaxis_title=y_title)
    return fig
