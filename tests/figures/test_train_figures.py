"""Train & Compare figures: grid orientation of the decision maps, animation frames, flipped-label markers,
training curves, the metrics table and gradient-weight histograms (checked against numpy directly)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz.figures import train as figures
from lossviz.results import Curve, Dataset, History, Projection, Surface


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


def _surface(k: int, nx: int = 7, ny: int = 5, seed: int = 0) -> Surface:
    """A non-square grid so that a transposed z would be caught."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(ny, nx, k))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return Surface(np.linspace(-3, 3, nx), np.linspace(-2, 2, ny), probs)


def _history(
    name: str = "cross_entropy", epochs: int = 10, diverged: bool = False, noisy: bool = True
) -> History:
    e = np.arange(epochs + 1)
    loss = np.exp(-0.5 * e) + 1e-3
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


def test_surface_probabilities_accepts_p1_for_binary_and_rejects_mismatch():
    p1 = np.random.default_rng(0).uniform(size=(5, 7))
    probs = figures.surface_probabilities(Surface(np.arange(7.0), np.arange(5.0), p1), 2)
    np.testing.assert_allclose(probs[..., 1], p1)
    np.testing.assert_allclose(probs.sum(-1), 1.0)
    with pytest.raises(ValueError, match="n_classes=3"):
        figures.surface_probabilities(Surface(np.arange(7.0), np.arange(5.0), p1), 3)
    with pytest.raises(ValueError, match=r"expected \(ny, nx, 4\)"):
        figures.surface_probabilities(_surface(3), 4)


def test_binary_boundary_map_keeps_the_grid_orientation_and_marks_flipped_points():
    data = _dataset(k=2)
    surfaces = [_surface(2, seed=1), _surface(2, seed=2)]
    fig = figures.boundary_figure(data, [surfaces], ["a", "b"], ["cross_entropy", "gce"])
    contours = _traces(fig, "contour")
    assert len(contours) == 2  # one P(class 1) map per loss
    for contour, surface in zip(contours, surfaces, strict=True):
        np.testing.assert_allclose(contour.x, surface.xs)
        np.testing.assert_allclose(contour.y, surface.ys)
        np.testing.assert_allclose(
            np.asarray(contour.z), surface.z[..., 1], rtol=1e-6
        )  # z[i, j] at (xs[j], ys[i])
        assert contour.contours.start == contour.contours.end == 0.5  # the decision boundary line
    flipped = [t for t in fig.data if t.name and t.name.startswith(figures.FLIPPED_NAME)]
    assert len(flipped) == 2 and all(t.marker.symbol == "x" for t in flipped)
    np.testing.assert_allclose(flipped[0].x, data.X_train[data.noisy_mask, 0])
    np.testing.assert_allclose(flipped[0].y, data.X_train[data.noisy_mask, 1])
    # the clean points of class c are exactly the non-flipped training points labelled c
    clean0 = next(t for t in fig.data if t.name == "c0")
    assert len(clean0.x) == int(((data.y_train == 0) & ~data.noisy_mask).sum())
    assert not fig.frames  # one frame: no animation controls
    assert not fig.layout.sliders


def test_multiclass_map_is_argmax_with_a_confidence_veil():
    data = _dataset(k=3)
    surface = _surface(3)
    certain = surface.z.copy()
    certain[0, 0] = [0.0, 0.0, 1.0]  # certain: no veil
    certain[0, 1] = [1 / 3, 1 / 3, 1 / 3]  # chance: full veil
    surface = Surface(surface.xs, surface.ys, certain)
    fig = figures.boundary_figure(data, [[surface]], ["a"], ["cross_entropy"])
    argmax, veil = _traces(fig, "heatmap")
    np.testing.assert_array_equal(np.asarray(argmax.z), certain.argmax(-1))
    veil_z = np.asarray(veil.z)
    assert veil_z[0, 0] == pytest.approx(0.0, abs=1e-6) and veil_z[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert np.all((veil_z >= 0) & (veil_z <= 1))


def test_frames_animate_only_the_maps_and_start_at_the_last_frame():
    data = _dataset(k=2)
    frames = [[_surface(2, seed=10 * f + i) for i in range(3)] for f in range(4)]
    fig = figures.boundary_figure(
        data, frames, ["a", "b", "c"], ["cross_entropy", "gce", "nce"], [f"epoch {e}" for e in (0, 5, 10, 15)]
    )
    assert len(fig.frames) == 4
    map_indices = [i for i, t in enumerate(fig.data) if t.type == "contour"]
    for frame, surfaces in zip(fig.frames, frames, strict=True):
        assert list(frame.traces) == map_indices
        for trace, surface in zip(frame.data, surfaces, strict=True):
            np.testing.assert_allclose(np.asarray(trace.z), surface.z[..., 1], rtol=1e-6)
    # the figure itself shows the last frame, and the slider says so
    np.testing.assert_allclose(np.asarray(fig.data[map_indices[0]].z), frames[-1][0].z[..., 1], rtol=1e-6)
    slider = fig.layout.sliders[0]
    assert slider.active == 3 and [s.label for s in slider.steps] == [
        "epoch 0",
        "epoch 5",
        "epoch 10",
        "epoch 15",
    ]
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"


def test_pca_data_is_drawn_in_the_projection_with_named_axes():
    data = _dataset(k=3, d=5)
    fig = figures.boundary_figure(data, [[_surface(3)]], ["a"], ["cross_entropy"])
    assert fig.layout.xaxis.title.text == "PC1 (40%)" and fig.layout.yaxis.title.text == "PC2 (20%)"
    clean0 = next(t for t in fig.data if t.name == "c0")
    idx = np.flatnonzero((data.y_train == 0) & ~data.noisy_mask)
    np.testing.assert_allclose(clean0.x, data.projection.transform(data.X_train[idx])[:, 0], rtol=1e-5)


def test_thinning_keeps_every_flipped_point_and_hiding_points_leaves_maps():
    data = _dataset(k=2, n=400, noisy=30)
    fig = figures.boundary_figure(data, [[_surface(2)]], ["a"], ["cross_entropy"], max_points=100)
    flipped = next(t for t in fig.data if t.name.startswith(figures.FLIPPED_NAME))
    assert len(flipped.x) == 30
    assert sum(len(t.x) for t in _traces(fig, "scatter")) == 100
    hidden = figures.boundary_figure(data, [[_surface(2)]], ["a"], ["cross_entropy"], show_points=False)
    assert not _traces(hidden, "scatter") and len(_traces(hidden, "contour")) == 1


def test_boundary_figure_rejects_mismatched_inputs():
    data = _dataset(k=2)
    with pytest.raises(ValueError, match="one surface per loss"):
        figures.boundary_figure(data, [[_surface(2)]], ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="frame_labels"):
        figures.boundary_figure(data, [[_surface(2)], [_surface(2)]], ["a"], ["x"], ["only one"])


def test_regression_figure_draws_outliers_and_animates_the_fits():
    x = np.linspace(-3, 3, 50, dtype=np.float32)
    y = (0.5 * x + 1).astype(np.float32)
    mask = np.zeros(50, bool)
    mask[:5] = True
    data = Dataset(
        name="line", task="regression", X_train=x[:, None], y_train=y + 4 * mask, y_train_clean=y,
        noisy_mask=mask,
        X_test=x[:, None], y_test=y, feature_names=("x",), class_names=(), n_classes=0,
    )  # fmt: skip
    frames = [
        [Curve("squared", x, y * f, label="Squared"), Curve("huber", x, y, label="Huber")] for f in (0.0, 1.0)
    ]
    fig = figures.regression_figure(data, frames, ["epoch 0", "epoch 10"])
    outliers = next(t for t in fig.data if t.name.startswith("outliers"))
    np.testing.assert_allclose(outliers.y, y[:5] + 4)
    fits = [t for t in fig.data if t.name in ("Squared", "Huber")]
    assert len(fits) == 2 and len(fig.frames) == 2
    np.testing.assert_allclose(fig.frames[0].data[0].y, np.zeros(50))
    with pytest.raises(ValueError, match="1-D regression"):
        figures.regression_figure(_dataset(), frames)


def test_training_curves_panels_divergence_marker_and_log_axis():
    histories = [_history("cross_entropy"), _history("gce", epochs=6, diverged=True)]
    fig = figures.training_curves_figure(histories, ["CE", "GCE"], "multiclass")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "Training loss (given labels)",
        "Clean test accuracy",
        "Memorisation: fit to flipped labels",
    ]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 6  # 3 panels x 2 losses
    np.testing.assert_allclose(lines[0].y, histories[0].train_loss)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 3 and all(m.x[0] == 6 for m in markers)  # the diverged run ends in an X per panel
    assert fig.layout.yaxis.type == "log"  # the losses span more than two decades
    clean = figures.training_curves_figure([_history(noisy=False)], ["CE"], "multiclass")
    assert clean.layout.annotations[2].text == "Train accuracy"
    regression = figures.training_curves_figure([_history("squared", noisy=False)], ["sq"], "regression")
    assert [a.text for a in regression.layout.annotations] == ["Training loss", "Test R²", "Test MSE"]


def test_metrics_table_and_best_rows():
    rows = figures.metrics_table(
        ["a", "b", "c"],
        [
            {"test accuracy": 0.8, "NLL": 0.5, "ECE": 0.1, "Brier": 0.3, "macro F1": 0.7},
            {"test accuracy": 0.9, "NLL": 0.7, "ECE": 0.05, "Brier": 0.2, "macro F1": 0.9},
            {},  # a run whose predictions were not finite
        ],
        [1.0, 2.0, 3.0],
        "multiclass",
    )
    assert [r["loss"] for r in rows] == ["a", "b", "c"]
    assert list(rows[0]) == ["loss", "test accuracy", "NLL", "ECE", "Brier", "macro F1", "time (s)"]
    assert math.isnan(rows[2]["NLL"]) and rows[2]["time (s)"] == 3.0
    best = figures.best_rows(rows)
    assert best == {"test accuracy": 1, "NLL": 0, "ECE": 1, "Brier": 1, "macro F1": 1}
    regression = figures.metrics_table(["a"], [{"test R²": 0.5}], [0.1], "regression")
    assert list(regression[0]) == ["loss", "test R²", "test MSE", "test MAE", "time (s)"]
    with pytest.raises(ValueError, match="one label"):
        figures.metrics_table(["a"], [], [1.0], "multiclass")


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
    weights = [np.array([0.2, 0.4, 1.0, 1.0, 1.0, 1.0]), np.array([2.0, 2.0, 1.0, 1.0, 1.0, 1.0])]
    fig = figures.gradient_weight_figure(weights, noisy, ["GCE", "CE"], ["gce", "cross_entropy"])
    titles = [a.text for a in fig.layout.annotations]
    assert "mean flipped labels 0.3 vs clean labels 1 (×0.30)" in titles[0] and "(×2.00)" in titles[1]
    assert len(_traces(fig, "bar")) == 4  # clean and noisy per loss
    clean_only = figures.gradient_weight_figure([weights[0]], np.zeros(6, bool), ["GCE"], ["gce"])
    assert len(_traces(clean_only, "bar")) == 1 and clean_only.layout.annotations[0].text == "GCE"
