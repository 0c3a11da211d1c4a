"""Figures of the Loss Shapes page and the shared palette: colours, labels, hover text, ranges."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz.figures import palette
from lossviz.figures import shapes as figures
from lossviz.results import Curve, Surface


def _curve(name: str, y: np.ndarray, label: str = "", **extra: np.ndarray) -> Curve:
    x = np.linspace(-4, 4, y.size)
    return Curve(name=name, x=x, y=y, dy=np.gradient(y, x), extra=dict(extra), label=label)


@pytest.fixture
def fresh_slots(monkeypatch):
    monkeypatch.setattr(palette, "_SLOTS", {})


# ------------------------------------------------------------------------------------------------ palette


def test_color_is_stable_and_from_the_palette(fresh_slots):
    assert palette.color_for("some_loss") == palette.color_for("some_loss")
    assert palette.color_for("some_loss") in palette.PALETTE


def test_assigned_order_gives_distinct_colours_and_never_moves_them(fresh_slots):
    first = [f"loss_{i}" for i in range(10)]
    palette.assign_order([first, ["other_task_loss"]])
    colours = [palette.color_for(n) for n in first]
    assert len(set(colours)) == len(first)
    palette.assign_order([["new_loss", *first]])  # a loss registered later joins without moving the others
    assert [palette.color_for(n) for n in first] == colours
    assert palette.color_for("new_loss") not in colours


def test_a_group_as_large_as_the_palette_uses_every_colour(fresh_slots):
    names = [f"l{i}" for i in range(len(palette.PALETTE))]
    palette.assign_order([names])
    assert {palette.color_for(n) for n in names} == set(palette.PALETTE)


def test_palette_colours_are_distinct_and_dark_enough_for_white():
    assert len(set(palette.PALETTE)) == len(palette.PALETTE)
    for colour in palette.PALETTE:
        r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
        assert luminance < 0.75, f"{colour} is too light for a line on white"


def test_sequential_colors():
    assert len(palette.sequential_colors(5)) == 5
    assert len(set(palette.sequential_colors(5))) == 5
    with pytest.raises(ValueError, match="0"):
        palette.sequential_colors(0)


def test_styled_figure_uses_the_template():
    fig = palette.styled_figure("T", "x axis", "y axis")
    assert fig.layout.title.text == "T"
    assert fig.layout.xaxis.title.text == "x axis" and fig.layout.yaxis.title.text == "y axis"
    assert fig.layout.template.layout.colorway == palette.PALETTE


# ------------------------------------------------------------------------------------------------ curves


def test_curves_figure_colours_labels_and_hover():
    x = np.linspace(-4, 4, 50)
    curves = [_curve("alpha", np.exp(-x), "Alpha loss"), _curve("beta", np.maximum(0, 1 - x), "Beta loss")]
    fig = figures.curves_figure(curves, title="Loss", x_title="margin m", y_title="L", symbol="m")
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["Alpha loss", "Beta loss"]
    assert [t.line.color for t in fig.data] == [palette.color_for("alpha"), palette.color_for("beta")]
    assert "m = %{x" in fig.data[0].hovertemplate and "%{fullData.name}" in fig.data[0].hovertemplate
    assert fig.layout.title.text == "Loss" and fig.layout.xaxis.title.text == "margin m"


def test_batch_losses_are_dashed():
    y = np.linspace(1, 0, 20)
    fig = figures.curves_figure([_curve("a", y), _curve("b", y)], batch_names=["b"])
    assert fig.data[0].line.dash is None and fig.data[1].line.dash == "dash"


def test_derivative_and_weight_series():
    y = np.linspace(2, 0, 30)
    curve = _curve("a", y, weight=np.full(30, 0.5))
    deriv = figures.curves_figure([curve], series="derivative")
    np.testing.assert_allclose(deriv.data[0].y, curve.dy)
    weight = figures.curves_figure([curve], series="weight")
    np.testing.assert_allclose(weight.data[0].y, 0.5)
    assert any(shape.y0 == 1.0 and shape.y1 == 1.0 for shape in weight.layout.shapes)  # the reference line
    with pytest.raises(ValueError, match="weight"):
        figures.curves_figure([_curve("r", y)], series="weight")
    with pytest.raises(ValueError, match="bogus"):
        figures.curves_figure([curve], series="bogus")  # type: ignore[arg-type]


def test_multiclass_curves_show_probability_and_margin_in_hover():
    y = np.linspace(3, 0, 10)
    curve = _curve("ce", y, p_y=np.linspace(0.1, 0.9, 10), margin=np.linspace(-2, 2, 10))
    fig = figures.curves_figure([curve])
    assert fig.data[0].customdata.shape == (10, 2)
    assert "p_y" in fig.data[0].hovertemplate


def test_one_exploding_curve_does_not_flatten_the_others():
    x = np.linspace(-4, 4, 100)
    arrays = [np.log1p(np.exp(-x)), np.maximum(0, 1 - x), np.exp(-x), 1 / (1 + np.exp(x))]
    low, high = figures.robust_range(arrays, floor=0.0)
    assert low <= 0.0
    assert 5.0 < high < 20.0  # exp(4) = 54.6 is cut, hinge's 5 is kept
    low, high = figures.robust_range([np.array([1.0, 2.0])])
    assert low < 1.0 and high > 2.0  # a single curve is shown whole


def test_sweep_figure_uses_a_sequential_scale():
    curves = [_curve("focal", np.linspace(1, 0, 10) * k, f"gamma = {k}") for k in range(4)]
    fig = figures.sweep_figure(curves, title="family")
    colours = [t.line.color for t in fig.data]
    assert colours == palette.sequential_colors(4)
    assert [t.name for t in fig.data] == [f"gamma = {k}" for k in range(4)]


# ----------------------------------------------------------------------------------------------- simplex


def test_simplex_figure():
    xs = np.linspace(0, 1, 11)
    ys = np.linspace(0, math.sqrt(3) / 2, 9)
    z = np.where(np.add.outer(ys, xs) < 1.0, np.add.outer(ys, xs), np.nan)
    extra = {k: np.full(z.shape, 1 / 3) for k in ("p_y", "p_2", "p_3")}
    fig = figures.simplex_figure(Surface(xs=xs, ys=ys, z=z, extra=extra), title="CE over the simplex")
    contour = fig.data[0]
    assert isinstance(contour, go.Contour)
    np.testing.assert_array_equal(contour.z, z)
    assert contour.customdata.shape == (*z.shape, 3)
    assert [a.text for a in fig.layout.annotations] == ["y (true class)", "class 2", "class 3"]
    assert fig.layout.yaxis.scaleanchor == "x"  # equilateral, not stretched
    assert fig.layout.title.text == "CE over the simplex"
