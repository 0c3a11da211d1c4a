"""Decision surfaces: class probabilities of a 2-D classifier evaluated on a regular grid around the data.

The compute/render split follows scikit-learn's DecisionBoundaryDisplay: arrays here, Plotly in figures/.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lossviz.results import Curve, DecisionMap

PredictProba = Callable[[np.ndarray], np.ndarray]


def _check(X: np.ndarray, resolution: int, margin: float, dims: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != dims or len(X) == 0:
        raise ValueError(f"X must be a non-empty (N, {dims}) array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    if not isinstance(resolution, (int, np.integer)) or isinstance(resolution, bool) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    return X


def _axis(values: np.ndarray, resolution: int, margin: float) -> np.ndarray:
    low, high = float(values.min()) - margin, float(values.max()) + margin
    if high - low < 1e-9:  # all points on one line: still give the grid some width
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, resolution)


def decision_surface(
    predict_proba: PredictProba, X: np.ndarray, resolution: int = 200, margin: float = 0.5
) -> DecisionMap:
    """Class probabilities on a resolution x resolution grid spanning X (N, 2) plus margin on each side.

    predict_proba maps (M, 2) points to (M, K) probabilities (or (M,) = P(class 1)). The map's proba[i, j]
    is the (K,) probability vector at (xs[j], ys[i]); its predicted class and confidence derive from it.
    """
    X = _check(X, resolution, margin, 2)
    xs = _axis(X[:, 0], resolution, margin)
    ys = _axis(X[:, 1], resolution, margin)
    gx, gy = np.meshgrid(xs, ys)  # (ny, nx): gx[i, j] = xs[j], gy[i, j] = ys[i]
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)  # (ny * nx, 2), row-major over i
    probs = np.asarray(predict_proba(grid), dtype=np.float64)
    if probs.ndim == 1:
        probs = np.column_stack([1.0 - probs, probs])
    if probs.ndim != 2 or len(probs) != len(grid) or probs.shape[1] < 2:
        raise ValueError(
            f"predict_proba must return ({len(grid)}, K >= 2) or ({len(grid)},), got shape {probs.shape}"
        )
    k = probs.shape[1]
    proba = probs.reshape(resolution, resolution, k)  # (ny, nx, K)
    return DecisionMap(xs=xs, ys=ys, proba=proba, label="P(class 1)" if k == 2 else "class probabilities")


def prediction_curve(
    predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, resolution: int = 200, margin: float = 0.5
) -> Curve:
    """A 1-D regression fit y(x) on an even grid spanning X (N, 1) plus margin (robust-regression view)."""
    X = _check(X, resolution, margin, 1)
    xs = _axis(X[:, 0], resolution, margin)
    y = np.asarray(predict(xs[:, None].astype(np.float32)), dtype=np.float64).reshape(-1)
    if len(y) != resolution:
        raise ValueError(f"predict must return {resolution} values, got shape {y.shape}")
    return Curve(name="prediction", x=xs, y=y, label="prediction")
