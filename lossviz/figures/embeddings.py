"""Figures of the Embeddings page: points on the circle or sphere per loss, per-class angle densities and the
(uniformity, alignment) path ("Understanding Contrastive Representation Learning through Alignment and
Uniformity on the Hypersphere", Wang & Isola 2020), positive/negative similarity histograms, InfoNCE's weight
over negatives ("Understanding the Behaviour of Contrastive Loss", Wang & Liu 2021) and loss contours over
the (s_n, s_p) plane ("Circle Loss", Sun et al. 2020).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import (
    SEQUENTIAL,
    TEMPLATE,
    color_for,
    lean,
    legend_below,
    log_axis,
    make_subplots,
    sequential_colors,
)
from lossviz.figures.train import class_color
from lossviz.results import Curve, Surface

ANGLE_BINS = 36  # 10° per bin on the circle


@dataclass(frozen=True)
class SpherePanel:
    """One loss's embeddings of a split: unit vectors (N, 2) or (N, 3) and their class labels."""

    name: str  # registry key: the title's colour
    title: str
    points: np.ndarray  # (N, D), D in {2, 3}, on the unit sphere
    labels: np.ndarray  # (N,) class ids


@dataclass(frozen=True)
class PathPanel:
    """One run's (uniformity, alignment) per epoch, lower is better on both axes."""

    name: str
    label: str
    uniformity: np.ndarray  # (E,)
    alignment: np.ndarray  # (E,)
    epochs: np.ndarray  # (E,)


@dataclass(frozen=True)
class SimilarityPanel:
    """Cosines of positive pairs (same class) and negative pairs (different classes) of one loss's model."""

    name: str
    title: str
    positive: np.ndarray  # (P,)
    negative: np.ndarray  # (Q,)


def _grid(n: int) -> tuple[int, int]:
    if n < 1:
        raise ValueError(f"panels must hold at least one panel, got {n}")
    columns = min(n, 3)
    return math.ceil(n / columns), columns


def _titled(fig: go.Figure, names: Sequence[str]) -> None:
    for annotation, name in zip(fig.layout.annotations, names, strict=False):
        annotation.font = dict(color=color_for(name), size=14)


def _unit_circle(color: str) -> go.Scatter:
    """The unit circle S¹ as a thin line under the points (no hover, no legend entry)."""
    angle = np.linspace(0, 2 * np.pi, 121)
    return go.Scatter(
        x=lean(np.cos(angle)),
        y=lean(np.sin(angle)),
        mode="lines",
        line=dict(color=color, width=1),
        hoverinfo="skip",
        showlegend=False,
    )


def _class_names(labels: np.ndarray) -> list[int]:
    return sorted(int(k) for k in np.unique(labels))


def _wireframe(latitudes: int = 5, meridians: int = 6, points: int = 49) -> dict[str, np.ndarray]:
    """x, y, z of a unit sphere's latitude and meridian circles, NaN between them (one line trace)."""
    t = np.linspace(0, 2 * np.pi, points)
    rings = []
    for lat in np.linspace(-np.pi / 2, np.pi / 2, latitudes + 2)[1:-1]:
        rings.append(
            np.stack([np.cos(lat) * np.cos(t), np.cos(lat) * np.sin(t), np.full_like(t, np.sin(lat))])
        )
    for lon in np.pi * np.arange(meridians) / meridians:
        rings.append(np.stack([np.cos(lon) * np.cos(t), np.sin(lon) * np.cos(t), np.sin(t)]))
    gap = np.full((3, 1), np.nan)
    xyz = np.concatenate([np.concatenate([r, gap], axis=1) for r in rings], axis=1)
    return dict(x=lean(xyz[0]), y=lean(xyz[1]), z=lean(xyz[2]))


def sphere_figure(*, panels: Sequence[SpherePanel], height_per_row: int = 360) -> go.Figure:
    """Embeddings on S¹ (2-D, with the unit circle) or S² (3-D scenes), a panel per loss, by class."""
    rows, columns = _grid(len(panels))
    dims = {int(np.shape(p.points)[1]) for p in panels}
    if len(dims) != 1 or dims - {2, 3}:
        raise ValueError(f"every panel needs points of one dimension, 2 or 3, got {sorted(dims)}")
    three = dims == {3}
    kind = "scene" if three else "xy"
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p.title for p in panels],
        specs=[[{"type": kind}] * columns for _ in range(rows)],
        horizontal_spacing=0.06,
    )
    for i, panel in enumerate(panels):
        row, col = i // columns + 1, i % columns + 1
        points, labels = np.asarray(panel.points), np.asarray(panel.labels)
        if three:
            fig.add_trace(
                go.Scatter3d(
                    **_wireframe(),
                    mode="lines",
                    line=dict(color="#ccc", width=1),
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=row,
                col=col,
            )
        else:
            fig.add_trace(
                _unit_circle("#bbb"),
                row=row,
                col=col,
            )
        for k in _class_names(labels):
            mine = points[labels == k]
            common = dict(
                mode="markers",
                name=f"class {k}",
                legendgroup=f"class {k}",
                showlegend=i == 0,
                marker=dict(size=4 if three else 6, color=class_color(k), opacity=0.75),
            )
            if three:
                fig.add_trace(
                    go.Scatter3d(x=lean(mine[:, 0]), y=lean(mine[:, 1]), z=lean(mine[:, 2]), **common),
                    row=row,
                    col=col,
                )
            else:
                fig.add_trace(go.Scatter(x=lean(mine[:, 0]), y=lean(mine[:, 1]), **common), row=row, col=col)
    if not three:
        hidden = dict(showgrid=False, zeroline=False, showticklabels=False, showline=False, ticks="")
        fig.update_xaxes(range=[-1.15, 1.15], **hidden)
        fig.update_yaxes(range=[-1.15, 1.15], scaleanchor="x", **hidden)
        for i in range(1, len(panels)):
            fig.layout[f"yaxis{i + 1}"].scaleanchor = f"x{i + 1}"
    else:
        bare = dict(range=[-1.05, 1.05], showticklabels=False, showgrid=False, zeroline=False, title="")
        fig.update_scenes(
            xaxis=bare, yaxis=bare, zaxis=bare, aspectmode="cube", camera=dict(eye=dict(x=1.3, y=1.3, z=0.9))
        )
    fig.update_layout(template=TEMPLATE, height=60 + height_per_row * rows, margin=dict(t=60, b=20))
    _titled(fig, [p.name for p in panels])
    legend_below(fig, [f"class {k}" for k in _class_names(np.asarray(panels[0].labels))], axis_title=False)
    return fig


def angle_density_figure(*, panels: Sequence[SpherePanel], height_per_row: int = 260) -> go.Figure:
    """Per class, the density of the embedding's angle on the circle (Wang & Isola's figure 3 view).

    For points on S² the angle is the longitude after projecting on the first two coordinates.
    """
    rows, columns = _grid(len(panels))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p.title for p in panels],
        shared_yaxes=True,
        horizontal_spacing=0.05,
        vertical_spacing=0.2,
    )
    edges = np.linspace(-np.pi, np.pi, ANGLE_BINS + 1)
    centres = np.degrees(0.5 * (edges[1:] + edges[:-1]))
    for i, panel in enumerate(panels):
        row, col = i // columns + 1, i % columns + 1
        points, labels = np.asarray(panel.points), np.asarray(panel.labels)
        angles = np.arctan2(points[:, 1], points[:, 0])
        for k in _class_names(labels):
            counts, _ = np.histogram(angles[labels == k], edges)
            density = counts / max(counts.sum(), 1) / np.diff(np.degrees(edges))
            fig.add_trace(
                go.Scatter(
                    x=lean(centres),
                    y=lean(density),
                    mode="lines",
                    line_shape="hvh",
                    fill="tozeroy",
                    name=f"class {k}",
                    legendgroup=f"class {k}",
                    showlegend=i == 0,
                    line=dict(color=class_color(k), width=1.5),
                ),
                row=row,
                col=col,
            )
    fig.update_xaxes(range=[-180, 180], tickvals=[-180, -90, 0, 90, 180], title_text="angle (°)")
    fig.update_layout(template=TEMPLATE, height=80 + height_per_row * rows, margin=dict(t=60))
    fig.update_yaxes(title_text="density (1/°)", col=1)
    _titled(fig, [p.name for p in panels])
    legend_below(fig, [f"class {k}" for k in _class_names(np.asarray(panels[0].labels))])
    return fig


def align_uniform_figure(*, panels: Sequence[PathPanel], height: int = 420) -> go.Figure:
    """Each run's path in the (L_uniform, L_align) plane over training; the last epoch marked. Lower-left is
    better on both: aligned positives, uniformly spread embeddings."""
    if not panels:
        raise ValueError("panels must hold at least one PathPanel")
    fig = go.Figure(layout=dict(template=TEMPLATE, height=height))
    for panel in panels:
        color = color_for(panel.name)
        fig.add_trace(
            go.Scatter(
                x=lean(panel.uniformity),
                y=lean(panel.alignment),
                mode="lines",
                name=panel.label,
                legendgroup=panel.name,
                line=dict(color=color, width=2),
                customdata=np.asarray(panel.epochs),
                hovertemplate="epoch %{customdata}<br>uniformity %{x:.3f}<br>alignment %{y:.3f}"
                "<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=lean(panel.uniformity[-1:]),
                y=lean(panel.alignment[-1:]),
                mode="markers",
                marker=dict(color=color, size=11, symbol="star"),
                legendgroup=panel.name,
                showlegend=False,
                hoverinfo="skip",
            )
        )
    fig.update_xaxes(title_text="L_uniform = log E exp(−2‖f(x) − f(y)‖²)  (lower: more uniform)")
    fig.update_yaxes(title_text="L_align = E ‖f(x) − f(x⁺)‖²  (lower: more aligned)")
    legend_below(fig, [p.label for p in panels])
    return fig


def similarity_histogram_figure(
    *, panels: Sequence[SimilarityPanel], bins: int = 40, height_per_row: int = 260
) -> go.Figure:
    """Per loss, histograms (in percent of each group) of positive-pair and negative-pair cosines."""
    rows, columns = _grid(len(panels))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p.title for p in panels],
        shared_yaxes=True,
        horizontal_spacing=0.05,
        vertical_spacing=0.2,
    )
    edges = np.linspace(-1, 1, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    for i, panel in enumerate(panels):
        row, col = i // columns + 1, i % columns + 1
        for values, group, color in (
            (panel.negative, "negative pairs", "#888"),
            (panel.positive, "positive pairs", color_for(panel.name)),
        ):
            counts, _ = np.histogram(np.clip(values, -1, 1), edges)
            fig.add_trace(
                go.Bar(
                    x=lean(centres),
                    y=lean(100 * counts / max(counts.sum(), 1)),
                    name=group,
                    legendgroup=group,
                    showlegend=i == 0,
                    marker_color=color,
                    opacity=0.7,
                ),
                row=row,
                col=col,
            )
    fig.update_layout(template=TEMPLATE, barmode="overlay", bargap=0, height=80 + height_per_row * rows)
    fig.update_xaxes(range=[-1, 1], title_text="cosine similarity")
    fig.update_yaxes(title_text="% of pairs", col=1)
    _titled(fig, [p.name for p in panels])
    legend_below(fig, ["negative pairs", "positive pairs"])
    return fig


def negative_weight_figure(*, curves: Sequence[Curve], height: int = 380) -> go.Figure:
    """The share of InfoNCE's push each negative gets against its similarity, one line per temperature."""
    if not curves:
        raise ValueError("curves must hold at least one Curve")
    fig = go.Figure(layout=dict(template=TEMPLATE, height=height))
    for curve, color in zip(curves, sequential_colors(len(curves)), strict=True):
        fig.add_trace(
            go.Scatter(
                x=lean(curve.x),
                y=lean(curve.y),
                mode="lines+markers",
                name=curve.label,
                line=dict(color=color, width=2),
                marker=dict(size=5),
            )
        )
    fig.update_xaxes(title_text="similarity of the negative to the anchor s_n")
    fig.update_yaxes(title_text="share of the gradient on that negative", rangemode="tozero")
    legend_below(fig, [c.label for c in curves])
    return fig


@dataclass(frozen=True)
class PlanePanel:
    """One loss's value for one anchor over (s_n, s_p)."""

    name: str
    title: str
    surface: Surface  # z[i, j] at (s_n = xs[j], s_p = ys[i])


def pair_plane_figure(*, panels: Sequence[PlanePanel], height_per_row: int = 340) -> go.Figure:
    """Contours of each loss over (s_n on x, s_p on y): where it pushes (its gradient is across the lines).

    Each panel has its own colour scale (the losses' units differ); the diagonal s_p = s_n is drawn.
    """
    rows, columns = _grid(len(panels))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[p.title for p in panels],
        horizontal_spacing=0.08,
        vertical_spacing=0.18,
    )
    for i, panel in enumerate(panels):
        row, col = i // columns + 1, i % columns + 1
        s = panel.surface
        fig.add_trace(
            go.Contour(
                x=lean(s.xs),
                y=lean(s.ys),
                z=lean(s.z),
                colorscale=SEQUENTIAL,
                ncontours=18,
                showscale=False,
                line=dict(width=0.5, color="rgba(255,255,255,0.6)"),
                hovertemplate="s_n = %{x:.2f}, s_p = %{y:.2f}<br>loss %{z:.4g}<extra></extra>",
            ),
            row=row,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=[-1, 1],
                y=[-1, 1],
                mode="lines",
                line=dict(color="#fff", dash="dot"),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=row,
            col=col,
        )
    fig.update_xaxes(title_text="s_n (negative)", range=[-1, 1])
    fig.update_yaxes(range=[-1, 1])
    fig.update_yaxes(title_text="s_p (positive)", col=1)
    fig.update_layout(template=TEMPLATE, height=60 + height_per_row * rows, margin=dict(t=60))
    _titled(fig, [p.name for p in panels])
    return fig


# ------------------------------------------------------------------------------------ what tau does

OWN_TAU_COLOR = "#262730"  # the view's own temperature: black, the selected losses' in their colours


@dataclass(frozen=True)
class TemperatureCurve:
    """InfoNCE's share of the push on each negative at one temperature, and how many negatives share it."""

    name: str  # registry key of the loss this tau belongs to; "" for the view's own slider
    label: str
    temperature: float
    similarities: np.ndarray  # (K,) the negatives' cosines to the anchor
    weights: np.ndarray  # (K,) their shares, summing to 1
    effective: float  # 1 / sum w^2: between 1 and K
    ring_angles: np.ndarray  # (M,) negatives spread around the circle: their angle from the anchor, radians
    ring_weights: np.ndarray  # (M,) their shares of the push, summing to 1


def _ring_size(weights: np.ndarray) -> np.ndarray:
    """Marker diameters whose area follows the share of the push (a share of 1 is 42 px across)."""
    return 3.0 + 39.0 * np.sqrt(np.clip(np.asarray(weights, np.float64), 0.0, 1.0))


def temperature_figure(
    *, curves: Sequence[TemperatureCurve], effective: Curve, height: int = 420
) -> go.Figure:
    """Left: an anchor on the circle and negatives all around it, each dot's area its share of the push, one
    ring per temperature. Middle: the share against the negative's similarity. Right: the effective number
    of negatives over tau (log axis), each shown tau marked."""
    if not curves:
        raise ValueError("curves must hold at least one TemperatureCurve")
    count = len(curves[0].similarities)
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.3, 0.4, 0.3],
        horizontal_spacing=0.07,
        subplot_titles=[
            "Around the anchor: dot area = share",
            f"Share of the push, {count} negatives",
            "Negatives sharing it: 1 / Σ w²",
        ],
    )
    fig.add_trace(
        go.Scatter(
            x=lean(effective.x),
            y=lean(effective.y),
            mode="lines",
            line=dict(color="#aaa", width=2),
            showlegend=False,
            hovertemplate="τ = %{x:.3g}<br>%{y:.1f} negatives<extra></extra>",
        ),
        row=1,
        col=3,
    )
    circle = np.linspace(0, 2 * np.pi, 121)
    for i, curve in enumerate(curves):
        own = not curve.name
        color = OWN_TAU_COLOR if own else color_for(curve.name)
        radius = 1.0 - 0.22 * i
        angles = np.pi / 2 + np.asarray(curve.ring_angles)  # the anchor sits at the top
        fig.add_trace(
            go.Scatter(
                x=lean(radius * np.cos(circle)),
                y=lean(radius * np.sin(circle)),
                mode="lines",
                line=dict(color="#ddd", width=1),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=lean(radius * np.cos(angles)),
                y=lean(radius * np.sin(angles)),
                mode="markers",
                marker=dict(color=color, size=lean(_ring_size(curve.ring_weights)), opacity=0.85),
                customdata=lean(curve.ring_weights),
                legendgroup=curve.label,
                showlegend=False,
                hovertemplate="share %{customdata:.1%}<extra>" + f"τ = {curve.temperature:g}</extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=lean(curve.similarities),
                y=lean(curve.weights),
                mode="lines+markers",
                name=curve.label,
                legendgroup=curve.label,
                line=dict(color=color, width=3 if own else 2, dash="solid" if own else "dash"),
                marker=dict(size=5 if own else 4),
                hovertemplate="s_n = %{x:.2f}<br>share %{y:.1%}<extra>"
                + f"τ = {curve.temperature:g}</extra>",
            ),
            row=1,
            col=2,
        )
        fig.add_trace(
            go.Scatter(
                x=[curve.temperature],
                y=[curve.effective],
                mode="markers+text",
                text=[f"{curve.effective:.1f}"],
                textposition="middle left" if own else "bottom right",
                textfont=dict(color=color),
                marker=dict(color=color, size=12 if own else 10, symbol="circle" if own else "diamond"),
                legendgroup=curve.label,
                showlegend=False,
                hovertemplate=f"τ = {curve.temperature:g}<br>{curve.effective:.1f} of {count} negatives"
                "<extra></extra>",
            ),
            row=1,
            col=3,
        )
    fig.add_trace(
        go.Scatter(
            x=[0.0],
            y=[1.0],
            mode="markers+text",
            marker=dict(symbol="star", size=16, color="#f5b700", line=dict(color="#262730", width=1)),
            text=["anchor"],
            textposition="top center",
            showlegend=False,
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    hidden = dict(showgrid=False, zeroline=False, showticklabels=False, showline=False, ticks="")
    fig.update_xaxes(range=[-1.2, 1.2], **hidden, col=1)
    fig.update_yaxes(range=[-1.2, 1.3], scaleanchor="x", **hidden, col=1)
    for x, text, anchor in ((-0.95, "easy negatives", "left"), (0.95, "hardest negatives", "right")):
        fig.add_annotation(
            x=x,
            y=1,
            xref="x2",
            yref="y2 domain",
            text=text,
            showarrow=False,
            xanchor=anchor,
            font=dict(color="#666"),
        )
    fig.update_xaxes(title_text="similarity of the negative to the anchor s_n", range=[-1.02, 1.02], col=2)
    fig.update_yaxes(title_text="share of the push", rangemode="tozero", tickformat=".0%", col=2)
    fig.update_xaxes(title_text="temperature τ", **log_axis(effective.x), col=3)
    fig.update_yaxes(title_text=f"effective negatives (of {count})", range=[0, count * 1.05], col=3)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(t=50))
    legend_below(fig, [c.label for c in curves])
    return fig


# ------------------------------------------------------------------------ angular-margin wedges


@dataclass(frozen=True)
class WedgePanel:
    """One margin loss on the circle: its class weight directions and which class wins at each direction."""

    name: str  # registry key (title colour)
    title: str
    weight_angles: np.ndarray  # (K,) radians
    angles: np.ndarray  # (R,) feature directions, radians, increasing over one turn
    winner: np.ndarray  # (R,) the class whose margin-adjusted logit wins there, -1 for none
    nearest: np.ndarray  # (R,) the class with the largest plain cosine


def _sectors(angles: np.ndarray, mask: np.ndarray, radius: float = 1.0) -> tuple[list, list]:
    """x, y of filled circular sectors (origin, arc, origin) for each run of mask, runs split by NaN."""
    step = (angles[1] - angles[0]) / 2 if len(angles) > 1 else 0.0
    xs: list = []
    ys: list = []
    n = len(mask)
    if mask.all():
        arc = np.linspace(-np.pi, np.pi, 121)
        return list(radius * np.cos(arc)), list(radius * np.sin(arc))
    start = int(np.argmin(mask)) if mask.any() else 0  # a direction outside the set: runs never wrap past it
    order = np.roll(np.arange(n), -start)
    run: list[int] = []
    for i in [*order, order[0]]:
        if mask[i]:
            run.append(i)
        elif run:
            lo, hi = angles[run[0]] - step, angles[run[-1]] + step
            if hi < lo:  # the run wraps through -pi / pi
                hi += 2 * np.pi
            arc = np.linspace(lo, hi, max(int((hi - lo) / 0.05), 2))
            xs += [0.0, *(radius * np.cos(arc)), 0.0, np.nan]
            ys += [0.0, *(radius * np.sin(arc)), 0.0, np.nan]
            run = []
    return xs, ys


def margin_wedge_figure(*, panels: Sequence[WedgePanel], height: int = 400) -> go.Figure:
    """Per margin loss, the unit circle split into the wedges where each class's margin-adjusted logit wins
    (strong colour), the plain nearest-class wedges behind them (pale), and the class weight vectors."""
    rows, columns = _grid(len(panels))
    fig = make_subplots(
        rows=rows, cols=columns, subplot_titles=[p.title for p in panels], horizontal_spacing=0.06
    )
    for i, panel in enumerate(panels):
        row, col = i // columns + 1, i % columns + 1
        angles, winner = np.asarray(panel.angles), np.asarray(panel.winner)
        for k in range(len(panel.weight_angles)):
            for mask, opacity, label in (
                (np.asarray(panel.nearest) == k, 0.12, "nearest class (no margin)"),
                (winner == k, 0.55, f"class {k} wins with its margin"),
            ):
                xs, ys = _sectors(angles, mask)
                if not xs:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=lean(xs),
                        y=lean(ys),
                        mode="lines",
                        fill="toself",
                        fillcolor=class_color(k),
                        opacity=opacity,
                        line=dict(width=0),
                        name=label,
                        legendgroup=f"class {k}",
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    row=row,
                    col=col,
                )
        fig.add_trace(
            _unit_circle("#888"),
            row=row,
            col=col,
        )
        for k, phi in enumerate(np.asarray(panel.weight_angles)):
            fig.add_trace(
                go.Scatter(
                    x=[0.0, 1.12 * math.cos(phi)],
                    y=[0.0, 1.12 * math.sin(phi)],
                    mode="lines+markers",
                    line=dict(color=class_color(k), width=3),
                    marker=dict(symbol="arrow", angleref="previous", size=[0, 14], color=class_color(k)),
                    name=f"class {k}",
                    legendgroup=f"class {k}",
                    showlegend=i == 0,
                    hovertemplate=f"w_{k}: class {k}'s weight vector<extra></extra>",
                ),
                row=row,
                col=col,
            )
    hidden = dict(showgrid=False, zeroline=False, showticklabels=False, showline=False, ticks="")
    fig.update_xaxes(range=[-1.2, 1.2], **hidden)
    fig.update_yaxes(range=[-1.2, 1.2], **hidden)
    for i in range(len(panels)):
        fig.layout[f"yaxis{i + 1 if i else ''}"].scaleanchor = f"x{i + 1 if i else ''}"
    fig.update_layout(template=TEMPLATE, height=60 + (height - 60) * rows, margin=dict(t=60, b=20))
    _titled(fig, [p.name for p in panels])
    legend_below(fig, [f"class {k}" for k in range(len(panels[0].weight_angles))], axis_title=False)
    return fig
