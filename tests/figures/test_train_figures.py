"""Train & Compare figures: grid orientation of the decision maps, animation frames, flipped-label markers,
training curves, the metrics table and gradient-weight histograms (checked against numpy directly)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz.figures import palette
from lossviz.figures import train as figures
from lossviz.figures.train import (
    BoundaryPanel,
    FitPanel,
    MetricsRow,
    PredictionPanel,
    RunPanel,
    WeightPanel,
    _map_traces,
)
from lossviz.results import Curve, Dataset, DecisionMap, History, Projection
from tests.figures.checks import assert_round_log_ticks


def _dataset(k: int = 2, n: int = 40, d: int = 2, noisy: int = 5, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    clean = rng.integers(0, k, n)
    y = clean.copy()
    y[:noisy] = (clean[:noisy] + 1) % k
    projection = None
    if d > 2:
        q, _ = np.linalg.qr(rng.normal(size=(d, 2)))
        projection = Projection(
            q.T.astype(np.float32), np.zeros(d, np.float32), np.array([0.4, 0.2]), ("PC1 (40%)", "PC2 (20%)")
        )
    return Dataset(
        name="toy", task="binary" if k == 2 else "multiclass", X_train=X, y_train=y, y_train_clean=clean,
        noisy_mask=y != clean, X_test=X[:10], y_test=clean[:10],
        feature_names=tuple(f"x{i}" for i in range(d)),
        class_names=tuple(f"c{i}" for i in range(k)), n_classes=k, projection=projection,
    )  # fmt: skip


def _map(k: int, nx: int = 7, ny: int = 5, seed: int = 0) -> DecisionMap:
    """A non-square grid so that a transposed map would be caught."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(ny, nx, k))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return DecisionMap(np.linspace(-3, 3, nx), np.linspace(-2, 2, ny), probs)


def _panels(maps_per_loss: list[list[DecisionMap]], names: list[str] | None = None) -> list[BoundaryPanel]:
    names = names or [f"loss_{i}" for i in range(len(maps_per_loss))]
    return [BoundaryPanel(n, n.upper(), maps) for n, maps in zip(names, maps_per_loss, strict=True)]


def _history(
    name: str = "cross_entropy",
    epochs: int = 10,
    diverged: bool = False,
    noisy: bool = True,
    loss: np.ndarray | None = None,
) -> History:
    e = np.arange(epochs + 1)
    loss = np.exp(-0.5 * e) + 1e-3 if loss is None else np.asarray(loss, np.float64)
    return History(
        loss_name=name, loss_params={}, optimizer="adam", lr=0.01, weight_decay=0.0, batch_size=None, seed=0,
        epochs=e, train_loss=loss, train_acc=1 - loss / 2,
        noisy_acc=(e / epochs if noisy else np.full(len(e), np.nan)),
        test_acc=0.5 + 0.4 * (1 - loss), test_nll=loss, ece=loss / 10, snapshot_epochs=np.array([0, epochs]),
        snapshots=({}, {}), final_state={}, diverged=diverged, message="", seconds=0.1,
    )  # fmt: skip


def _traces(fig: go.Figure, kind: str) -> list:
    return [t for t in fig.data if t.type == kind]


@pytest.mark.parametrize(
    ("n", "shape"), [(1, (1, 1)), (2, (1, 2)), (3, (1, 3)), (4, (2, 2)), (5, (2, 3)), (6, (2, 3))]
)
def test_grid_shape(n, shape):
    assert figures.grid_shape(n) == shape


def test_grid_shape_rejects_zero():
    with pytest.raises(ValueError, match="n must be >= 1"):
        figures.grid_shape(0)


# ------------------------------------------------------------------------------------------ decision maps


def test_map_probabilities_check_the_class_count():
    decision = _map(3)
    np.testing.assert_allclose(figures.map_probabilities(decision, 3), decision.proba)
    with pytest.raises(ValueError, match=r"expected \(ny, nx, 4\)"):
        figures.map_probabilities(decision, 4)


def test_binary_boundary_map_keeps_the_grid_orientation_and_marks_flipped_points():
    data = _dataset(k=2)
    maps = [_map(2, seed=1), _map(2, seed=2)]
    fig = figures.boundary_figure(data=data, panels=_panels([[m] for m in maps], ["cross_entropy", "gce"]))
    contours = _traces(fig, "contour")
    assert len(contours) == 2  # one P(class 1) map per loss
    for contour, decision in zip(contours, maps, strict=True):
        np.testing.assert_allclose(contour.x, decision.xs, rtol=1e-6)
        np.testing.assert_allclose(contour.y, decision.ys, rtol=1e-6)
        # proba[i, j] at (xs[j], ys[i]): z is not transposed
        np.testing.assert_allclose(np.asarray(contour.z) / 255, decision.proba[..., 1], atol=0.5 / 255 + 1e-9)
        assert contour.z.dtype == np.uint8  # lean JSON: P(class 1) in 1/255 steps
        assert contour.contours.start == contour.contours.end == 127.5  # P = 0.5: the decision boundary
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:2] == ["CROSS_ENTROPY", "GCE"]
    assert fig.layout.annotations[1].font.color == palette.color_for("gce")
    flipped = [t for t in fig.data if t.name and t.name.startswith(figures.FLIPPED_NAME)]
    assert len(flipped) == 2 and all(t.marker.symbol == "x" for t in flipped)
    np.testing.assert_allclose(flipped[0].x, data.X_train[data.noisy_mask, 0], rtol=1e-6)
    np.testing.assert_allclose(flipped[0].y, data.X_train[data.noisy_mask, 1], rtol=1e-6)
    # the clean points of class c are exactly the non-flipped training points labelled c
    clean0 = next(t for t in fig.data if t.name == "c0")
    assert len(clean0.x) == int(((data.y_train == 0) & ~data.noisy_mask).sum())
    assert not fig.frames  # one frame: no animation controls
    assert not fig.layout.sliders
    assert fig.layout.legend.orientation == "h"


def test_multiclass_map_is_argmax_with_a_confidence_veil():
    data = _dataset(k=3)
    decision = _map(3)
    certain = decision.proba.copy()
    certain[0, 0] = [0.0, 0.0, 1.0]  # certain: no veil
    certain[0, 1] = [1 / 3, 1 / 3, 1 / 3]  # chance: full veil
    decision = DecisionMap(decision.xs, decision.ys, certain)
    fig = figures.boundary_figure(data=data, panels=_panels([[decision]]))
    argmax, veil = _traces(fig, "heatmap")
    np.testing.assert_array_equal(np.asarray(argmax.z), certain.argmax(-1))
    veil_z = np.asarray(veil.z)
    assert veil_z.dtype == np.uint8 and veil.zmax == 100  # whole percent of the veil's full opacity
    assert veil_z[0, 0] == 0 and veil_z[0, 1] == 100
    assert np.all(veil_z <= 100)
    # the hover gives every class's probability in whole percent, from one byte per class and node
    assert veil.customdata.dtype == np.uint8 and veil.customdata.shape == (5, 7, 3)
    np.testing.assert_array_equal(veil.customdata[0, 0], [0, 0, 100])
    assert all(f"P(c{k})" in veil.hovertemplate for k in range(3))


def test_frames_animate_only_the_maps_and_start_at_the_last_frame():
    data = _dataset(k=2)
    maps = [[_map(2, seed=10 * f + i) for f in range(4)] for i in range(3)]  # maps[loss][frame]
    fig = figures.boundary_figure(
        data=data,
        panels=_panels(maps, ["cross_entropy", "gce", "nce"]),
        frame_labels=[f"epoch {e}" for e in (0, 5, 10, 15)],
    )
    assert len(fig.frames) == 4
    map_indices = [i for i, t in enumerate(fig.data) if t.type == "contour"]
    for f, frame in enumerate(fig.frames):
        assert list(frame.traces) == map_indices
        for trace, loss_maps in zip(frame.data, maps, strict=True):
            np.testing.assert_allclose(
                np.asarray(trace.z) / 255, loss_maps[f].proba[..., 1], atol=0.5 / 255 + 1e-9
            )
    # the figure itself shows the last frame, and the slider says so
    np.testing.assert_allclose(
        np.asarray(fig.data[map_indices[0]].z) / 255, maps[0][-1].proba[..., 1], atol=0.002
    )
    slider = fig.layout.sliders[0]
    assert slider.active == 3
    assert [s.label for s in slider.steps] == ["epoch 0", "epoch 5", "epoch 10", "epoch 15"]
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"


def test_pca_data_is_drawn_in_the_projection_with_named_axes():
    data = _dataset(k=3, d=5)
    fig = figures.boundary_figure(data=data, panels=_panels([[_map(3)]]))
    assert fig.layout.xaxis.title.text == "PC1 (40%)" and fig.layout.yaxis.title.text == "PC2 (20%)"
    clean0 = next(t for t in fig.data if t.name == "c0")
    idx = np.flatnonzero((data.y_train == 0) & ~data.noisy_mask)
    np.testing.assert_allclose(clean0.x, data.projection.transform(data.X_train[idx])[:, 0], rtol=1e-5)


def test_thinning_keeps_every_flipped_point_and_hiding_points_leaves_maps():
    data = _dataset(k=2, n=400, noisy=30)
    fig = figures.boundary_figure(data=data, panels=_panels([[_map(2)]]), max_points=100)
    flipped = next(t for t in fig.data if t.name.startswith(figures.FLIPPED_NAME))
    assert len(flipped.x) == 30
    assert sum(len(t.x) for t in _traces(fig, "scatter")) == 100
    hidden = figures.boundary_figure(data=data, panels=_panels([[_map(2)]]), show_points=False)
    assert not _traces(hidden, "scatter") and len(_traces(hidden, "contour")) == 1


def test_boundary_figure_rejects_mismatched_inputs():
    data = _dataset(k=2)
    with pytest.raises(ValueError, match="same number"):
        figures.boundary_figure(data=data, panels=_panels([[_map(2)], [_map(2), _map(2)]]))
    with pytest.raises(ValueError, match="frame_labels"):
        figures.boundary_figure(data=data, panels=_panels([[_map(2), _map(2)]]), frame_labels=["only one"])
    with pytest.raises(ValueError, match="at least one panel"):
        figures.boundary_figure(data=data, panels=[])
    with pytest.raises(ValueError, match="expected \\(ny, nx, 2\\)"):
        figures.boundary_figure(data=data, panels=_panels([[_map(3)]]))
    with pytest.raises(TypeError):
        figures.boundary_figure(data, _panels([[_map(2)]]))  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ regression


def _line_data() -> tuple[Dataset, np.ndarray, np.ndarray]:
    x = np.linspace(-3, 3, 50, dtype=np.float32)
    y = (0.5 * x + 1).astype(np.float32)
    mask = np.zeros(50, bool)
    mask[:5] = True
    data = Dataset(
        name="line", task="regression", X_train=x[:, None], y_train=y + 4 * mask, y_train_clean=y,
        noisy_mask=mask, X_test=x[:, None], y_test=y, feature_names=("x",), class_names=(), n_classes=0,
    )  # fmt: skip
    return data, x, y


def test_regression_figure_draws_outliers_and_animates_the_fits():
    data, x, y = _line_data()
    panels = [
        FitPanel("squared", "Squared", [Curve("squared", x, y * f) for f in (0.0, 1.0)]),
        FitPanel("huber", "Huber", [Curve("huber", x, y) for _ in (0.0, 1.0)]),
    ]
    fig = figures.regression_figure(data=data, panels=panels, frame_labels=["epoch 0", "epoch 10"])
    outliers = next(t for t in fig.data if t.name.startswith("outliers"))
    np.testing.assert_allclose(outliers.y, y[:5] + 4)
    fits = [t for t in fig.data if t.name in ("Squared", "Huber")]
    assert len(fits) == 2 and len(fig.frames) == 2
    assert [t.line.color for t in fits] == [palette.color_for("squared"), palette.color_for("huber")]
    np.testing.assert_allclose(fig.frames[0].data[0].y, np.zeros(50))
    np.testing.assert_allclose(fits[0].y, y, rtol=1e-6)  # the last frame is shown
    with pytest.raises(ValueError, match="1-D regression"):
        figures.regression_figure(data=_dataset(), panels=panels)


def test_prediction_figure_one_trace_per_loss():
    _, _, y = _line_data()
    panels = [PredictionPanel("squared", "Squared", y + 0.1), PredictionPanel("huber", "Huber", y)]
    fig = figures.prediction_figure(y_true=y, panels=panels)
    assert [t.name for t in fig.data] == ["perfect", "Squared", "Huber"]
    assert fig.data[1].marker.color == palette.color_for("squared")
    with pytest.raises(ValueError, match="predicted has shape"):
        figures.prediction_figure(y_true=y, panels=[PredictionPanel("a", "A", y[:3])])


# ------------------------------------------------------------------------------------------ training curves


def _runs(*histories: History) -> list[RunPanel]:
    return [RunPanel(h, h.loss_name.upper()) for h in histories]


def test_training_curves_panels_divergence_marker_and_log_axis():
    histories = [_history("cross_entropy"), _history("gce", epochs=6, diverged=True)]
    fig = figures.training_curves_figure(panels=_runs(*histories), task="multiclass")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "Training loss (given labels)",
        "Clean test accuracy",
        "Memorisation: fit to flipped labels",
    ]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 6  # 3 panels x 2 losses
    np.testing.assert_allclose(lines[0].y, histories[0].train_loss, rtol=1e-6)
    np.testing.assert_allclose(lines[0].customdata, histories[0].train_loss, rtol=1e-6)  # raw in the hover
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 3 and all(m.x[0] == 6 for m in markers)  # the diverged run ends in an X per panel
    assert_round_log_ticks(fig.layout.yaxis)  # the losses span more than two decades: log, round ticks
    clean = figures.training_curves_figure(panels=_runs(_history(noisy=False)), task="multiclass")
    assert clean.layout.annotations[2].text == "Train accuracy"
    regression = figures.training_curves_figure(
        panels=_runs(_history("squared", noisy=False)), task="regression"
    )
    assert [a.text for a in regression.layout.annotations] == ["Training loss", "Test R²", "Test MSE"]


def test_a_negative_loss_does_not_flatten_the_others():
    e = np.arange(11)
    ldr = 2.0 - 4.7 * e  # LDR-KL falling to -45
    ce = 1.1 * np.exp(-0.2 * e) + 0.05
    panels = [
        RunPanel(_history("ldr_kl", loss=ldr), "LDR-KL"),
        RunPanel(_history("cross_entropy", loss=ce), "CE"),
    ]
    assert figures.choose_loss_scale([ldr, ce]) == "symlog"
    fig = figures.training_curves_figure(panels=panels, task="multiclass")
    ldr_line, ce_line = (t for t in fig.data if t.mode == "lines" and t.xaxis == "x")
    c = figures.symlog_constant([ldr, ce])
    assert c == 0.1  # the power of ten at or below the smaller loss's typical size (CE ~ 0.3)
    np.testing.assert_allclose(ce_line.y, np.log10(1 + ce / c), rtol=1e-6)
    np.testing.assert_allclose(ldr_line.y, np.sign(ldr) * np.log10(1 + np.abs(ldr) / c), rtol=1e-6)
    np.testing.assert_allclose(ldr_line.customdata, ldr, rtol=1e-6)  # the hover keeps the loss itself
    # CE now spans a visible share of the axis, not 1/50 of it
    spread = np.ptp(np.concatenate([ldr_line.y, ce_line.y]))
    assert np.ptp(ce_line.y) / spread > 0.15 and np.ptp(ce) / np.ptp(np.concatenate([ldr, ce])) < 0.03
    axis = fig.layout.yaxis
    assert "signed log" in axis.title.text and axis.tickmode == "array"
    labels = dict(zip(axis.ticktext, axis.tickvals, strict=True))
    assert labels["0"] == 0.0 and labels["1"] == pytest.approx(np.log10(11)) and "-10" in labels
    for value, text in zip(axis.tickvals, axis.ticktext, strict=True):  # ticks read the loss, in full
        assert float(figures.symlog(np.array(float(text)), c)) == pytest.approx(value)


def test_losses_of_very_different_ranges_are_normalised():
    e = np.arange(11)
    big = 100.0 + 50.0 * np.exp(-0.3 * e)  # moves by 50
    small = 2.30 - 0.01 * (1 - np.exp(-0.3 * e))  # a nearly flat bounded loss: moves by 0.01
    assert figures.choose_loss_scale([big, small]) == "normalised"
    fig = figures.training_curves_figure(
        panels=[RunPanel(_history("mae_prob", loss=big)), RunPanel(_history("nce", loss=small))],
        task="multiclass",
    )
    first, second = (t for t in fig.data if t.mode == "lines" and t.xaxis == "x")
    for line, raw in ((first, big), (second, small)):
        assert min(line.y) == pytest.approx(0.0, abs=1e-6) and max(line.y) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(line.customdata, raw, rtol=1e-6)
    assert "rescaled per loss" in fig.layout.yaxis.title.text
    assert [t.name for t in fig.data if t.showlegend] == ["mae_prob", "nce"]  # label defaults to the name


def test_auto_loss_scale_otherwise_linear_or_log_and_explicit_scales():
    e = np.arange(11.0)
    similar = [1.0 - 0.05 * e, 0.9 - 0.04 * e]
    assert figures.choose_loss_scale(similar) == "linear"
    assert figures.choose_loss_scale([np.exp(-e), np.exp(-0.9 * e)]) == "log"
    assert figures.choose_loss_scale([np.full(5, np.nan)]) == "linear"
    panels = [RunPanel(_history("a", loss=y)) for y in similar]
    linear = figures.training_curves_figure(panels=panels, task="multiclass")
    assert linear.layout.yaxis.type in (None, "linear", "-") and linear.layout.yaxis.title.text == "loss"
    for scale in ("linear", "log", "symlog", "normalised"):
        fig = figures.training_curves_figure(panels=panels, task="multiclass", loss_scale=scale)
        assert fig.layout.yaxis.title.text
    with pytest.raises(ValueError, match="loss_scale must be one of"):
        figures.training_curves_figure(panels=panels, task="multiclass", loss_scale="cubic")  # type: ignore


def test_ten_runs_keep_full_width_plots_with_a_horizontal_legend():
    panels = [RunPanel(_history(f"loss_{i}"), f"Loss {i} (a = {i / 10:.1f}, b = 2)") for i in range(10)]
    fig = figures.training_curves_figure(panels=panels, task="multiclass", height=380)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"
    assert fig.layout.xaxis.domain[0] == 0.0 and fig.layout.xaxis3.domain[1] == 1.0  # the panels span it all
    assert fig.layout.height > 380  # rows of legend add height below the plots
    assert len([t for t in fig.data if t.showlegend]) == 10


# ------------------------------------------------------------------------------------------ metrics table


def test_metrics_table_and_best_rows():
    rows = figures.metrics_table(
        runs=[
            MetricsRow(
                "a", {"test accuracy": 0.8, "NLL": 0.5, "ECE": 0.1, "Brier": 0.3, "macro F1": 0.7}, 1.0
            ),
            MetricsRow(
                "b", {"test accuracy": 0.9, "NLL": 0.7, "ECE": 0.05, "Brier": 0.2, "macro F1": 0.9}, 2.0
            ),
            MetricsRow("c", {}, 3.0),  # a run whose predictions were not finite
        ],
        task="multiclass",
    )
    assert [r["loss"] for r in rows] == ["a", "b", "c"]
    assert list(rows[0]) == ["loss", "test accuracy", "NLL", "ECE", "Brier", "macro F1", "time (s)"]
    assert math.isnan(rows[2]["NLL"]) and rows[2]["time (s)"] == 3.0
    best = figures.best_rows(rows)
    assert best == {"test accuracy": 1, "NLL": 0, "ECE": 1, "Brier": 1, "macro F1": 1}
    regression = figures.metrics_table(runs=[MetricsRow("a", {"test R²": 0.5}, 0.1)], task="regression")
    assert list(regression[0]) == ["loss", "test R²", "test MSE", "test MAE", "time (s)"]


# ------------------------------------------------------------------------------------------ gradient weights


def test_weight_histograms_match_numpy_per_group():
    rng = np.random.default_rng(0)
    weights = rng.exponential(size=200)
    noisy = rng.uniform(size=200) < 0.3
    edges, clean_pct, noisy_pct = figures.weight_histograms(weights, noisy, bins=12)
    expected_edges = np.linspace(0, weights.max(), 13)
    np.testing.assert_allclose(edges, expected_edges)
    np.testing.assert_allclose(
        clean_pct, 100 * np.histogram(weights[~noisy], expected_edges)[0] / (~noisy).sum()
    )
    np.testing.assert_allclose(noisy_pct, 100 * np.histogram(weights[noisy], expected_edges)[0] / noisy.sum())
    assert clean_pct.sum() == pytest.approx(100) and noisy_pct.sum() == pytest.approx(100)


def test_gradient_weight_figure_reports_the_mean_weight_ratio():
    noisy = np.array([True, True, False, False, False, False])
    panels = [
        WeightPanel("gce", "GCE", np.array([0.2, 0.4, 1.0, 1.0, 1.0, 1.0])),
        WeightPanel("cross_entropy", "CE", np.array([2.0, 2.0, 1.0, 1.0, 1.0, 1.0])),
    ]
    fig = figures.gradient_weight_figure(panels=panels, noisy=noisy)
    titles = [a.text for a in fig.layout.annotations]
    assert "mean flipped labels 0.3 vs clean labels 1 (×0.30)" in titles[0] and "(×2.00)" in titles[1]
    assert fig.layout.annotations[0].font.color == palette.color_for("gce")
    assert len(_traces(fig, "bar")) == 4  # clean and noisy per loss
    clean_only = figures.gradient_weight_figure(panels=panels[:1], noisy=np.zeros(6, bool))
    assert len(_traces(clean_only, "bar")) == 1 and clean_only.layout.annotations[0].text == "GCE"
    with pytest.raises(ValueError, match="differ in shape"):
        figures.gradient_weight_figure(panels=[WeightPanel("a", "A", np.zeros(3))], noisy=noisy)


def test_many_classes_hover_only_the_most_likely_class_to_keep_the_map_small():
    k = 10
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(k), size=(6, 8))
    decision = DecisionMap(np.linspace(0, 1, 8), np.linspace(0, 1, 6), probs)
    traces = _map_traces(decision, k, [f"c{i}" for i in range(k)], False)
    veil = traces[1]
    assert veil.customdata.shape == (6, 8, 2)  # (class, percent), not K percentages per node
    np.testing.assert_array_equal(veil.customdata[..., 0], probs.argmax(-1))
    np.testing.assert_array_equal(veil.customdata[..., 1], np.rint(100 * probs.max(-1)))
