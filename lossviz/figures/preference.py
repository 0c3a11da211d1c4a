"""Plotly builders for the Preference page: pi(chosen) and pi(rejected) over training, the implicit reward
margin, KL to the reference, and prompt 0's path on the probability simplex (three answers).

Each takes `runs`, a {label: PreferenceRun} mapping (lossviz.preference; read by attribute here, so this
module imports no compute), keyword-only; arrays go out as float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import color_for, lean, legend_below, styled_figure

MAX_POINTS = 400  # per curve: epochs beyond that are thinned evenly (the last one kept)


def _thin(n: int) -> np.ndarray:
    """Indices of at most MAX_POINTS of n records, first and last kept."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, MAX_POINTS)).astype(int))


def probability_figure(*, runs: Mapping[str, Any]) -> go.Figure:
    """Mean pi(chosen) (solid) and pi(rejected) (dashed) over training, one colour per loss."""
    fig = styled_figure("π(chosen) and π(rejected) over training", "epoch", "mean probability")
    for label, run in runs.items():
        index = _thin(len(run.epochs))
        color = color_for(run.loss)
        for values, kind, dash in ((run.chosen, "chosen", "solid"), (run.rejected, "rejected", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=lean(run.epochs[index]), y=lean(values[index]), mode="lines", name=f"{label}: {kind}",
                    legendgroup=label, line=dict(color=color, dash=dash, width=2),
                )
            )  # fmt: skip
    fig.update_yaxes(range=[0, 1])
    legend_below(fig, [f"{label}: rejected" for label in runs for _ in (0, 1)])
    return fig


def _series_figure(runs: Mapping[str, Any], attribute: str, title: str, y_title: str) -> go.Figure:
    fig = styled_figure(title, "epoch", y_title, height=360)
    for label, run in runs.items():
        index = _thin(len(run.epochs))
        fig.add_trace(
            go.Scatter(
                x=lean(run.epochs[index]), y=lean(getattr(run, attribute)[index]), mode="lines", name=label,
                line=dict(color=color_for(run.loss), width=2),
            )
        )  # fmt: skip
    legend_below(fig, list(runs))
    return fig


def margin_figure(*, runs: Mapping[str, Any]) -> go.Figure:
    """The implicit reward margin beta [(log pi_w - log ref_w) - (log pi_l - log ref_l)], mean over pairs."""
    return _series_figure(runs, "margin", "Implicit reward margin β·h", "β·h (mean over prompts)")


def kl_figure(*, runs: Mapping[str, Any]) -> go.Figure:
    """KL(pi || pi_ref) averaged over prompts."""
    return _series_figure(runs, "kl", "KL(π ‖ π_ref)", "nats (mean over prompts)")


_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])  # answers 0, 1, 2


def simplex_figure(*, runs: Mapping[str, Any]) -> go.Figure:
    """Prompt 0's probabilities over its three answers on the simplex: a path per loss, start to end."""
    fig = styled_figure("Prompt 0 on the simplex", height=460)
    corners = np.vstack([_CORNERS, _CORNERS[:1]])
    fig.add_trace(
        go.Scatter(
            x=lean(corners[:, 0]), y=lean(corners[:, 1]), mode="lines", line=dict(color="#999", width=1),
            showlegend=False, hoverinfo="skip",
        )
    )  # fmt: skip
    first = next((run for run in runs.values() if run.path.shape[1] == 3), None)
    if first is not None:
        w, lo = int(first.chosen_index[0]), int(first.rejected_index[0])
        names = [
            f"answer {a}" + (" (chosen)" if a == w else " (rejected)" if a == lo else "") for a in range(3)
        ]
        fig.add_trace(
            go.Scatter(
                x=lean(_CORNERS[:, 0]), y=lean(_CORNERS[:, 1]), mode="text", text=names,
                textposition=["bottom center", "bottom center", "top center"], showlegend=False,
                hoverinfo="skip",
            )
        )  # fmt: skip
        start = first.path[0] @ _CORNERS
        fig.add_trace(
            go.Scatter(
                x=lean([start[0]]), y=lean([start[1]]), mode="markers", name="start (π_ref)",
                marker=dict(color="#444", size=10, symbol="circle-open"),
            )
        )  # fmt: skip
    for label, run in runs.items():
        if run.path.shape[1] != 3:
            continue
        xy = run.path[_thin(len(run.epochs))] @ _CORNERS  # (T, 2)
        fig.add_trace(
            go.Scatter(
                x=lean(xy[:, 0]), y=lean(xy[:, 1]), mode="lines", name=label,
                line=dict(color=color_for(run.loss), width=2),
            )
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=lean(xy[-1:, 0]), y=lean(xy[-1:, 1]), mode="markers", showlegend=False,
                name=f"{label}: end",
                marker=dict(color=color_for(run.loss), size=8),
            )
        )  # fmt: skip
    fig.update_xaxes(visible=False, range=[-0.12, 1.12])
    fig.update_yaxes(visible=False, range=[-0.12, 1.0], scaleanchor="x")
    legend_below(fig, ["start (π_ref)", *runs], axis_title=False)
    return fig
