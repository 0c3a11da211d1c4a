"""Calibration figures after "On Calibration of Modern Neural Networks" (Guo et al., 2017): reliability
diagrams with equal-width / equal-mass bins, bootstrap band and smooth curve (Błasiok & Nakkiran, 2023),
confidence histograms, temperature scaling, margin-loss calibration maps; each builder takes a list of panels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import TEMPLATE, color_for, legend_below, make_subplots
from lossviz.results import (
    CalibrationPanel,
    MarginCalibrationPanel,
    Reliability,
    TemperatureScaling,
)

DIAGONAL_COLOR = "#9a9a9a"
BAND_OPACITY = 0.18
SMOOTH_MIN_DENSITY = 0.02  # the smooth curve is drawn where the kernel density is >= 2% of its peak
_AXIS_TITLES = {
    "top_label": ("confidence (top-label probability)", "accuracy"),
    "positive": ("predicted P(y = 1)", "observed frequency of y = 1"),
}
TemperatureMetric = Literal["ece", "nll", "brier"]
_METRIC_TITLES = {"ece": "ECE (equal-width bins)", "nll": "NLL", "brier": "Brier score"}


def _f32(values: object) -> np.ndarray:
    """float32 copy for the figure JSON: half the bytes of float64, ample for plotting."""
    return np.asarray(values, np.float64).astype(np.float32)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _label(panel: object) -> str:
    return getattr(panel, "label", "") or getattr(panel, "name", "")


def _check_panels(panels: Sequence[object], kind: type | tuple[type, ...]) -> None:
    if len(panels) == 0:
        raise ValueError("panels must not be empty")
    for panel in panels:
        if not isinstance(panel, kind):
            raise ValueError(f"panels must be {kind}, got {type(panel).__name__}")


def _grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of small multiples: one row up to 3, 2x2 for 4, then rows of 3."""
    if n == 4:
        return 2, 2
    columns = min(n, 3)
    return math.ceil(n / columns), columns


def _figure(
    titles: Sequence[str] | None,
    names: Sequence[str],
    title: str,
    subtitle: str,
    axis_titles: tuple[str, str],
    unit_axes: bool,
) -> tuple[go.Figure, int]:
    """Small multiples (titles given) or one overlaid axes (titles None), with the shared template."""
    if titles is None:
        fig = go.Figure(layout=dict(template=TEMPLATE, height=520))
        columns, rows = 1, 1
    else:
        rows, columns = _grid_shape(len(titles))
        fig = make_subplots(
            rows=rows,
            cols=columns,
            subplot_titles=list(titles),
            shared_xaxes="all",
            shared_yaxes="all",
            horizontal_spacing=0.06,
            vertical_spacing=0.16 if rows > 1 else 0.1,
        )
        fig.update_layout(template=TEMPLATE, height=150 + 320 * rows)
        for annotation, name in zip(fig.layout.annotations, names, strict=False):
            annotation.font = dict(color=color_for(name), size=13)  # panel title in the loss colour
    fig.update_layout(
        title=dict(text=title, subtitle=dict(text=subtitle, font=dict(size=12, color="#666"))),
        margin=dict(l=60, r=30, t=110, b=60),
    )
    fig.update_xaxes(title_text=axis_titles[0], row=rows if titles is not None else None)
    fig.update_yaxes(title_text=axis_titles[1], col=1 if titles is not None else None)
    if unit_axes:
        fig.update_xaxes(range=[0.0, 1.0], constrain="domain")
        fig.update_yaxes(range=[0.0, 1.02])
    return fig, columns


def _legend(fig: go.Figure) -> go.Figure:
    """The legend under the plots, the figure taller by its rows (see palette.legend_below)."""
    legend_below(fig, [t.name for t in fig.data if t.showlegend is not False and t.name])
    return fig


def _cell(i: int, columns: int, overlay: bool) -> dict[str, int]:
    return {} if overlay else dict(row=i // columns + 1, col=i % columns + 1)


def _diagonal(first: bool) -> go.Scatter:
    return go.Scatter(
        x=[0.0, 1.0],
        y=[0.0, 1.0],
        mode="lines",
        line=dict(color=DIAGONAL_COLOR, dash="dash", width=1),
        name="perfect calibration",
        legendgroup="diagonal",
        showlegend=first,
        hoverinfo="skip",
    )


def _marker_sizes(counts: np.ndarray) -> np.ndarray:
    """Markers grow with the square root of the bin count: 5 px (few samples) to 13 px (the fullest bin)."""
    counts = np.asarray(counts, np.float64)
    return _f32(5.0 + 8.0 * np.sqrt(counts / max(float(counts.max()), 1.0)))


def _bins_trace(
    rel: Reliability,
    name: str,
    trace_name: str,
    group: str,
    show: bool,
    dash: str,
    symbol: str,
    width: float,
    size: float | None = None,
) -> go.Scatter | None:
    """The non-empty bins of a reliability curve as lines + markers (None when every bin is empty)."""
    filled = np.asarray(rel.counts) > 0
    if not filled.any():
        return None
    color = color_for(name)
    counts = np.asarray(rel.counts)[filled]
    return go.Scatter(
        x=_f32(rel.confidence[filled]),
        y=_f32(rel.accuracy[filled]),
        mode="lines+markers",
        line=dict(color=color, dash=dash, width=width),
        # sized by count unless fixed (equal-mass bins hold ~equal counts anyway)
        marker=dict(
            color=color,
            symbol=symbol,
            size=_marker_sizes(counts) if size is None else size,
            line=dict(width=0),
        ),
        customdata=counts,
        name=trace_name,
        legendgroup=group,
        showlegend=show,
        hovertemplate="confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} samples<extra>"
        + trace_name
        + "</extra>",
    )


def _band_trace(panel: CalibrationPanel, trace_name: str, group: str, show: bool) -> go.Scatter | None:
    """The bootstrap band as one closed shaded polygon through the bins where it is defined."""
    band = panel.band
    if band is None:
        return None
    ok = np.isfinite(band.confidence) & np.isfinite(band.low) & np.isfinite(band.high)
    if not ok.any():
        return None
    x = np.asarray(band.confidence)[ok]
    return go.Scatter(
        x=_f32(np.concatenate([x, x[::-1]])),
        y=_f32(np.concatenate([np.asarray(band.high)[ok], np.asarray(band.low)[ok][::-1]])),
        fill="toself",
        fillcolor=_rgba(color_for(panel.name), BAND_OPACITY),
        line=dict(width=0),
        mode="lines",
        name=trace_name,
        legendgroup=group,
        showlegend=show,
        hoverinfo="skip",
    )


def _data_range(panel: CalibrationPanel) -> tuple[float, float]:
    """The span of the confidences: the equal-mass edges (its 0 and 100% quantiles), else the filled bins."""
    if panel.equal_mass is not None and len(panel.equal_mass.edges) > 1:
        return float(panel.equal_mass.edges[0]), float(panel.equal_mass.edges[-1])
    filled = np.flatnonzero(np.asarray(panel.equal_width.counts) > 0)
    if len(filled) == 0:
        return 0.0, 1.0
    edges = np.asarray(panel.equal_width.edges)
    return float(edges[filled[0]]), float(edges[filled[-1] + 1])


def _smooth_trace(panel: CalibrationPanel, trace_name: str, group: str, show: bool) -> go.Scatter | None:
    """The smoothed reliability curve where the confidences have kernel density (NaN gaps elsewhere)."""
    smooth = panel.smooth
    if smooth is None:
        return None
    density = np.asarray(smooth.density, np.float64)
    keep = np.isfinite(smooth.accuracy) & (
        density >= SMOOTH_MIN_DENSITY * max(float(np.nanmax(density)), 0.0)
    )
    low, high = _data_range(panel)
    t = np.asarray(smooth.t)
    keep &= (t >= low) & (t <= high)  # no curve beyond the data, where the kernel only extrapolates
    if not keep.any():
        return None
    return go.Scatter(
        x=_f32(smooth.t),
        y=_f32(np.where(keep, smooth.accuracy, np.nan)),
        mode="lines",
        line=dict(color=color_for(panel.name), dash="dot", width=2.5),
        connectgaps=False,
        name=trace_name,
        legendgroup=group,
        showlegend=show,
        hovertemplate="confidence %{x:.3f}<br>smoothed accuracy %{y:.3f}<extra>" + trace_name + "</extra>",
    )


def _metrics_text(panel: CalibrationPanel) -> str:
    width, mass = panel.equal_width, panel.equal_mass
    parts = [f"ECE {width.ece:.3f}" + (f" / {mass.ece:.3f}" if mass is not None else "")]
    parts.append(f"MCE {width.mce:.3f}" + (f" / {mass.mce:.3f}" if mass is not None else ""))
    if panel.smooth is not None:
        parts.append(f"smECE {panel.smooth.error:.3f}")
    return " · ".join(parts)


def reliability_figure(
    *,
    panels: Sequence[CalibrationPanel],
    overlay: bool = False,
    show_mass: bool = True,
    show_band: bool = True,
    show_smooth: bool = True,
    title: str = "Reliability diagram",
) -> go.Figure:
    """Accuracy against confidence per bin: one small panel per loss (overlay=False) or all on one axes.

    Per loss, in this order: the diagonal (small multiples only; once when overlaid), the bootstrap band
    (shaded), equal-width bins (solid, circles sized by count), equal-mass bins (dashed, diamonds) and the
    smooth curve (dotted), each only when present in the panel and switched on. ECE / MCE (equal width /
    equal mass) and smooth ECE go in the panel titles, or the legend when overlaid.
    """
    _check_panels(panels, CalibrationPanel)
    mode = panels[0].equal_width.mode
    level = next((p.band.level for p in panels if p.band is not None), 0.9)
    key = ["solid ●: equal-width bins"]
    if show_mass:
        key.append("dashed ◆: equal-mass bins")
    if show_smooth:
        key.append("dotted: smoothed (smECE)")
    if show_band:
        key.append(f"shaded: {level:.0%} bootstrap band")
    subtitle = " · ".join(key) + ("" if overlay else " — ECE / MCE: equal width / equal mass")
    titles = None if overlay else [f"{_label(p)}<br><sub>{_metrics_text(p)}</sub>" for p in panels]
    fig, columns = _figure(
        titles,
        [p.name for p in panels],
        title,
        subtitle,
        _AXIS_TITLES.get(mode, _AXIS_TITLES["top_label"]),
        unit_axes=True,
    )
    for i, panel in enumerate(panels):
        cell = _cell(i, columns, overlay)
        if not overlay or i == 0:
            fig.add_trace(_diagonal(first=i == 0), **cell)
        label = _label(panel)
        if overlay:  # one legend entry per loss carrying its metrics; a click hides all its curves
            group, shows = f"{panel.name}-{i}", [True, False, False, False]
            names = [
                f"{label} — {_metrics_text(panel)}",
                f"{label}, equal mass",
                f"{label}, smooth",
                f"{label}, band",
            ]
        else:  # one legend entry per curve style; a click hides that style in every panel
            group, shows = "", [i == 0] * 4
            names = ["equal-width bins", "equal-mass bins", "smoothed", f"{level:.0%} bootstrap band"]
        traces = [
            _band_trace(panel, names[3], group or "band", shows[3]) if show_band else None,
            _bins_trace(
                panel.equal_width, panel.name, names[0], group or "width", shows[0], "solid", "circle", 2
            ),
            _bins_trace(
                panel.equal_mass, panel.name, names[1], group or "mass", shows[1], "dash", "diamond", 1.5, 7
            )
            if show_mass and panel.equal_mass is not None
            else None,
            _smooth_trace(panel, names[2], group or "smooth", shows[2]) if show_smooth else None,
        ]
        for trace in traces:
            if trace is not None:
                fig.add_trace(trace, **cell)
    return _legend(fig)


def _vertical_line(fig: go.Figure, x: float, line: dict[str, Any], cell: dict[str, int]) -> dict[str, Any]:
    """What fig.add_vline(x, line=line, **cell) adds: a line at x spanning its subplot's height."""
    if cell:
        axes = fig.get_subplot(cell["row"], cell["col"])
        xref, yref = (a.plotly_name.replace("axis", "") for a in (axes.xaxis, axes.yaxis))
    else:
        xref, yref = "x", "y"
    return dict(type="line", x0=x, x1=x, y0=0, y1=1, xref=xref, yref=f"{yref} domain", line=line)


def confidence_histogram_figure(
    *, panels: Sequence[CalibrationPanel], overlay: bool = False, title: str = "Confidence histogram"
) -> go.Figure:
    """Share of samples per confidence bin: bars per loss (with accuracy and mean-confidence lines) or steps.

    Small multiples: one bar trace per loss, a solid vertical line at its accuracy and a dashed one at its
    mean confidence (Guo et al.'s lower panel: overconfidence is the dashed line right of the solid one).
    Overlaid: one step line per loss, accuracy and mean confidence in the legend.
    """
    _check_panels(panels, CalibrationPanel)
    missing = [p.name for p in panels if p.histogram is None]
    if missing:
        raise ValueError(f"panels without a histogram: {missing}")
    mode = panels[0].histogram.mode  # type: ignore[union-attr]
    titles = (
        None
        if overlay
        else [
            f"{_label(p)}<br><sub>accuracy {p.histogram.accuracy:.3f} · mean confidence "  # type: ignore[union-attr]
            f"{p.histogram.mean_confidence:.3f}</sub>"
            for p in panels  # type: ignore[union-attr]
        ]
    )
    subtitle = "" if overlay else "solid line: accuracy · dashed line: mean confidence"
    fig, columns = _figure(
        titles,
        [p.name for p in panels],
        title,
        subtitle,
        (_AXIS_TITLES.get(mode, _AXIS_TITLES["top_label"])[0], "share of samples"),
        unit_axes=False,
    )
    lines: list[dict[str, Any]] = []  # added in one update: add_vline re-validates every shape per call
    for i, panel in enumerate(panels):
        hist = panel.histogram
        assert hist is not None
        color = color_for(panel.name)
        edges = np.asarray(hist.edges, np.float64)
        share = np.asarray(hist.counts, np.float64) / max(float(np.sum(hist.counts)), 1.0)
        if overlay:
            fig.add_trace(
                go.Scatter(
                    x=_f32(edges),
                    y=_f32(np.append(share, share[-1])),
                    mode="lines",
                    line_shape="hv",
                    line=dict(color=color, width=2),
                    name=f"{_label(panel)} (accuracy {hist.accuracy:.3f}, "
                    f"confidence {hist.mean_confidence:.3f})",
                )
            )
            continue
        cell = _cell(i, columns, overlay)
        fig.add_trace(
            go.Bar(
                x=_f32((edges[:-1] + edges[1:]) / 2),
                y=_f32(share),
                width=_f32(np.diff(edges)),
                marker=dict(color=color, line=dict(width=0.5, color="white")),
                name=_label(panel),
                showlegend=False,
                customdata=np.asarray(hist.counts),
                hovertemplate="confidence %{x:.3f}<br>share %{y:.3f}<br>%{customdata} samples<extra></extra>",
            ),
            **cell,
        )
        for value, dash in ((hist.accuracy, "solid"), (hist.mean_confidence, "dash")):
            if math.isfinite(value):
                lines.append(_vertical_line(fig, value, dict(color="#262730", dash=dash, width=1.5), cell))
    fig.update_layout(shapes=lines)
    top = max(float(np.max(p.histogram.counts)) / max(float(np.sum(p.histogram.counts)), 1.0) for p in panels)  # type: ignore[union-attr]
    fig.update_xaxes(range=[0.0, 1.0])
    fig.update_yaxes(range=[0.0, 1.08 * max(top, 1e-3)])  # explicit: vertical lines must not stretch it
    if not overlay:
        fig.update_layout(bargap=0.0)
    return fig


def temperature_figure(
    *,
    panels: Sequence[TemperatureScaling],
    metrics: Sequence[TemperatureMetric] = ("ece", "nll"),
    title: str = "Temperature scaling",
) -> go.Figure:
    """Bars of each metric before (faint, hatched) and after (solid) temperature scaling, one colour per loss.

    One subplot per metric with two bar traces (before, after); the fitted T is written under each loss.
    """
    _check_panels(panels, TemperatureScaling)
    if len(metrics) == 0 or any(m not in _METRIC_TITLES for m in metrics):
        raise ValueError(f"metrics must be a non-empty selection of {tuple(_METRIC_TITLES)}, got {metrics}")
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[_METRIC_TITLES[m] for m in metrics])
    n_eval = {p.n_eval for p in panels}
    fig.update_layout(
        template=TEMPLATE,
        height=440,
        barmode="group",
        bargap=0.25,
        title=dict(
            text=title,
            subtitle=dict(
                text="faint: before (T = 1) · solid: after (fitted T), on "
                + (f"{n_eval.pop()} held-out samples" if len(n_eval) == 1 else "the evaluation split"),
                font=dict(size=12, color="#666"),
            ),
        ),
        margin=dict(l=60, r=30, t=110, b=125),  # room for the rotated two-line loss names
    )
    ticks = [f"{_label(p)}<br>T = {p.temperature:.2f}" for p in panels]
    colors = [color_for(p.name) for p in panels]
    for j, metric in enumerate(metrics):
        before = _f32([getattr(p, f"{metric}_before") for p in panels])
        after = _f32([getattr(p, f"{metric}_after") for p in panels])
        for values, stage, opacity, pattern in ((before, "before", 0.45, "/"), (after, "after", 1.0, "")):
            fig.add_trace(
                go.Bar(
                    x=ticks,
                    y=values,
                    name="before (T = 1)" if stage == "before" else "after (fitted T)",
                    showlegend=False,  # the subtitle says faint/solid; a legend sat on the rotated loss names
                    opacity=opacity,
                    marker=dict(color=colors, pattern=dict(shape=pattern)),
                    hovertemplate="%{x}<br>" + metric + " " + stage + " %{y:.4f}<extra></extra>",
                ),
                row=1,
                col=j + 1,
            )
    return fig


def temperature_reliability_figure(
    *, panels: Sequence[TemperatureScaling], title: str = "Reliability before and after temperature scaling"
) -> go.Figure:
    """Small multiples per loss: the diagonal, bins before scaling (faint, dashed) and after (solid)."""
    _check_panels(panels, TemperatureScaling)
    titles = [
        f"{_label(p)}<br><sub>T = {p.temperature:.2f} · ECE {p.ece_before:.3f} → {p.ece_after:.3f}</sub>"
        for p in panels
    ]
    fig, columns = _figure(
        titles,
        [p.name for p in panels],
        title,
        "dashed, open: before (T = 1) · solid: after (fitted T)",
        _AXIS_TITLES.get(panels[0].before.mode, _AXIS_TITLES["top_label"]),
        unit_axes=True,
    )
    for i, panel in enumerate(panels):
        cell = _cell(i, columns, overlay=False)
        fig.add_trace(_diagonal(first=i == 0), **cell)
        for rel, stage, dash, symbol in (
            (panel.before, "before (T = 1)", "dash", "circle-open"),
            (panel.after, "after (fitted T)", "solid", "circle"),
        ):
            trace = _bins_trace(rel, panel.name, stage, stage, i == 0, dash, symbol, 1.5 if dash else 2)
            if trace is not None:
                if stage.startswith("before"):
                    trace.opacity = 0.6
                fig.add_trace(trace, **cell)
    return _legend(fig)


def calibration_map_figure(
    *,
    panels: Sequence[MarginCalibrationPanel],
    overlay: bool = False,
    title: str = "What each loss's minimiser predicts: sigmoid(f*(eta))",
) -> go.Figure:
    """The calibration map of margin losses in reliability-diagram axes, over a trained model's reliability.

    x: the probability sigmoid(f) a model outputs; y: the true frequency eta of y = 1. The loss's curve is
    (sigmoid(f*(eta)), eta), the reliability diagram a model reaching the conditional-risk minimiser would
    have: the diagonal for a proper loss (logistic), two vertical steps at sigmoid(±1) for the hinge.
    Markers: the positive-class reliability bins of a model trained with the loss (panel.empirical), which
    must come from reliability(..., mode="positive"). Per loss: the map, then the bins when given; the
    diagonal comes first in every small panel (once when overlaid).
    """
    _check_panels(panels, MarginCalibrationPanel)
    wrong_mode = [
        p.name for p in panels if p.empirical is not None and getattr(p.empirical, "mode", "") != "positive"
    ]
    if wrong_mode:
        raise ValueError(
            "empirical reliability must be of P(y = 1) (reliability(..., mode='positive')); "
            f"not so for {wrong_mode}"
        )
    titles = None if overlay else [_label(p) for p in panels]
    fig, columns = _figure(
        titles,
        [p.name for p in panels],
        title,
        "line: sigmoid(f*) of the conditional-risk minimiser · markers: a trained model's bins",
        ("model probability sigmoid(f)", "true frequency of y = 1 (eta)"),
        unit_axes=True,
    )
    for i, panel in enumerate(panels):
        cell = _cell(i, columns, overlay)
        cmap = panel.calibration_map
        color = color_for(panel.name)
        if not overlay or i == 0:
            fig.add_trace(_diagonal(first=i == 0), **cell)
        label = _label(panel) or cmap.label
        edge = np.where(np.asarray(cmap.unbounded), "<br>minimiser at the edge of the searched f range", "")
        fig.add_trace(
            go.Scatter(
                x=_f32(cmap.probability),
                y=_f32(cmap.eta),
                mode="lines",
                line=dict(color=color, width=2.5),
                name=f"{label}: sigmoid(f*)" if overlay else "sigmoid(f*(eta))",
                legendgroup=panel.name + str(i) if overlay else "map",
                showlegend=overlay or i == 0,
                customdata=_f32(cmap.f_star),
                text=edge,
                hovertemplate="eta %{y:.3f}<br>f* %{customdata:.3f}<br>sigmoid(f*) %{x:.3f}%{text}<extra>"
                + label
                + "</extra>",
            ),
            **cell,
        )
        if panel.empirical is not None:
            trace = _bins_trace(
                panel.empirical,
                panel.name,
                f"{label}: trained model" if overlay else "trained model",
                panel.name + str(i) if overlay else "empirical",
                overlay or i == 0,
                "solid",
                "circle",
                0,
            )
            if trace is not None:
                trace.mode = "markers"
                fig.add_trace(trace, **cell)
    return _legend(fig)
