"""Figures of the Train & Compare view: decision-boundary small multiples with an epoch animation, fitted
regression curves, training curves, the metrics table and per-sample gradient-weight histograms.

Every builder takes keyword arguments and one panel per loss (name for colour, label, data). Label-noise
views follow "Normalized Loss Functions for Deep Learning with Noisy Labels" (clean vs noisy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import (
    TEMPLATE,
    color_for,
    lean,
    legend_above,
    legend_below,
    log_axis,
    make_subplots,
    tick_text,
)
from lossviz.results import Curve, Dataset, DecisionMap, History

LossScale = Literal["auto", "linear", "log", "symlog", "normalised"]
LOSS_SCALES: tuple[str, ...] = ("auto", "linear", "log", "symlog", "normalised")
SCALE_SPREAD = 30.0  # per-loss ranges further apart than this: "auto" rescales each loss ("normalised")

# Class colours (points and regions): saturated, distinct from each other; not the per-loss palette, whose
# colours name losses in curves and titles.
CLASS_COLORS: tuple[str, ...] = (
    "#2166ac", "#d6604d", "#1b9e77", "#7570b3", "#e6ab02",
    "#a6761d", "#e7298a", "#66a61e", "#17becf", "#666666",
)  # fmt: skip
FLIPPED_NAME = "flipped label"
_REGION_LIGHTEN = 0.5  # regions are class colours mixed half with white, so points stay visible on top
_MAX_OVERLAY = 0.85  # opacity of the white veil over a region where the model is at chance
_HOVER_ALL_CLASSES = 3  # the map hover lists every class up to this K, else only the most likely one


def class_color(k: int) -> str:
    """The colour of class k (cycles after 10 classes)."""
    return CLASS_COLORS[int(k) % len(CLASS_COLORS)]


def _mix_white(color: str, amount: float) -> str:
    """A hex colour mixed with `amount` of white, as an rgb() string."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return f"rgb({mix[0]},{mix[1]},{mix[2]})"


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of small multiples for n panels: one row up to 3, then rows of 3 (4 -> 2x2)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == 4:
        return 2, 2
    columns = min(n, 3)
    return math.ceil(n / columns), columns


def _subplots(
    titles: Sequence[str], names: Sequence[str], height_per_row: int, shared: bool, **kwargs: Any
) -> tuple[go.Figure, int, int]:
    rows, columns = grid_shape(len(titles))
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=list(titles),
        shared_xaxes="all" if shared else False,
        shared_yaxes="all" if shared else False,
        horizontal_spacing=0.05 if shared else 0.08,
        vertical_spacing=0.1 if shared else 0.3,
        **kwargs,
    )
    fig.update_layout(
        template=TEMPLATE, height=120 + height_per_row * rows, margin=dict(l=60, r=30, t=70, b=60)
    )
    # subplot titles in their loss colour, so a panel matches its curves elsewhere on the page
    for annotation, name in zip(fig.layout.annotations, names, strict=False):
        annotation.font = dict(color=color_for(name), size=14)
    return fig, rows, columns


def _cell(i: int, columns: int) -> tuple[int, int]:
    return i // columns + 1, i % columns + 1


# ------------------------------------------------------------------------------------------ decision maps


@dataclass(frozen=True)
class BoundaryPanel:
    """One loss's decision maps, one per animation frame (e.g. snapshot epochs), under its panel title."""

    name: str  # registry key: the title's colour
    title: str
    maps: Sequence[DecisionMap]  # (F,) frames on one grid


def map_probabilities(decision: DecisionMap, n_classes: int) -> np.ndarray:
    """(ny, nx, K) class probabilities of a decision map, checked against the dataset's class count."""
    if decision.n_classes != n_classes:
        raise ValueError(
            f"decision map has {decision.n_classes} classes, expected {n_classes}: "
            f"proba has shape {decision.proba.shape}, expected (ny, nx, {n_classes})"
        )
    return np.asarray(decision.proba, np.float64)


def _binary_colorscale() -> list[list[Any]]:
    return [
        [0.0, _mix_white(class_color(0), 0.15)],
        [0.5, "rgb(255,255,255)"],
        [1.0, _mix_white(class_color(1), 0.15)],
    ]


def _class_colorscale(k: int) -> list[list[Any]]:
    """A stepped colorscale mapping integer z = 0..K-1 to the lightened class colours."""
    scale = []
    for c in range(k):
        color = _mix_white(class_color(c), _REGION_LIGHTEN)
        scale += [[c / k, color], [(c + 1) / k, color]]
    return scale


def _map_traces(
    decision: DecisionMap, n_classes: int, class_names: Sequence[str], show_scale: bool
) -> list[go.BaseTraceType]:
    """One panel's map traces: P(class 1) with its 0.5 contour (K = 2), or argmax + a confidence veil."""
    probs = map_probabilities(decision, n_classes)
    xs, ys = lean(decision.xs), lean(decision.ys)
    if n_classes == 2:
        return [
            go.Contour(
                x=xs,
                y=ys,
                # P(class 1) in 1/255 steps as bytes: a quarter of float32's JSON, finer than the eye sees
                z=np.rint(255.0 * probs[..., 1]).astype(np.uint8),
                zmin=0,
                zmax=255,
                zauto=False,
                colorscale=_binary_colorscale(),
                contours=dict(coloring="heatmap", start=127.5, end=127.5, size=255, showlines=True),
                line=dict(color="#222", width=1.6),
                showscale=show_scale,
                colorbar=dict(
                    title=dict(text=f"P({class_names[1]})", side="right"),
                    thickness=12,
                    len=0.6,
                    tickvals=[0, 63.75, 127.5, 191.25, 255],
                    ticktext=["0", "0.25", "0.5", "0.75", "1"],
                ),
                hovertemplate=f"P({class_names[1]}) ≈ %{{z}}/255<extra></extra>",
                name="P(class 1)",
            )
        ]
    predicted = probs.argmax(-1).astype(np.int8 if n_classes < 128 else np.int32)  # (ny, nx)
    confidence = probs.max(-1)  # (ny, nx) in [1/K, 1]
    # veil opacity: _MAX_OVERLAY at chance (1/K), 0 at certainty -> lightness shows confidence; in whole
    # percent as bytes (the eye cannot tell 1% of opacity apart, and bytes are a quarter of float32's JSON)
    veil = np.rint(100.0 * np.clip((1.0 - confidence) / (1.0 - 1.0 / n_classes), 0.0, 1.0)).astype(np.uint8)
    # whole percentages as bytes for the hover: every class up to three, else the most likely class only
    if n_classes <= _HOVER_ALL_CLASSES:
        custom = np.rint(100.0 * probs).astype(np.uint8)  # (ny, nx, K)
        hover = "<br>".join(f"P({class_names[k]}) = %{{customdata[{k}]}}%" for k in range(n_classes))
    else:
        custom = np.stack([predicted.astype(np.uint8), np.rint(100.0 * confidence).astype(np.uint8)], -1)
        hover = "most likely class #%{customdata[0]}: P = %{customdata[1]}%"
    return [
        go.Heatmap(
            x=xs,
            y=ys,
            z=predicted,
            zmin=-0.5,
            zmax=n_classes - 0.5,
            colorscale=_class_colorscale(n_classes),
            showscale=False,
            hoverinfo="skip",
            name="predicted class",
        ),
        go.Heatmap(
            x=xs,
            y=ys,
            z=veil,
            zmin=0,
            zmax=100,
            colorscale=[[0.0, "rgba(255,255,255,0)"], [1.0, f"rgba(255,255,255,{_MAX_OVERLAY})"]],
            showscale=False,
            zsmooth="best",
            customdata=custom,
            hovertemplate=hover + "<extra></extra>",
            name="confidence",
        ),
    ]


def _point_traces(data: Dataset, xy: np.ndarray, show_legend: bool, max_points: int) -> list[go.Scatter]:
    """Training points coloured by their given (possibly flipped) label; flipped ones drawn as an X."""
    n = len(xy)
    keep = np.arange(n)
    if n > max_points:  # thin evenly, keeping every flipped point (they are the story)
        rng = np.random.default_rng(0)
        clean_idx = np.flatnonzero(~data.noisy_mask)
        budget = max(max_points - int(data.noisy_mask.sum()), 0)
        keep = np.sort(
            np.concatenate(
                [
                    np.flatnonzero(data.noisy_mask),
                    rng.choice(clean_idx, min(budget, len(clean_idx)), replace=False),
                ]
            )
        )
    traces = []
    for c, class_name in enumerate(data.class_names):
        idx = keep[(data.y_train[keep] == c) & ~data.noisy_mask[keep]]
        traces.append(
            go.Scatter(
                x=lean(xy[idx, 0]),
                y=lean(xy[idx, 1]),
                mode="markers",
                name=class_name,
                legendgroup=f"class{c}",
                showlegend=show_legend,
                marker=dict(color=class_color(c), size=5.5, line=dict(color="white", width=0.6)),
                hovertemplate=f"label {class_name}<extra></extra>",
            )
        )
    flipped = keep[data.noisy_mask[keep]]
    if len(flipped):
        given = data.y_train[flipped]
        true = data.y_train_clean[flipped]
        traces.append(
            go.Scatter(
                x=lean(xy[flipped, 0]),
                y=lean(xy[flipped, 1]),
                mode="markers",
                name=f"{FLIPPED_NAME} (X, coloured by the given label)",
                legendgroup="flipped",
                showlegend=show_legend,
                marker=dict(
                    color=[class_color(c) for c in given],
                    symbol="x",
                    size=7,
                    line=dict(color="#111", width=0.5),
                ),
                customdata=np.stack(
                    [
                        np.asarray(data.class_names, dtype=object)[given],
                        np.asarray(data.class_names, dtype=object)[true],
                    ],
                    axis=-1,
                ),
                hovertemplate="given %{customdata[0]}, truly %{customdata[1]}<extra></extra>",
            )
        )
    return traces


def _animation_controls(
    fig: go.Figure, frame_names: Sequence[str], frame_labels: Sequence[str], active: int, offset: int = 64
) -> None:
    """A play/pause button and an epoch slider under the plot area (offset pixels below the x axis)."""
    step_args = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    play_args = dict(frame=dict(duration=350, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                x=0.0,
                y=0.0,
                xanchor="left",
                yanchor="top",
                pad=dict(t=offset + 22, r=8),
                showactive=False,
                buttons=[
                    dict(label="▶ Play", method="animate", args=[None, {**play_args, "fromcurrent": False}]),
                    dict(label="❚❚ Pause", method="animate", args=[[None], step_args]),
                ],
            )
        ],
        sliders=[
            dict(
                active=active,
                x=0.17,
                y=0.0,
                len=0.83,
                xanchor="left",
                yanchor="top",
                pad=dict(t=offset, b=0),
                currentvalue=dict(prefix="showing ", visible=True, xanchor="right", font=dict(size=13)),
                steps=[
                    dict(label=label, method="animate", args=[[name], step_args])
                    for name, label in zip(frame_names, frame_labels, strict=True)
                ],
            )
        ],
    )


def _frame_count(counts: Sequence[int], frame_labels: Sequence[str], what: str) -> int:
    """The shared number of frames of every panel, checked against frame_labels."""
    if not counts:
        raise ValueError(f"panels must hold at least one panel with one {what} per frame")
    if min(counts) < 1 or len(set(counts)) != 1:
        raise ValueError(f"every panel needs the same number (>= 1) of {what}s, one per frame, got {counts}")
    if frame_labels and len(frame_labels) != counts[0]:
        raise ValueError(f"frame_labels has {len(frame_labels)} entries for {counts[0]} frames")
    return counts[0]


def boundary_figure(
    *,
    data: Dataset,
    panels: Sequence[BoundaryPanel],
    frame_labels: Sequence[str] = (),
    height_per_row: int = 360,
    max_points: int = 3000,
    show_points: bool = True,
) -> go.Figure:
    """Small multiples of decision maps (one panel per loss, shared axes) with the training points.

    panel.maps[f] is the loss's map at animation frame f (e.g. a snapshot epoch); the figure shows the last
    frame and, with more than one, a play button and an epoch slider. K = 2: heat map of P(class 1) with the
    0.5 contour; K > 2: argmax colour whitened where the model is unsure. Flipped labels are drawn as an X.
    """
    n_frames = _frame_count([len(p.maps) for p in panels], frame_labels, "map")
    if data.n_classes < 2:
        raise ValueError(f"boundary_figure needs a classification dataset, got task {data.task!r}")
    fig, rows, columns = _subplots([p.title for p in panels], [p.name for p in panels], height_per_row, True)
    xy = data.view_2d(data.X_train)  # (N, 2)
    map_traces: list[int] = []  # indices of the heat-map traces, the only ones frames update
    for i, panel in enumerate(panels):
        row, col = _cell(i, columns)
        for trace in _map_traces(panel.maps[-1], data.n_classes, data.class_names, show_scale=i == 0):
            fig.add_trace(trace, row=row, col=col)
            map_traces.append(len(fig.data) - 1)
        if show_points:
            # every panel repeats the points: share one budget between them (at least 400 each)
            per_panel = max(min(400, max_points), max_points // len(panels))
            for trace in _point_traces(data, xy, show_legend=i == 0, max_points=per_panel):
                fig.add_trace(trace, row=row, col=col)
    xs, ys = panels[0].maps[-1].xs, panels[0].maps[-1].ys
    fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], showgrid=False, zeroline=False)
    x_name, y_name = data.axis_names
    n = len(panels)
    for c in range(1, columns + 1):
        # the lowest panel of each column carries the x axis (the last row may be incomplete)
        bottom = max(r for r in range(1, rows + 1) if (r - 1) * columns + c <= n)
        fig.update_xaxes(title_text=x_name, showticklabels=True, row=bottom, col=c)
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text=y_name, row=r, col=1)
    # the legend (classes) sits in the top margin, above the panel titles
    fig.update_layout(margin=dict(t=95))
    legend_above(fig)
    if n_frames > 1:
        labels = list(frame_labels) or [f"frame {f}" for f in range(n_frames)]
        frame_names = [f"f{f}" for f in range(n_frames)]
        fig.frames = [
            go.Frame(
                name=frame_name,
                data=[
                    t
                    for panel in panels
                    for t in _map_traces(panel.maps[f], data.n_classes, data.class_names, show_scale=False)
                ],
                traces=map_traces,
            )
            for f, frame_name in enumerate(frame_names)
        ]
        # the colour bar of the first panel must survive frame updates (frames carry showscale=False)
        if data.n_classes == 2:
            for frame in fig.frames:
                frame.data[0].showscale = True
        _animation_controls(fig, frame_names, labels, active=n_frames - 1)
        fig.update_layout(height=fig.layout.height + 90, margin=dict(b=150))
    return fig


# ------------------------------------------------------------------------------------------ regression


@dataclass(frozen=True)
class FitPanel:
    """One loss's fitted regression curve, one per animation frame (e.g. snapshot epochs)."""

    name: str  # registry key: the line's colour
    label: str  # legend text
    fits: Sequence[Curve]  # (F,) fitted y(x) per frame


def regression_figure(
    *, data: Dataset, panels: Sequence[FitPanel], frame_labels: Sequence[str] = (), height: int = 480
) -> go.Figure:
    """Fitted curves of every loss over the 1-D training data (outliers as X), animated over the frames."""
    n_frames = _frame_count([len(p.fits) for p in panels], frame_labels, "fitted curve")
    if data.task != "regression" or data.n_features != 1:
        raise ValueError(
            f"regression_figure needs a 1-D regression dataset, got {data.task} "
            f"with {data.n_features} features"
        )
    fig = go.Figure(layout=dict(template=TEMPLATE, height=height, margin=dict(t=60)))
    x = data.X_train[:, 0]
    clean = ~data.noisy_mask
    fig.add_trace(
        go.Scatter(
            x=lean(x[clean]), y=lean(data.y_train[clean]), mode="markers", name="training data",
            marker=dict(color="#9aa3ad", size=5), hovertemplate="x = %{x:.3f}<br>y = %{y:.3f}<extra></extra>",
        )
    )  # fmt: skip
    if data.noisy_mask.any():
        fig.add_trace(
            go.Scatter(
                x=lean(x[~clean]), y=lean(data.y_train[~clean]), mode="markers", name="outliers (X)",
                marker=dict(color="#c0392b", symbol="x", size=8, line=dict(color="#111", width=0.6)),
                hovertemplate="outlier<br>x = %{x:.3f}<br>y = %{y:.3f}<extra></extra>",
            )
        )  # fmt: skip
    order = np.argsort(data.X_test[:, 0])
    fig.add_trace(
        go.Scatter(
            x=lean(data.X_test[order, 0]), y=lean(data.y_test[order]), mode="lines", name="test targets",
            line=dict(color="#333", width=1.5, dash="dot"), hoverinfo="skip",
        )
    )  # fmt: skip
    curve_traces = []
    for panel in panels:
        fig.add_trace(_fit_trace(panel, panel.fits[-1]))
        curve_traces.append(len(fig.data) - 1)
    finite = np.concatenate([data.y_train[np.isfinite(data.y_train)], data.y_test])
    pad = 0.08 * float(np.ptp(finite) or 1.0)
    fig.update_yaxes(range=[float(finite.min()) - pad, float(finite.max()) + pad], title_text="y")
    fig.update_xaxes(title_text=data.feature_names[0])
    legend_above(fig, ["training data", "outliers (X)", "test targets", *(p.label for p in panels)])
    if n_frames > 1:
        labels = list(frame_labels) or [f"frame {f}" for f in range(n_frames)]
        frame_names = [f"f{f}" for f in range(n_frames)]
        fig.frames = [
            go.Frame(name=name, data=[_fit_trace(p, p.fits[f]) for p in panels], traces=curve_traces)
            for f, name in enumerate(frame_names)
        ]
        _animation_controls(fig, frame_names, labels, active=n_frames - 1)
        fig.update_layout(height=fig.layout.height + 90, margin=dict(b=150))
    return fig


def _fit_trace(panel: FitPanel, curve: Curve) -> go.Scatter:
    return go.Scatter(
        x=lean(curve.x),
        y=lean(curve.y),
        mode="lines",
        name=panel.label,
        line=dict(color=color_for(panel.name), width=2.6),
        hovertemplate=f"<b>{panel.label}</b><br>x = %{{x:.3f}}<br>fit = %{{y:.3f}}<extra></extra>",
    )


@dataclass(frozen=True)
class PredictionPanel:
    """One loss's predictions of the test targets."""

    name: str  # registry key: the markers' colour
    label: str  # legend text
    predicted: np.ndarray  # (M,) one per test target


def prediction_figure(
    *, y_true: np.ndarray, panels: Sequence[PredictionPanel], height: int = 460
) -> go.Figure:
    """Predicted vs true test targets per loss (regression with several features); the diagonal is perfect."""
    y_true = np.asarray(y_true)
    for panel in panels:
        if np.shape(panel.predicted) != y_true.shape:
            raise ValueError(
                f"{panel.label}: predicted has shape {np.shape(panel.predicted)}, expected {y_true.shape}"
            )
    fig = go.Figure(layout=dict(template=TEMPLATE, height=height))
    low, high = float(np.min(y_true)), float(np.max(y_true))
    fig.add_trace(
        go.Scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            name="perfect",
            line=dict(color="#333", dash="dot"),
            hoverinfo="skip",
        )
    )
    for panel in panels:
        fig.add_trace(
            go.Scatter(
                x=lean(y_true), y=lean(panel.predicted), mode="markers", name=panel.label,
                marker=dict(color=color_for(panel.name), size=5, opacity=0.7),
                hovertemplate=f"<b>{panel.label}</b><br>true %{{x:.3f}}<br>predicted %{{y:.3f}}"
                "<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="true target (test)")
    fig.update_yaxes(title_text="predicted")
    legend_below(fig, ["perfect", *(p.label for p in panels)])
    return fig


# ------------------------------------------------------------------------------------------ training curves


@dataclass(frozen=True)
class RunPanel:
    """One training run in the training-curve figure: its History and legend label."""

    history: History
    label: str = ""  # legend text; the loss name when empty

    @property
    def name(self) -> str:
        """The registry key of the run's loss (its colour)."""
        return self.history.loss_name

    @property
    def text(self) -> str:
        return self.label or self.history.loss_name


def choose_loss_scale(curves: Sequence[np.ndarray]) -> str:
    """The scale "auto" picks for training-loss curves so that no loss flattens the others.

    "symlog" when any value is negative; "normalised" when the losses' ranges (max - min) differ by more than
    SCALE_SPREAD x; "log" when all are positive and span more than two decades; else "linear".
    """
    finite = [c[np.isfinite(c)] for c in (np.asarray(c, np.float64) for c in curves)]
    finite = [c for c in finite if c.size]
    if not finite:
        return "linear"
    values = np.concatenate(finite)
    if values.min() < 0:
        return "symlog"
    size = max(float(np.abs(values).max()), 1e-300)
    spans = [float(np.ptp(c)) for c in finite if np.ptp(c) > 1e-9 * size]  # constant curves say nothing
    if len(spans) >= 2 and max(spans) / min(spans) > SCALE_SPREAD:
        return "normalised"
    if values.min() > 0 and values.max() / values.min() > 100:
        return "log"
    return "linear"


def symlog_constant(curves: Sequence[np.ndarray]) -> float:
    """c of the signed log transform: the power of ten at or below the smallest loss's typical size."""
    typical = []
    for c in curves:
        a = np.abs(np.asarray(c, np.float64))
        a = a[np.isfinite(a) & (a > 0)]
        if a.size:
            typical.append(float(np.median(a)))
    if not typical:
        return 1.0
    return float(10.0 ** np.clip(math.floor(math.log10(min(typical))), -6, 6))


def symlog(values: np.ndarray, c: float) -> np.ndarray:
    """The signed log transform sign(y)·log10(1 + |y| / c): linear near 0, logarithmic beyond ±c."""
    values = np.asarray(values, np.float64)
    return np.sign(values) * np.log10(1.0 + np.abs(values) / c)


def symlog_ticks(low: float, high: float, c: float, most: int = 9) -> dict:
    """tickvals (transformed) and ticktext (the loss values) at 0 and ±c·10^k (1-2-5 steps when few) over
    [low, high]: the labels are the losses themselves, in full."""
    sides = []  # (sign, last decade k with c·10^k at or past the data on that side)
    for sign, bound in ((-1.0, -low), (1.0, high)):
        if bound > 0:
            sides.append((sign, max(math.ceil(math.log10(bound / c) - 1e-9), 0)))
    decades = sum(top + 1 for _, top in sides)
    mantissas = (1.0, 2.0, 5.0) if 3 * decades <= most else (1.0,)
    step = max(1, math.ceil(decades / most))  # many decades: every step-th one
    values = [0.0] if low <= 0 <= high or not sides else []
    for sign, top in sides:
        values += [sign * m * c * 10.0**k for k in range(0, top + 1, step) for m in mantissas]
    values.sort()
    return dict(
        tickmode="array",
        tickvals=[float(symlog(np.array(v), c)) for v in values],
        ticktext=[tick_text(v) for v in values],
    )


def _scaled_losses(curves: list[np.ndarray], scale: str) -> tuple[list[np.ndarray], str, dict]:
    """(what is drawn per run, the y-axis title, axis settings) of the training-loss panel on a scale."""
    if scale == "linear":
        return curves, "loss", {}
    if scale == "log":
        return curves, "loss (log scale)", log_axis(*curves)
    if scale == "symlog":
        c = symlog_constant(curves)
        shown = [symlog(y, c) for y in curves]
        finite = np.concatenate([y[np.isfinite(y)] for y in curves] or [np.zeros(1)])
        finite = finite if finite.size else np.zeros(1)
        ticks = symlog_ticks(float(finite.min()), float(finite.max()), c)
        return shown, f"loss (signed log: linear within ±{tick_text(c)})", ticks
    # normalised: each loss min-max scaled on its own finite values
    shown = []
    for y in curves:
        finite = y[np.isfinite(y)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        shown.append((y - low) / (high - low) if high > low else np.zeros_like(y))
    return shown, "loss rescaled per loss (0 = its lowest, 1 = its highest)", dict(range=[-0.04, 1.04])


def training_curves_figure(
    *, panels: Sequence[RunPanel], task: str, loss_scale: LossScale = "auto", height: int = 380
) -> go.Figure:
    """Per-epoch curves, one colour per loss: training loss, clean test accuracy (R² for regression) and
    memorisation (accuracy on the flipped training labels; test MSE for regression).

    loss_scale sets the training-loss panel's y axis: "linear"; "log"; "symlog", the signed log
    sign(L)·log10(1 + |L|/c) for losses that go negative; "normalised", each loss min-max scaled to [0, 1];
    "auto" picks one (choose_loss_scale) so that one loss (LDR-KL falling to −45) cannot flatten the rest.
    The hover always gives the raw value. A diverged run ends in an X.
    """
    if loss_scale not in LOSS_SCALES:
        raise ValueError(f"loss_scale must be one of {LOSS_SCALES}, got {loss_scale!r}")
    regression = task == "regression"
    histories = [p.history for p in panels]
    has_noisy = not regression and any(np.isfinite(h.noisy_acc).any() for h in histories)
    if regression:
        metrics = [("train_loss", "Training loss"), ("test_acc", "Test R²"), ("test_nll", "Test MSE")]
    else:
        third = (
            ("noisy_acc", "Memorisation: fit to flipped labels")
            if has_noisy
            else ("train_acc", "Train accuracy")
        )
        metrics = [("train_loss", "Training loss (given labels)"), ("test_acc", "Clean test accuracy"), third]
    losses = [np.asarray(h.train_loss, np.float64) for h in histories]
    scale = choose_loss_scale(losses) if loss_scale == "auto" else loss_scale
    shown_losses, loss_title, loss_axis = _scaled_losses(losses, scale)
    fig = make_subplots(rows=1, cols=3, subplot_titles=[m[1] for m in metrics], horizontal_spacing=0.07)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=20, t=60))
    for i, panel in enumerate(panels):
        color, label, history = color_for(panel.name), panel.text, panel.history
        for col, (key, _) in enumerate(metrics, start=1):
            raw = np.asarray(getattr(history, key), np.float64)
            y = shown_losses[i] if col == 1 else raw
            fig.add_trace(
                go.Scatter(
                    x=history.epochs, y=lean(y), customdata=lean(raw), mode="lines", name=label,
                    legendgroup=label, showlegend=col == 1, line=dict(color=color, width=2.2),
                    hovertemplate=f"<b>{label}</b><br>epoch %{{x}}<br>%{{customdata:.4g}}<extra></extra>",
                ),
                row=1, col=col,
            )  # fmt: skip
            if history.diverged and len(y):
                fig.add_trace(
                    go.Scatter(
                        x=[history.epochs[-1]], y=lean(y[-1:]), mode="markers",
                        legendgroup=label, showlegend=False,
                        marker=dict(symbol="x", size=11, color=color, line=dict(color="#111", width=1)),
                        hovertemplate=f"<b>{label}</b> diverged after epoch %{{x}}<extra></extra>",
                    ),
                    row=1, col=col,
                )  # fmt: skip
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text=loss_title, row=1, col=1, **loss_axis)
    if not regression:
        fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%", row=1, col=2)
        fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%", row=1, col=3)
    legend_below(fig, [p.text for p in panels])
    return fig


# ------------------------------------------------------------------------------------------ metrics table

CLASSIFICATION_COLUMNS: tuple[str, ...] = ("test accuracy", "NLL", "ECE", "Brier", "macro F1")
REGRESSION_COLUMNS: tuple[str, ...] = ("test R²", "test MSE", "test MAE")
# for each column, whether larger is better (the page marks the best value)
HIGHER_IS_BETTER: dict[str, bool] = {
    "test accuracy": True, "NLL": False, "ECE": False, "Brier": False, "macro F1": True,
    "test R²": True, "test MSE": False, "test MAE": False,
}  # fmt: skip


@dataclass(frozen=True)
class MetricsRow:
    """One loss's final test metrics (by column name; a missing one reads NaN) and its training time."""

    label: str  # the "loss" column
    metrics: Mapping[str, float]
    seconds: float


def metrics_table(*, runs: Sequence[MetricsRow], task: str) -> list[dict[str, Any]]:
    """Rows for st.dataframe: one per loss, final test metrics (NaN for a missing one) and training time."""
    columns = REGRESSION_COLUMNS if task == "regression" else CLASSIFICATION_COLUMNS
    rows = []
    for run in runs:
        row: dict[str, Any] = {"loss": run.label}
        row.update({c: float(run.metrics.get(c, math.nan)) for c in columns})
        row["time (s)"] = float(run.seconds)
        rows.append(row)
    return rows


def best_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """For every numeric column, the index of the row with the best finite value (see HIGHER_IS_BETTER)."""
    best: dict[str, int] = {}
    for column, higher in HIGHER_IS_BETTER.items():
        values = [float(r[column]) if column in r else math.nan for r in rows]
        finite = [(v if higher else -v, i) for i, v in enumerate(values) if math.isfinite(v)]
        if finite:
            best[column] = max(finite)[1]
    return best


# ------------------------------------------------------------------------------------------ gradient weights


@dataclass(frozen=True)
class WeightPanel:
    """One loss's per-sample gradient weights |dL/dz| on the training set, under its panel title."""

    name: str  # registry key: the title's colour
    title: str
    weights: np.ndarray  # (N,) one per training sample


def weight_histograms(
    weights: np.ndarray, noisy: np.ndarray, bins: int = 30
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges (B+1,), clean percent (B,), noisy percent (B,)): each group's histogram in percent of itself."""
    weights = np.asarray(weights, np.float64)
    noisy = np.asarray(noisy, bool)
    if weights.shape != noisy.shape:
        raise ValueError(f"weights {weights.shape} and noisy mask {noisy.shape} differ in shape")
    finite = weights[np.isfinite(weights)]
    high = float(finite.max()) if finite.size else 1.0
    edges = np.linspace(0.0, high if high > 0 else 1.0, bins + 1)

    def percent(values: np.ndarray) -> np.ndarray:
        values = values[np.isfinite(values)]
        counts, _ = np.histogram(values, edges)
        return 100.0 * counts / max(len(values), 1)

    return edges, percent(weights[~noisy]), percent(weights[noisy])


def gradient_weight_figure(
    *,
    panels: Sequence[WeightPanel],
    noisy: np.ndarray,
    clean_name: str = "clean labels",
    noisy_name: str = "flipped labels",
    bins: int = 30,
    height_per_row: int = 290,
) -> go.Figure:
    """Per loss, histograms of the per-sample gradient weight |dL/dz| for clean vs noisy training samples.

    Each group is in percent of itself (the noisy subset is small); the panel subtitle gives both groups'
    mean weights and their ratio noisy / clean: below 1 the loss pulls less on the noisy samples.
    """
    if not panels:
        raise ValueError("panels must hold at least one WeightPanel")
    noisy = np.asarray(noisy, bool)
    subtitles = []
    for panel in panels:
        w = np.asarray(panel.weights, np.float64)
        if w.shape != noisy.shape:
            raise ValueError(f"{panel.title}: weights {w.shape} and noisy mask {noisy.shape} differ in shape")
        clean_mean = float(np.nanmean(w[~noisy])) if (~noisy).any() else math.nan
        noisy_mean = float(np.nanmean(w[noisy])) if noisy.any() else math.nan
        if noisy.any() and clean_mean > 0:
            subtitles.append(
                f"{panel.title}<br><span style='font-size:11px;color:#555'>mean {noisy_name} "
                f"{noisy_mean:.3g} vs {clean_name} {clean_mean:.3g} (×{noisy_mean / clean_mean:.2f})</span>"
            )
        else:
            subtitles.append(panel.title)
    fig, _, columns = _subplots(subtitles, [p.name for p in panels], height_per_row, shared=False)
    for i, panel in enumerate(panels):
        row, col = _cell(i, columns)
        edges, clean_pct, noisy_pct = weight_histograms(panel.weights, noisy, bins)
        centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        groups = [(clean_name, clean_pct, "#4c72b0")] + (
            [(noisy_name, noisy_pct, "#c44e52")] if noisy.any() else []
        )
        for group, pct, color in groups:
            fig.add_trace(
                go.Bar(
                    x=lean(centres), y=lean(pct), width=width, name=group, legendgroup=group,
                    showlegend=i == 0, marker=dict(color=color, line=dict(width=0)), opacity=0.6,
                    hovertemplate=f"{group}<br>weight %{{x:.3g}}<br>%{{y:.1f}}% of {group}<extra></extra>",
                ),
                row=row, col=col,
            )  # fmt: skip
        fig.update_xaxes(title_text="|∂L/∂z| per sample", row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text="% of group", row=row, col=col)
    fig.update_layout(barmode="overlay", bargap=0.0, margin=dict(t=125))
    legend_above(fig)
    return fig
