"""Grokking figures after Prieto et al. (2025), "Grokking at the Edge of Numerical Stability": accuracy over
log-spaced epochs with the memorised and grokked epochs marked, Softmax Collapse (fractions of training
samples with a loss, or a whole gradient, of exactly 0), logit and weight norms, and the Fourier spectrum of
the learned embedding. Each builder takes one GrokkingRun, keyword-only; every array is sent as float32.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import BASE, lean, legend_below, log_axis, styled_figure
from lossviz.results import GrokkingRun

TRAIN_COLOR, TEST_COLOR = BASE[0], BASE[1]
COLLAPSE_COLOR, ZERO_GRAD_COLOR = BASE[2], BASE[3]
MARK_COLOR = "#6b6b6b"


def _epoch_axis(fig: go.Figure, epochs: np.ndarray) -> None:
    """A log epoch axis over the recorded epochs a log axis can show (epoch 0, the initialisation, cannot)."""
    epochs = np.asarray(epochs)
    fig.update_xaxes(title_text="epoch (log)", **log_axis(epochs[epochs > 0]))


def _line(fig: go.Figure, epochs: np.ndarray, values: np.ndarray, name: str, color: str, dash: str = "solid"):
    keep = np.asarray(epochs) > 0
    fig.add_trace(
        go.Scatter(
            x=np.asarray(epochs)[keep].astype(np.int32),
            y=lean(np.asarray(values)[keep]),
            mode="lines",
            name=name,
            line=dict(color=color, width=2, dash=dash),
            hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
        )
    )


def _accuracy_lines(fig: go.Figure, epochs: np.ndarray, train: np.ndarray, test: np.ndarray) -> None:
    _line(fig, epochs, train, "train accuracy", TRAIN_COLOR)
    _line(fig, epochs, test, "test accuracy", TEST_COLOR)
    fig.update_yaxes(range=[-0.03, 1.08])
    legend_below(fig, ["train accuracy", "test accuracy"])


def live_accuracy_figure(
    *, epochs: np.ndarray, train_accuracy: np.ndarray, test_accuracy: np.ndarray, last_epoch: int
) -> go.Figure:
    """Train and test accuracy recorded so far, while the run trains: the epoch axis already spans the whole
    run (1 to last_epoch), so the curves grow to the right and grokking shows as it happens."""
    fig = styled_figure(f"Training: epoch {int(np.max(epochs)):,} of {last_epoch:,}", y_title="accuracy",
                        height=380)  # fmt: skip
    _accuracy_lines(fig, epochs, train_accuracy, test_accuracy)
    last = max(int(last_epoch), 2)
    _epoch_axis(fig, np.array([1, last]))
    fig.update_xaxes(range=[0.0, float(np.log10(last))])  # a log axis's range is in log10 units
    return fig


def accuracy_figure(*, run: GrokkingRun) -> go.Figure:
    """Train and test accuracy over log-spaced epochs; dotted lines at the memorised and grokked epochs."""
    fig = styled_figure("Accuracy: memorising, then (maybe) generalising", y_title="accuracy", height=380)
    _accuracy_lines(fig, run.epochs, run.train_accuracy, run.test_accuracy)
    marks = []
    for epoch, text in ((run.memorised_epoch, "memorised"), (run.grokked_epoch, "grokked")):
        if epoch:  # None (never) or 0 (cannot sit on a log axis); a trace, since a log axis reads an
            # annotation's x as log10(x)
            marks.append(f"{text} @ {epoch:,}")
            fig.add_trace(
                go.Scatter(
                    x=np.array([epoch, epoch], np.int32), y=lean([0.0, 1.04]), mode="lines+text",
                    name=marks[-1],
                    text=["", marks[-1]], textposition="top left" if text == "memorised" else "top right",
                    textfont=dict(size=11, color=MARK_COLOR),
                    line=dict(color=MARK_COLOR, dash="dot", width=1.5),
                    hoverinfo="skip", showlegend=False,
                )
            )  # fmt: skip
    _epoch_axis(fig, run.epochs)
    return fig


def collapse_figure(*, run: GrokkingRun) -> go.Figure:
    """Fractions of training samples in Softmax Collapse (loss exactly 0) and with an all-zero gradient."""
    fig = styled_figure(
        f"Softmax Collapse in {run.dtype}", y_title="fraction of training samples", height=340
    )
    _line(fig, run.epochs, run.collapse, "loss exactly 0 (collapse)", COLLAPSE_COLOR)
    _line(fig, run.epochs, run.zero_gradient, "gradient exactly 0", ZERO_GRAD_COLOR, dash="dash")
    fig.update_yaxes(range=[-0.03, 1.03])
    _epoch_axis(fig, run.epochs)
    legend_below(fig, ["loss exactly 0 (collapse)", "gradient exactly 0"])
    return fig


def norms_figure(*, run: GrokkingRun) -> go.Figure:
    """Mean logit norm of the training samples and the norm of all weights, both on a log axis."""
    fig = styled_figure("Logit and weight norms", y_title="L2 norm (log)", height=340)
    _line(fig, run.epochs, run.logit_norm, "mean logit norm ‖z‖", TRAIN_COLOR)
    _line(fig, run.epochs, run.weight_norm, "weight norm ‖θ‖", MARK_COLOR, dash="dash")
    keep = np.asarray(run.epochs) > 0
    fig.update_yaxes(**log_axis(np.asarray(run.logit_norm)[keep], np.asarray(run.weight_norm)[keep]))
    _epoch_axis(fig, run.epochs)
    legend_below(fig, ["mean logit norm ‖z‖", "weight norm ‖θ‖"])
    return fig


def spectrum_figure(*, run: GrokkingRun) -> go.Figure:
    """The final embedding's DFT power per frequency k (folded with p - k, summing to 1), as bars."""
    fig = styled_figure(
        f"Fourier spectrum of the learned embedding (p = {run.p})",
        x_title="frequency k",
        y_title="share of power",
        height=320,
    )
    fig.add_trace(
        go.Bar(
            x=np.asarray(run.frequencies).astype(np.int32),
            y=lean(run.spectrum),
            marker_color=TRAIN_COLOR,
            name="power",
            hovertemplate="k = %{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(showlegend=False, bargap=0.15)
    fig.update_yaxes(rangemode="tozero")
    return fig
