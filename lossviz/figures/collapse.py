"""Neural-collapse figures after Papyan, Han & Donoho (2020): NC1-NC4 over training per loss, the last epoch's
class means against the simplex-ETF reference (2-D for K = 3, 3-D for K = 4), and per-class mean norms and
angles, where minority collapse shows (Fang et al., 2021). Each builder takes keyword-only lists of panels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import TEMPLATE, color_for, lean, legend_below, log_axis, make_subplots
from lossviz.figures.train import class_color
from lossviz.results import NeuralCollapse

ETF_COLOR = "#6b6b6b"
ETF_NAME = "simplex ETF (Procrustes-aligned)"
MEANS_NAME = "class means μ_k − μ_G"
CLASSIFIER_NAME = "classifier rows w_k (scaled)"
MEASURES: tuple[tuple[str, str, bool], ...] = (
    ("nc1", "NC1  tr(Σ_W Σ_B⁺)/K  (log)", True),
    ("nc2_equinorm", "NC2 equinorm  std/mean of ‖μ_k − μ_G‖", False),
    ("nc2_equiangular", "NC2 equiangular  std of cos(μ_k, μ_j)", False),
    ("nc2_max_angle", "NC2 vs ETF  mean |cos + 1/(K−1)|", False),
    ("nc3", "NC3  ‖W/‖W‖ − M/‖M‖‖²", False),
    ("nc4", "NC4  nearest-mean ≠ classifier", False),
)  # (NeuralCollapse field, panel title, log axis); every measure is 0 at collapse


@dataclass(frozen=True)
class CollapsePanel:
    """One loss's neural-collapse measures at its snapshot epochs."""

    name: str  # registry key (its colour)
    label: str
    epochs: np.ndarray  # (S,)
    collapse: Sequence[NeuralCollapse]  # S measures

    def series(self, measure: str) -> np.ndarray:
        """(S,) one measure over the snapshots."""
        return np.array([float(getattr(c, measure)) for c in self.collapse], np.float64)

    @property
    def final(self) -> NeuralCollapse:
        return self.collapse[-1]


@dataclass(frozen=True)
class GeometryPanel:
    """One loss's centred class means in 2-D or 3-D, with the aligned ETF and classifier rows when known."""

    name: str
    label: str
    means: np.ndarray  # (K, d), d = 2 or 3
    counts: np.ndarray  # (K,) training samples per class
    etf: np.ndarray | None = None  # (K, d)
    classifier: np.ndarray | None = None  # (K, d), scaled to the means' Frobenius norm
    classifier_norms: np.ndarray | None = None  # (K,) norms of the full classifier rows ||w_k||


def _check(panels: Sequence[object], kind: type) -> None:
    if len(panels) == 0:
        raise ValueError("panels must not be empty")
    for panel in panels:
        if not isinstance(panel, kind):
            raise ValueError(f"panels must be {kind.__name__}, got {type(panel).__name__}")


def _title(panel: CollapsePanel | GeometryPanel) -> str:
    return panel.label or panel.name


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of small multiples: one row up to 3, 2 x 2 for 4, then rows of 3."""
    if n == 4:
        return 2, 2
    columns = min(n, 3)
    return math.ceil(n / columns), columns


def trajectories_figure(
    *, panels: Sequence[CollapsePanel], title: str = "Neural collapse over training"
) -> go.Figure:
    """NC1 (log axis), NC2 (equinorm, equiangularity, distance from the ETF angle), NC3 and NC4 against epoch,
    one line per loss in its colour; a legend click hides a loss in every panel."""
    _check(panels, CollapsePanel)
    fig = make_subplots(
        rows=2,
        cols=3,
        subplot_titles=[m[1] for m in MEASURES],
        shared_xaxes=True,
        horizontal_spacing=0.07,
        vertical_spacing=0.16,
    )
    for i, (measure, _, log) in enumerate(MEASURES):
        row, col = i // 3 + 1, i % 3 + 1
        for j, panel in enumerate(panels):
            fig.add_trace(
                go.Scatter(
                    x=lean(panel.epochs),
                    y=lean(panel.series(measure)),
                    mode="lines+markers",
                    marker=dict(size=4),
                    line=dict(color=color_for(panel.name), width=2),
                    name=_title(panel),
                    legendgroup=f"{panel.name}-{j}",
                    showlegend=i == 0,
                    hovertemplate=f"{_title(panel)}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        if log:
            fig.update_yaxes(**log_axis(*[p.series(measure) for p in panels]), row=row, col=col)
        else:
            fig.update_yaxes(rangemode="tozero", row=row, col=col)
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=12)
    fig.update_xaxes(title_text="epoch", row=2)
    fig.update_layout(
        template=TEMPLATE,
        height=560,
        title=dict(
            text=title,
            subtitle=dict(
                text="training split · every measure is 0 at collapse", font=dict(size=12, color="#666")
            ),
        ),
        margin=dict(l=60, r=20, t=90),
    )
    legend_below(fig, [_title(p) for p in panels])
    return fig


def _trace(dims: int, coords: np.ndarray, **kwargs: object) -> go.Scatter | go.Scatter3d:
    """A 2-D or 3-D scatter of (M, dims) coordinates (NaN rows break lines)."""
    axes = dict(zip("xyz", [lean(coords[:, c]) for c in range(dims)], strict=False))
    return go.Scatter(**axes, **kwargs) if dims == 2 else go.Scatter3d(**axes, **kwargs)


def _joined(pairs: Sequence[np.ndarray], dims: int) -> np.ndarray:
    """Segments (each (2, dims)) stacked with NaN rows between them: many lines in one trace."""
    gap = np.full((1, dims), np.nan)
    return np.concatenate([np.concatenate([p, gap]) for p in pairs]) if pairs else np.zeros((0, dims))


def _geometry_traces(panel: GeometryPanel, dims: int, first: bool, show_classifier: bool) -> list[go.Trace]:
    """One panel's traces: ETF edges and vertices, then per class its spoke, classifier row and mean."""
    traces: list[go.Trace] = []
    k = len(panel.means)
    if panel.etf is not None:
        edges = _joined([panel.etf[[a, b]] for a, b in combinations(range(k), 2)], dims)
        traces.append(
            _trace(
                dims,
                edges,
                mode="lines",
                line=dict(color=ETF_COLOR, width=2, dash="dash"),
                name=ETF_NAME,
                legendgroup="etf",
                showlegend=first,
                hoverinfo="skip",
            )
        )
        vertex = dict(size=13 if dims == 2 else 7, color="white", line=dict(color=ETF_COLOR, width=2))
        traces.append(
            _trace(
                dims,
                panel.etf,
                mode="markers",
                marker=dict(symbol="circle", **vertex),
                name="simplex ETF vertices",
                legendgroup="etf",
                showlegend=False,
                customdata=np.arange(k, dtype=np.int32),
                hovertemplate="ETF vertex matched to class %{customdata}<extra></extra>",
            )
        )
    origin = np.zeros((1, dims))
    for c in range(k):
        color = class_color(c)
        traces.append(
            _trace(
                dims,
                np.concatenate([origin, panel.means[[c]]]),
                mode="lines",
                line=dict(color=color, width=2.5),
                name=f"class {c} spoke",
                showlegend=False,
                hoverinfo="skip",
            )
        )
        if show_classifier and panel.classifier is not None:
            traces.append(
                _trace(
                    dims,
                    np.concatenate([origin, panel.classifier[[c]]]),
                    mode="lines",
                    line=dict(color=color, width=2.5, dash="dot"),
                    name=CLASSIFIER_NAME,
                    legendgroup="classifier",
                    showlegend=first and c == 0,
                    hoverinfo="skip",
                )
            )
    traces.append(
        _trace(
            dims,
            panel.means,
            mode="markers+text",
            text=[str(c) for c in range(k)],
            textposition="top center",
            textfont=dict(size=13),
            marker=dict(
                size=13 if dims == 2 else 7,
                color=[class_color(c) for c in range(k)],
                line=dict(color="white"),
            ),
            name=MEANS_NAME,
            legendgroup="means",
            showlegend=first,
            customdata=np.asarray(panel.counts, np.int32),
            hovertemplate="class %{text}: n=%{customdata}<extra></extra>",
        )
    )
    return traces


def geometry_figure(
    *,
    panels: Sequence[GeometryPanel],
    title: str = "Class means at the last epoch",
    show_classifier: bool = True,
) -> go.Figure:
    """Per loss: the centred class means (dots and solid spokes from the global mean, coloured by class), the
    simplex ETF fitted to them (grey: dashed edges, hollow vertices, vertex k matched to class k) and the
    classifier rows w_k (dotted, in class colours) when known. 2-D axes for d = 2, 3-D scenes for d = 3."""
    _check(panels, GeometryPanel)
    dims = panels[0].means.shape[1]
    if dims not in (2, 3) or any(p.means.shape[1] != dims for p in panels):
        raise ValueError(f"every panel needs means of shape (K, 2) or (K, 3) alike, got dims {dims}")
    rows, columns = _grid(len(panels))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        specs=[[{"type": "xy" if dims == 2 else "scene"}] * columns for _ in range(rows)],
        subplot_titles=[_title(p) for p in panels],
        horizontal_spacing=0.05,
        vertical_spacing=0.1 if rows > 1 else 0.05,
    )
    for annotation, panel in zip(fig.layout.annotations, panels, strict=False):
        annotation.font = dict(color=color_for(panel.name), size=13)
    for i, panel in enumerate(panels):
        for trace in _geometry_traces(panel, dims, i == 0, show_classifier):
            fig.add_trace(trace, row=i // columns + 1, col=i % columns + 1)
    if dims == 2:
        for i in range(len(panels)):
            axis = "x" if i == 0 else f"x{i + 1}"
            fig.update_yaxes(scaleanchor=axis, scaleratio=1, row=i // columns + 1, col=i % columns + 1)
        plain = dict(showticklabels=False, zeroline=False, showline=False, showgrid=False, ticks="")
        fig.update_xaxes(**plain)
        fig.update_yaxes(**plain)
    else:
        plain = dict(
            showticklabels=False, title="", showbackground=False, showline=False, zeroline=False,
            showspikes=False, gridcolor="#eeeeee",
        )  # fmt: skip
        fig.update_scenes(xaxis=plain, yaxis=plain, zaxis=plain, aspectmode="data")
    fig.update_layout(
        template=TEMPLATE,
        height=(380 if dims == 2 else 420) * rows + 80,
        title=dict(text=title),
        margin=dict(l=20, r=20, t=70),
    )
    shown = [MEANS_NAME, ETF_NAME] + ([CLASSIFIER_NAME] if show_classifier else [])
    legend_below(fig, shown, axis_title=False)
    return fig


def _relative(norms: np.ndarray) -> np.ndarray:
    """(K,) norms over their mean (NaN when all are 0)."""
    return norms / norms.mean() if norms.mean() > 0 else np.full(len(norms), np.nan)


def class_balance_figure(
    *, panels: Sequence[GeometryPanel], title: str = "Per class at the last epoch"
) -> go.Figure:
    """Per class: its centred mean's norm over the average, its largest cosine with another class's mean (the
    ETF's −1/(K−1) dashed) and, when known, its classifier row's norm over the average. Minority collapse
    (Fang et al., 2021): the rare classes' classifier rows shrink and their means merge."""
    _check(panels, GeometryPanel)
    k = len(panels[0].means)
    if any(len(p.means) != k for p in panels):
        raise ValueError("every panel needs the same number of classes")
    rows_known = any(p.classifier_norms is not None for p in panels)
    titles = ["‖μ_k − μ_G‖ ÷ average (ETF: 1)", "largest cos(μ_k, μ_j), j ≠ k"]
    titles += ["classifier ‖w_k‖ ÷ average (ETF: 1)"] if rows_known else []
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.08)
    classes = [f"class {c}<br>n={int(n)}" for c, n in enumerate(np.asarray(panels[0].counts))]
    for j, panel in enumerate(panels):
        norms = np.linalg.norm(panel.means, axis=1)  # (K,)
        unit = panel.means / np.where(norms[:, None] > 0, norms[:, None], np.nan)
        cosines = unit @ unit.T
        np.fill_diagonal(cosines, -np.inf)
        common = dict(marker_color=color_for(panel.name), name=_title(panel), legendgroup=f"{panel.name}-{j}")
        fig.add_trace(go.Bar(x=classes, y=lean(_relative(norms)), **common), row=1, col=1)
        fig.add_trace(go.Bar(x=classes, y=lean(cosines.max(1)), showlegend=False, **common), row=1, col=2)
        if panel.classifier_norms is not None:
            rows = lean(_relative(np.asarray(panel.classifier_norms, np.float64)))
            fig.add_trace(go.Bar(x=classes, y=rows, showlegend=False, **common), row=1, col=3)
    reference = dict(line=dict(color=ETF_COLOR, dash="dash", width=1.5))
    for col in (1, 3) if rows_known else (1,):
        fig.add_hline(y=1.0, row=1, col=col, **reference)
        fig.update_yaxes(rangemode="tozero", row=1, col=col)
    fig.add_hline(y=-1.0 / (k - 1), row=1, col=2, annotation_text="ETF −1/(K−1)", **reference)
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=2)
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=12)
    fig.update_layout(
        template=TEMPLATE, height=380, title=dict(text=title), barmode="group", margin=dict(t=80)
    )
    legend_below(fig, [_title(p) for p in panels], axis_title=False)
    return fig


def final_table(
    *, panels: Sequence[CollapsePanel], accuracy: Sequence[float] | None = None
) -> list[dict[str, object]]:
    """Rows of the final NC values per loss, the rarest class's mean norm over the average, train accuracy."""
    _check(panels, CollapsePanel)
    rows: list[dict[str, object]] = []
    for i, panel in enumerate(panels):
        final = panel.final
        norms = np.linalg.norm(final.centred_means, axis=1)  # (K,)
        row: dict[str, object] = {
            "loss": _title(panel),
            "NC1": final.nc1,
            "NC2 equinorm": final.nc2_equinorm,
            "NC2 equiangular": final.nc2_equiangular,
            "NC2 vs ETF angle": final.nc2_max_angle,
            "NC3": final.nc3,
            "NC4": final.nc4,
            f"‖μ_{len(norms) - 1}‖ ÷ mean": float(norms[-1] / norms.mean()) if norms.mean() > 0 else math.nan,
        }
        if accuracy is not None:
            row["train accuracy"] = float(accuracy[i])
        rows.append(row)
    return rows
