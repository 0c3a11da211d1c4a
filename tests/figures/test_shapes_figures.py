"""Figures of the Loss Shapes page: colours, labels, hover text, ranges, legends, the simplex."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz import losses, shapes
from lossviz.figures import palette
from lossviz.figures import shapes as figures
from lossviz.results import Curve, Surface


def _curve(name: str, y: np.ndarray, label: str = "", **typed) -> Curve:
    x = np.linspace(-4, 4, y.size)
    return Curve(name=name, x=x, y=y, dy=np.gradient(y, x), label=label, **typed)


# ------------------------------------------------------------------------------------------------ curves


def test_curves_figure_colours_labels_and_hover():
    x = np.linspace(-4, 4, 50)
    curves = [_curve("alpha", np.exp(-x), "Alpha loss"), _curve("beta", np.maximum(0, 1 - x), "Beta loss")]
    fig = figures.curves_figure(curves=curves, title="Loss", x_title="margin m", y_title="L", symbol="m")
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["Alpha loss", "Beta loss"]
    assert [t.line.color for t in fig.data] == [palette.color_for("alpha"), palette.color_for("beta")]
    assert "m = %{x" in fig.data[0].hovertemplate and "%{fullData.name}" in fig.data[0].hovertemplate
    assert fig.layout.title.text == "Loss" and fig.layout.xaxis.title.text == "margin m"
    np.testing.assert_allclose(fig.data[0].y, np.exp(-x), rtol=1e-6)


def test_builders_take_keyword_arguments_only():
    curve = _curve("a", np.linspace(1, 0, 5))
    with pytest.raises(TypeError):
        figures.curves_figure([curve])  # type: ignore[misc]
    with pytest.raises(TypeError):
        figures.sweep_figure([curve])  # type: ignore[misc]


def test_batch_losses_are_dashed():
    y = np.linspace(1, 0, 20)
    fig = figures.curves_figure(curves=[_curve("a", y), _curve("b", y, batch=True)])
    assert fig.data[0].line.dash is None and fig.data[1].line.dash == "dash"


def test_derivative_and_weight_series():
    y = np.linspace(2, 0, 30)
    curve = _curve("a", y, weight=np.full(30, 0.5))
    deriv = figures.curves_figure(curves=[curve], series="derivative")
    np.testing.assert_allclose(deriv.data[0].y, curve.dy, rtol=1e-6)
    weight = figures.curves_figure(curves=[curve], series="weight")
    np.testing.assert_allclose(weight.data[0].y, 0.5)
    assert any(shape.y0 == 1.0 and shape.y1 == 1.0 for shape in weight.layout.shapes)  # the reference line
    with pytest.raises(ValueError, match="weight"):
        figures.curves_figure(curves=[_curve("r", y)], series="weight")
    with pytest.raises(ValueError, match="bogus"):
        figures.curves_figure(curves=[curve], series="bogus")  # type: ignore[arg-type]


def test_multiclass_curves_show_probability_and_margin_in_hover():
    y = np.linspace(3, 0, 10)
    curve = _curve("ce", y, p_y=np.linspace(0.1, 0.9, 10), margin=np.linspace(-2, 2, 10))
    fig = figures.curves_figure(curves=[curve])
    assert fig.data[0].customdata.shape == (10, 2)
    np.testing.assert_allclose(fig.data[0].customdata[:, 0], curve.p_y, rtol=1e-6)
    assert "p_y" in fig.data[0].hovertemplate


def test_curve_series_must_match_the_axis():
    with pytest.raises(ValueError, match=r"Curve.weight has shape \(3,\), expected \(10,\)"):
        _curve("a", np.zeros(10), weight=np.zeros(3))


def test_one_exploding_curve_does_not_flatten_the_others():
    x = np.linspace(-4, 4, 100)
    arrays = [np.log1p(np.exp(-x)), np.maximum(0, 1 - x), np.exp(-x), 1 / (1 + np.exp(x))]
    low, high = figures.robust_range(arrays, floor=0.0)
    assert low <= 0.0
    assert 5.0 < high < 20.0  # exp(4) = 54.6 is cut, hinge's 5 is kept
    low, high = figures.robust_range([np.array([1.0, 2.0])])
    assert low < 1.0 and high > 2.0  # a single curve is shown whole


def test_sweep_figure_uses_a_sequential_scale():
    curves = [
        _curve("focal", np.linspace(1, 0, 10) * k, f"gamma = {k}", param_value=float(k)) for k in range(4)
    ]
    fig = figures.sweep_figure(curves=curves, title="family")
    colours = [t.line.color for t in fig.data]
    assert colours == palette.sequential_colors(4)
    assert [t.name for t in fig.data] == [f"gamma = {k}" for k in range(4)]


def test_ten_curves_keep_a_full_width_plot_with_a_horizontal_legend():
    y = np.linspace(1, 0, 40)
    curves = [_curve(f"loss_{i}", y * (i + 1), f"Loss number {i} (param = {i / 10:.1f})") for i in range(10)]
    for build in (figures.curves_figure, figures.sweep_figure):
        fig = build(curves=curves, x_title="m", height=420)
        assert fig.layout.legend.orientation == "h"
        assert fig.layout.legend.yref == "container" and fig.layout.legend.yanchor == "bottom"
        assert fig.layout.xaxis.domain is None or tuple(fig.layout.xaxis.domain) == (0.0, 1.0)
        rows = palette.legend_rows([c.label for c in curves])
        assert fig.layout.height == 420 + rows * palette.LEGEND_ROW_PX + palette.LEGEND_GAP_PX, (
            "taller, not narrower"
        )
        assert fig.layout.margin.b > rows * palette.LEGEND_ROW_PX


def test_curve_arrays_are_float32():
    fig = figures.curves_figure(curves=[_curve("a", np.linspace(1, 0, 20), p_y=np.linspace(0.1, 0.9, 20),
                                               margin=np.zeros(20))])  # fmt: skip
    assert fig.data[0].x.dtype == fig.data[0].y.dtype == fig.data[0].customdata.dtype == np.float32


# ----------------------------------------------------------------------------------------------- simplex


def test_simplex_figure():
    xs = np.linspace(0, 1, 11)
    ys = np.linspace(0, math.sqrt(3) / 2, 9)
    z = np.where(np.add.outer(ys, xs) < 1.0, np.add.outer(ys, xs), np.nan)
    probs = np.full((*z.shape, 3), 1 / 3)
    fig = figures.simplex_figure(surface=Surface(xs=xs, ys=ys, z=z, probs=probs), title="CE over the simplex")
    contour = fig.data[0]
    assert isinstance(contour, go.Contour)
    np.testing.assert_allclose(contour.z, z, rtol=1e-6)
    assert contour.z.dtype == np.float32
    assert contour.customdata.shape == (*z.shape, 2)  # (p_2, p_3); p_y is the y coordinate
    assert contour.customdata.dtype == np.float32
    assert [a.text for a in fig.layout.annotations] == ["y (true class)", "class 2", "class 3"]
    assert fig.layout.yaxis.scaleanchor == "x"  # equilateral, not stretched
    assert fig.layout.title.text == "CE over the simplex"
    plain = figures.simplex_figure(surface=Surface(xs=xs, ys=ys, z=z))
    assert plain.data[0].customdata is None and "p_y" not in plain.data[0].hovertemplate


def test_surface_checks_its_typed_fields():
    xs, ys = np.arange(3.0), np.arange(2.0)
    with pytest.raises(ValueError, match=r"z has shape \(3, 2\), expected \(2, 3\)"):
        Surface(xs=xs, ys=ys, z=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="accuracy has shape"):
        Surface(xs=xs, ys=ys, z=np.zeros((2, 3)), accuracy=np.zeros(3))
    with pytest.raises(ValueError, match="probs has shape"):
        Surface(xs=xs, ys=ys, z=np.zeros((2, 3)), probs=np.zeros((2, 3)))


def test_simplex_hover_reads_p_y_from_y_and_keeps_the_triangle_equilateral():
    surface = shapes.simplex_surface("cross_entropy", resolution=41)
    fig = figures.simplex_figure(surface=surface)
    contour, outline = fig.data[0], fig.data[1]
    h = math.sqrt(3) / 2
    np.testing.assert_allclose(contour.y, surface.ys / h, rtol=1e-6)  # p_y, 0 at the base, 1 at the top
    inside = np.isfinite(surface.z)
    np.testing.assert_allclose(contour.customdata[inside], surface.probs[inside][:, 1:], atol=1e-6)
    assert (contour.customdata[~inside] == 0).all()  # no NaN where z is NaN (no hover there anyway)
    assert "%{y" in contour.hovertemplate and "p_2 = %{customdata[0]" in contour.hovertemplate
    assert max(outline.y) == 1.0 and fig.layout.yaxis.scaleratio == pytest.approx(h)  # p_y = 1 spans h
    assert fig.layout.annotations[0].y == 1.0  # the true-class label at the top vertex


# ------------------------------------------------------------------------------------------ curve hover


def test_the_axis_itself_is_not_sent_again_as_customdata():
    for axis, other in (("p_y", "logit margin"), ("logit_margin", "p_y")):
        (curve,) = shapes.loss_curves("multiclass", [("cross_entropy", {})], axis=axis, points=50)
        trace = figures.curves_figure(curves=[curve], symbol=shapes.AXES[axis].symbol).data[0]
        assert trace.customdata.shape == (50,) and trace.customdata.dtype == np.float32
        expected = curve.margin if axis == "p_y" else curve.p_y
        np.testing.assert_allclose(trace.customdata, expected, rtol=1e-6)
        assert f"{other} = %{{customdata:" in trace.hovertemplate
        assert "%{x" in trace.hovertemplate  # the axis's own value
    (binary,) = shapes.loss_curves("binary", [("logistic", {})], points=50)
    assert figures.curves_figure(curves=[binary]).data[0].customdata is None


def test_page_sized_curves_make_small_charts():
    names = losses.names("multiclass")
    curves = shapes.loss_curves(
        "multiclass", [(n, {}) for n in names], axis="p_y", tolerance=shapes.PLOT_TOLERANCE
    )
    size = len(figures.curves_figure(curves=curves, series="weight").to_json())
    assert size < 120_000, f"{len(names)} losses: {size / 1000:.0f} KB"


# ------------------------------------------------------------------------------------------------ text


def test_short_formulas_are_left_alone():
    assert figures.break_latex(r"-\log p_y") == r"-\log p_y"
    assert figures.break_latex(r"a,\ b") == r"a,\ b"  # short: no break even at a break point


def test_long_formulas_break_at_top_level_commas_only():
    left = r"\frac{1}{\tau}\Big(\sum_{k \ne y} e^{z_k - z_y}\Big)^{\tau}"
    latex = left + r",\ \Phi(u) = \log(1 + u) \text{ for } \tau = 0"
    broken = figures.break_latex(latex)
    assert broken.startswith(r"\begin{gathered}") and broken.endswith(r"\end{gathered}")
    lines = broken.removeprefix(r"\begin{gathered}").removesuffix(r"\end{gathered}").split(r" \\ ")
    assert lines[0] == left + ","
    inside = r"\frac{a,\ b}{c}" + "x" * 60  # the break point inside braces is not top-level
    assert figures.break_latex(inside) == inside


def test_long_formulas_keep_cases_whole_and_break_after_long_left_sides():
    cases = r"L = \begin{cases} a,\ b & x > 0 \\ c & \text{otherwise} \end{cases}" + " + d" * 10
    assert figures.break_latex(cases).count(r"\begin{cases}") == 1
    long_left = "q" * 30 + " = " + "r" * 30
    assert (
        figures.break_latex(long_left)
        == r"\begin{gathered}" + "q" * 30 + r" \\ = " + "r" * 30 + r"\end{gathered}"
    )
    short_left = "q = " + "r" * 60  # ` = ` after a short left side stays on the line
    assert figures.break_latex(short_left) == short_left


def test_every_registered_formula_breaks_into_balanced_lines():
    for name in losses.names():
        broken = figures.break_latex(losses.get(name).latex)
        for a, b in ("{}", "()", "[]"):
            assert broken.count(a) == broken.count(b), name


def test_panel_titles_follow_the_reference_loss():
    three = figures.panel_titles("Loss", "dL/dm", "logistic loss")
    assert list(three) == ["value", "derivative", "weight"]
    assert three["derivative"]["title"] == "Derivative dL/dm (autograd)"
    assert three["weight"]["y_title"] == "|∇L| / |∇ logistic loss|"
    assert list(figures.panel_titles("Loss", "ψ", None)) == ["value", "derivative"]


def test_property_rows_mark_checks_and_show_calibration_for_binary_only():
    props = {
        "Logistic": {"bounded": False, "convex": True, "calibrated": True, "symmetric": False,
                     "value_at_0": 0.69, "slope_at_0": -0.5, "origin": "m = 0"},
        "Sigmoid": {"bounded": True, "convex": False, "calibrated": None, "symmetric": True,
                    "value_at_0": 0.5, "slope_at_0": -0.25, "origin": "m = 0"},
    }  # fmt: skip
    rows = figures.property_rows(props, "loss", binary=True, derivative="dL/dm")
    assert rows[0] == {
        "loss": "Logistic", "bounded": "✗", "convex": "✓", "calibrated": "✓", "symmetric": "✗",
        "L at m = 0": 0.69, "slope dL/dm at origin": -0.5,
    }  # fmt: skip
    assert rows[1]["calibrated"] == "n/a"
    assert "calibrated" not in figures.property_rows(props, "gamma", binary=False, derivative="d")[0]
    assert figures.property_rows({}, "loss", binary=True, derivative="d") == []
    assert set(figures.property_columns(True)) <= set(figures.CHECKS)
