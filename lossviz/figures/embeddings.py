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
from plotly.subplots import make_subplots

from lossviz.figures.palette import SEQUENTIAL, TEMPLATE, color_for, lean, legend_below, sequential_colors
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


def _class_names(labels: np.ndarray) -> list[int]:
    return sorted(int(k) for k in np.unique(labels))


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
    circle = np.linspace(0, 2 * np.pi, 121)
    for i, panel in enumerate(panels):
        row, col = i // columns + 1, i % columns + 1
        points, labels = np.asarray(panel.points), np.asarray(panel.labels)
        if not three:
            fig.add_trace(
                go.Scatter(
                    x=lean(np.cos(circle)),
                    y=lean(np.sin(circle)),
                    mode="lines",
                    line=dict(color="#bbb", width=1),
                    hoverinfo="skip",
                    showlegend=False,
                ),
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
        fig.update_xaxes(range=[-1.15, 1.15], showgrid=False, zeroline=False, showticklabels=False)
        fig.update_yaxes(
            range=[-1.15, 1.15], showgrid=False, zeroline=False, showticklabels=False, scaleanchor="x"
        )
        for i in range(1, len(panels)):
            fig.layout[f"yaxis{i + 1}"].scaleanchor = f"x{i + 1}"
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
    fig.update_yaxes(title_text="s_p (positive)", range=[-1, 1])
    fig.update_layout(template=TEMPLATE, height=60 + height_per_row * rows, margin=dict(t=60))
    _titled(fig, [p.name for p in panels])
    return fig
