"""Label-noise study figures: the noise as designed (realised transition matrix, the flipped training points),
clean test accuracy and ECE against the noise rate with seed bands, loss x rate heat maps, the memorisation
curves of "Early-Learning Regularization Prevents Memorization of Noisy Labels" (Liu et al., 2020, Fig. 1),
and clean against mislabelled per-sample gradient weight over training. Builders are keyword-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lossviz.figures.palette import BASE, SEQUENTIAL, TEMPLATE, color_for, lean, legend_below, styled_figure
from lossviz.figures.train import class_color, grid_shape
from lossviz.results import Dataset

BAND_OPACITY = 0.12  # several losses' bands overlap on one axes: each stays faint
# memorisation categories: one colour each on every panel (the panel title carries the loss colour)
CLEAN_COLOR, TRUE_COLOR, MEMORISED_COLOR, OTHER_COLOR = BASE[0], BASE[2], BASE[1], "#8a8a8a"
NOISY_COLOR = BASE[1]


class RateBandLike(Protocol):
    """What the rate figures read (lossviz.noise.RateBand has it)."""

    name: str
    rates: np.ndarray
    mean: np.ndarray
    half_width: np.ndarray
    count: np.ndarray


class MemorisationLike(Protocol):
    """What the memorisation figure reads (lossviz.noise.Memorisation has it)."""

    epochs: np.ndarray
    clean_correct: np.ndarray
    noisy_true: np.ndarray
    noisy_memorised: np.ndarray
    noisy_other: np.ndarray
    n_clean: int
    n_noisy: int


class WeightSummaryLike(Protocol):
    """What the gradient-weight figure reads (lossviz.noise.WeightSummary has it)."""

    epochs: np.ndarray
    clean_median: np.ndarray
    clean_low: np.ndarray
    clean_high: np.ndarray
    noisy_median: np.ndarray
    noisy_low: np.ndarray
    noisy_high: np.ndarray


@dataclass(frozen=True)
class RatePanel:
    """One loss's metric against the noise rate, under its label."""

    label: str
    band: RateBandLike


@dataclass(frozen=True)
class MemorisationPanel:
    """One loss's memorisation fractions over training."""

    name: str  # registry key (panel-title colour)
    label: str
    memorisation: MemorisationLike


@dataclass(frozen=True)
class WeightPanel:
    """One loss's clean and mislabelled gradient-weight quartiles over training."""

    name: str
    label: str
    weights: WeightSummaryLike


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _check(panels: Sequence[object], kind: type) -> None:
    if len(panels) == 0:
        raise ValueError("panels must not be empty")
    for panel in panels:
        if not isinstance(panel, kind):
            raise ValueError(f"panels must be {kind.__name__}, got {type(panel).__name__}")


def _percent_ticks(fig: go.Figure, rates: np.ndarray, **where: int) -> None:
    fig.update_xaxes(tickvals=lean(rates), ticktext=[f"{r:.0%}" for r in rates], **where)


# ----------------------------------------------------------------------------------------------- designer


def transition_figure(
    *, matrix: np.ndarray, class_names: Sequence[str], title: str, subtitle: str = ""
) -> go.Figure:
    """A K x K transition matrix as an annotated heat map: row = true class, column = the label given."""
    matrix = np.asarray(matrix, np.float64)
    k = len(class_names)
    if matrix.shape != (k, k):
        raise ValueError(f"matrix has shape {matrix.shape}, expected ({k}, {k}) for {k} class names")
    names = [str(c) for c in class_names]
    text = [["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in matrix]
    fig = styled_figure(title, "label given", "true class", height=160 + 34 * k)
    fig.add_trace(
        go.Heatmap(
            z=lean(matrix), x=names, y=names, zmin=0.0, zmax=1.0, colorscale="Blues",
            text=text, texttemplate="%{text}" if k <= 6 else "", showscale=False,
            hovertemplate="true %{y} → given %{x}: %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False, ticks="")
    fig.update_xaxes(showgrid=False, zeroline=False, ticks="", side="bottom")
    fig.update_layout(
        title=dict(subtitle=dict(text=subtitle, font=dict(size=12, color="#666"))),
        margin=dict(l=70, r=20, t=80 if subtitle else 50, b=50),
    )
    return fig


def noisy_points_figure(*, data: Dataset, xy: np.ndarray, title: str) -> go.Figure:
    """Training points in 2-D coloured by the label they were given; the flipped ones drawn as an X."""
    xy = np.asarray(xy)
    if xy.shape != (len(data.y_train), 2):
        raise ValueError(f"xy has shape {xy.shape}, expected ({len(data.y_train)}, 2)")
    fig = styled_figure(title, data.axis_names[0], data.axis_names[1], height=420)
    flipped = np.asarray(data.noisy_mask, bool)
    for c, class_name in enumerate(data.class_names):
        keep = (data.y_train == c) & ~flipped
        fig.add_trace(
            go.Scatter(
                x=lean(xy[keep, 0]), y=lean(xy[keep, 1]), mode="markers", name=str(class_name),
                marker=dict(color=class_color(c), size=6, line=dict(color="white", width=0.6)),
                hovertemplate=f"label {class_name}<extra></extra>",
            )
        )  # fmt: skip
    if flipped.any():
        names = np.asarray([str(c) for c in data.class_names], dtype=object)
        fig.add_trace(
            go.Scatter(
                x=lean(xy[flipped, 0]), y=lean(xy[flipped, 1]), mode="markers",
                name="flipped (X, coloured by the label given)",
                marker=dict(
                    color=[class_color(c) for c in data.y_train[flipped]], symbol="x", size=8,
                    line=dict(color="#111", width=0.5),
                ),
                customdata=np.stack([names[data.y_train[flipped]], names[data.y_train_clean[flipped]]], -1),
                hovertemplate="given %{customdata[0]}, truly %{customdata[1]}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    legend_below(fig, [*map(str, data.class_names), "flipped (X, coloured by the label given)"])
    return fig


# ----------------------------------------------------------------------------------------------- sweeps


def rate_curves_figure(
    *,
    panels: Sequence[RatePanel],
    title: str,
    y_title: str,
    subtitle: str = "",
    bounds: tuple[float, float] | None = None,
) -> go.Figure:
    """Each loss's mean over seeds against the noise rate, its 95% t interval as a band (hover: the value).

    bounds: the metric's possible range (accuracy and ECE: 0 to 1); a band is cut there, since a t interval
    over a few seeds can reach past what the metric can take.
    """
    _check(panels, RatePanel)
    fig = styled_figure(title, "training label noise rate", y_title, height=440)
    rates = np.unique(np.concatenate([np.asarray(p.band.rates, np.float64) for p in panels]))
    for panel in panels:
        band, color = panel.band, color_for(panel.band.name)
        x = lean(band.rates)
        low, high = band.mean - band.half_width, band.mean + band.half_width
        if bounds is not None:
            low, high = np.clip(low, *bounds), np.clip(high, *bounds)
        banded = np.isfinite(band.half_width)
        if banded.sum() >= 2:
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([x[banded], x[banded][::-1]]),
                    y=lean(np.concatenate([high[banded], low[banded][::-1]])),
                    mode="lines", fill="toself", fillcolor=_rgba(color, BAND_OPACITY), line=dict(width=0),
                    hoverinfo="skip", showlegend=False, legendgroup=band.name,
                )
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=lean(band.mean), mode="lines+markers", name=panel.label, legendgroup=band.name,
                line=dict(color=color, width=2.2), marker=dict(color=color, size=7),
                customdata=np.stack([lean(np.nan_to_num(band.half_width)), band.count], -1),
                hovertemplate=f"{panel.label}<br>rate %{{x:.0%}}: %{{y:.3f}} ± %{{customdata[0]:.3f}}"
                "<br>%{customdata[1]} seeds<extra></extra>",
            )
        )  # fmt: skip
    _percent_ticks(fig, rates)
    fig.update_layout(title=dict(subtitle=dict(text=subtitle, font=dict(size=12, color="#666"))))
    fig.update_layout(margin=dict(t=80 if subtitle else 50))
    legend_below(fig, [p.label for p in panels])
    return fig


def rate_heatmap_figure(
    *,
    labels: Sequence[str],
    rates: np.ndarray,
    values: np.ndarray,
    title: str,
    colorbar_title: str,
    higher_is_better: bool = True,
) -> go.Figure:
    """A loss x noise-rate heat map of a metric's mean over seeds, each cell annotated (blank = not run)."""
    values = np.asarray(values, np.float64)
    rates = np.asarray(rates, np.float64)
    if values.shape != (len(labels), len(rates)):
        raise ValueError(f"values has shape {values.shape}, expected ({len(labels)}, {len(rates)})")
    text = [["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in values]
    fig = styled_figure(title, "training label noise rate", "", height=140 + 38 * len(labels))
    fig.add_trace(
        go.Heatmap(
            z=lean(values), x=[f"{r:.0%}" for r in rates], y=list(labels), text=text, texttemplate="%{text}",
            colorscale=SEQUENTIAL, reversescale=not higher_is_better,
            colorbar=dict(title=dict(text=colorbar_title, side="right"), thickness=12),
            hovertemplate="%{y}<br>rate %{x}: %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False, ticks="", automargin=True)
    fig.update_xaxes(showgrid=False, zeroline=False, ticks="", type="category")
    return fig


# ----------------------------------------------------------------------------------------------- training


def _small_multiples(titles: Sequence[str], names: Sequence[str], shared_y: bool) -> tuple[go.Figure, int]:
    rows, columns = grid_shape(len(titles))
    fig = make_subplots(
        rows=rows, cols=columns, subplot_titles=list(titles), shared_xaxes="all",
        shared_yaxes="all" if shared_y else False, horizontal_spacing=0.06 if shared_y else 0.08,
        vertical_spacing=0.22 if rows > 1 else 0.1,
    )  # fmt: skip
    # the top margin holds the title, its subtitle and the first row's two-line panel titles
    fig.update_layout(template=TEMPLATE, height=140 + 280 * rows, margin=dict(l=60, r=30, t=120, b=60))
    for annotation, name in zip(fig.layout.annotations, names, strict=False):
        annotation.font = dict(color=color_for(name), size=13)  # panel title in the loss colour
    return fig, columns


def memorisation_figure(*, panels: Sequence[MemorisationPanel], title: str, subtitle: str = "") -> go.Figure:
    """Per loss: the fraction of mislabelled samples predicted as their true class, as the wrong label they
    were given (memorised) or as another class, and of clean samples predicted correctly, over epochs."""
    _check(panels, MemorisationPanel)
    fig, columns = _small_multiples([p.label for p in panels], [p.name for p in panels], shared_y=True)
    series = (
        ("noisy_true", "mislabelled: predicts the true class", TRUE_COLOR, "solid"),
        (
            "noisy_memorised",
            "mislabelled: predicts the given (wrong) label: memorised",
            MEMORISED_COLOR,
            "solid",
        ),
        ("noisy_other", "mislabelled: predicts another class", OTHER_COLOR, "dot"),
        ("clean_correct", "clean: predicted correctly", CLEAN_COLOR, "dash"),
    )
    for i, panel in enumerate(panels):
        m = panel.memorisation
        cell = dict(row=i // columns + 1, col=i % columns + 1)
        epochs = np.asarray(m.epochs).astype(np.int32)
        for attribute, name, color, dash in series:
            values = np.asarray(getattr(m, attribute), np.float64)
            if not np.isfinite(values).any():
                continue  # no mislabelled samples (rate 0): nothing to draw
            fig.add_trace(
                go.Scatter(
                    x=epochs, y=lean(values), mode="lines", name=name, legendgroup=attribute,
                    showlegend=i == 0, line=dict(color=color, width=2, dash=dash),
                    hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.1%}}<extra></extra>",
                ),
                **cell,
            )  # fmt: skip
    fig.update_yaxes(range=[0.0, 1.02], tickformat=".0%")
    fig.update_yaxes(title_text="fraction of samples", col=1)
    fig.update_xaxes(title_text="epoch", row=grid_shape(len(panels))[0])
    fig.update_layout(title=dict(text=title, subtitle=dict(text=subtitle, font=dict(size=12, color="#666"))))
    legend_below(fig, [s[1] for s in series])
    return fig


def gradient_weight_figure(*, panels: Sequence[WeightPanel], title: str, subtitle: str = "") -> go.Figure:
    """Per loss: the median per-sample gradient weight |dL/dz| of clean and of mislabelled samples over
    training, their interquartile ranges as bands (each panel on its own scale)."""
    _check(panels, WeightPanel)
    fig, columns = _small_multiples([p.label for p in panels], [p.name for p in panels], shared_y=False)
    groups = (("clean", "clean samples", CLEAN_COLOR), ("noisy", "mislabelled samples", NOISY_COLOR))
    for i, panel in enumerate(panels):
        w = panel.weights
        cell = dict(row=i // columns + 1, col=i % columns + 1)
        epochs = np.asarray(w.epochs).astype(np.int32)
        for prefix, name, color in groups:
            median = np.asarray(getattr(w, f"{prefix}_median"), np.float64)
            if not np.isfinite(median).any():
                continue
            low, high = getattr(w, f"{prefix}_low"), getattr(w, f"{prefix}_high")
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([epochs, epochs[::-1]]), y=lean(np.concatenate([high, low[::-1]])),
                    mode="lines", fill="toself", fillcolor=_rgba(color, BAND_OPACITY + 0.04),
                    line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup=prefix,
                ),
                **cell,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=epochs, y=lean(median), mode="lines", name=f"{name}: median (band: quartiles)",
                    legendgroup=prefix, showlegend=i == 0, line=dict(color=color, width=2),
                    hovertemplate=f"{name}<br>epoch %{{x}}: median %{{y:.3g}}<extra></extra>",
                ),
                **cell,
            )  # fmt: skip
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="|∂L/∂z| per sample", col=1)
    fig.update_xaxes(title_text="epoch", row=grid_shape(len(panels))[0])
    fig.update_layout(title=dict(text=title, subtitle=dict(text=subtitle, font=dict(size=12, color="#666"))))
    legend_below(fig, [f"{g[1]}: median (band: quartiles)" for g in groups])
    return fig
