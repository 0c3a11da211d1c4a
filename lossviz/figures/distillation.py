"""Figures of the Distillation page beyond the shared boundary and reliability builders (figures.train and
figures.calibration): panel titles carrying a model's test scores, and a student's test accuracy and ECE
against the distillation temperature T ("Distilling the Knowledge in a Neural Network", Hinton et al. 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lossviz.figures.palette import TEMPLATE, color_for, legend_below

REFERENCE_DASHES = ("dot", "dash", "dashdot")  # the references' level lines, in order (teacher first)


def score_title(label: str, accuracy: float, ece: float) -> str:
    """A panel title: the model, then its test accuracy and ECE on a smaller line."""
    return f"{label}<br><span style='font-size:11px'>test acc {accuracy:.0%} · ECE {ece:.3f}</span>"


@dataclass(frozen=True)
class Reference:
    """A model drawn as a level line across the temperature axis (the teacher, the labels-alone student)."""

    label: str
    accuracy: float
    ece: float
    name: str  # its colour's name: a registry key, or the page's name for the teacher


def temperature_figure(
    *,
    name: str,
    label: str,
    temperatures: Sequence[float],
    accuracy: Sequence[float],
    ece: Sequence[float],
    references: Sequence[Reference] = (),
    height: int = 330,
) -> go.Figure:
    """Test accuracy and ECE of students distilled at each temperature (markers on a log-T axis), with the
    references (teacher, labels alone) as level lines."""
    temperatures = np.asarray(temperatures, np.float64)
    columns = [np.asarray(accuracy, np.float64), np.asarray(ece, np.float64)]
    same = all(c.shape == temperatures.shape for c in columns)
    if temperatures.ndim != 1 or len(temperatures) == 0 or not same:
        raise ValueError(
            f"temperatures, accuracy and ece must be 1-D of one length >= 1, got {temperatures.shape}, "
            f"{columns[0].shape}, {columns[1].shape}"
        )
    if not (np.isfinite(temperatures).all() and (temperatures > 0).all()):
        raise ValueError(f"temperatures must be finite and > 0, got {temperatures.tolist()}")
    titles = ["Test accuracy", "ECE (test)"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.1)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=20, t=50))
    low, high = math.log10(temperatures.min()) - 0.15, math.log10(temperatures.max()) + 0.15
    for col, values in enumerate(columns, start=1):
        fig.add_trace(
            go.Scatter(
                x=temperatures, y=values, mode="lines+markers", name=label, legendgroup=label,
                showlegend=col == 1, line=dict(color=color_for(name), width=2.2), marker=dict(size=9),
                hovertemplate=f"<b>{label}</b><br>T = %{{x:g}}<br>%{{y:.3f}}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        for i, ref in enumerate(references):
            value = ref.accuracy if col == 1 else ref.ece
            dash = REFERENCE_DASHES[i % len(REFERENCE_DASHES)]
            fig.add_trace(
                go.Scatter(
                    x=[10**low, 10**high], y=[value, value], mode="lines", name=ref.label,
                    legendgroup=ref.label, showlegend=col == 1,
                    line=dict(color=color_for(ref.name), width=1.6, dash=dash),
                    hovertemplate=f"<b>{ref.label}</b><br>%{{y:.3f}}<extra></extra>",
                ),
                row=1, col=col,
            )  # fmt: skip
        fig.update_xaxes(
            type="log", range=[low, high], title_text="temperature T", tickvals=temperatures,
            ticktext=[f"{t:g}" for t in temperatures], row=1, col=col,
        )  # fmt: skip
    fig.update_yaxes(tickformat=".1%", row=1, col=1)  # accuracies a point apart need the decimal
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    legend_below(fig, [label, *(r.label for r in references)])
    return fig
