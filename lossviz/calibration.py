"""Calibration: temperature scaling ("On Calibration of Modern Neural Networks", Guo et al., 2017) and the
calibration map f*(eta) of binary margin losses (Bartlett, Jordan & McAuliffe, 2006, as in "Stochastic
Calibrated Loss Ensembles"), plus one call that gathers every calibration view of a model's predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from lossviz import losses, metrics
from lossviz.metrics import Binning, Mode
from lossviz.results import (
    CalibrationMap,
    CalibrationPanel,
    TemperatureScaling,
)

TEMPERATURE_BOUNDS = (1e-2, 1e2)  # T outside this range means the split is degenerate (separable or noise)
_COARSE_STEPS = 81  # log-T grid before the golden-section refinement
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_REFINE_POINTS = 21  # points per round of the local grid around the argmin of the conditional risk
_REFINE_ROUNDS = 6  # each round narrows the bracket tenfold: grid step 5e-3 -> ~1e-8
_EDGE_ROUNDS = 9  # rounds of 20-fold narrowing for the ends of the set of minimisers: 5e-3 -> 1e-14


# ---------------------------------------------------------------------------------------- temperature


def _as_logits(logits: np.ndarray) -> np.ndarray:
    """(N, K) float64 logits; a 1-D array is one binary logit per sample, read as the logits [0, z]."""
    z = np.asarray(logits, np.float64)
    if z.ndim == 1:
        z = np.column_stack([np.zeros_like(z), z])
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be (N,) or (N, K) with K >= 2, got shape {np.shape(logits)}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite, got NaN or infinity")
    return z


def _checked_labels(labels: np.ndarray, z: np.ndarray) -> np.ndarray:
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(y) != len(z):
        raise ValueError(f"labels has {len(y)} entries, logits has {len(z)} rows")
    if len(y) == 0:
        raise ValueError("temperature scaling needs at least one sample, got 0")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be in [0, {z.shape[1] - 1}], got {sorted(set(y.tolist()))[:10]}")
    return y


def _nll_at_inverse_temperature(z: np.ndarray, y: np.ndarray, beta: float) -> float:
    """Mean -log softmax(beta z)_y; convex in beta.

    Written as (s_max - s_y) + log1p(sum over the other classes of e^(s_k - s_max)), so a confidently right
    sample keeps its tiny loss instead of rounding to 0 (which would make small T look flat).
    """
    s = beta * z  # (N, K)
    top = s.argmax(1)
    rows = np.arange(len(y))
    shifted = np.exp(s - s[rows, top][:, None])
    shifted[rows, top] = 0.0
    return float(np.mean(s[rows, top] - s[rows, y] + np.log1p(shifted.sum(1))))


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, *, bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on the split given (pass a held-out one).

    logits (N, K), or (N,) binary logits (then softmax([0, z] / T) = sigmoid(z / T)). The NLL is convex in
    1/T, hence unimodal in log T: a log-spaced grid over `bounds` brackets the minimum and golden-section
    search refines it. A minimum at a bound (e.g. separable data wants T -> 0) returns that bound.
    """
    low, high = float(bounds[0]), float(bounds[1])
    if not (0.0 < low < high and math.isfinite(high)):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds}")
    z = _as_logits(logits)
    y = _checked_labels(labels, z)

    def objective(log_t: float) -> float:
        return _nll_at_inverse_temperature(z, y, math.exp(-log_t))

    grid = np.linspace(math.log(low), math.log(high), _COARSE_STEPS)
    values = [objective(v) for v in grid]
    best = int(np.argmin(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    # golden-section search on [a, b], which holds the minimum of a unimodal function
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = objective(c), objective(d)
    while b - a > 1e-10:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = objective(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = objective(d)
    log_t = 0.5 * (a + b)
    if values[best] < objective(log_t):  # the grid point itself (a bound) beats the bracket's interior
        log_t = grid[best]
    return float(math.exp(log_t))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities softmax(logits / T) (N, K); for (N,) binary logits, sigmoid(z / T) = P(class 1) (N,)."""
    if not (math.isfinite(temperature) and temperature > 0.0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    raw = np.asarray(logits, np.float64)
    s = _as_logits(raw) / temperature
    s = s - s.max(1, keepdims=True)
    probs = np.exp(s)
    probs /= probs.sum(1, keepdims=True)
    return probs[:, 1] if raw.ndim == 1 else probs


def temperature_scaling(
    logits: np.ndarray,
    labels: np.ndarray,
    eval_logits: np.ndarray | None = None,
    eval_labels: np.ndarray | None = None,
    *,
    n_bins: int = metrics.N_BINS,
    binning: Binning = "width",
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
    name: str = "",
    label: str = "",
) -> TemperatureScaling:
    """Fit T on (logits, labels) and compare NLL, ECE, Brier and reliability at T = 1 and T on the eval split.

    The evaluation split defaults to the fitting split; pass a separate one to see what scaling does on data
    it was not fitted on. name / label are carried for the figures (colour, legend).
    """
    if (eval_logits is None) != (eval_labels is None):
        raise ValueError("pass eval_logits and eval_labels together, or neither")
    temperature = fit_temperature(logits, labels, bounds=bounds)
    if eval_logits is None:
        eval_logits, eval_labels = logits, labels
    z_eval = _as_logits(eval_logits)
    y_eval = _checked_labels(eval_labels, z_eval)
    before = apply_temperature(z_eval, 1.0)
    after = apply_temperature(z_eval, temperature)
    rel_before = metrics.reliability(before, y_eval, n_bins, binning)
    rel_after = metrics.reliability(after, y_eval, n_bins, binning)
    return TemperatureScaling(
        temperature=temperature,
        nll_before=metrics.nll(before, y_eval),
        nll_after=metrics.nll(after, y_eval),
        ece_before=rel_before.ece,
        ece_after=rel_after.ece,
        brier_before=metrics.brier(before, y_eval),
        brier_after=metrics.brier(after, y_eval),
        accuracy=metrics.accuracy(before, y_eval),
        before=rel_before,
        after=rel_after,
        n_fit=len(np.asarray(labels).reshape(-1)),
        n_eval=len(y_eval),
        name=name,
        label=label,
    )


# ------------------------------------------------------------------------- calibration map of a margin loss


def calibration_map(
    name: str,
    params: Mapping[str, float] | None = None,
    *,
    eta: np.ndarray | None = None,
    n_eta: int = 99,
    f_range: float = 10.0,
    n_grid: int = 4001,
    rtol: float = 1e-9,
    label: str = "",
) -> CalibrationMap:
    """The minimiser f*(eta) of a binary loss's conditional risk eta L(f, 1) + (1 - eta) L(f, 0).

    Computed numerically from the registered function in float64: the risk on a dense grid of f over
    [-f_range, f_range], the grid minimum refined by nested local grids, then the ends of the set of
    minimisers {f : risk(f) <= min + rtol (1 + |min|)} located by nested grids too. Flat minimisers (hinge
    at eta = 1/2, ramp, whose risk is flat for f >= 1) are reported as that interval [f_low, f_high], and
    f_star is its midpoint; when the interval runs to ±f_range (the infimum is approached as f -> ±infinity,
    as for the sigmoid loss, or the flat part never ends, as for the ramp) f_star is its inner end and
    `unbounded` is set. A strict minimum gives f_low ≈ f_high; where a flat part meets a quadratic one the
    end lands ~sqrt(rtol) past the kink. eta defaults to n_eta points evenly spread over [0.01, 0.99].
    Hyperparameters go through spec.bind (defaults filled in, ranges checked). Batch-level losses have no
    per-sample risk: ValueError.
    """
    spec = losses.get(name)
    if spec.task != "binary":
        raise ValueError(f"calibration_map needs a binary loss, got {name!r} (task {spec.task!r})")
    if spec.batch:
        raise ValueError(f"calibration_map needs a per-sample loss, got {name!r}, a batch-level loss")
    if spec.context:
        raise ValueError(f"calibration_map cannot supply the context {spec.context} that {name!r} needs")
    if not (math.isfinite(f_range) and f_range > 0.0):
        raise ValueError(f"f_range must be a positive number, got {f_range}")
    if n_grid < 3:
        raise ValueError(f"n_grid must be >= 3, got {n_grid}")
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    if eta is None:
        if n_eta < 1:
            raise ValueError(f"n_eta must be >= 1, got {n_eta}")
        eta = np.linspace(0.01, 0.99, n_eta)
    eta = np.asarray(eta, np.float64).reshape(-1)
    if len(eta) == 0 or not np.all((eta > 0.0) & (eta < 1.0)):
        raise ValueError(f"eta must be a non-empty array of values in (0, 1), got {eta[:5]}...")
    bound = spec.bind(**dict(params or {}))
    w = torch.as_tensor(eta)[:, None]  # (E, 1)

    def risk(f: torch.Tensor, weight: torch.Tensor = w) -> torch.Tensor:
        """Conditional risk at f (rows, P) for each row's eta (rows, 1), in one call of the loss."""
        flat = f.reshape(-1)
        n = len(flat)
        # per-sample losses: both targets can share one batch
        both = spec.fn(
            torch.cat([flat, flat]), torch.cat([torch.ones_like(flat), torch.zeros_like(flat)]), **bound
        )
        return weight * both[:n].reshape(f.shape) + (1.0 - weight) * both[n:].reshape(f.shape)

    with torch.no_grad():
        grid = torch.linspace(-f_range, f_range, n_grid, dtype=torch.float64)  # (G,)
        grid_risk = risk(grid.expand(len(eta), n_grid))  # (E, G)
        if not torch.isfinite(grid_risk).all():
            raise ValueError(f"{name} gives non-finite values on [-{f_range}, {f_range}] with {bound}")
        best = grid_risk.argmin(1)  # (E,)
        rows = torch.arange(len(eta))
        step = float(grid[1] - grid[0])

        # refine: nested local grids around the current best point, each ten times finer
        centre, half = grid[best], torch.full((len(eta),), step, dtype=torch.float64)
        offsets = torch.linspace(-1.0, 1.0, _REFINE_POINTS, dtype=torch.float64)
        best_f, best_risk = centre, grid_risk[rows, best]
        for _ in range(_REFINE_ROUNDS):
            points = (centre[:, None] + half[:, None] * offsets).clamp(-f_range, f_range)  # (E, R)
            values = risk(points)
            k = values.argmin(1)
            better = values[rows, k] < best_risk
            best_f = torch.where(better, points[rows, k], best_f)
            best_risk = torch.where(better, values[rows, k], best_risk)
            centre, half = best_f, half / 10.0
        threshold = best_risk + rtol * (1.0 + best_risk.abs())  # (E,)

        # the run of grid points inside the sublevel set that contains the grid argmin
        inside = grid_risk <= threshold[:, None]  # (E, G)
        index = torch.arange(n_grid)[None, :]
        before_best, after_best = index <= best[:, None], index >= best[:, None]
        first_out_left = torch.where(~inside & before_best, index, -1).amax(1)  # -1: runs to -f_range
        first_out_right = torch.where(~inside & after_best, index, n_grid).amin(1)  # n_grid: runs to +f_range
        best_inside = inside[rows, best]
        # when even the grid argmin is outside, the set lies between its neighbours, around best_f
        left_out = torch.where(best_inside, first_out_left, best - 1)
        right_out = torch.where(best_inside, first_out_right, best + 1)
        left_in = torch.where(
            best_inside, torch.minimum(grid[(left_out + 1).clamp(0, n_grid - 1)], best_f), best_f
        )
        right_in = torch.where(
            best_inside, torch.maximum(grid[(right_out - 1).clamp(0, n_grid - 1)], best_f), best_f
        )
        open_low, open_high = left_out < 0, right_out >= n_grid

        # both ends at once: rows 0..E-1 the left end, E..2E-1 the right end, each between an inside and an
        # outside point; nested grids keep the part just past the last inside point (a batched bisection)
        inner = torch.cat([left_in, right_in])
        outer = torch.cat([grid[left_out.clamp(0, n_grid - 1)], grid[right_out.clamp(0, n_grid - 1)]])
        weight, limit = torch.cat([w, w]), torch.cat([threshold, threshold])
        fractions = torch.linspace(0.0, 1.0, _REFINE_POINTS, dtype=torch.float64)[1:]  # (R-1,)
        both_rows = torch.arange(2 * len(eta))
        for _ in range(_EDGE_ROUNDS):
            points = inner[:, None] + (outer - inner)[:, None] * fractions  # (2E, R-1), last one = outer
            outside = risk(points, weight) > limit[:, None]
            outside[:, -1] = True  # the outer point is outside by construction (guards round-off)
            k = outside.to(torch.int64).argmax(1)  # first point past the edge
            previous = torch.where(k > 0, points[both_rows, (k - 1).clamp(min=0)], inner)
            inner, outer = previous, points[both_rows, k]
        f_low = torch.where(open_low, grid[0], inner[: len(eta)])
        f_high = torch.where(open_high, grid[-1], inner[len(eta) :])
        midpoint = 0.5 * (f_low + f_high)
        f_star = torch.where(
            open_low & ~open_high, f_high, torch.where(open_high & ~open_low, f_low, midpoint)
        )
    f_star_np = f_star.numpy()
    return CalibrationMap(
        name=name,
        eta=eta,
        f_star=f_star_np,
        probability=1.0 / (1.0 + np.exp(-f_star_np)),
        f_low=f_low.numpy(),
        f_high=f_high.numpy(),
        unbounded=(open_low | open_high).numpy(),
        f_range=float(f_range),
        params=dict(bound),
        label=label,
    )


def margin_loss_names() -> list[str]:
    """The binary losses calibration_map accepts: per-sample, needing no context, in registry order."""
    return [n for n in losses.names("binary") if not losses.get(n).batch and not losses.get(n).context]


# --------------------------------------------------------------------------------- one call for a page


def calibration_panel(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    name: str,
    label: str = "",
    n_bins: int = metrics.N_BINS,
    band_binning: Binning = "width",
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
    histogram_bins: int = 20,
    mode: Mode = "top_label",
    smooth: bool = True,
) -> CalibrationPanel:
    """Equal-width and equal-mass reliability, a bootstrap band, smooth ECE, the confidence histogram,
    NLL, Brier and accuracy of one model's predictions, for the calibration figures (n_boot=0: no band)."""
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    return CalibrationPanel(
        name=name,
        equal_width=metrics.reliability(probs, labels, n_bins, "width", mode=mode),
        equal_mass=metrics.reliability(probs, labels, n_bins, "mass", mode=mode),
        band=(
            metrics.reliability_band(
                probs, labels, n_bins, band_binning, n_boot=n_boot, level=level, seed=seed, mode=mode
            )
            if n_boot
            else None
        ),
        smooth=metrics.smooth_ece(probs, labels, mode=mode) if smooth else None,
        histogram=metrics.confidence_histogram(probs, labels, histogram_bins, mode=mode),
        nll=metrics.nll(probs, labels),
        brier=metrics.brier(probs, labels),
        accuracy=metrics.accuracy(probs, labels),
        label=label,
    )
