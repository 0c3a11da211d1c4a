"""lossviz.ui.margins: the margins it reserves hold what Chromium measured Plotly pushing into them.

The oracle is the browser: each figure below was drawn by Streamlit 1.67 / Plotly.js in headless Chromium,
and the room its tick labels, titles and colour bars took (Plotly's `_pushmargin`, in px) is written here.
A reserved margin at least that wide means Plotly draws the figure once; much wider would waste the plot.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from lossviz.ui import margins

SLACK = 16.0  # px a margin may exceed the measured room (the estimate errs on the wide side)


def _line(y: np.ndarray, *, y_title: str = "", x_title: str = "", height: int = 390) -> go.Figure:
    fig = go.Figure(go.Scatter(x=np.linspace(0, 300, y.size), y=y))
    fig.update_layout(height=height, margin=dict(t=50, b=92), xaxis_title=x_title, yaxis_title=y_title)
    return fig


@pytest.mark.parametrize(
    ("y", "title", "measured"),
    [
        (np.linspace(0.0, 3.1, 50), "nats", 65.12),  # labels 0 … 3 in steps of 0.5, titled (RL's entropy)
        (np.linspace(0.0, 7.3, 50), "loss L", 56.17),  # labels 0 … 7, titled (Loss shapes)
        (np.linspace(-1.2, 1.6, 50), "x2", 71.09),  # labels −1 … 1.5, titled (a boundary panel, no pad)
        (np.linspace(0.0, 2.6, 50), "", 35.3),  # untitled, labels 0 … 2.5 (RL's likelihood)
    ],
)
def test_the_left_margin_holds_the_measured_y_labels(y, title, measured) -> None:
    fig = margins.reserve(_line(y, y_title=title))
    assert measured <= fig.layout.margin.l <= measured + SLACK


def test_the_bottom_margin_holds_x_labels_and_title() -> None:
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    fig.update_layout(xaxis_title="true-class probability p_y")
    assert 62.2 <= margins.reserve(fig).layout.margin.b <= 62.2 + SLACK  # measured on Loss shapes


def test_a_builders_wider_margin_stays() -> None:
    fig = _line(np.linspace(0, 1, 5), y_title="accuracy")
    fig.update_layout(margin=dict(l=150, r=90, b=200))
    margin = margins.reserve(fig).layout.margin
    assert (margin.l, margin.r, margin.b) == (150, 90, 200)


def test_a_right_axis_in_percent_reserves_the_right_margin() -> None:
    fig = _line(np.linspace(0, 20, 20), y_title="loss")
    fig.add_trace(go.Scatter(x=[0, 300], y=[0.1, 0.9], yaxis="y2"))
    fig.update_layout(
        yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1.02], tickformat=".0%")
    )
    assert (
        82.0 <= margins.reserve(fig).layout.margin.r <= 82.0 + SLACK
    )  # measured: the landscape's interpolation


def test_colour_bars_get_their_room() -> None:
    top = go.Figure(
        go.Contour(z=np.random.default_rng(0).random((5, 5)), colorbar=dict(title=dict(text="P(class 1)")))
    )
    assert (
        83.85 <= margins.reserve(top).layout.margin.r
    )  # a boundary panel's bar: 99 px measured with its offset
    side = go.Figure(go.Heatmap(z=[[5.0, 15.0]], coloraxis="coloraxis"))
    side.update_layout(coloraxis=dict(cmin=2, cmax=17, colorbar=dict(title=dict(text="loss", side="right"))))
    assert 132 <= margins.reserve(side).layout.margin.r <= 132 + SLACK  # the landscape's shared bar


def test_inner_subplots_do_not_widen_the_figure() -> None:
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True)
    for col in (1, 2, 3):
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1000.0 * col]), row=1, col=col)
    fig.update_yaxes(title_text="count", col=1)
    fig.update_layout(height=400)
    # only the first column's labels (up to "3000", shared) sit in the left margin
    assert margins.reserve(fig).layout.margin.l <= 5 + margins.text_px("3000") + 44.5 + SLACK


@pytest.mark.parametrize(
    ("low", "high", "ticks", "plotly"),
    [  # Plotly's labels, read off the charts in Chromium
        (0.0, 3.1, 248 / 30, ["0", "0.5", "1", "1.5", "2", "2.5", "3"]),
        (0.0, 7.3, 308 / 30, ["0", "1", "2", "3", "4", "5", "6", "7"]),
        (-1.2, 1.6, 280 / 30, ["−1", "−0.5", "0", "0.5", "1", "1.5"]),
        (0.0, 1.0, 200 / 30, ["0", "0.2", "0.4", "0.6", "0.8", "1"]),
    ],
)
def test_linear_labels_are_never_narrower_than_plotlys(low, high, ticks, plotly) -> None:
    ours = margins.linear_labels(low, high, ticks)
    widest = max(margins.text_px(t) for t in plotly)
    assert widest <= max(margins.text_px(t) for t in ours) <= widest + margins.text_px("−0")


def test_large_and_negative_values_are_labelled_as_plotly_does() -> None:
    assert "10k" in margins.linear_labels(0, 12000, 6)
    assert all(not t.startswith("-") for t in margins.linear_labels(-3, 3, 6))  # a true minus sign
    assert min(margins.linear_labels(0.0, 5.0, 6), key=len) == "0"  # nothing below zero for data that is not
