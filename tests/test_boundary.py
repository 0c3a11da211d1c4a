"""Tests for lossviz.boundary: the grid convention and values against an independent grid evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossviz.boundary import decision_surface, prediction_curve
from lossviz.models import make_model
from lossviz.results import DecisionMap
from lossviz.train import predict_proba


def _softmax_field(points: np.ndarray) -> np.ndarray:
    """Three classes whose logits are fixed functions of (x, y), so each point's answer is known."""
    x, y = points[:, 0], points[:, 1]
    logits = np.column_stack([x, y, -x - y + 0.3 * x * y])
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_grid_convention_and_values_match_pointwise_evaluation() -> None:
    X = np.array([[-1.0, 0.0], [2.0, 3.0], [0.5, -1.0]])
    surface = decision_surface(_softmax_field, X, resolution=17, margin=0.25)
    assert isinstance(surface, DecisionMap) and surface.n_classes == 3
    assert surface.xs[0] == pytest.approx(-1.25) and surface.xs[-1] == pytest.approx(2.25)
    assert surface.ys[0] == pytest.approx(-1.25) and surface.ys[-1] == pytest.approx(3.25)
    assert surface.proba.shape == (17, 17, 3)
    # independent evaluation, one grid point at a time: proba[i, j] is the vector at (xs[j], ys[i])
    for i in (0, 5, 16):
        for j in (0, 9, 16):
            p = _softmax_field(np.array([[surface.xs[j], surface.ys[i]]], dtype=np.float32))[0]
            np.testing.assert_allclose(surface.proba[i, j], p, rtol=1e-6)
            assert surface.confidence[i, j] == pytest.approx(p.max(), rel=1e-6)
            assert surface.predicted[i, j] == p.argmax()


def test_binary_surface_is_probability_of_class_one_and_accepts_1d_output() -> None:
    X = np.random.default_rng(0).normal(size=(30, 2))

    def p1(points: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(2 * points[:, 0] - points[:, 1])))

    surface = decision_surface(p1, X, resolution=40)
    gx, gy = np.meshgrid(surface.xs, surface.ys)
    p1_grid = surface.proba[..., 1]
    np.testing.assert_allclose(p1_grid, 1 / (1 + np.exp(-(2 * gx - gy))), rtol=1e-5)
    np.testing.assert_allclose(surface.proba.sum(-1), 1.0)
    np.testing.assert_array_equal(surface.predicted, (p1_grid > 0.5).astype(int))


def test_model_surface_matches_direct_forward() -> None:
    model = make_model("mlp", 2, 4, width=16, seed=3)
    X = np.random.default_rng(1).normal(size=(50, 2))
    surface = decision_surface(lambda P: predict_proba(model, P, "multiclass"), X, resolution=25)
    gx, gy = np.meshgrid(surface.xs, surface.ys)
    points = torch.as_tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float32)
    with torch.no_grad():
        expected = torch.softmax(model(points), 1).numpy().reshape(25, 25, 4)
    np.testing.assert_allclose(surface.proba, expected, rtol=1e-5, atol=1e-7)


def test_predict_proba_with_a_state_does_not_touch_the_model() -> None:
    model = make_model("mlp", 2, 2, width=8, seed=0)
    other = make_model("mlp", 2, 2, width=8, seed=1)
    state = {k: v.numpy() for k, v in other.state_dict().items()}
    X = np.random.default_rng(2).normal(size=(10, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    np.testing.assert_allclose(
        predict_proba(model, X, "multiclass", state=state), predict_proba(other, X, "multiclass"), rtol=1e-6
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_prediction_curve() -> None:
    X = np.linspace(-2, 3, 20)[:, None]
    curve = prediction_curve(lambda x: np.sin(x[:, 0]), X, resolution=50, margin=1.0)
    assert curve.x[0] == pytest.approx(-3) and curve.x[-1] == pytest.approx(4)
    np.testing.assert_allclose(curve.y, np.sin(curve.x), atol=1e-6)  # float32 grid points


@pytest.mark.parametrize(
    ("X", "kwargs", "message"),
    [
        (np.zeros((5, 3)), {}, r"X must be a non-empty \(N, 2\) array"),
        (np.zeros((0, 2)), {}, "non-empty"),
        (np.array([[0.0, np.nan]]), {}, "NaN or infinite"),
        (np.zeros((5, 2)), {"resolution": 1}, "resolution must be an integer >= 2, got 1"),
        (np.zeros((5, 2)), {"margin": -1.0}, "margin must be"),
    ],
)
def test_bad_arguments(X: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decision_surface(_softmax_field, X, **kwargs)


def test_wrong_output_shape_is_reported() -> None:
    with pytest.raises(ValueError, match="predict_proba must return"):
        decision_surface(lambda P: np.zeros((3, 2)), np.zeros((4, 2)), resolution=5)


def test_decision_map_checks_its_grid() -> None:
    xs, ys = np.linspace(0, 1, 4), np.linspace(0, 1, 3)
    with pytest.raises(ValueError, match=r"proba has shape \(4, 3, 2\), expected \(3, 4, K >= 2\)"):
        DecisionMap(xs, ys, np.full((4, 3, 2), 0.5))
    with pytest.raises(ValueError, match="K >= 2"):
        DecisionMap(xs, ys, np.ones((3, 4, 1)))
