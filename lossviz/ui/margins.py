"""Margins wide enough that Plotly has nothing to push into them, set before a figure is sent to the browser.

Why: Plotly draws a figure, measures its tick labels, axis titles and colour bars, and when they need more
room than the margins leave it draws the whole figure again (Plots.doAutoMargin). Streamlit's chart theme
sets the left and right margins to 0 and leaves the room to that second pass, so every chart on every page
was drawn twice per rerun: profiled in Chromium, a Calibration Bins step spent half its chart time in the
second draw. Margins that already hold the labels make the second pass a no-op. They are floors (Plotly's
autoexpand stays on): a label wider than estimated here costs the second draw, as before, never a clipped one.

The sizes are Streamlit's chart theme measured in Chromium: 12 px tick labels, 14 px axis titles, titles 24 px
(y) and 20 px (x) from the tick labels, 5 px ticks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

CHAR_PX = {".": 2.3, ",": 2.3, "−": 5.9, "-": 5.9, " ": 3.0, **{d: 6.7 for d in "0123456789"}}
OTHER_CHAR_PX = 7.2  # letters and symbols: an upper estimate
TICK_PX = 5.0  # tick length plus the gap to its label
X_LABEL_PX = 16.7  # height of a row of x tick labels
Y_TITLE_PX = 24.0 + 20.5  # standoff from the tick labels plus the title's line
Y_UNTITLED_PX = 14.6  # what Plotly adds beside the labels of a y axis without a title (measured)
X_TITLE_PX = 20.0 + 20.5
COLORBAR_PX = 100  # right margin of a figure with a colour bar: bar, ticks, 0–1 labels and a title above
COLORBAR_SIDE_TITLE_PX = 119.0  # the same with its title beside the bar, before its tick labels (measured)
EDGE_PX = 20  # left and right margins for the first and last x tick labels' overhang
SLACK_PX = 6.0  # rounding and sub-pixel text widths (a right axis measured 1.2 px over 4)
EDGE = 0.02  # an axis whose domain starts within this of the figure's edge has its labels in the margin


def reserve(fig: go.Figure) -> go.Figure:
    """Raise fig's margins (in place) to hold its outer y tick labels, x tick labels, axis titles and colour
    bars; margins the builder set wider stay. Returns fig."""
    layout = fig.layout
    margin = layout.margin
    pad = float(margin.pad or 0)  # set below: Streamlit's theme would otherwise add its own
    height = float(layout.height or 450)
    left = right = float(EDGE_PX)
    bottom = 0.0
    for axis in fig.select_yaxes():
        if not _labelled(axis) or (axis.overlaying and axis.side != "right"):
            continue
        across = _axis(fig, "x", axis.anchor)
        if axis.side != "right" and across is not None and _domain(across)[0] > EDGE:
            continue  # an inner subplot's labels sit between the subplots
        length = height * _span(_domain(axis)) - (margin.t or 0) - (margin.b or 0)
        width = pad + TICK_PX + _widest_label(fig, axis, "y", max(length, 100.0))
        width += Y_TITLE_PX if _title(axis) else Y_UNTITLED_PX
        if axis.side == "right":
            right = max(right, width)
        else:
            left = max(left, width)
    for axis in fig.select_xaxes():
        across = _axis(fig, "y", axis.anchor)
        if axis.side == "top" or (across is not None and _domain(across)[0] > EDGE):
            continue
        size = TICK_PX + (X_LABEL_PX if _labelled(axis) else 0.0) + (X_TITLE_PX if _title(axis) else 0.0)
        bottom = max(bottom, pad + size)
    right = max(right, _colorbar_px(fig))
    fig.update_layout(
        margin=dict(
            l=_at_least(margin.l, left),
            r=_at_least(margin.r, right),
            b=_at_least(margin.b, bottom),
            pad=pad,
        )
    )
    return fig


def _at_least(current: float | None, needed: float) -> int:
    return int(max(float(current or 0), math.ceil(needed + SLACK_PX) if needed else 0))


def _labelled(axis: Any) -> bool:
    return axis.visible is not False and axis.showticklabels is not False


def _title(axis: Any) -> bool:
    return bool(axis.title and axis.title.text)


def _domain(axis: Any) -> tuple[float, float]:
    return tuple(axis.domain) if axis.domain else (0.0, 1.0)


def _span(domain: tuple[float, float]) -> float:
    return max(domain[1] - domain[0], 0.05)


def _axis(fig: go.Figure, letter: str, ref: str | None) -> Any:
    """The layout axis a trace or axis reference ('x', 'x2', ...) names; None for 'free' or no reference."""
    if not ref or ref == "free":
        return None
    return fig.layout[f"{letter}axis{ref[1:]}"]


def _colorbar_px(fig: go.Figure) -> float:
    """The right margin the figure's widest colour bar needs (0 without one)."""
    widest = 0.0
    for trace in fig.data:
        if trace.type in ("heatmap", "contour", "histogram2d", "histogram2dcontour") and (
            trace.showscale is not False and not getattr(trace, "coloraxis", None)
        ):
            widest = max(widest, _bar_px(trace.colorbar, trace.zmin, trace.zmax))
        marker = getattr(trace, "marker", None)
        if marker is not None and getattr(marker, "showscale", None):
            widest = max(widest, _bar_px(marker.colorbar, marker.cmin, marker.cmax))
    for name in {getattr(t, "coloraxis", None) for t in fig.data} - {None}:
        shared = fig.layout[name]
        if shared.showscale is not False:
            widest = max(widest, _bar_px(shared.colorbar, shared.cmin, shared.cmax))
    return widest


def _bar_px(bar: Any, low: float | None, high: float | None) -> float:
    """A colour bar's room: a fixed allowance, or with its title beside the bar that plus its tick labels."""
    if not (bar.title and bar.title.text and bar.title.side == "right"):
        return float(COLORBAR_PX)
    if bar.ticktext:
        labels = [str(t) for t in bar.ticktext]
    elif low is not None and high is not None:
        labels = linear_labels(float(low), float(high), 6)
    else:
        labels = ["0.25"]
    return COLORBAR_SIDE_TITLE_PX + max(text_px(t) for t in labels)


def text_px(text: str) -> float:
    """Width of a tick label at 12 px, from per-character widths measured in Chromium."""
    return sum(CHAR_PX.get(c, OTHER_CHAR_PX) for c in text)


def _widest_label(fig: go.Figure, axis: Any, letter: str, length_px: float) -> float:
    """The widest tick label the axis will show, estimated from its tick texts, categories or range."""
    if axis.ticktext:
        return max(text_px(str(t)) for t in axis.ticktext)
    values = _axis_values(fig, axis, letter)
    if axis.type == "category" or (values.dtype.kind in "OUS"):
        return max((text_px(str(v)) for v in values), default=0.0)
    if axis.range is not None and all(r is not None for r in axis.range):
        low, high = (float(r) for r in axis.range)
        if axis.type == "log":
            low, high = 10.0**low, 10.0**high
    else:
        finite = values[np.isfinite(values)] if values.size else values
        if not finite.size:
            return text_px("−0.5")
        low, high = float(finite.min()), float(finite.max())
    if axis.type == "log":
        return max(text_px(_format(10.0**k, 0)) for k in range(*_decades(low, high)))
    if (axis.tickformat or "").endswith("%"):  # fractions shown as percentages
        return max(text_px(t + "%") for t in linear_labels(100 * low, 100 * high, 6))
    # about a tick per 30 px: a little denser than Plotly picks, so the step is never coarser than its own
    return max(text_px(t) for t in linear_labels(low, high, max(3.0, min(12.0, length_px / 30.0))))


def _decades(low: float, high: float) -> tuple[int, int]:
    low, high = max(low, 1e-300), max(high, 1e-300)
    return math.floor(math.log10(low)), math.floor(math.log10(high)) + 1


def linear_labels(low: float, high: float, ticks: float) -> list[str]:
    """Plotly-like tick labels of a linear axis over [low, high] with about `ticks` ticks: multiples of a
    1-2-5 step, trailing zeros dropped, a minus sign for negatives."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return ["−0.5"]
    if high <= low:
        return [_format(low, 6)]
    rough = (high - low) / ticks
    base = 10.0 ** math.floor(math.log10(rough))
    step = next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= rough * 0.999)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if str(step / base).startswith("2.5") else 0)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    # one step beyond the data at both ends (autorange pads markers and lines), never across zero
    first, last = first - 1 if low < 0 or first > 0 else first, last + 1 if high > 0 or last < 0 else last
    return [_format(k * step, decimals) for k in range(first, last + 1)]


def _format(value: float, decimals: int) -> str:
    """value as Plotly labels it: SI suffix past 10k, trailing zeros and point dropped, a true minus sign."""
    if abs(value) >= 1e4:
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                value, decimals = value / size, 1
                return _format(value, decimals) + suffix
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.replace("-", "−")


def _axis_values(fig: go.Figure, axis: Any, letter: str) -> np.ndarray:
    """Every value the figure's traces place on this axis (their x or y, and a bar's base at 0)."""
    name = axis.plotly_name.replace("axis", "")  # 'y', 'y2', ...
    chunks: list[np.ndarray] = []
    for trace in fig.data:
        if (getattr(trace, f"{letter}axis", None) or letter) != name:
            continue
        values = getattr(trace, letter, None)
        if values is None:
            continue
        array = np.asarray(values)
        if array.dtype.kind in "OUS":
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                return np.asarray([str(v) for v in array.ravel()])
        chunks.append(array.astype(np.float64, copy=False).ravel())
        if trace.type == "bar":
            chunks.append(np.zeros(1))
    return np.concatenate(chunks) if chunks else np.zeros(0)
