"""Calibration figures: trace counts, one colour per loss, no empty traces, float32 payloads, bounded JSON,
metrics in titles and legends, and the calibration map's steps (checked against the results they draw)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz import calibration, metrics
from lossviz.figures import calibration as figures
from lossviz.figures.palette import color_for
from lossviz.results import CalibrationPanel, MarginCalibrationPanel, TemperatureScaling

NAMES = ("cross_entropy", "focal", "label_smoothing", "squentropy", "mse")
MARGIN_NAMES = ("logistic", "hinge", "exponential", "squared_hinge", "sigmoid")


def _logits(i: int, n: int = 3000, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Logits growing more overconfident with i, labels drawn from softmax(z / 2)."""
    rng = np.random.default_rng(i)
    z = rng.normal(size=(n, k)) * (1.0 + i)
    p = np.exp(z / 2 - (z / 2).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return z, (p.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)


@pytest.fixture(scope="module")
def panels() -> list[CalibrationPanel]:
    out = []
    for i, name in enumerate(NAMES):
        z, y = _logits(i)
        probs = calibration.apply_temperature(z, 1.0)
        out.append(calibration.calibration_panel(probs, y, name=name, label=f"{name} loss", n_boot=50))
    return out


@pytest.fixture(scope="module")
def temperatures() -> list[TemperatureScaling]:
    out = []
    for i, name in enumerate(NAMES):
        z, y = _logits(i)
        out.append(calibration.temperature_scaling(z[:1500], y[:1500], z[1500:], y[1500:], name=name))
    return out


@pytest.fixture(scope="module")
def margin_panels() -> list[MarginCalibrationPanel]:
    rng = np.random.default_rng(0)
    out = []
    for name in MARGIN_NAMES:
        f = rng.normal(size=2000) * 2
        y = (rng.uniform(size=f.size) < 1 / (1 + np.exp(-f))).astype(int)
        empirical = metrics.reliability(1 / (1 + np.exp(-0.5 * f)), y, 10, mode="positive")
        out.append(MarginCalibrationPanel(calibration.calibration_map(name), empirical))
    return out


def _loss_traces(fig: go.Figure) -> list:
    """Every trace except the grey diagonal."""
    return [t for t in fig.data if t.name != "perfect calibration"]


def _trace_color(trace) -> str | list:
    if trace.type == "bar":
        return trace.marker.color
    if trace.fill == "toself":
        return trace.fillcolor
    return trace.line.color


def _assert_well_formed(fig: go.Figure, max_json: int) -> None:
    assert isinstance(fig, go.Figure)
    for trace in fig.data:
        for axis in ("x", "y"):
            values = getattr(trace, axis)
            if values is None or (trace.type == "bar" and axis == "x" and isinstance(values[0], str)):
                continue
            array = np.asarray(values, dtype=np.float64)
            assert np.isfinite(array).any(), f"{trace.name!r} has no finite {axis}"
            if isinstance(values, np.ndarray) and len(values) > 2:
                assert values.dtype == np.float32, f"{trace.name!r} {axis} is {values.dtype}"
    assert len(fig.to_json()) < max_json


def _rgb(color: str) -> tuple[int, int, int]:
    if color.startswith("#"):
        return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    return tuple(int(v) for v in color[color.index("(") + 1 : color.index(")")].split(",")[:3])  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------- reliability


def test_reliability_small_multiples_trace_count_colours_and_titles(panels: list[CalibrationPanel]) -> None:
    fig = figures.reliability_figure(panels=panels)
    # per loss: diagonal, band, equal width, equal mass, smooth
    assert len(fig.data) == 5 * len(panels)
    _assert_well_formed(fig, max_json=60_000)
    for i, panel in enumerate(panels):
        mine = [
            t
            for t in fig.data
            if t.xaxis == ("x" if i == 0 else f"x{i + 1}") and t.name != "perfect calibration"
        ]
        assert len(mine) == 4
        assert {_rgb(_trace_color(t)) for t in mine} == {_rgb(color_for(panel.name))}
        title = fig.layout.annotations[i].text
        assert panel.label in title and f"ECE {panel.equal_width.ece:.3f}" in title
        assert f"/ {panel.equal_mass.ece:.3f}" in title and f"smECE {panel.smooth.error:.3f}" in title
    # width and mass are told apart by dash and marker symbol; the band is a shaded polygon
    width = next(t for t in fig.data if t.name == "equal-width bins")
    mass = next(t for t in fig.data if t.name == "equal-mass bins")
    band = next(t for t in fig.data if t.name.endswith("bootstrap band"))
    assert width.line.dash == "solid" and mass.line.dash == "dash" and mass.marker.symbol == "diamond"
    assert band.fill == "toself" and np.all((np.asarray(band.y) >= 0) & (np.asarray(band.y) <= 1))
    # one legend entry per style (the first panel's), clicking it toggles the style everywhere
    assert sum(bool(t.showlegend) for t in fig.data) == 5


def test_reliability_curve_draws_the_filled_bins(panels: list[CalibrationPanel]) -> None:
    fig = figures.reliability_figure(panels=panels[:1], show_band=False, show_smooth=False, show_mass=False)
    assert [t.name for t in fig.data] == ["perfect calibration", "equal-width bins"]
    rel = panels[0].equal_width
    filled = rel.counts > 0
    np.testing.assert_allclose(fig.data[1].x, rel.confidence[filled], rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, rel.accuracy[filled], rtol=1e-6)
    np.testing.assert_array_equal(fig.data[1].customdata, rel.counts[filled])


def test_reliability_overlay_has_one_legend_entry_per_loss(panels: list[CalibrationPanel]) -> None:
    fig = figures.reliability_figure(panels=panels, overlay=True)
    assert len(fig.data) == 1 + 4 * len(panels)  # one diagonal
    _assert_well_formed(fig, max_json=60_000)
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend[1:] == [f"{p.label} — " + figures._metrics_text(p) for p in panels]
    assert len({_rgb(_trace_color(t)) for t in _loss_traces(fig)}) == len({color_for(n) for n in NAMES})


def test_smooth_curve_stays_within_the_data(panels: list[CalibrationPanel]) -> None:
    fig = figures.reliability_figure(panels=panels[:1], show_band=False, show_mass=False)
    smooth = next(t for t in fig.data if t.name == "smoothed")
    drawn = np.asarray(smooth.x)[np.isfinite(np.asarray(smooth.y, np.float64))]
    edges = panels[0].equal_mass.edges
    assert drawn.min() >= edges[0] - 1e-6 and drawn.max() <= edges[-1] + 1e-6
    assert len(drawn) > 20


def test_panels_without_optional_parts_and_bad_input(panels: list[CalibrationPanel]) -> None:
    bare = CalibrationPanel(name="mse", equal_width=panels[0].equal_width)
    fig = figures.reliability_figure(panels=[bare, panels[1]])
    assert len(fig.data) == 2 + 5
    with pytest.raises(ValueError, match="panels must not be empty"):
        figures.reliability_figure(panels=[])
    with pytest.raises(ValueError, match="got BinnedReliability"):
        figures.reliability_figure(panels=[panels[0].equal_width])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        figures.reliability_figure(panels)  # type: ignore[misc]  # keyword-only
    with pytest.raises(ValueError, match=r"panels without a histogram: \['mse'\]"):
        figures.confidence_histogram_figure(panels=[bare])


# ------------------------------------------------------------------------------------------- histograms


def test_confidence_histograms(panels: list[CalibrationPanel]) -> None:
    fig = figures.confidence_histogram_figure(panels=panels)
    assert len(fig.data) == len(panels) and all(t.type == "bar" for t in fig.data)
    _assert_well_formed(fig, max_json=30_000)
    for trace, panel in zip(fig.data, panels, strict=True):
        assert trace.marker.color == color_for(panel.name)
        assert float(np.sum(trace.y)) == pytest.approx(1.0, abs=1e-5)
    # a solid accuracy line and a dashed mean-confidence line per panel
    xs = sorted(round(s.x0, 6) for s in fig.layout.shapes)
    expected = sorted(
        round(v, 6) for p in panels for v in (p.histogram.accuracy, p.histogram.mean_confidence)
    )
    assert xs == pytest.approx(expected, abs=1e-6)
    top = fig.layout.yaxis.range[1]
    assert top == pytest.approx(1.08 * max(float(t.y.max()) for t in fig.data), rel=1e-3)
    overlay = figures.confidence_histogram_figure(panels=panels, overlay=True)
    assert len(overlay.data) == len(panels) and all(t.line.shape == "hv" for t in overlay.data)
    assert f"accuracy {panels[0].histogram.accuracy:.3f}" in overlay.data[0].name


# -------------------------------------------------------------------------------------- temperature


def test_temperature_bars(temperatures: list[TemperatureScaling]) -> None:
    fig = figures.temperature_figure(panels=temperatures)
    assert len(fig.data) == 4  # before and after, for ECE and NLL
    _assert_well_formed(fig, max_json=15_000)
    colors = [color_for(t.name) for t in temperatures]
    assert all(list(trace.marker.color) == colors for trace in fig.data)
    before_ece, after_ece, _, after_nll = fig.data
    np.testing.assert_allclose(before_ece.y, [t.ece_before for t in temperatures], rtol=1e-6)
    np.testing.assert_allclose(after_nll.y, [t.nll_after for t in temperatures], rtol=1e-6)
    assert before_ece.opacity < after_ece.opacity
    assert all(f"T = {t.temperature:.2f}" in x for t, x in zip(temperatures, before_ece.x, strict=True))
    assert len(figures.temperature_figure(panels=temperatures, metrics=("ece", "nll", "brier")).data) == 6
    with pytest.raises(ValueError, match="metrics must be a non-empty selection"):
        figures.temperature_figure(panels=temperatures, metrics=("auc",))  # type: ignore[arg-type]


def test_temperature_reliability_small_multiples(temperatures: list[TemperatureScaling]) -> None:
    fig = figures.temperature_reliability_figure(panels=temperatures)
    assert len(fig.data) == 3 * len(temperatures)
    _assert_well_formed(fig, max_json=40_000)
    for i, t in enumerate(temperatures):
        assert f"ECE {t.ece_before:.3f} → {t.ece_after:.3f}" in fig.layout.annotations[i].text
    before = [t for t in fig.data if t.name == "before (T = 1)"]
    assert all(t.line.dash == "dash" and t.opacity == 0.6 for t in before)


# -------------------------------------------------------------------------------------- calibration map


def test_calibration_map_small_multiples(margin_panels: list[MarginCalibrationPanel]) -> None:
    fig = figures.calibration_map_figure(panels=margin_panels)
    assert len(fig.data) == 3 * len(margin_panels)  # diagonal, map, trained model's bins
    _assert_well_formed(fig, max_json=40_000)
    maps = [t for t in fig.data if t.name == "sigmoid(f*(eta))"]
    assert [t.line.color for t in maps] == [color_for(n) for n in MARGIN_NAMES]
    logistic, hinge = maps[0], maps[1]
    np.testing.assert_allclose(logistic.x, logistic.y, atol=1e-6)  # a proper loss: on the diagonal
    # the hinge's minimiser is ±1 (0 at eta = 1/2): the curve sits at sigmoid(±1) — two vertical steps
    steps = {round(float(v), 4) for v in hinge.x}
    assert steps == {round(1 / (1 + math.exp(1)), 4), 0.5, round(1 / (1 + math.exp(-1)), 4)}
    empirical = [t for t in fig.data if t.name == "trained model"]
    assert all(t.mode == "markers" for t in empirical) and len(empirical) == len(margin_panels)


def test_calibration_map_overlay_and_checks(margin_panels: list[MarginCalibrationPanel]) -> None:
    fig = figures.calibration_map_figure(panels=margin_panels, overlay=True)
    assert len(fig.data) == 1 + 2 * len(margin_panels)
    without = [MarginCalibrationPanel(p.calibration_map) for p in margin_panels]
    assert len(figures.calibration_map_figure(panels=without).data) == 2 * len(margin_panels)
    top_label = metrics.reliability(np.array([0.2, 0.7, 0.9]), np.array([0, 1, 1]), 5)
    with pytest.raises(ValueError, match="mode='positive'"):
        figures.calibration_map_figure(
            panels=[MarginCalibrationPanel(margin_panels[0].calibration_map, top_label)]
        )
    # unbounded minimisers (sigmoid loss) are named in the hover text
    sigmoid = next(t for t in fig.data if t.name == "sigmoid: sigmoid(f*)")
    assert any("edge of the searched" in s for s in sigmoid.text)
