"""Figures of the Landscape view: loss surfaces as small multiples on one colour scale (contour or 3-D) with
the training trajectory, 1-D slices, interpolation between two solutions, Hessian spectra and sharpness.
Every builder takes keyword arguments and one panel per loss (name for colour, label, data); next to each
figure, what the page says about it (captions, metric cards, table rows) and how a click on it is read.

Follows "Visualizing the Loss Landscape of Neural Nets" (Li et al., 2018) and, for sharpness vs 2/lr,
"Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability" (Cohen et al., 2021).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import (
    SEQUENTIAL,
    TEMPLATE,
    color_for,
    lean,
    legend_below,
    log_axis,
    log_ticks,
    make_subplots,
    styled_figure,
    tick_text,
)
from lossviz.figures.train import BoundaryPanel, boundary_figure
from lossviz.results import (
    Curvature,
    Curve,
    Dataset,
    DecisionMap,
    Interpolation,
    Plane,
    Sharpness,
    Spectrum,
    Surface,
    Trajectory,
)

N_LEVELS = 24  # contour levels shared by every panel
_LOG_FLOOR = 1e-6  # with a log scale, values below this fraction of the largest are drawn at the floor
TRAJECTORY_COLOR = "#ffffff"
POINT_COLOR = "#e4002b"
GRID_NAME = "grid"  # name of the invisible, clickable grid-point traces
CLICK_NODES = 11  # clickable nodes per axis and panel: 21² invisible markers a panel cost 0.11 s a redraw
LINE_NODES = 51  # nodes per axis at most that a panel's contour lines are drawn from
# 2-D contours are sent as uint16 steps of the shared colour range: a third of float32's JSON, and 65535 steps
# are far finer than any colour or contour level (the exact values travel with the clickable grid nodes)
LEVEL_STEPS = 65535
AXIS_SYMBOLS = {"random": ("δ", "η"), "pca": ("PC1", "PC2")}  # short axis titles of each kind of plane


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of n small multiples: one row up to 3, then rows of 3 (4 -> 2x2)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == 4:
        return 2, 2
    columns = min(n, 3)
    return math.ceil(n / columns), columns


def log_floor(surfaces: Sequence[Surface]) -> float:
    """The smallest value a log scale shows: the smallest positive loss, at most 1e-6 below the largest."""
    values = np.concatenate([np.asarray(s.z, np.float64).ravel() for s in surfaces])
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    if not positive.size:
        return 1.0
    return float(max(positive.min(), positive.max() * _LOG_FLOOR))


def scaled(z: np.ndarray, log: bool, floor: float) -> np.ndarray:
    """What the colour scale shows: the loss itself, or log10 of it (values below floor drawn at floor)."""
    z = np.asarray(z, np.float64)
    return np.log10(np.maximum(z, floor)) if log else z


def shared_range(surfaces: Sequence[Surface], log: bool = False) -> tuple[float, float]:
    """(zmin, zmax) over every surface's finite values on the colour scale (log10 when log): one for all."""
    if not surfaces:
        raise ValueError("surfaces must hold at least one Surface")
    floor = log_floor(surfaces)
    values = np.concatenate([scaled(s.z, log, floor).ravel() for s in surfaces])
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:  # a flat landscape still needs a scale
        low, high = low - 0.5, high + 0.5
    return low, high


def _nice_step(span: float, count: int = 4) -> float:
    """A 1-2-5 step giving about `count` intervals over span."""
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def log_colorbar_ticks(zmin: float, zmax: float, most: int = 9) -> tuple[list[float], list[str]]:
    """(tickvals in log10 units, labels in loss units) for a colour bar showing log10(loss) from zmin to zmax.

    Powers of ten, with 2x and 5x when the range is short, labelled with the full numbers; a range inside
    one 1-2-5 step gets round linear steps of the loss instead (never the log10 values themselves).
    """
    low, high = 10.0**zmin, 10.0**zmax
    ticks = log_ticks(low, high, most)
    values = [v for v in ticks.get("tickvals", []) if low / 1.0001 <= v <= high * 1.0001]
    if len(values) < 2:
        step = _nice_step(high - low)
        values = [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1) if k * step > 0]
    return [math.log10(v) for v in values], [tick_text(v) for v in values]


def _colorbar(log: bool, zmin: float, zmax: float, quantised: bool = False) -> dict:
    """The shared colour bar; quantised: its ticks sit at uint16 steps of [zmin, zmax], labelled in loss."""
    bar = dict(title=dict(text="loss (log)" if log else "loss", side="right"), thickness=14, len=0.8)
    if log:
        tickvals, ticktext = log_colorbar_ticks(zmin, zmax)
    elif quantised:
        step = _nice_step(zmax - zmin)
        values = [k * step for k in range(math.ceil(zmin / step), math.floor(zmax / step) + 1)]
        tickvals, ticktext = values, [tick_text(v) for v in values]
    else:
        return bar
    if quantised:
        tickvals = [float(v) for v in quantise(np.asarray(tickvals, np.float64), zmin, zmax, exact=True)]
    bar.update(tickmode="array", tickvals=tickvals, ticktext=ticktext)
    return bar


def dequantise(steps: np.ndarray, zmin: float, zmax: float) -> np.ndarray:
    """The colour-scale values of uint16 steps (the inverse of quantise, to half a step)."""
    return zmin + np.asarray(steps, np.float64) / LEVEL_STEPS * (zmax - zmin)


def quantise(z: np.ndarray, zmin: float, zmax: float, exact: bool = False) -> np.ndarray:
    """Values on the colour scale as steps 0..LEVEL_STEPS of [zmin, zmax] (uint16; exact=True: floats)."""
    steps = (np.asarray(z, np.float64) - zmin) / (zmax - zmin) * LEVEL_STEPS
    return steps if exact else np.rint(np.clip(steps, 0, LEVEL_STEPS)).astype(np.uint16)


def _hover_data(surface: Surface) -> np.ndarray:
    """(ny, nx, 2): the raw loss and the accuracy (NaN for regression) at each grid point."""
    acc = surface.accuracy
    acc = np.full(surface.z.shape, np.nan) if acc is None else np.asarray(acc, np.float64)
    return np.stack([np.asarray(surface.z, np.float64), acc], axis=-1)


def _bilinear(surface: Surface, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of surface.z at points (x, y), bilinear between grid nodes (clamped to the grid)."""
    xs, ys, z = surface.xs, surface.ys, np.asarray(surface.z, np.float64)
    fx = np.interp(x, xs, np.arange(len(xs)))
    fy = np.interp(y, ys, np.arange(len(ys)))
    j0 = np.clip(np.floor(fx).astype(int), 0, max(len(xs) - 2, 0))
    i0 = np.clip(np.floor(fy).astype(int), 0, max(len(ys) - 2, 0))
    j1, i1 = np.minimum(j0 + 1, len(xs) - 1), np.minimum(i0 + 1, len(ys) - 1)
    tx, ty = fx - j0, fy - i0
    return (
        z[i0, j0] * (1 - tx) * (1 - ty)
        + z[i0, j1] * tx * (1 - ty)
        + z[i1, j0] * (1 - tx) * ty
        + z[i1, j1] * tx * ty
    )


def _trajectory_2d(trajectory: Trajectory, panel: int, show_legend: bool) -> list[go.Scatter]:
    epochs = np.asarray(trajectory.epochs, np.float64)
    # customdata rows [epoch, nan, panel]: a click on a snapshot selects its point like a grid node does
    custom = np.column_stack([epochs, np.full(len(epochs), np.nan), np.full(len(epochs), panel)])
    line = go.Scatter(
        x=lean(trajectory.x),
        y=lean(trajectory.y),
        mode="lines+markers",
        name=trajectory.label,
        legendgroup="trajectory",
        showlegend=show_legend,
        line=dict(color=TRAJECTORY_COLOR, width=2),
        marker=dict(size=6, color=TRAJECTORY_COLOR, line=dict(color="#222", width=1)),
        unselected=dict(marker=dict(opacity=1.0)),
        customdata=custom,
        hovertemplate="epoch %{customdata[0]}<br>(%{x:.3g}, %{y:.3g})<extra>trajectory</extra>",
    )
    start = go.Scatter(
        x=lean(trajectory.x[:1]),
        y=lean(trajectory.y[:1]),
        mode="markers",
        name="initialisation",
        legendgroup="start",
        showlegend=show_legend,
        marker=dict(size=11, symbol="circle-open", color="#111", line=dict(width=2.5)),
        unselected=dict(marker=dict(opacity=1.0)),
        customdata=custom[:1],
        hovertemplate="initialisation (epoch 0)<extra></extra>",
    )
    return [line, start]


@dataclass(frozen=True)
class SurfacePanel:
    """One loss's landscape panel: its surface and, optionally, the training trajectory on the same plane."""

    name: str  # registry key: the title's colour
    title: str
    surface: Surface  # z[i, j] = loss at (xs[j], ys[i]); accuracy, when set, feeds the hover
    trajectory: Trajectory | None = None


def surfaces_figure(
    *,
    panels: Sequence[SurfacePanel],
    three_d: bool = False,
    log: bool = False,
    axis_titles: tuple[str, str] = ("δ", "η"),
    point: tuple[int | str, float, float] | None = None,
    clickable: bool = True,
    height_per_row: int = 380,
) -> go.Figure:
    """Small multiples of loss surfaces (z[i, j] at (xs[j], ys[i])), one colour scale and one set of levels.

    2-D: filled contours with the trajectory (white line, open circle at initialisation, the final weights at
    the origin) and, when clickable, invisible markers on grid nodes (at most CLICK_NODES per axis) so a click
    selects a point (customdata = [loss, accuracy, panel]). point = (panel index or name, x, y) is marked with
    a red cross (2-D only; nothing when no panel matches). 3-D: surfaces in scenes with the trajectory lifted
    onto the surface. log draws log10(loss), its colour bar labelled in loss units.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("panels must hold at least one SurfacePanel")
    surfaces = [p.surface for p in panels]
    titles = [p.title for p in panels]
    rows, columns = grid_shape(n)
    kind = "scene" if three_d else "xy"
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=titles,
        specs=[[{"type": kind}] * columns for _ in range(rows)],
        horizontal_spacing=0.04 if three_d else 0.07,
        vertical_spacing=0.08 if three_d else 0.14,
    )
    zmin, zmax = shared_range(surfaces, log)
    floor = log_floor(surfaces)
    level = (zmax - zmin) / N_LEVELS
    # NaN (a diverged point) has no uint16 step: such surfaces keep float32
    quantised = not three_d and all(np.isfinite(scaled(s.z, log, floor)).all() for s in surfaces)
    fig.update_layout(
        template=TEMPLATE,
        height=(90 + height_per_row * rows) if not three_d else (60 + (height_per_row + 60) * rows),
        margin=dict(l=60, r=30, t=60, b=40),
        coloraxis=dict(
            colorscale=SEQUENTIAL,
            cmin=0 if quantised else zmin,
            cmax=LEVEL_STEPS if quantised else zmax,
            colorbar=_colorbar(log, zmin, zmax, quantised),
        ),
    )
    for annotation, panel in zip(fig.layout.annotations, panels, strict=False):
        annotation.font = dict(color=color_for(panel.name), size=14)
    x_title, y_title = axis_titles
    for i, panel in enumerate(panels):
        surface, trajectory = panel.surface, panel.trajectory
        row, col = i // columns + 1, i % columns + 1
        z = lean(scaled(surface.z, log, floor))
        hover = _hover_data(surface)
        accuracy = "<br>accuracy %{customdata[1]:.1%}" if surface.accuracy is not None else ""
        template = (
            f"{x_title} = %{{x:.3g}}, {y_title} = %{{y:.3g}}<br>loss %{{customdata[0]:.4g}}{accuracy}"
            "<extra></extra>"
        )
        xs, ys = lean(surface.xs), lean(surface.ys)
        if three_d:
            fig.add_trace(
                go.Surface(
                    x=xs,
                    y=ys,
                    z=z,
                    coloraxis="coloraxis",
                    customdata=lean(hover),
                    hovertemplate=template,
                    contours=dict(z=dict(show=True, usecolormap=True, project=dict(z=True), width=1)),
                    name=panel.title,
                ),
                row=row,
                col=col,
            )
            if trajectory is not None and len(trajectory.x):
                lifted = scaled(_bilinear(surface, trajectory.x, trajectory.y), log, floor)
                lift = 0.01 * (zmax - zmin)  # just above the surface so it is not hidden in it
                fig.add_trace(
                    go.Scatter3d(
                        x=lean(trajectory.x),
                        y=lean(trajectory.y),
                        z=lean(lifted + lift),
                        mode="lines+markers",
                        name=trajectory.label,
                        legendgroup="trajectory",
                        showlegend=i == 0,
                        line=dict(color="#d62728", width=5),
                        marker=dict(size=3, color="#d62728"),
                        customdata=np.asarray(trajectory.epochs),
                        hovertemplate="epoch %{customdata}<extra>trajectory</extra>",
                    ),
                    row=row,
                    col=col,
                )
            centre = scaled(_bilinear(surface, np.zeros(1), np.zeros(1)), log, floor)
            fig.add_trace(
                go.Scatter3d(
                    x=[0.0], y=[0.0], z=centre + 0.02 * (zmax - zmin), mode="markers",
                    name="trained weights (centre)", legendgroup="centre", showlegend=i == 0,
                    marker=dict(size=6, symbol="diamond", color="#ffd400", line=dict(color="#111", width=1)),
                    hovertemplate="trained weights<extra></extra>",
                ),
                row=row, col=col,
            )  # fmt: skip
            continue
        levels = (
            dict(start=0, end=LEVEL_STEPS, size=LEVEL_STEPS / N_LEVELS)
            if quantised
            else dict(start=zmin, end=zmax, size=level)
        )
        values = quantise(z, zmin, zmax) if quantised else z
        # A heat map under contour lines alone draws in 0.18 s where one contour trace coloured as a heat map
        # takes 0.23 s (three 41² panels in Chromium): the filled contour computes its level paths twice.
        fig.add_trace(
            go.Heatmap(
                x=xs,
                y=ys,
                z=values,
                coloraxis="coloraxis",
                hoverinfo="skip" if clickable else None,
                # the map's own hover is off when the grid nodes carry it: no full-grid customdata then
                customdata=None if clickable else lean(hover),
                hovertemplate=None if clickable else template,
                name=panel.title,
            ),
            row=row,
            col=col,
        )
        # the lines from at most LINE_NODES nodes per axis: a 101² grid would otherwise send its values twice
        lx = max(1, math.ceil((len(surface.xs) - 1) / (LINE_NODES - 1)))
        ly = max(1, math.ceil((len(surface.ys) - 1) / (LINE_NODES - 1)))
        fig.add_trace(
            go.Contour(
                x=lean(surface.xs[::lx]),
                y=lean(surface.ys[::ly]),
                z=values[::ly, ::lx],
                contours=dict(**levels, coloring="none"),
                line=dict(width=0.6, color="rgba(255,255,255,0.55)"),
                showscale=False,
                hoverinfo="skip",
                name=panel.title,
                showlegend=False,
            ),
            row=row,
            col=col,
        )
        if clickable:
            # every k-th node (at most CLICK_NODES per axis): thousands of SVG markers slow the browser down;
            # float32, like every figure array: seven digits of the loss, and the page rounds a click to 1e-4
            sx = max(1, math.ceil((len(surface.xs) - 1) / (CLICK_NODES - 1)))
            sy = max(1, math.ceil((len(surface.ys) - 1) / (CLICK_NODES - 1)))
            gx, gy = np.meshgrid(surface.xs[::sx], surface.ys[::sy])  # (my, mx), row-major like z
            nodes = hover[::sy, ::sx].reshape(-1, 2)
            data = np.column_stack([nodes, np.full(gx.size, i)])  # (my * mx, 3) = [loss, accuracy, panel]
            fig.add_trace(
                go.Scatter(
                    x=lean(gx.ravel()),
                    y=lean(gy.ravel()),
                    mode="markers",
                    name=GRID_NAME,
                    showlegend=False,
                    marker=dict(size=9, color="rgba(0,0,0,0)", opacity=0.0),
                    selected=dict(marker=dict(opacity=0.0)),
                    unselected=dict(marker=dict(opacity=0.0)),
                    customdata=lean(data),
                    hovertemplate=template,
                ),
                row=row,
                col=col,
            )
        if trajectory is not None and len(trajectory.x):
            for trace in _trajectory_2d(trajectory, i, show_legend=i == 0):
                fig.add_trace(trace, row=row, col=col)
        fig.add_trace(
            go.Scatter(
                x=[0.0],
                y=[0.0],
                mode="markers",
                name="trained weights (centre)",
                legendgroup="centre",
                showlegend=i == 0,
                marker=dict(size=13, symbol="star", color="#ffd400", line=dict(color="#111", width=1)),
                unselected=dict(marker=dict(opacity=1.0)),
                customdata=[[np.nan, np.nan, i]],
                hovertemplate="trained weights<extra></extra>",
            ),
            row=row,
            col=col,
        )
        if point is not None and point[0] in (i, panel.name):
            fig.add_trace(
                go.Scatter(
                    x=[point[1]],
                    y=[point[2]],
                    mode="markers",
                    name="chosen point",
                    showlegend=True,
                    marker=dict(size=14, symbol="x", color=POINT_COLOR, line=dict(color="white", width=1.5)),
                    unselected=dict(marker=dict(opacity=1.0)),
                    hovertemplate="chosen point (%{x:.3g}, %{y:.3g})<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(
            title_text=x_title, range=[float(surface.xs[0]), float(surface.xs[-1])], showgrid=False,
            zeroline=False, row=row, col=col,
        )  # fmt: skip
        fig.update_yaxes(
            title_text=y_title if col == 1 else None, range=[float(surface.ys[0]), float(surface.ys[-1])],
            showgrid=False, zeroline=False, row=row, col=col,
        )  # fmt: skip
    if three_d:
        # z tick labels would be clipped at the scene's edge (and read log10 on a log scale): the colour bar
        # carries the values, the z axis the shape
        fig.update_scenes(
            xaxis_title=x_title, yaxis_title=y_title,
            zaxis=dict(title="log loss" if log else "loss", range=[zmin, zmax], showticklabels=False),
            aspectmode="manual", aspectratio=dict(x=1, y=1, z=0.7),
            # a lone scene spans the chart's width: the camera comes closer so the surface fills it
            camera=dict(eye=dict(x=1.95, y=-1.95, z=1.35) if n > 1 else dict(x=1.3, y=-1.3, z=0.9)),
        )  # fmt: skip
    else:
        fig.update_layout(dragmode="zoom", clickmode="event+select")
    legend = ["trajectory", "initialisation", "trained weights (centre)", "chosen point"]
    legend_below(fig, legend, axis_title=not three_d)
    return fig


def clicked_point(event: Mapping[str, Any] | None, panels: Sequence[str]) -> tuple[str, float, float] | None:
    """(loss, x, y) of the first clicked point of surfaces_figure that names its panel, else None.

    event is the chart's selection state; a point's customdata is [loss, accuracy, panel index] (grid nodes,
    snapshots, the centre), arriving as a list or, for typed arrays, as {"0": .., "1": .., "2": ..}.
    panels are the losses in panel order; x and y are rounded to 4 decimals for the number inputs.
    """
    for point in ((event or {}).get("selection") or {}).get("points") or []:
        c = point.get("customdata")
        c = [c.get(str(i)) for i in range(len(c))] if isinstance(c, dict) else c
        if not (
            isinstance(c, list) and len(c) == 3 and isinstance(c[2], (int, float)) and math.isfinite(c[2])
        ):
            continue
        x, y = point.get("x"), point.get("y")
        if 0 <= int(c[2]) < len(panels) and all(isinstance(v, (int, float)) for v in (x, y)):
            return panels[int(c[2])], round(float(x), 4), round(float(y), 4)
    return None


def _share(fraction: float) -> str:
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def surfaces_caption(axes: str, seed: int, split: str, planes: Mapping[str, Plane]) -> str:
    """What the surfaces' axes are and how much of each trajectory they hold (planes keyed by panel title)."""
    if axes == "random":
        # a random plane of a large model holds little of the trajectory: "<1%", not a flat "0%"
        kept = ", ".join(f"{title} {_share(1 - p.residual)}" for title, p in planes.items())
        return (
            f"Axes δ, η: Gaussian directions (seeds {seed}, {seed + 1}), **filter-normalized** to each "
            "model's weights (each filter gets the norm of that filter of the weights; biases stay put): "
            "like-for-like planes for every loss. ★ trained weights; line: the training trajectory projected "
            f"by least squares (share of its length in the plane: {kept}). One colour scale; loss on the "
            f"{split} set."
        )
    kept = ", ".join(
        f"{title} {p.explained[0]:.0%} + {p.explained[1]:.0%}"
        for title, p in planes.items()
        if p.explained is not None
    )
    return (
        "Axes: the leading principal components of each model's own trajectory (θ_t − θ_final), so they "
        f"differ between panels. Variance explained: {kept}. One colour scale; loss on the {split} set."
    )


POINT_CAPTION = (
    "Click a point of a 2-D surface (or a snapshot), or type its coordinates: the weights there are "
    "θ + x·d₁ + y·d₂, evaluated on a copy (the trained model is not touched)."
)


def point_metrics(
    x: float, y: float, centre: tuple[float, float], at: tuple[float, float]
) -> list[dict[str, Any]]:
    """st.metric arguments for the chosen point against the trained weights: loss, then accuracy unless NaN.

    centre and at are (mean loss, accuracy) at (0, 0) and at (x, y); deltas only when the point moved.
    """
    (loss0, acc0), (loss, acc), moved = centre, at, (x, y) != (0.0, 0.0)
    cards = [
        dict(label=f"Loss at ({x:.3g}, {y:.3g})", value=f"{loss:.4g}", delta_color="inverse",
             delta=f"{loss - loss0:+.3g} vs centre" if moved else None),
        dict(label="Loss at the centre", value=f"{loss0:.4g}"),
    ]  # fmt: skip
    if not math.isnan(acc):  # NaN for regression
        cards += [
            dict(label="Accuracy at the point", value=f"{acc:.1%}",
                 delta=f"{(acc - acc0) * 100:+.1f} pts" if moved else None),
            dict(label="Accuracy at the centre", value=f"{acc0:.1%}"),
        ]  # fmt: skip
    return cards


def point_boundary_figure(
    *,
    data: Dataset,
    name: str,
    label: str,
    maps: tuple[DecisionMap, DecisionMap],
    point: tuple[float, float],
    height_per_row: int = 340,
) -> go.Figure:
    """One loss's decision maps side by side: at its trained weights and at point (x, y) of its plane. At the
    centre (0, 0) the two are one map: drawn once (a page's first view then draws one panel fewer)."""
    x, y = point
    if x == 0 and y == 0:
        panels = [BoundaryPanel(name, f"{label} · trained weights, the chosen point (0, 0)", [maps[0]])]
        return boundary_figure(data=data, panels=panels, height_per_row=height_per_row)
    titles = (f"{label} · trained weights", f"at ({x:.3g}, {y:.3g})")
    panels = [BoundaryPanel(name, title, [m]) for title, m in zip(titles, maps, strict=True)]
    return boundary_figure(data=data, panels=panels, height_per_row=height_per_row)


@dataclass(frozen=True)
class SlicePanel:
    """One loss's 1-D slices through its trained weights, along each axis of its plane (the other at 0)."""

    name: str  # registry key: the lines' colour
    label: str  # legend text
    along_x: Curve  # loss (and accuracy) along the first direction
    along_y: Curve  # along the second


def slices_figure(
    *,
    panels: Sequence[SlicePanel],
    log: bool = False,
    axis_titles: tuple[str, str] = ("δ", "η"),
    height: int = 360,
) -> go.Figure:
    """1-D slices through the trained weights: loss along the first axis (second = 0) and along the second.

    log draws the loss on a log axis labelled at powers of ten (1-2-5 when the range is short).
    """
    x_title, y_title = axis_titles
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[f"along {x_title} ({y_title} = 0)", f"along {y_title} ({x_title} = 0)"],
        horizontal_spacing=0.08,
    )
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=20, t=50))
    for col in (1, 2):
        curves = [p.along_x if col == 1 else p.along_y for p in panels]
        for panel, curve in zip(panels, curves, strict=True):
            acc = curve.accuracy
            fig.add_trace(
                go.Scatter(
                    x=lean(curve.x), y=lean(curve.y), mode="lines", name=panel.label, legendgroup=panel.name,
                    showlegend=col == 1, line=dict(color=color_for(panel.name), width=2.2),
                    customdata=None if acc is None else lean(acc),
                    hovertemplate=f"<b>{panel.label}</b><br>%{{x:.3g}}: loss %{{y:.4g}}"
                    + (", accuracy %{customdata:.1%}" if acc is not None else "") + "<extra></extra>",
                ),
                row=1, col=col,
            )  # fmt: skip
        fig.update_xaxes(title_text=axis_titles[col - 1], row=1, col=col)
        fig.update_yaxes(**(log_axis(*(c.y for c in curves)) if log else dict(type="linear")), row=1, col=col)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    legend_below(fig, [p.label for p in panels])
    return fig


def interpolation_figure(
    *,
    interpolation: Interpolation,
    name_a: str,
    name_b: str,
    labels: tuple[str, str] | None = None,
    title: str = "",
    height: int = 380,
) -> go.Figure:
    """Loss (left axis) and accuracy (right axis) on (1 - alpha)·theta_a + alpha·theta_b, the barrier marked.

    name_a, name_b colour the endpoint lines (registry keys); labels name them above the plot.
    """
    fig = styled_figure(
        title=title or (interpolation.label and f"Measured with {interpolation.label}"),
        x_title="α  (0 = first solution, 1 = second)",
        y_title="loss",
        height=height,
    )
    a, loss = interpolation.alphas, interpolation.loss
    fig.add_trace(
        go.Scatter(x=lean(a), y=lean(loss), mode="lines", name="loss", line=dict(color="#262730", width=2.4),
                   hovertemplate="α = %{x:.3g}: loss %{y:.4g}<extra></extra>")
    )  # fmt: skip
    names = ["loss"]
    if interpolation.accuracy is not None:
        fig.add_trace(
            go.Scatter(
                x=lean(a), y=lean(interpolation.accuracy), mode="lines", name="accuracy", yaxis="y2",
                line=dict(color="#2ca02c", width=2, dash="dot"),
                hovertemplate="α = %{x:.3g}: accuracy %{y:.1%}<extra></extra>",
            )
        )  # fmt: skip
        names.append("accuracy")
        fig.update_layout(
            yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1.02], tickformat=".0%",
                        tickmode="array", tickvals=[0, 0.25, 0.5, 0.75, 1.0], showgrid=False, zeroline=False)
        )  # fmt: skip
    for alpha, name, text in zip((0.0, 1.0), (name_a, name_b), labels or ("", ""), strict=True):
        fig.add_vline(
            x=alpha, line=dict(color=color_for(name), width=2, dash="dash"), annotation_text=text,
            annotation_position="top", annotation_font=dict(color=color_for(name), size=12),
        )  # fmt: skip
    inside = (a >= 0) & (a <= 1)
    if inside.any() and interpolation.barrier > 0:
        # the straight chord between the endpoint losses, and the barrier as a vertical segment above it
        l0 = float(np.interp(0.0, a, loss))
        l1 = float(np.interp(1.0, a, loss))
        at = interpolation.barrier_alpha
        chord = (1 - at) * l0 + at * l1
        fig.add_trace(
            go.Scatter(x=[0.0, 1.0], y=[l0, l1], mode="lines", name="linear chord",
                       line=dict(color="#999", width=1.5, dash="dash"), hoverinfo="skip")
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=[at, at], y=[chord, chord + interpolation.barrier], mode="lines+markers",
                name=f"barrier {interpolation.barrier:.3g}", line=dict(color=POINT_COLOR, width=2.5),
                hovertemplate=f"barrier {interpolation.barrier:.4g} at α = {at:.3g}<extra></extra>",
            )
        )  # fmt: skip
        names += ["linear chord", f"barrier {interpolation.barrier:.3g}"]
    fig.update_layout(margin=dict(r=60))
    legend_below(fig, names)
    return fig


def barrier_metrics(interpolation: Interpolation) -> list[dict[str, Any]]:
    """st.metric arguments for the loss barrier of an interpolation and where it is (— without one)."""
    where = f"{interpolation.barrier_alpha:.2f}" if interpolation.barrier > 0 else "—"
    return [
        dict(label="Loss barrier", value=f"{interpolation.barrier:.4g}",
             help="max over α in [0, 1] of L(α) minus the chord"),
        dict(label="at α", value=where),
    ]  # fmt: skip


BARRIER_CAPTION = (
    "Both models start from the same weights and differ only in the loss; a barrier near 0: "
    "the segment between them stays in low loss (linearly connected solutions)."
)


@dataclass(frozen=True)
class SpectrumPanel:
    """One loss's Hessian eigenvalue density."""

    name: str  # registry key: the line's colour
    label: str  # legend text
    spectrum: Spectrum


def spectrum_figure(*, panels: Sequence[SpectrumPanel], height: int = 360) -> go.Figure:
    """Hessian eigenvalue densities (stochastic Lanczos quadrature), one line per loss, log density axis."""
    fig = styled_figure(
        title="Hessian spectral density", x_title="eigenvalue λ", y_title="density", height=height
    )
    densities = []
    for panel in panels:
        spectrum = panel.spectrum
        # the log axis cannot show zeros; below 1e-8 of the peak nothing is readable anyway
        density = np.maximum(spectrum.density, 1e-8 * max(float(spectrum.density.max()), 1e-300))
        densities.append(density)
        fig.add_trace(
            go.Scatter(
                x=lean(spectrum.grid), y=lean(density), mode="lines", name=panel.label,
                line=dict(color=color_for(panel.name), width=2),
                hovertemplate=f"<b>{panel.label}</b><br>λ = %{{x:.4g}}: density %{{y:.3g}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_yaxes(**log_axis(*densities))
    legend_below(fig, [p.label for p in panels])
    return fig


@dataclass(frozen=True)
class SharpnessPanel:
    """One loss's top Hessian eigenvalue along its training."""

    name: str  # registry key: the line's colour
    label: str  # legend text
    sharpness: Sharpness


def sharpness_figure(*, panels: Sequence[SharpnessPanel], height: int = 360) -> go.Figure:
    """Top Hessian eigenvalue at each training snapshot per loss, with the 2/lr stability threshold dashed."""
    fig = styled_figure(
        title="Sharpness along training",
        x_title="epoch",
        y_title="top Hessian eigenvalue λ_max",
        height=height,
    )
    thresholds: set[float] = set()
    runs = [p.sharpness for p in panels]
    names = [p.label for p in panels]
    for panel, run in zip(panels, runs, strict=True):
        fig.add_trace(
            go.Scatter(
                x=run.steps, y=lean(run.top_eigenvalue), mode="lines+markers", name=panel.label,
                line=dict(color=color_for(panel.name), width=2.2), marker=dict(size=5),
                hovertemplate=f"<b>{panel.label}</b><br>epoch %{{x}}: λ_max %{{y:.4g}}<extra></extra>",
            )
        )  # fmt: skip
        if math.isfinite(run.threshold):
            thresholds.add(round(run.threshold, 12))
    span = np.concatenate([np.asarray(r.steps, np.float64) for r in runs] or [np.zeros(1)])
    x0, x1 = (float(span.min()), float(span.max())) if span.size else (0.0, 1.0)
    for threshold in sorted(thresholds):
        # a trace, not a shape: shapes on a log axis take log10 coordinates
        fig.add_trace(
            go.Scatter(
                x=[x0, x1], y=[threshold, threshold], mode="lines", name=f"2/lr = {threshold:.3g}",
                line=dict(color="#d62728", width=1.8, dash="dash"),
                hovertemplate=f"2/lr = {threshold:.4g}: the stability threshold of gradient descent"
                "<extra></extra>",
            )
        )  # fmt: skip
        names.append(f"2/lr = {threshold:.3g}")
    values = np.concatenate([np.asarray(r.top_eigenvalue, np.float64) for r in runs] or [np.zeros(1)])
    values = values[np.isfinite(values)]
    shown = np.concatenate([values, np.asarray(sorted(thresholds))])
    if shown.size and shown.min() > 0 and shown.max() / shown.min() > 30:
        # sharpness far below 2/lr (adaptive optimisers, small lr): a log axis shows both
        fig.update_yaxes(**log_axis(shown))
    legend_below(fig, names)
    return fig


CURVATURE_CAPTION = (
    "Top Hessian eigenvalues (Lanczos), the trace (exact for small models, else Hutch++), the "
    "eigenvalue density (stochastic Lanczos quadrature), and sharpness along training vs 2/lr."
)


def curvature_table(
    *, curvatures: Mapping[str, Curvature], labels: Mapping[str, str], lr: float
) -> list[dict[str, Any]]:
    """Rows for st.dataframe, one per loss: top eigenvalues, trace ± standard error and how it was found,
    λ₁ · lr / 2 (above 1: gradient descent at this lr is unstable there) and the parameter count."""
    return [
        {
            "loss": labels.get(name, name),
            **{f"λ{'₁₂₃'[k]}": float(v) for k, v in enumerate(c.eigenvalues[:3])},
            "tr(H)": float(c.trace.value),
            "± s.e.": float(c.trace.stderr),
            "trace by": f"{c.trace.method}, {c.trace.n_matvecs} HVPs",
            "λ₁ · lr / 2": float(c.eigenvalues[0]) * lr / 2,
            "parameters": int(c.n_params),
        }
        for name, c in curvatures.items()
    ]


def sharpness_caption(*, lr: float, optimizer: str, full_batch_gd: bool) -> str:
    """What the curvature is of, and whether the 2/lr threshold applies to how the models were trained."""
    how = (
        "full-batch gradient descent: the threshold applies"
        if full_batch_gd
        else f"{optimizer}, whose effective step differs: 2/lr is a reference"
    )
    return (
        "Hessian of the mean training loss at the trained weights. λ₁ · lr / 2 > 1: gradient descent at this "
        f"lr would be unstable there (edge of stability, 2/lr = {2 / lr:.3g}). Trained with {how}."
    )
