"""Loss shapes on their natural axis: values, autograd derivatives, relative sample weights and properties.

Margin view of Bartlett, Jordan & McAuliffe (2006); calibration test (convex with phi'(0) < 0) as used by
EnsLoss (Stochastic Calibrated Loss Ensembles); robust-loss influence psi(r) = dL/dr after Hampel.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from lossviz import losses
from lossviz.device import resolve_device
from lossviz.losses.registry import LossSpec
from lossviz.results import Curve, Surface

Axis = Literal["margin", "p_y", "logit_margin", "residual"]
ShapeTask = Literal["multiclass", "binary", "regression"]
SHAPE_TASKS: tuple[str, ...] = ("multiclass", "binary", "regression")
DTYPE = torch.float64  # curves are cheap; float64 keeps second differences and wide-range checks honest
BATCH_LABEL = "batch-level: batch of equal margins"
# What the page draws: linear interpolation between the kept points errs by at most 0.02 % of each series'
# range (well under a pixel), and no gap is wider than 2 % of the axis, so the hover moves in small steps.
# A smooth curve keeps ~100-200 of its 2000 dense points; all 28 multiclass losses stay under 90 KB a chart.
PLOT_TOLERANCE = 2e-4
PLOT_MAX_GAP = 0.02
LANDMARK_STEP = 0.25  # adaptive grids also hold every multiple of this: hinge, ramp and |r| kinks sit on them


@dataclass(frozen=True)
class AxisInfo:
    """How one natural axis is drawn and labelled: its range, origin and the derivative shown on it."""

    name: str
    task: str
    title: str  # axis title with the symbol
    symbol: str  # short symbol for hover text
    low: float
    high: float
    origin: float  # where "value at 0" and "slope at 0" are read (for p_y this depends on K: 1/K)
    derivative: str  # what the derivative panel shows
    description: str


AXES: dict[str, AxisInfo] = {
    "margin": AxisInfo(
        "margin", "binary", "margin m = (2y−1)·f(x)", "m", -4.0, 4.0, 0.0, "dL/dm",
        "m > 0: the sample is on the right side of the boundary.",
    ),
    "p_y": AxisInfo(
        "p_y", "multiclass", "true-class probability p_y", "p_y", 0.001, 0.999, math.nan, "∂L/∂z_y",
        "The other K−1 classes share 1 − p_y equally; logits are centred (mean 0).",
    ),
    "logit_margin": AxisInfo(
        "logit_margin", "multiclass", "logit margin z_y − z_k", "z_y − z_k", -6.0, 6.0, 0.0, "∂L/∂z_y",
        "The K−1 other logits are equal; logits are centred (mean 0).",
    ),
    "residual": AxisInfo(
        "residual", "regression", "residual r = prediction − target", "r", -6.0, 6.0, 0.0,
        "influence ψ(r) = dL/dr", "Negative r: the prediction is below the target.",
    ),
}  # fmt: skip


def axes_for(task: str) -> tuple[str, ...]:
    """The natural axes of a task, the default first."""
    _check_task(task)
    return tuple(name for name, info in AXES.items() if info.task == task)


def axis_origin(axis: str, n_classes: int = 3) -> float:
    """Where the axis's 'value at 0' is read: m = 0, r = 0, logit margin 0, or p_y = 1/K."""
    return 1.0 / n_classes if axis == "p_y" else AXES[axis].origin


def reference_name(task: str) -> str | None:
    """The loss whose gradient defines relative sample weight 1 (cross-entropy / logistic), or None."""
    return {"multiclass": "cross-entropy", "binary": "logistic loss"}.get(task)


# ---------------------------------------------------------------------------------------------- checks


def _check_task(task: str) -> None:
    if task not in SHAPE_TASKS:
        raise ValueError(f"task must be one of {SHAPE_TASKS}, got {task!r}")


def _resolve_axis(task: str, axis: str | None) -> str:
    valid = axes_for(task)
    if axis is None:
        return valid[0]
    if axis not in valid:
        raise ValueError(f"axis for task {task!r} must be one of {valid}, got {axis!r}")
    return axis


def _check_classes(n_classes: int) -> int:
    if (
        isinstance(n_classes, bool)
        or not isinstance(n_classes, (int, np.integer))
        or not 2 <= n_classes <= 1000
    ):
        raise ValueError(f"n_classes must be an integer in [2, 1000], got {n_classes!r}")
    return int(n_classes)


def _check_points(points: int) -> int:
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or not 3 <= points <= 200_000:
        raise ValueError(f"points must be an integer in [3, 200000], got {points!r}")
    return int(points)


def _spec(name: str, task: str | None = None) -> LossSpec:
    """The registry entry, as a ValueError listing the valid names when unknown or of another task."""
    try:
        spec = losses.get(name)
    except KeyError as err:
        valid = losses.names(task) if task in SHAPE_TASKS else losses.names()
        raise ValueError(f"{err.args[0]}; valid: {valid}") from None
    if spec.task not in SHAPE_TASKS:
        raise ValueError(f"loss {name!r} has task {spec.task!r}; loss shapes cover {SHAPE_TASKS}")
    if task is not None and spec.task != task:
        raise ValueError(f"loss {name!r} is a {spec.task} loss, not {task}; valid: {losses.names(task)}")
    return spec


def _check_tolerance(tolerance: float | None) -> float | None:
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and 0.0 < tolerance < 1.0):
        raise ValueError(f"tolerance must be None or a number in (0, 1), got {tolerance!r}")
    return None if tolerance is None else float(tolerance)


def _axis_values(
    axis: str, points: int, x_range: tuple[float, float] | None, landmarks: bool = False
) -> torch.Tensor:
    """The dense grid (points,), plus the multiples of LANDMARK_STEP inside it when `landmarks` is set."""
    info = AXES[axis]
    low, high = (info.low, info.high) if x_range is None else (float(x_range[0]), float(x_range[1]))
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"x_range must be finite with low < high, got {x_range!r}")
    if axis == "p_y" and not (0.0 < low and high < 1.0):
        raise ValueError(f"x_range for p_y must lie inside (0, 1), got {x_range!r}")
    grid = torch.linspace(low, high, points, dtype=DTYPE)
    if not landmarks:
        return grid
    # the kinks of piecewise losses (hinge at m = 1, |r| at 0, ramp, Huber at ±δ) become exact grid points
    step = LANDMARK_STEP
    marks = step * np.arange(math.ceil(low / step), math.floor(high / step) + 1)
    return torch.as_tensor(np.union1d(grid.numpy(), marks), dtype=DTYPE)


def adaptive_indices(
    x: np.ndarray, series: Sequence[np.ndarray | None], tolerance: float, max_gap: float | None = None
) -> np.ndarray:
    """Indices of the points of x to keep so that linear interpolation between them reproduces every series
    within `tolerance` x its range at every point of x (Douglas-Peucker on the vertical error).

    The ends, every non-finite value and its neighbours are kept; `max_gap`, a fraction of the x range, also
    splits any longer gap. Kinks and steep regions are kept because dropping them errs the most.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    ys = np.array([np.asarray(s, dtype=np.float64) for s in series if s is not None]).reshape(-1, n)  # (S, n)
    if not len(ys):  # no series: only the ends and the gaps
        ys = np.zeros((1, n))
    bad = ~np.isfinite(ys).all(0)  # (n,) a point where any series is not finite
    if n <= 2 or bad.all():
        return np.arange(n)
    good = ys[:, ~bad]  # (S, n_good)
    # error in units of each series' range; a constant series (a weight of exactly 1) keeps no rounding noise
    scale = np.maximum(np.ptp(good, axis=1), 1e-9 * (1.0 + np.abs(good).max(1)))  # (S,)
    scaled = ys / scale[:, None]  # (S, n)
    gap = math.inf if max_gap is None else max_gap * float(x[-1] - x[0])
    keep = bad | np.roll(bad, 1) | np.roll(bad, -1)  # the roll's wrap-around only adds the two ends
    keep[[0, -1]] = True
    marks = np.flatnonzero(keep)
    stack = [(int(i), int(j)) for i, j in itertools.pairwise(marks) if not (bad[i] or bad[j])]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        t = (x[i + 1 : j] - x[i]) / (x[j] - x[i])  # (j-i-1,) where each inner point sits in the segment
        line = scaled[:, i : i + 1] + t * (scaled[:, j : j + 1] - scaled[:, i : i + 1])  # (S, j-i-1)
        error = np.abs(line - scaled[:, i + 1 : j]).max(0)  # (j-i-1,)
        k = int(np.argmax(error))
        if error[k] > tolerance:
            k += i + 1
        elif x[j] - x[i] > gap:
            k = (i + j) // 2
        else:
            continue
        keep[k] = True
        stack += [(i, k), (k, j)]
    return np.flatnonzero(keep)


# ------------------------------------------------------------------------------------ inputs on an axis


def margin_from_probability(p: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Logit margin z_y − z_k giving true-class probability p when the K−1 others share 1 − p equally."""
    return torch.log(p) - torch.log1p(-p) + math.log(n_classes - 1)


def centred_logits(margin: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Logits (P, K) with mean 0, the true class 0 ahead of the K−1 equal others by margin (P,)."""
    K = n_classes
    others = (-margin / K).unsqueeze(-1).expand(-1, K - 1)  # (P, K-1)
    true = (margin * (K - 1) / K).unsqueeze(-1)  # (P, 1)
    return torch.cat([true, others], dim=-1)  # (P, K)


def _call_batch_loss(spec: LossSpec, bound: dict[str, Any], pred: torch.Tensor, target: torch.Tensor):
    """A batch-level loss on P batches at once: pred (P, B, ...) -> (P,), by vmap, else one call per batch."""
    fn = spec.fn
    try:
        return torch.func.vmap(lambda x: fn(x, target, **bound))(pred)
    except Exception:  # data-dependent control flow or an op vmap lacks: fall back to a loop
        return torch.stack([fn(pred[i], target, **bound) for i in range(pred.shape[0])])


@dataclass(frozen=True)
class _Inputs:
    """What every loss on one axis shares, computed once per recompute (not once per loss)."""

    x: torch.Tensor  # (P,) axis values
    n_classes: int
    margin: torch.Tensor | None = None  # (P,) multiclass logit margin z_y - z_k
    logits: torch.Tensor | None = None  # (P, K) centred multiclass logits, true class 0
    ce_norm: torch.Tensor | None = None  # (P,) |p - e_y|, the cross-entropy gradient's norm


def _inputs(task: str, axis: str, x: torch.Tensor, n_classes: int) -> _Inputs:
    if task != "multiclass":
        return _Inputs(x=x, n_classes=n_classes)
    margin = margin_from_probability(x, n_classes) if axis == "p_y" else x
    z = centred_logits(margin, n_classes)  # (P, K)
    p = torch.softmax(z, dim=-1)
    ce_norm = torch.sqrt((1 - p[:, 0]) ** 2 + (p[:, 1:] ** 2).sum(-1))  # (P,)
    return _Inputs(x=x, n_classes=n_classes, margin=margin, logits=z, ce_norm=ce_norm)


def _evaluate(
    spec: LossSpec, bound: dict[str, Any], inputs: _Inputs
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(values (P,), derivative on the axis (P,), relative weight (P,) or None) for one loss, one call."""
    x, K = inputs.x, inputs.n_classes
    P = x.shape[0]
    with torch.enable_grad():
        if spec.task == "multiclass":
            assert inputs.logits is not None and inputs.ce_norm is not None
            if spec.batch:
                # one sample per class, each with the same p_y: sample j has true class j (logits rolled)
                idx = (torch.arange(K)[None, :] - torch.arange(K)[:, None]) % K  # (B=K, K)
                logits = inputs.logits[:, idx].requires_grad_(True)  # (P, B, K)
                values = _call_batch_loss(spec, bound, logits, torch.arange(K))
                (grad,) = torch.autograd.grad(values.sum(), logits)  # (P, B, K)
                dy = grad.diagonal(dim1=1, dim2=2).sum(-1)  # sum_j dL/dz_{j, y_j}: a shared true logit
                weight = grad.flatten(1).norm(dim=1) / (inputs.ce_norm / math.sqrt(K))  # vs mean CE over B
            else:
                logits = inputs.logits.clone().requires_grad_(True)  # (P, K)
                values = spec.fn(logits, torch.zeros(P, dtype=torch.long), **bound)
                (grad,) = torch.autograd.grad(values.sum(), logits)  # rows are independent samples
                dy = grad[:, 0]
                weight = grad.norm(dim=1) / inputs.ce_norm
            return values.detach(), dy, weight
        m = x.clone().requires_grad_(True)  # (P,)
        if spec.task == "binary":
            if spec.batch:
                # a balanced batch: a positive with logit m and a negative with logit -m, both of margin m
                pred = torch.stack([m, -m], dim=-1)  # (P, 2)
                values = _call_batch_loss(spec, bound, pred, torch.tensor([1.0, 0.0], dtype=DTYPE))
            else:
                values = spec.fn(m, torch.ones(P, dtype=DTYPE), **bound)
            (dy,) = torch.autograd.grad(values.sum(), m)
            weight = dy.abs() / torch.sigmoid(-x)  # |dL/dm| / |d logistic/dm|
            return values.detach(), dy, weight
        # regression: prediction = target + r
        if spec.batch:
            target = torch.tensor([0.0, 1.0], dtype=DTYPE)
            values = _call_batch_loss(spec, bound, m[:, None] + target, target)
        else:
            values = spec.fn(m, torch.zeros(P, dtype=DTYPE), **bound)
        (dy,) = torch.autograd.grad(values.sum(), m)
        return values.detach(), dy, None


def _values(spec: LossSpec, bound: dict[str, Any], axis: str, x: torch.Tensor, n_classes: int) -> np.ndarray:
    """Values only (P,) on an axis, as numpy."""
    return _evaluate(spec, bound, _inputs(spec.task, axis, x, n_classes))[0].numpy()


def _label(spec: LossSpec) -> str:
    return f"{spec.title} ({BATCH_LABEL})" if spec.batch else spec.title


def _curve(
    spec: LossSpec,
    bound: dict[str, Any],
    inputs: _Inputs,
    label: str,
    param_value: float | None = None,
    tolerance: float | None = None,
) -> Curve:
    values, dy, weight = _evaluate(spec, bound, inputs)
    x, y, d, w = (None if a is None else a.numpy() for a in (inputs.x, values, dy, weight))
    p_y = margin = None
    if inputs.margin is not None:
        p_y = torch.sigmoid(inputs.margin - math.log(inputs.n_classes - 1)).numpy()
        margin = inputs.margin.numpy()
    if tolerance is not None:  # one x for all series: the points that any of them needs
        keep = adaptive_indices(x, [y, d, w], tolerance, PLOT_MAX_GAP)
        x, y, d, w, p_y, margin = (None if a is None else a[keep] for a in (x, y, d, w, p_y, margin))
    return Curve(
        name=spec.name, x=x, y=y, dy=d, label=label, weight=w, p_y=p_y, margin=margin,
        param_value=param_value, batch=spec.batch,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ public API


def loss_curves(
    task: ShapeTask,
    specs: Sequence[tuple[str, Mapping[str, float]]],
    *,
    axis: Axis | None = None,
    n_classes: int = 3,
    points: int = 2000,
    x_range: tuple[float, float] | None = None,
    device: str | torch.device | None = "cpu",
    tolerance: float | None = None,
) -> list[Curve]:
    """Loss, autograd derivative and relative weight |grad|/|CE grad| of each (name, params) on an axis.

    `points` is the dense grid; with a `tolerance` (PLOT_TOLERANCE for a chart) each curve keeps only the
    points that draw it within that fraction of each series' range (see adaptive_indices).
    """
    _check_task(task)
    axis = _resolve_axis(task, axis)
    n_classes, points = _check_classes(n_classes), _check_points(points)
    tolerance = _check_tolerance(tolerance)
    resolve_device(device)  # validated; 1-D curves of a few thousand points are fastest on the CPU
    bound_specs = []
    for name, params in specs:
        spec = _spec(name, task)
        bound_specs.append((spec, spec.bind(**dict(params))))
    inputs = _inputs(task, axis, _axis_values(axis, points, x_range, tolerance is not None), n_classes)
    return [_curve(spec, bound, inputs, _label(spec), tolerance=tolerance) for spec, bound in bound_specs]


def loss_curve(
    name: str,
    params: Mapping[str, float] | None = None,
    *,
    axis: Axis | None = None,
    n_classes: int = 3,
    points: int = 2000,
    x_range: tuple[float, float] | None = None,
    tolerance: float | None = None,
) -> Curve:
    """One loss's Curve on its task's natural axis (see loss_curves)."""
    spec = _spec(name)
    return loss_curves(
        spec.task, [(name, params or {})], axis=axis, n_classes=n_classes, points=points, x_range=x_range,
        tolerance=tolerance,
    )[0]  # fmt: skip


def sweep_values(name: str, param: str, n: int = 7) -> list[float]:
    """n values spanning a hyperparameter's range (geometric for log-scale Params, whole for integer ones)."""
    spec = _spec(name)
    try:
        p = spec.param(param)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= 50:
        raise ValueError(f"n must be an integer in [2, 50], got {n!r}")
    return p.grid(int(n))


def sweep_curves(
    name: str,
    param: str,
    *,
    n: int = 7,
    values: Sequence[float] | None = None,
    params: Mapping[str, float] | None = None,
    axis: Axis | None = None,
    n_classes: int = 3,
    points: int = 2000,
    tolerance: float | None = None,
) -> list[Curve]:
    """A family of curves of one loss with one hyperparameter swept over its range (others fixed); `points`
    and `tolerance` as in loss_curves, each curve simplified on its own."""
    spec = _spec(name)
    values = list(values) if values is not None else sweep_values(name, param, n)
    if param not in {p.name for p in spec.params}:
        raise ValueError(f"{name} has no parameter {param!r}; valid: {[p.name for p in spec.params]}")
    axis = _resolve_axis(spec.task, axis)
    n_classes, points = _check_classes(n_classes), _check_points(points)
    tolerance = _check_tolerance(tolerance)
    inputs = _inputs(spec.task, axis, _axis_values(axis, points, None, tolerance is not None), n_classes)
    fixed = {k: v for k, v in dict(params or {}).items() if k != param}
    curves = []
    for value in values:
        bound = spec.bind(**fixed, **{param: value})
        shown = bound[param]
        label = f"{param} = {shown:.4g}"
        curves.append(_curve(spec, bound, inputs, label, float(shown), tolerance))
    return curves


def simplex_barycentric(resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, probs (ny, nx, 3)) on an equilateral triangle: true class on top, classes 2 and 3 below."""
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or not 5 <= resolution <= 1000
    ):
        raise ValueError(f"resolution must be an integer in [5, 1000], got {resolution!r}")
    height = math.sqrt(3.0) / 2.0
    xs = np.linspace(0.0, 1.0, resolution)
    ys = np.linspace(0.0, height, round(resolution * height))
    X, Y = np.meshgrid(xs, ys)  # (ny, nx)
    p_y = Y / height
    p_3 = X - p_y / 2.0
    p_2 = 1.0 - p_y - p_3
    return xs, ys, np.stack([p_y, p_2, p_3], axis=-1)


def simplex_surface(name: str, params: Mapping[str, float] | None = None, resolution: int = 101) -> Surface:
    """Loss of a K=3 multiclass loss over the probability simplex (z = centred log p); NaN outside it.

    probs (ny, nx, 3) holds the barycentric coordinates (p_y, p_2, p_3) of every node, NaN outside.
    """
    spec = _spec(name, "multiclass")
    bound = spec.bind(**dict(params or {}))
    xs, ys, probs = simplex_barycentric(resolution)
    inside = (probs >= -1e-12).all(-1)  # (ny, nx)
    p = torch.as_tensor(np.clip(probs[inside], 1e-6, None), dtype=DTYPE)  # (M, 3): the edges stay finite
    p = p / p.sum(-1, keepdim=True)
    logits = torch.log(p) - torch.log(p).mean(-1, keepdim=True)  # (M, 3), softmax(logits) = p
    with torch.no_grad():
        if spec.batch:
            idx = (torch.arange(3)[None, :] - torch.arange(3)[:, None]) % 3  # (B=3, K=3) rolls
            values = _call_batch_loss(spec, bound, logits[:, idx], torch.arange(3))
        else:
            values = spec.fn(logits, torch.zeros(len(p), dtype=torch.long), **bound)
    z = np.full(inside.shape, np.nan)
    z[inside] = values.cpu().numpy()
    probs = np.where(inside[..., None], probs, np.nan)  # (ny, nx, 3) = (p_y, p_2, p_3), NaN outside
    return Surface(xs=xs, ys=ys, z=z, label=_label(spec), probs=probs)


# ------------------------------------------------------------------------------------------ properties


def _wide_values(
    spec: LossSpec, bound: dict[str, Any], axis: str, n_classes: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """(|values| (R, 2) at -r and +r, radii (R,)) on a geometric ladder up to 10^4 x scale."""
    radii = np.geomspace(1e-3 * scale, 1e4 * scale, 281)  # 40 points per decade
    x = torch.as_tensor(np.concatenate([-radii, radii]), dtype=DTYPE)
    values = _values(spec, bound, "logit_margin" if axis == "p_y" else axis, x, n_classes)
    return np.abs(values).reshape(2, -1).T, radii


def _is_bounded(abs_values: np.ndarray, radii: np.ndarray, plotted: float) -> bool:
    """Bounded if sup |L| stops growing: its growth per decade past the plotted range shrinks to ~0."""
    if not np.isfinite(abs_values).all():
        return False
    running = np.maximum.accumulate(abs_values.max(-1))  # sup over |x| <= r
    decades = [running[np.searchsorted(radii, plotted * 10**k, side="right") - 1] for k in range(0, 5)]
    steps = np.diff(decades)  # growth per decade, last one at 10^3..10^4 x the plotted range
    tol = 1e-7 * max(1.0, float(decades[-1]))
    # slow but bounded approaches (1 - c/x^a) shrink geometrically; log or power growth does not
    return bool(steps[-1] <= tol or (steps[-1] <= 0.5 * steps[-2] and steps[-2] <= 0.5 * steps[-3]))


def loss_properties(
    name: str,
    params: Mapping[str, float] | None = None,
    *,
    axis: Axis | None = None,
    n_classes: int = 3,
    points: int = 2001,
    seed: int = 0,
) -> dict[str, Any]:
    """Numerical properties: bounded, convex on the plotted range, calibrated, symmetric, value/slope at 0."""
    spec = _spec(name)
    bound = spec.bind(**dict(params or {}))
    axis = _resolve_axis(spec.task, axis)
    n_classes, points = _check_classes(n_classes), _check_points(points)
    info = AXES[axis]

    # convexity in the model output: on the plotted range of m / r, or of the logit margin for p_y
    line_axis = "logit_margin" if axis == "p_y" else axis
    lo, hi = AXES[line_axis].low, AXES[line_axis].high
    if axis == "p_y":  # the logit margins that the plotted p_y range covers
        ends = margin_from_probability(torch.tensor([info.low, info.high], dtype=DTYPE), n_classes)
        lo, hi = float(ends[0]), float(ends[1])
    line = torch.linspace(lo, hi, points, dtype=DTYPE)
    values = _values(spec, bound, line_axis, line, n_classes)
    second = values[2:] - 2 * values[1:-1] + values[:-2]
    convex = bool(
        np.isfinite(values).all() and (second >= -1e-9 * max(1.0, float(np.abs(values).max()))).all()
    )

    origin = axis_origin(axis, n_classes)
    at_origin = _inputs(spec.task, axis, torch.tensor([origin], dtype=DTYPE), n_classes)
    v0, d0, _ = _evaluate(spec, bound, at_origin)
    value_at_0, slope_at_0 = float(v0[0]), float(d0[0])

    abs_wide, radii = _wide_values(spec, bound, axis, n_classes, max(abs(lo), abs(hi)))
    bounded = _is_bounded(abs_wide, radii, max(abs(lo), abs(hi)))

    calibrated: bool | None = None
    if spec.task == "binary":
        # Bartlett et al.: a convex margin loss is classification-calibrated iff phi'(0) < 0
        calibrated = (slope_at_0 < 0) if convex else None

    # symmetric: sum over classes of L(z, k) constant (classification); L(r) = L(-r) (regression)
    symmetric = _is_symmetric(spec, bound, n_classes, seed)
    return {
        "name": spec.name,
        "title": spec.title,
        "batch": spec.batch,
        "bounded": bounded,
        "convex": convex,
        "calibrated": calibrated,
        "symmetric": symmetric,
        "value_at_0": value_at_0,
        "slope_at_0": slope_at_0,
        "origin": f"{info.symbol} = {origin:.4g}",
        "convex_on": f"{'logit margin' if axis == 'p_y' else info.symbol} in [{lo:.3g}, {hi:.3g}]",
    }


def _is_symmetric(spec: LossSpec, bound: dict[str, Any], n_classes: int, seed: int) -> bool:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if spec.task == "regression":
            r = torch.linspace(0.05, 6.0, 120, dtype=DTYPE)
            pos, neg = (_values(spec, bound, "residual", s * r, n_classes) for s in (1.0, -1.0))
            return bool(np.allclose(pos, neg, rtol=1e-6, atol=1e-9))
        if spec.task == "binary":
            m = torch.linspace(-4.0, 4.0, 161, dtype=DTYPE)
            pos, neg = (_values(spec, bound, "margin", s * m, n_classes) for s in (1.0, -1.0))
            totals = torch.as_tensor(pos + neg)
        else:
            K, S = n_classes, 64
            z = 2.0 * torch.randn(S, K, generator=g, dtype=DTYPE)  # (S, K) random logits
            if spec.batch:
                per_target = [
                    _call_batch_loss(spec, bound, z[:, None, :], torch.tensor([k])) for k in range(K)
                ]
            else:
                per_target = [spec.fn(z, torch.full((S,), k, dtype=torch.long), **bound) for k in range(K)]
            totals = torch.stack(per_target, dim=-1).sum(-1)  # (S,)
    spread = float(totals.max() - totals.min())
    return bool(np.isfinite(spread) and spread <= 1e-6 * max(1.0, float(totals.abs().mean())))


def recompute_all(
    task: ShapeTask, *, axis: Axis | None = None, n_classes: int = 3, points: int = 2000
) -> list[Curve]:
    """Every registered loss of a task at its defaults: the page's heaviest recompute (for benchmarks)."""
    return loss_curves(
        task, [(n, {}) for n in losses.names(task)], axis=axis, n_classes=n_classes, points=points
    )
