"""Metrics: accuracy, NLL, Brier, binned ECE/MCE and reliability ("On Calibration of Modern Neural Networks",
Guo et al., 2017), smooth ECE ("Smooth ECE: Principled Reliability Diagrams via Kernel Smoothing", Błasiok &
Nakkiran, 2023), macro F1, AUC, gradient weights; numpy in and out, `*_tensor` kernels stay on the device.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lossviz.losses import BoundLoss, LossSpec, make
from lossviz.results import BinnedReliability, ConfidenceHistogram, ReliabilityBand, SmoothCalibration

Binning = Literal["width", "mass"]
Mode = Literal["top_label", "positive"]
BINNINGS: tuple[str, ...] = ("width", "mass")
MODES: tuple[str, ...] = ("top_label", "positive")
N_BINS = 15
_EPS = 1e-12
_BOOT_CHUNK = 2_000_000  # resampled indices held at once by reliability_band
_SMOOTH_CELLS = 2048  # grid of smooth_ece: cells of 1/2048, far below any fixed-point bandwidth
_BISECTION_STEPS = 40  # sigma* to 1e-12
_TINY_DENSITY = 1e-9  # below this kernel density the smoothed accuracy is 0/0 in practice: NaN


def _as_probs(probs: np.ndarray) -> np.ndarray:
    """(N, K) probabilities; a 1-D array is read as P(class 1) of a binary problem."""
    probs = np.asarray(probs, np.float64)
    if probs.ndim == 1:
        probs = np.column_stack([1.0 - probs, probs])
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N,) or (N, K), got shape {probs.shape}")
    return probs


def _as_labels(labels: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries, probs has {n} rows")
    return labels


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax is the label (probs (N, K), or (N,) = P(class 1))."""
    p = _as_probs(probs)
    return float(np.mean(p.argmax(1) == _as_labels(labels, len(p))))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood -log p_y (probabilities clipped at 1e-12, as sklearn's log_loss)."""
    p = _as_probs(probs)
    y = _as_labels(labels, len(p))
    return float(-np.mean(np.log(np.clip(p[np.arange(len(p)), y], _EPS, 1.0))))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multiclass Brier score mean_i sum_k (p_ik - [y_i = k])^2, in [0, 2]; twice sklearn's binary one."""
    p = _as_probs(probs)
    onehot = np.eye(p.shape[1])[_as_labels(labels, len(p))]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def _confidence_correct(probs: np.ndarray, labels: np.ndarray, mode: Mode) -> tuple[np.ndarray, np.ndarray]:
    """(N,) confidence and (N,) outcome in {0, 1} of the event the confidence predicts.

    top_label: max_k p_k and [argmax = label]; positive (binary only): P(class 1) and [label = 1].
    """
    p = _as_probs(probs)
    y = _as_labels(labels, len(p))
    if mode == "top_label":
        return p.max(1), (p.argmax(1) == y).astype(np.float64)
    if mode == "positive":
        if p.shape[1] != 2:
            raise ValueError(f"mode 'positive' needs binary probs (N,) or (N, 2), got shape {p.shape}")
        return p[:, 1], (y == 1).astype(np.float64)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _require_finite(confidence: np.ndarray, what: str) -> None:
    """Quantile edges, resampling and kernel smoothing have no meaning for NaN rows (a diverged model)."""
    bad = int(np.sum(~np.isfinite(confidence)))
    if bad:
        raise ValueError(f"{what} needs finite probabilities, got {bad} rows with NaN or infinity")


def _check_bins(n_bins: int, binning: str) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")


def _bin_index(confidence: np.ndarray, n_bins: int, binning: Binning) -> tuple[np.ndarray, np.ndarray]:
    """(B+1,) edges and (N,) bin of each confidence; bin b holds (edges[b], edges[b+1]] (bin 0 also edges[0]).

    width: B equal bins of [0, 1]. mass: edges at the 0, 1/B, ..., 1 quantiles of the confidences (numpy's
    linear interpolation, as scikit-learn's strategy="quantile"), so each bin holds ~N/B samples; ties at an
    edge can leave a bin empty.
    """
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        # ceil rather than searchsorted: the same arithmetic as ece_tensor, so training-time ECE matches
        # NaN rows (a diverged model) go to bin 0 as in ece_tensor; their NaN confidence makes the ECE NaN
        scaled = np.ceil(np.nan_to_num(confidence, nan=0.0) * n_bins)
        idx = np.clip(scaled.astype(np.int64) - 1, 0, n_bins - 1)
    else:
        if len(confidence) == 0:
            raise ValueError("equal-mass bins need at least one sample, got 0")
        _require_finite(confidence, "equal-mass binning")
        edges = np.percentile(confidence, np.linspace(0.0, 100.0, n_bins + 1))
        idx = np.searchsorted(edges[1:-1], confidence, side="left")
    return edges, idx


def reliability(
    probs: np.ndarray,
    labels: np.ndarray,
    n_bins: int = N_BINS,
    binning: Binning = "width",
    *,
    mode: Mode = "top_label",
) -> BinnedReliability:
    """Confidence bins (equal width or equal mass) with their mean confidence, accuracy, ECE and MCE.

    probs (N, K), or (N,) = P(class 1). mode "top_label" bins max_k p_k against [argmax = label]; mode
    "positive" (binary) bins P(class 1) against [label = 1], like scikit-learn's calibration_curve.
    """
    _check_bins(n_bins, binning)
    confidence, correct = _confidence_correct(probs, labels, mode)
    edges, idx = _bin_index(confidence, n_bins, binning)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    filled = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(filled, conf_sum / counts, np.nan)
        mean_acc = np.where(filled, acc_sum / counts, np.nan)
    gaps = np.abs(mean_acc - mean_conf)
    return BinnedReliability(
        edges=edges,
        confidence=mean_conf,
        accuracy=mean_acc,
        counts=counts,
        ece=float(np.sum(counts[filled] * gaps[filled]) / max(len(confidence), 1)),
        mce=float(gaps[filled].max()) if filled.any() else 0.0,
        binning=binning,
        mode=mode,
    )


def ece(
    probs: np.ndarray,
    labels: np.ndarray,
    n_bins: int = N_BINS,
    binning: Binning = "width",
    *,
    mode: Mode = "top_label",
) -> float:
    """Expected calibration error: sum_b (n_b / N) |acc_b - conf_b| over equal-width or equal-mass bins."""
    return reliability(probs, labels, n_bins, binning, mode=mode).ece


def mce(
    probs: np.ndarray,
    labels: np.ndarray,
    n_bins: int = N_BINS,
    binning: Binning = "width",
    *,
    mode: Mode = "top_label",
) -> float:
    """Maximum calibration error: the largest |acc_b - conf_b| over non-empty bins."""
    return reliability(probs, labels, n_bins, binning, mode=mode).mce


def reliability_band(
    probs: np.ndarray,
    labels: np.ndarray,
    n_bins: int = N_BINS,
    binning: Binning = "width",
    *,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
    mode: Mode = "top_label",
) -> ReliabilityBand:
    """Bootstrap percentile band of each bin's accuracy: samples resampled with replacement, bins held fixed.

    The edges come from the full sample (for equal mass, its quantiles), so every replicate describes the
    same bins; a replicate in which a bin is empty does not count towards that bin's interval. Same seed,
    same band.
    """
    _check_bins(n_bins, binning)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    confidence, correct = _confidence_correct(probs, labels, mode)
    n = len(confidence)
    if n == 0:
        raise ValueError("reliability_band needs at least one sample, got 0")
    _require_finite(confidence, "reliability_band")
    full = reliability(probs, labels, n_bins, binning, mode=mode)
    _, idx = _bin_index(confidence, n_bins, binning)
    rng = np.random.default_rng(seed)
    accuracies = np.empty((n_boot, n_bins))  # (n_boot, B)
    chunk = max(1, _BOOT_CHUNK // n)  # replicates per chunk: keeps the (chunk, N) draws a few MB
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, n, size=(rows, n))  # (rows, N) resampled sample indices
        flat = (np.arange(rows)[:, None] * n_bins + idx[draws]).ravel()  # replicate-major bin ids
        counts = np.bincount(flat, minlength=rows * n_bins).reshape(rows, n_bins)
        hits = np.bincount(flat, weights=correct[draws].ravel(), minlength=rows * n_bins).reshape(
            rows, n_bins
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracies[start : start + rows] = np.where(counts > 0, hits / counts, np.nan)
    alpha = (1.0 - level) / 2.0
    low = np.full(n_bins, np.nan)
    high = np.full(n_bins, np.nan)
    seen = ~np.all(np.isnan(accuracies), axis=0)  # nanpercentile warns on all-NaN columns
    if seen.any():
        low[seen], high[seen] = np.nanpercentile(
            accuracies[:, seen], [100 * alpha, 100 * (1 - alpha)], axis=0
        )
    return ReliabilityBand(
        edges=full.edges,
        confidence=full.confidence,
        accuracy=full.accuracy,
        low=low,
        high=high,
        level=float(level),
        n_boot=int(n_boot),
        seed=int(seed),
        binning=binning,
        mode=mode,
    )


def confidence_histogram(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 20, *, mode: Mode = "top_label"
) -> ConfidenceHistogram:
    """Counts of the confidence in equal-width bins of [0, 1], with the accuracy and the mean confidence."""
    _check_bins(n_bins, "width")
    confidence, correct = _confidence_correct(probs, labels, mode)
    edges, idx = _bin_index(confidence, n_bins, "width")
    return ConfidenceHistogram(
        edges=edges,
        counts=np.bincount(idx, minlength=n_bins),
        correct=np.bincount(idx, weights=correct, minlength=n_bins).round().astype(np.int64),
        mean_confidence=float(confidence.mean()) if len(confidence) else float("nan"),
        accuracy=float(correct.mean()) if len(correct) else float("nan"),
        mode=mode,
    )


# ------------------------------------------------------------------------------ smooth ECE (bin-free)


def _reflected_kernel_spectrum(sigma: float, cells: int) -> np.ndarray:
    """rfft of the reflected Gaussian, as a circular kernel on the even extension ([0, 1] mirrored to [0, 2)).

    Reflecting at 0 and 1 is the same as extending the data evenly to period 2 and convolving with the
    periodised Gaussian; the kernel is sampled at the 2M grid offsets, then scaled to unit mass on the grid.
    """
    offsets = np.arange(2 * cells) / cells
    offsets = np.minimum(offsets, 2.0 - offsets)  # distance on the circle of length 2
    images = np.arange(-3, 4)[:, None] * 2.0  # enough periods for sigma <= 1
    kernel = np.exp(-0.5 * ((offsets[None, :] + images) / sigma) ** 2).sum(0)  # (2M,)
    kernel /= kernel.sum() / cells  # sum_j kernel_j / M = 1: unit mass even for sigma below a cell
    return np.fft.rfft(kernel)


def _smooth(values: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Kernel-weighted sums at the M cell centres of per-cell values (M,), reflected at 0 and 1."""
    extended = np.concatenate([values, values[::-1]])  # (2M,) even extension about 0 and 1
    return np.fft.irfft(np.fft.rfft(extended) * spectrum, n=len(extended))[: len(values)]


def smooth_ece(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    sigma: float | None = None,
    n_points: int = 201,
    mode: Mode = "top_label",
) -> SmoothCalibration:
    """Smooth ECE and its smoothed reliability curve (Błasiok & Nakkiran, 2023, "Smooth ECE: Principled
    Reliability Diagrams via Kernel Smoothing").

    With residuals r_i = y_i - f_i (outcome minus confidence) and a Gaussian kernel K_σ reflected at 0 and 1,
    smECE_σ = ∫_0^1 |(1/N) Σ_i K_σ(t, f_i) r_i| dt. The bandwidth is the fixed point σ* = smECE_σ*, unique
    because smECE_σ does not increase with σ; it is found by bisection on [0, 1]. Pass sigma to evaluate at a
    fixed bandwidth instead. The curve is t + r̂(t) with r̂ the kernel-weighted mean residual, on n_points
    confidences in [0, 1], with the kernel density of the confidences. Samples are placed on a grid of
    2048 cells by linear interpolation (error well below the bandwidth), and the convolution is an FFT.
    Deterministic: no sampling.
    """
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"sigma must be a positive number or None, got {sigma}")
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    confidence, correct = _confidence_correct(probs, labels, mode)
    n = len(confidence)
    if n == 0:
        raise ValueError("smooth_ece needs at least one sample, got 0")
    _require_finite(confidence, "smooth_ece")
    cells = _SMOOTH_CELLS
    centres = (np.arange(cells) + 0.5) / cells
    # linear interpolation between the two nearest cell centres keeps each sample's mass and mean position
    position = np.clip(confidence * cells - 0.5, 0.0, cells - 1.0)
    left = np.minimum(np.floor(position).astype(np.int64), cells - 2)  # (N,) left neighbour
    frac = position - left
    residual = correct - confidence  # (N,)
    mass = np.bincount(left, 1.0 - frac, cells) + np.bincount(left + 1, frac, cells)  # (M,) counts
    res = np.bincount(left, (1.0 - frac) * residual, cells) + np.bincount(left + 1, frac * residual, cells)
    mass, res = mass / n, res / n

    def error_at(s: float) -> float:
        return float(np.abs(_smooth(res, _reflected_kernel_spectrum(s, cells))).mean())  # ∫_0^1 by midpoints

    if sigma is None:
        low, high = 0.0, 1.0  # error_at(s) - s is >= 0 at s -> 0 and <= 0 at s = 1 (smECE <= 1)
        for _ in range(_BISECTION_STEPS):
            middle = 0.5 * (low + high)
            if error_at(middle) > middle:
                low = middle
            else:
                high = middle
        sigma = 0.5 * (low + high)
    spectrum = _reflected_kernel_spectrum(sigma, cells)
    smoothed_res = _smooth(res, spectrum)
    density = _smooth(mass, spectrum)
    t = np.linspace(0.0, 1.0, n_points)
    density_t = np.interp(t, centres, density)
    res_t = np.interp(t, centres, smoothed_res)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy_t = np.where(density_t > _TINY_DENSITY, t + res_t / density_t, np.nan)
    return SmoothCalibration(
        error=float(np.abs(smoothed_res).mean()),
        sigma=float(sigma),
        t=t,
        accuracy=accuracy_t,
        density=density_t,
        mode=mode,
    )


def macro_f1(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions (sklearn's macro)."""
    predicted = np.asarray(predicted).astype(np.int64).reshape(-1)
    labels = _as_labels(labels, len(predicted))
    scores = []
    for c in np.union1d(predicted, labels):
        tp = np.sum((predicted == c) & (labels == c))
        denominator = np.sum(predicted == c) + np.sum(labels == c)  # 2TP + FP + FN
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their mean rank (for the Mann-Whitney statistic)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # boundaries of runs of equal values
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Binary ROC AUC by the Mann-Whitney U statistic (ties count one half); scores (N,) or probs (N, 2)."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim == 2:
        if scores.shape[1] != 2:
            raise ValueError(f"auc is binary: scores must be (N,) or (N, 2), got shape {scores.shape}")
        scores = scores[:, 1]
    labels = _as_labels(labels, len(scores))
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"auc needs labels in {{0, 1}}, got {sorted(set(labels.tolist()))}")
    n_pos, n_neg = int(labels.sum()), int((1 - labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc needs both classes present in labels")
    ranks = _average_ranks(scores)
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ---------------------------------------------------------------- tensor kernels (no host sync) for training


def probabilities_tensor(outputs: torch.Tensor, task: str) -> torch.Tensor:
    """(N, K) class probabilities from raw outputs: softmax for multiclass, [1-s, s] for one binary logit."""
    if task == "binary":
        p1 = torch.sigmoid(outputs.reshape(-1))
        return torch.stack([1 - p1, p1], dim=1)
    return torch.softmax(outputs, dim=1)


def ece_tensor(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = N_BINS) -> torch.Tensor:
    """ECE as a 0-d tensor on probs' device (NaN probabilities are binned at 0 and counted as wrong)."""
    confidence, predicted = probs.max(1)
    confidence = torch.nan_to_num(confidence, nan=0.0).clamp(0.0, 1.0)
    correct = (predicted == labels).to(probs.dtype)
    idx = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    gap = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device)
    gap.index_add_(0, idx, correct - confidence)  # per bin: sum(acc) - sum(conf) = n_b (acc_b - conf_b)
    return gap.abs().sum() / max(len(labels), 1)


def r2_tensor(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination 1 - SS_res / SS_tot as a 0-d tensor."""
    ss_res = (pred - target).pow(2).sum()
    ss_tot = (target - target.mean()).pow(2).sum().clamp_min(1e-12)
    return 1 - ss_res / ss_tot


# ------------------------------------------------------------------------------------- per-sample gradients


def per_sample_gradient_weight(
    model: nn.Module,
    loss: str | LossSpec | BoundLoss,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    **context: Any,
) -> np.ndarray:
    """(N,) the norm of dLoss_i / d outputs_i per sample, by autograd (how hard each sample pulls).

    Evaluated in eval mode on the model's current parameters (the model is not modified). For batch-level
    losses the gradient of the batch loss is multiplied by N so it is on the per-sample scale. class_counts
    context is computed from y when the loss needs it and it is not given.
    """
    bound = make(loss)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    X_t = torch.as_tensor(X, dtype=torch.float32).to(device)
    y_t = torch.as_tensor(y).to(device)
    evaluator = copy.deepcopy(model).eval()  # eval: per-sample outputs must not depend on the batch (BN)
    with torch.enable_grad():
        with torch.no_grad():
            outputs = evaluator(X_t)  # (N, n_outputs)
        outputs.requires_grad_(True)
        if "class_counts" in bound.spec.context and "class_counts" not in context:
            k = outputs.shape[1] if bound.task == "multiclass" else 2
            context["class_counts"] = torch.bincount(y_t.long(), minlength=k).float()
        if "ema_target" in bound.spec.context and "ema_target" not in context:
            context["ema_target"] = probabilities_tensor(outputs.detach(), bound.task)
        values = bound.per_sample(outputs, y_t, **context)
        # per-sample losses depend only on their own row, so the gradient of the sum gives every row its own
        (grad,) = torch.autograd.grad(values.sum(), outputs)
    if bound.spec.batch:
        grad = grad * len(X_t)
    return grad.reshape(len(X_t), -1).norm(dim=1).cpu().numpy()
