"""Figures of the Train & Compare view: decision-boundary small multiples with an epoch animation, fitted
regression curves, training curves, the metrics table and per-sample gradient-weight histograms.

Label-noise views follow "Normalized Loss Functions for Deep Learning with Noisy Labels" (clean vs noisy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lossviz.figures.palette import TEMPLATE, color_for
from lossviz.results import Curve, Dataset, History, Surface

# Class colours (points and regions): saturated, distinct from each other; not the per-loss palette, whose
# colours name losses in curves and titles.
CLASS_COLORS: tuple[str, ...] = (
    "#2166ac", "#d6604d", "#1b9e77", "#7570b3", "#e6ab02",
    "#a6761d", "#e7298a", "#66a61e", "#17becf", "#666666",
)  # fmt: skip
FLIPPED_NAME = "flipped label"
_REGION_LIGHTEN = 0.5  # regions are class colours mixed half with white, so points stay visible on top
_MAX_OVERLAY = 0.85  # opacity of the white veil over a region where the model is at chance


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


def surface_probabilities(surface: Surface, n_classes: int) -> np.ndarray:
    """(ny, nx, K) class probabilities of a decision surface.

    Accepts extra["proba"] (ny, nx, K) (lossviz.boundary.decision_surface), z (ny, nx, K) probabilities, or
    z (ny, nx) = P(class 1) when K = 2.
    """
    key = next((k for k in ("proba", "probs") if k in surface.extra), None)
    probs = np.asarray(surface.extra[key] if key else surface.z, np.float64)
    if probs.ndim == 2:
        if n_classes != 2:
            raise ValueError(
                f"a (ny, nx) surface holds P(class 1) of a binary problem; got n_classes={n_classes}"
            )
        probs = np.stack([1.0 - probs, probs], axis=-1)
    if probs.ndim != 3 or probs.shape[-1] != n_classes:
        raise ValueError(f"surface probabilities have shape {probs.shape}, expected (ny, nx, {n_classes})")
    return probs


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
    surface: Surface, n_classes: int, class_names: Sequence[str], show_scale: bool
) -> list[go.BaseTraceType]:
    """One panel's map traces: P(class 1) with its 0.5 contour (K = 2), or argmax + a confidence veil."""
    probs = surface_probabilities(surface, n_classes).astype(np.float32)  # float32: half the bytes per frame
    if n_classes == 2:
        return [
            go.Contour(
                x=surface.xs,
                y=surface.ys,
                z=probs[..., 1],
                zmin=0.0,
                zmax=1.0,
                zauto=False,
                colorscale=_binary_colorscale(),
                contours=dict(coloring="heatmap", start=0.5, end=0.5, size=1.0, showlines=True),
                line=dict(color="#222", width=1.6),
                showscale=show_scale,
                colorbar=dict(title=dict(text=f"P({class_names[1]})", side="right"), thickness=12, len=0.6),
                hovertemplate=f"P({class_names[1]}) = %{{z:.3f}}<extra></extra>",
                name="P(class 1)",
            )
        ]
    predicted = probs.argmax(-1).astype(np.float32)  # (ny, nx)
    confidence = probs.max(-1)  # (ny, nx) in [1/K, 1]
    # veil opacity: _MAX_OVERLAY at chance (1/K), 0 at certainty -> lightness shows confidence
    veil = np.clip((1.0 - confidence) / (1.0 - 1.0 / n_classes), 0.0, 1.0).astype(np.float32)
    names = np.asarray([class_names[int(c)] for c in range(n_classes)], dtype=object)[predicted.astype(int)]
    return [
        go.Heatmap(
            x=surface.xs,
            y=surface.ys,
            z=predicted,
            zmin=-0.5,
            zmax=n_classes - 0.5,
            colorscale=_class_colorscale(n_classes),
            showscale=False,
            hoverinfo="skip",
            name="predicted class",
        ),
        go.Heatmap(
            x=surface.xs,
            y=surface.ys,
            z=veil,
            zmin=0.0,
            zmax=1.0,
            colorscale=[[0.0, "rgba(255,255,255,0)"], [1.0, f"rgba(255,255,255,{_MAX_OVERLAY})"]],
            showscale=False,
            zsmooth="best",
            customdata=np.stack([names, np.round(confidence, 3)], axis=-1),
            hovertemplate="predicted %{customdata[0]}<br>confidence %{customdata[1]}<extra></extra>",
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
                x=xy[idx, 0],
                y=xy[idx, 1],
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
                x=xy[flipped, 0],
                y=xy[flipped, 1],
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


def boundary_figure(
    data: Dataset,
    frames: Sequence[Sequence[Surface]],
    titles: Sequence[str],
    names: Sequence[str],
    frame_labels: Sequence[str] = (),
    *,
    height_per_row: int = 360,
    max_points: int = 1500,
    show_points: bool = True,
) -> go.Figure:
    """Small multiples of decision maps (one panel per loss, shared axes) with the training points.

    frames[f][i] is loss i's surface at animation frame f (e.g. a snapshot epoch); the figure shows the last
    frame and, with more than one, a play button and an epoch slider. K = 2: heat map of P(class 1) with the
    0.5 contour; K > 2: argmax colour whitened where the model is unsure. Flipped labels are drawn as an X.
    """
    if not frames or not frames[0]:
        raise ValueError("frames must hold at least one frame with one surface per loss")
    n = len(frames[0])
    if len(titles) != n or len(names) != n or any(len(f) != n for f in frames):
        raise ValueError(
            f"every frame needs one surface per loss: {n} titles/names, frames of {[len(f) for f in frames]}"
        )
    if data.n_classes < 2:
        raise ValueError(f"boundary_figure needs a classification dataset, got task {data.task!r}")
    if frame_labels and len(frame_labels) != len(frames):
        raise ValueError(f"frame_labels has {len(frame_labels)} entries for {len(frames)} frames")
    fig, rows, columns = _subplots(titles, names, height_per_row, shared=True)
    xy = data.view_2d(data.X_train)  # (N, 2)
    last = frames[-1]
    map_traces: list[int] = []  # indices of the heat-map traces, the only ones frames update
    for i, surface in enumerate(last):
        row, col = _cell(i, columns)
        for trace in _map_traces(surface, data.n_classes, data.class_names, show_scale=i == 0):
            fig.add_trace(trace, row=row, col=col)
            map_traces.append(len(fig.data) - 1)
        if show_points:
            for trace in _point_traces(data, xy, show_legend=i == 0, max_points=max_points):
                fig.add_trace(trace, row=row, col=col)
    xs, ys = last[0].xs, last[0].ys
    fig.update_xaxes(range=[float(xs[0]), float(xs[-1])], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[float(ys[0]), float(ys[-1])], showgrid=False, zeroline=False)
    x_name, y_name = data.axis_names
    for c in range(1, columns + 1):
        # the lowest panel of each column carries the x axis (the last row may be incomplete)
        bottom = max(r for r in range(1, rows + 1) if (r - 1) * columns + c <= n)
        fig.update_xaxes(title_text=x_name, showticklabels=True, row=bottom, col=c)
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text=y_name, row=r, col=1)
    # the legend sits in the top margin, above the panel titles
    fig.update_layout(
        legend=dict(orientation="h", yref="container", y=0.995, yanchor="top", x=0.0, xanchor="left"),
        margin=dict(t=95),
    )
    if len(frames) > 1:
        labels = list(frame_labels) or [f"frame {f}" for f in range(len(frames))]
        frame_names = [f"f{f}" for f in range(len(frames))]
        fig.frames = [
            go.Frame(
                name=frame_name,
                data=[
                    t
                    for s in frame
                    for t in _map_traces(s, data.n_classes, data.class_names, show_scale=False)
                ],
                traces=map_traces,
            )
            for frame_name, frame in zip(frame_names, frames, strict=True)
        ]
        # the colour bar of the first panel must survive frame updates (frames carry showscale=False)
        if data.n_classes == 2:
            for frame in fig.frames:
                frame.data[0].showscale = True
        _animation_controls(fig, frame_names, labels, active=len(frames) - 1)
        fig.update_layout(height=fig.layout.height + 90, margin=dict(b=150))
    return fig


# ------------------------------------------------------------------------------------------ regression


def regression_figure(
    data: Dataset,
    frames: Sequence[Sequence[Curve]],
    frame_labels: Sequence[str] = (),
    *,
    height: int = 480,
) -> go.Figure:
    """Fitted curves of every loss over the 1-D training data (outliers as X), animated over frames.

    frames[f][i] is loss i's fitted curve at frame f (Curve.name = registry key, Curve.label = legend).
    """
    if not frames or not frames[0]:
        raise ValueError("frames must hold at least one frame with one curve per loss")
    if data.task != "regression" or data.n_features != 1:
        raise ValueError(
            f"regression_figure needs a 1-D regression dataset, got {data.task} "
            f"with {data.n_features} features"
        )
    if frame_labels and len(frame_labels) != len(frames):
        raise ValueError(f"frame_labels has {len(frame_labels)} entries for {len(frames)} frames")
    fig = go.Figure(layout=dict(template=TEMPLATE, height=height))
    x = data.X_train[:, 0]
    clean = ~data.noisy_mask
    fig.add_trace(
        go.Scatter(
            x=x[clean], y=data.y_train[clean], mode="markers", name="training data",
            marker=dict(color="#9aa3ad", size=5), hovertemplate="x = %{x:.3f}<br>y = %{y:.3f}<extra></extra>",
        )
    )  # fmt: skip
    if data.noisy_mask.any():
        fig.add_trace(
            go.Scatter(
                x=x[~clean], y=data.y_train[~clean], mode="markers", name="outliers (X)",
                marker=dict(color="#c0392b", symbol="x", size=8, line=dict(color="#111", width=0.6)),
                hovertemplate="outlier<br>x = %{x:.3f}<br>y = %{y:.3f}<extra></extra>",
            )
        )  # fmt: skip
    order = np.argsort(data.X_test[:, 0])
    fig.add_trace(
        go.Scatter(
            x=data.X_test[order, 0], y=data.y_test[order], mode="lines", name="test targets",
            line=dict(color="#333", width=1.5, dash="dot"), hoverinfo="skip",
        )
    )  # fmt: skip
    curve_traces = []
    for curve in frames[-1]:
        fig.add_trace(_curve_trace(curve))
        curve_traces.append(len(fig.data) - 1)
    finite = np.concatenate([data.y_train[np.isfinite(data.y_train)], data.y_test])
    pad = 0.08 * float(np.ptp(finite) or 1.0)
    fig.update_yaxes(range=[float(finite.min()) - pad, float(finite.max()) + pad], title_text="y")
    fig.update_xaxes(title_text=data.feature_names[0])
    fig.update_layout(
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0.0, xanchor="left"), margin=dict(t=60)
    )
    if len(frames) > 1:
        labels = list(frame_labels) or [f"frame {f}" for f in range(len(frames))]
        frame_names = [f"f{f}" for f in range(len(frames))]
        fig.frames = [
            go.Frame(name=name, data=[_curve_trace(c) for c in frame], traces=curve_traces)
            for name, frame in zip(frame_names, frames, strict=True)
        ]
        _animation_controls(fig, frame_names, labels, active=len(frames) - 1)
        fig.update_layout(height=height + 90, margin=dict(b=150))
    return fig


def _curve_trace(curve: Curve) -> go.Scatter:
    return go.Scatter(
        x=curve.x,
        y=curve.y,
        mode="lines",
        name=curve.label or curve.name,
        line=dict(color=color_for(curve.name), width=2.6),
        hovertemplate=f"<b>{curve.label or curve.name}</b><br>x = %{{x:.3f}}<br>fit = %{{y:.3f}}"
        "<extra></extra>",
    )


def prediction_figure(
    y_true: np.ndarray,
    predictions: Sequence[np.ndarray],
    labels: Sequence[str],
    names: Sequence[str],
    *,
    height: int = 460,
) -> go.Figure:
    """Predicted vs true test targets per loss (regression with several features); the diagonal is perfect."""
    if not (len(predictions) == len(labels) == len(names)):
        raise ValueError(
            f"need one label and name per prediction, got {len(predictions)}, {len(labels)}, {len(names)}"
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
    for pred, label, name in zip(predictions, labels, names, strict=True):
        fig.add_trace(
            go.Scatter(
                x=y_true, y=pred, mode="markers", name=label,
                marker=dict(color=color_for(name), size=5, opacity=0.7),
                hovertemplate=f"<b>{label}</b><br>true %{{x:.3f}}<br>predicted %{{y:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="true target (test)")
    fig.update_yaxes(title_text="predicted")
    fig.update_layout(
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0.0, xanchor="left"), margin=dict(t=60)
    )
    return fig


# ------------------------------------------------------------------------------------------ training curves


def _loss_axis_is_log(histories: Sequence[History]) -> bool:
    """Log scale for the training loss when every value is positive and they span more than two decades."""
    values = np.concatenate([h.train_loss for h in histories]) if histories else np.zeros(0)
    values = values[np.isfinite(values)]
    return bool(values.size and values.min() > 0 and values.max() / values.min() > 100)


def training_curves_figure(
    histories: Sequence[History], labels: Sequence[str], task: str, *, height: int = 380
) -> go.Figure:
    """Per-epoch curves, one colour per loss: training loss, clean test accuracy (R² for regression) and
    memorisation (accuracy on the flipped training labels; test MSE for regression).

    A diverged run ends in an X."""
    if len(histories) != len(labels):
        raise ValueError(
            f"need one label per history, got {len(histories)} histories and {len(labels)} labels"
        )
    regression = task == "regression"
    has_noisy = not regression and any(np.isfinite(h.noisy_acc).any() for h in histories)
    if regression:
        panels = [("train_loss", "Training loss"), ("test_acc", "Test R²"), ("test_nll", "Test MSE")]
    else:
        third = (
            ("noisy_acc", "Memorisation: fit to flipped labels")
            if has_noisy
            else ("train_acc", "Train accuracy")
        )
        panels = [("train_loss", "Training loss (given labels)"), ("test_acc", "Clean test accuracy"), third]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[1] for p in panels], horizontal_spacing=0.07)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=20, t=60, b=60))
    for history, label in zip(histories, labels, strict=True):
        color = color_for(history.loss_name)
        for col, (key, _) in enumerate(panels, start=1):
            y = np.asarray(getattr(history, key), np.float64)
            fig.add_trace(
                go.Scatter(
                    x=history.epochs, y=y, mode="lines", name=label, legendgroup=label, showlegend=col == 1,
                    line=dict(color=color, width=2.2),
                    hovertemplate=f"<b>{label}</b><br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>",
                ),
                row=1, col=col,
            )  # fmt: skip
            if history.diverged and len(y):
                fig.add_trace(
                    go.Scatter(
                        x=[history.epochs[-1]], y=[y[-1]], mode="markers",
                        legendgroup=label, showlegend=False,
                        marker=dict(symbol="x", size=11, color=color, line=dict(color="#111", width=1)),
                        hovertemplate=f"<b>{label}</b> diverged after epoch %{{x}}<extra></extra>",
                    ),
                    row=1, col=col,
                )  # fmt: skip
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    if _loss_axis_is_log(histories):
        fig.update_yaxes(type="log", row=1, col=1)
    if not regression:
        fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%", row=1, col=2)
        fig.update_yaxes(range=[-0.02, 1.02], tickformat=".0%", row=1, col=3)
    fig.update_layout(legend=dict(orientation="h", y=-0.22, yanchor="top", x=0.0, xanchor="left"))
    return fig


# ------------------------------------------------------------------------------------------ metrics table

CLASSIFICATION_COLUMNS: tuple[str, ...] = ("test accuracy", "NLL", "ECE", "Brier", "macro F1")
REGRESSION_COLUMNS: tuple[str, ...] = ("test R²", "test MSE", "test MAE")
# for each column, whether larger is better (the page marks the best value)
HIGHER_IS_BETTER: dict[str, bool] = {
    "test accuracy": True, "NLL": False, "ECE": False, "Brier": False, "macro F1": True,
    "test R²": True, "test MSE": False, "test MAE": False,
}  # fmt: skip


def metrics_table(
    labels: Sequence[str], metrics: Sequence[Mapping[str, float]], seconds: Sequence[float], task: str
) -> list[dict[str, Any]]:
    """Rows for st.dataframe: one per loss, final test metrics (NaN for a missing one) and training time."""
    if not (len(labels) == len(metrics) == len(seconds)):
        raise ValueError(
            "need one label, metrics dict and time per loss, "
            f"got {len(labels)}, {len(metrics)}, {len(seconds)}"
        )
    columns = REGRESSION_COLUMNS if task == "regression" else CLASSIFICATION_COLUMNS
    rows = []
    for label, values, time in zip(labels, metrics, seconds, strict=True):
        row: dict[str, Any] = {"loss": label}
        row.update({c: float(values.get(c, math.nan)) for c in columns})
        row["time (s)"] = float(time)
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
    weights: Sequence[np.ndarray],
    noisy: np.ndarray,
    titles: Sequence[str],
    names: Sequence[str],
    *,
    clean_name: str = "clean labels",
    noisy_name: str = "flipped labels",
    bins: int = 30,
    height_per_row: int = 290,
) -> go.Figure:
    """Per loss, histograms of the per-sample gradient weight |dL/dz| for clean vs noisy training samples.

    Each group is in percent of itself (the noisy subset is small); the panel subtitle gives both groups'
    mean weights and their ratio noisy / clean: below 1 the loss pulls less on the noisy samples.
    """
    if not (len(weights) == len(titles) == len(names)):
        raise ValueError(
            f"need one title and name per weight array, got {len(weights)}, {len(titles)}, {len(names)}"
        )
    noisy = np.asarray(noisy, bool)
    subtitles = []
    for w, title in zip(weights, titles, strict=True):
        w = np.asarray(w, np.float64)
        clean_mean = float(np.nanmean(w[~noisy])) if (~noisy).any() else math.nan
        noisy_mean = float(np.nanmean(w[noisy])) if noisy.any() else math.nan
        if noisy.any() and clean_mean > 0:
            subtitles.append(
                f"{title}<br><span style='font-size:11px;color:#555'>mean {noisy_name} {noisy_mean:.3g} "
                f"vs {clean_name} {clean_mean:.3g} (×{noisy_mean / clean_mean:.2f})</span>"
            )
        else:
            subtitles.append(title)
    fig, _, columns = _subplots(subtitles, names, height_per_row, shared=False)
    for i, w in enumerate(weights):
        row, col = _cell(i, columns)
        edges, clean_pct, noisy_pct = weight_histograms(w, noisy, bins)
        centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        groups = [(clean_name, clean_pct, "#4c72b0")] + (
            [(noisy_name, noisy_pct, "#c44e52")] if noisy.any() else []
        )
        for group, pct, color in groups:
            fig.add_trace(
                go.Bar(
                    x=centres, y=pct, width=width, name=group, legendgroup=group, showlegend=i == 0,
                    marker=dict(color=color, line=dict(width=0)), opacity=0.6,
                    hovertemplate=f"{group}<br>weight %{{x:.3g}}<br>%{{y:.1f}}% of {group}<extra></extra>",
                ),
                row=row, col=col,
            )  # fmt: skip
        fig.update_xaxes(title_text="|∂L/∂z| per sample", row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text="% of group", row=row, col=col)
    fig.update_layout(barmode="overlay", bargap=0.0, margin=dict(t=125))
    fig.update_layout(
        legend=dict(orientation="h", yref="container", y=0.995, yanchor="top", x=0.0, xanchor="left")
    )
    return fig
