"""The label-noise figures: what each trace carries against its inputs (bands = mean ± half-width, heat-map
orientation, memorisation series, quartile bands), bad input, and the byte budget of a large view."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossviz import noise
from lossviz.data import make_dataset
from lossviz.figures import noise as figures
from lossviz.figures.palette import color_for

CHART_BUDGET = 150 * 1024


def _band(name: str, mean: list[float], half: list[float], rates=(0.0, 0.2, 0.4)) -> noise.RateBand:
    return noise.RateBand(name, np.asarray(rates), np.asarray(mean), np.asarray(half), np.full(len(rates), 3))


def test_transition_figure_rows_are_true_classes() -> None:
    t = noise.mixed_transition(((0, 0.7, 0.3), (0.1, 0, 0.9), (0.5, 0.5, 0)), 0.4)
    fig = figures.transition_figure(matrix=t, class_names=("a", "b", "c"), title="T")
    (heat,) = fig.data
    np.testing.assert_allclose(np.asarray(heat.z), t, atol=1e-6)
    assert list(heat.y) == ["a", "b", "c"] and fig.layout.yaxis.autorange == "reversed"
    assert heat.text[0][1] == "0.28"  # 0.4 * 0.7, the value written in its cell
    with pytest.raises(ValueError, match="expected"):
        figures.transition_figure(matrix=t, class_names=("a", "b"), title="T")


def test_noisy_points_mark_exactly_the_flipped_samples() -> None:
    data = make_dataset("blobs", n=200, seed=0, label_noise=0.3)
    fig = figures.noisy_points_figure(data=data, xy=data.view_2d(data.X_train), title="points")
    flipped = [t for t in fig.data if t.marker.symbol == "x"]
    assert len(flipped) == 1 and len(flipped[0].x) == data.noisy_mask.sum()
    kept = sum(len(t.x) for t in fig.data if t.marker.symbol != "x")
    assert kept == (~data.noisy_mask).sum()
    given, truly = flipped[0].customdata[0]
    i = np.flatnonzero(data.noisy_mask)[0]
    assert (given, truly) == (data.class_names[data.y_train[i]], data.class_names[data.y_train_clean[i]])


def test_rate_curves_draw_mean_and_the_band_of_the_interval() -> None:
    panels = [
        figures.RatePanel("Cross-entropy", _band("cross_entropy", [0.9, 0.7, 0.5], [0.02, 0.05, 0.04])),
        figures.RatePanel("GCE", _band("gce", [0.9, 0.85, 0.8], [np.nan, np.nan, np.nan])),  # one seed
    ]
    fig = figures.rate_curves_figure(panels=panels, title="acc", y_title="accuracy")
    bands = [t for t in fig.data if t.fill == "toself"]
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(bands) == 1 and len(lines) == 2  # no band without an interval
    np.testing.assert_allclose(bands[0].y, [0.92, 0.75, 0.54, 0.46, 0.65, 0.88], atol=1e-6)
    np.testing.assert_allclose(lines[0].customdata[:, 0].astype(float), [0.02, 0.05, 0.04], atol=1e-6)
    assert lines[0].line.color == color_for("cross_entropy") and lines[1].name == "GCE"
    assert list(fig.layout.xaxis.ticktext) == ["0%", "20%", "40%"]
    with pytest.raises(ValueError, match="empty"):
        figures.rate_curves_figure(panels=[], title="", y_title="")


def test_rate_bands_are_cut_at_the_metrics_bounds() -> None:
    wide = figures.RatePanel("ECE", _band("focal", [0.05, 0.5, 0.97], [0.1, 0.1, 0.1]))
    fig = figures.rate_curves_figure(panels=[wide], title="ece", y_title="ECE", bounds=(0.0, 1.0))
    band = next(t for t in fig.data if t.fill == "toself")
    np.testing.assert_allclose(band.y, [0.15, 0.6, 1.0, 0.87, 0.4, 0.0], atol=1e-6)  # upper, then lower back


def test_heatmap_keeps_losses_as_rows_and_blanks_missing_cells() -> None:
    values = np.array([[0.9, 0.5], [0.91, np.nan]])
    fig = figures.rate_heatmap_figure(
        labels=["CE", "MAE"], rates=np.array([0.0, 0.4]), values=values, title="acc", colorbar_title="acc"
    )
    (heat,) = fig.data
    assert list(heat.y) == ["CE", "MAE"] and list(heat.x) == ["0%", "40%"]
    assert heat.text[1][1] == "" and heat.text[0][1] == "0.50"
    assert not heat.reversescale
    ece = figures.rate_heatmap_figure(
        labels=["CE", "MAE"], rates=np.array([0.0, 0.4]), values=values, title="ece", colorbar_title="ECE",
        higher_is_better=False,
    )  # fmt: skip
    assert ece.data[0].reversescale  # dark = good on both maps
    with pytest.raises(ValueError, match="expected"):
        figures.rate_heatmap_figure(
            labels=["CE"], rates=np.array([0.0, 0.4]), values=values, title="", colorbar_title=""
        )


def _memorisation() -> noise.Memorisation:
    rng = np.random.default_rng(0)
    y_clean = rng.integers(0, 3, 100)
    y_noisy = np.where(np.arange(100) < 40, (y_clean + 1) % 3, y_clean)
    predictions = np.stack([np.where(rng.random(100) < p, y_noisy, y_clean) for p in (0.1, 0.5, 0.9)])
    return noise.memorisation(predictions, y_clean, y_noisy, np.array([0, 10, 20]))


def test_memorisation_figure_draws_each_group_per_loss() -> None:
    m = _memorisation()
    panels = [figures.MemorisationPanel(n, n, m) for n in ("cross_entropy", "gce")]
    fig = figures.memorisation_figure(panels=panels, title="memorisation")
    memorised = [t for t in fig.data if t.legendgroup == "noisy_memorised"]
    assert len(memorised) == 2 and sum(t.showlegend for t in memorised) == 1  # one legend entry
    np.testing.assert_allclose(memorised[0].y, m.noisy_memorised, atol=1e-6)
    assert memorised[1].xaxis == "x2"  # the second loss in its own panel
    assert fig.layout.annotations[0].font.color == color_for("cross_entropy")
    clean_only = noise.memorisation(np.zeros((2, 4), int), np.zeros(4, int), np.zeros(4, int), np.arange(2))
    fig = figures.memorisation_figure(panels=[figures.MemorisationPanel("gce", "GCE", clean_only)], title="")
    assert [t.legendgroup for t in fig.data] == ["clean_correct"]  # no mislabelled samples: no noisy lines


def test_gradient_weight_figure_bands_are_the_quartiles() -> None:
    weights = np.random.default_rng(1).exponential(size=(3, 60))
    mask = np.arange(60) < 20
    summary = noise.weight_summary(weights, mask, np.array([0, 5, 10]))
    fig = figures.gradient_weight_figure(panels=[figures.WeightPanel("mae_prob", "MAE", summary)], title="w")
    noisy_band = next(t for t in fig.data if t.legendgroup == "noisy" and t.fill == "toself")
    np.testing.assert_allclose(noisy_band.y[:3], summary.noisy_high, atol=1e-6)
    np.testing.assert_allclose(noisy_band.y[3:], summary.noisy_low[::-1], atol=1e-6)
    medians = [t for t in fig.data if t.mode == "lines" and t.fill != "toself"]
    assert [t.legendgroup for t in medians] == ["clean", "noisy"]


def test_a_large_view_stays_within_the_chart_budget() -> None:
    data = make_dataset("blobs", n=2000, seed=0, label_noise=0.4)
    points = figures.noisy_points_figure(data=data, xy=data.view_2d(data.X_train), title="points")
    rates = tuple(r / 10 for r in range(10))
    bands = [_band(f"l{i}", list(np.linspace(0.9, 0.5, 10)), [0.03] * 10, rates) for i in range(12)]
    curves = figures.rate_curves_figure(
        panels=[figures.RatePanel(b.name, b) for b in bands], title="", y_title=""
    )
    m = _memorisation()
    memorised = figures.memorisation_figure(
        panels=[figures.MemorisationPanel("gce", f"loss {i}", m) for i in range(12)], title=""
    )
    for fig in (points, curves, memorised):
        assert len(json.dumps(fig.to_plotly_json(), default=str)) < CHART_BUDGET
