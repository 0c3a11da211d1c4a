"""Metrics: accuracy, NLL, Brier, binned ECE/MCE and reliability ("On Calibration of Modern Neural Networks",
Guo et al., 2017), smooth ECE ("Smooth ECE: Principled Reliability Diagrams via Kernel Smoothing", Błasiok &
Nakkiran, 2023), macro F1, AUC, gradient weights, neural collapse NC1-NC4 (Papyan, Han & Donoho, 2020);
numpy in and out, `*_tensor` kernels stay on the device.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lossviz.losses import BoundLoss, LossSpec, make
from lossviz.results import (
    BinnedReliability,
    ConfidenceHistogram,
    NeuralCollapse,
    ReliabilityBand,
    SmoothCalibration,
)

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


# ================================================================================== neural collapse (NC1-NC4)
# Papyan, Han & Donoho (2020), "Prevalence of neural collapse during the terminal phase of deep learning
# training"; imbalanced classes as discussed in Dang et al. (2023), "Neural Collapse in Deep Linear Networks:
# From Balanced to Imbalanced Data". Penultimate features H (N, D), labels y (N,) in 0..K-1, classifier rows
# W (K, D). The statistics, as Papyan et al. define them:
#   mu_k     class means (K, D);
#   mu_G     global mean: centre="samples" (their definition) is the mean of all N samples, i.e. the
#            count-weighted mean of the class means; centre="classes" is the unweighted mean of the K means;
#   Sigma_W  (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T: every sample counts once (class k weighs n_k/N);
#   Sigma_B  (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T: every class counts once, whatever its size.
# Both centres agree on balanced data. On imbalanced data the count-weighted mean of a simplex ETF is not its
# centre, so only centre="classes" reads an ETF of class means as an ETF (NC2 = 0); NC1 is 0 at collapse for
# both (Sigma_W = 0), NC4 does not depend on the centre. All measures are 0 at exact collapse.

NCCentre = Literal["samples", "classes"]
NC_CENTRES: tuple[str, ...] = ("samples", "classes")
_NC1_RCOND = 1e-15  # eigenvalues of Sigma_B below this fraction of the largest are 0 (as numpy.linalg.pinv)


def _nc_matrix(values: np.ndarray, what: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A finite float64 array of the given shape (None: any length)."""
    array = np.asarray(values, np.float64)
    expected = str(tuple("?" if s is None else s for s in shape)).replace("'", "")  # (3,) or (?, ?)
    if array.ndim != len(shape) or any(s not in (None, a) for a, s in zip(array.shape, shape, strict=True)):
        raise ValueError(f"{what} must have shape {expected}, got {array.shape}")
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"{what} must be finite, got {bad} NaN or infinite values")
    return array


def _nc_int_labels(values: np.ndarray, what: str, n: int) -> np.ndarray:
    """(n,) int64 labels from integer (or integer-valued float) values."""
    raw = np.asarray(values)
    if raw.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), one per feature row, got {raw.shape}")
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all() or (raw != np.round(raw)).any():
            raise ValueError(f"{what} must be integers, got non-integer values of dtype {raw.dtype}")
    elif raw.dtype.kind not in "iub":
        raise ValueError(f"{what} must be integers, got dtype {raw.dtype}")
    return raw.astype(np.int64)


def _nc_labels(labels: np.ndarray, n: int, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int64 labels and (K,) class counts; every class 0..K-1 must have a sample."""
    if n == 0:
        raise ValueError("features has no rows")
    y = _nc_int_labels(labels, "labels", n)
    if y.min() < 0:
        raise ValueError(f"labels must be >= 0, got {int(y.min())}")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if k < 2:
        raise ValueError(f"neural collapse needs at least 2 classes, got {k}")
    if y.max() >= k:
        raise ValueError(f"labels must be < n_classes={k}, got {int(y.max())}")
    counts = np.bincount(y, minlength=k)  # (K,)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(f"every class needs a sample to have a mean: class {int(missing[0])} has none")
    return y, counts


def _class_statistics(
    features: np.ndarray, labels: np.ndarray, n_classes: int | None, centre: str, min_count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked features (N, D), labels (N,), class means (K, D), class counts (K,) and global mean (D,)."""
    if centre not in NC_CENTRES:
        raise ValueError(f"centre must be one of {NC_CENTRES}, got {centre!r}")
    h = _nc_matrix(features, "features", (None, None))  # (N, D)
    y, counts = _nc_labels(labels, len(h), n_classes)
    if counts.min() < min_count:
        c = int(np.argmin(counts))
        raise ValueError(f"NC1 needs >= {min_count} samples per class, class {c} has {int(counts[c])}")
    means = np.stack([h[y == c].mean(0) for c in range(len(counts))])  # (K, D)
    global_mean = h.mean(0) if centre == "samples" else means.mean(0)  # (D,)
    return h, y, means, counts, global_mean


def _nc1_value(h: np.ndarray, y: np.ndarray, means: np.ndarray, global_mean: np.ndarray) -> float:
    centred = means - global_mean  # (K, D); Sigma_B = centred^T centred / K
    _, s, vt = np.linalg.svd(centred, full_matrices=False)  # Sigma_B = V diag(s^2 / K) V^T
    keep = s**2 > _NC1_RCOND * s[0] ** 2 if s[0] > 0 else np.zeros_like(s, dtype=bool)
    if not keep.any():
        return float("nan")  # every class mean is the global mean: no between-class spread to measure against
    proj = (h - means[y]) @ vt[keep].T  # (N, r) within-class deviations on the range of Sigma_B
    # tr(Sigma_W Sigma_B^+) / K = sum_r (v_r^T Sigma_W v_r) / (s_r^2 / K) / K; never forms a (D, D) matrix
    return float(np.sum(np.mean(proj**2, axis=0) / s[keep] ** 2))


def centred_class_means(
    features: np.ndarray, labels: np.ndarray, *, n_classes: int | None = None, centre: NCCentre = "samples"
) -> np.ndarray:
    """(K, D) class means minus the global mean (of the samples, or of the class means: see `centre`)."""
    _, _, means, _, global_mean = _class_statistics(features, labels, n_classes, centre, min_count=1)
    return means - global_mean


def nc1(
    features: np.ndarray, labels: np.ndarray, *, n_classes: int | None = None, centre: NCCentre = "samples"
) -> float:
    """NC1 = tr(Sigma_W Sigma_B^+) / K: within-class spread against between-class spread (0 at collapse)."""
    h, y, means, _, global_mean = _class_statistics(features, labels, n_classes, centre, min_count=2)
    return _nc1_value(h, y, means, global_mean)


def _nc_vectors(vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
    v = _nc_matrix(vectors, what, (None, None))  # (K, D)
    if len(v) < 2:
        raise ValueError(f"{what} needs at least 2 rows (classes), got {len(v)}")
    return v


def _cosines(v: np.ndarray) -> np.ndarray:
    """(K, K) cosines between rows; NaN in the rows and columns of zero vectors."""
    norms = np.linalg.norm(v, axis=1)  # (K,)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(norms[:, None] > 0, v / norms[:, None], np.nan)
    return unit @ unit.T


def _pair_cosines(v: np.ndarray) -> np.ndarray:
    """(K(K-1)/2,) cosines of the pairs k < j (the pairs k != j hold each of them twice)."""
    upper = np.triu_indices(len(v), k=1)
    return _cosines(v)[upper]


def nc2_equinorm(vectors: np.ndarray) -> float:
    """NC2 equinorm: std / mean of the row norms of (K, D) vectors (centred class means, classifier rows)."""
    norms = np.linalg.norm(_nc_vectors(vectors), axis=1)  # (K,)
    mean = norms.mean()
    return float(norms.std() / mean) if mean > 0 else float("nan")


def nc2_equiangular(vectors: np.ndarray) -> float:
    """NC2 equiangularity: std over pairs k != j of cos(v_k, v_j) (0 when every pair meets at one angle)."""
    return float(np.std(_pair_cosines(_nc_vectors(vectors))))


def nc2_max_angle(vectors: np.ndarray) -> float:
    """NC2 maximal angle: mean over pairs k != j of |cos(v_k, v_j) + 1/(K-1)|, 0 at the simplex-ETF angle."""
    v = _nc_vectors(vectors)
    return float(np.mean(np.abs(_pair_cosines(v) + 1.0 / (len(v) - 1))))


def nc3(centred_means: np.ndarray, W: np.ndarray | None = None) -> float:
    """NC3 self-duality ||W/||W||_F - M/||M||_F||_F^2 of classifier rows W, centred class means M (K, D)."""
    m = _nc_vectors(centred_means, "centred_means")
    if W is None:
        return float("nan")
    w = _nc_matrix(W, "W", m.shape)
    norm_m, norm_w = np.linalg.norm(m), np.linalg.norm(w)
    if norm_m == 0 or norm_w == 0:
        return float("nan")  # a zero matrix has no direction to compare
    return float(np.sum((w / norm_w - m / norm_m) ** 2))


def _classifier_predictions(
    h: np.ndarray, k: int, predicted: np.ndarray | None, W: np.ndarray | None, b: np.ndarray | None
) -> np.ndarray | None:
    """(N,) the classifier's labels: `predicted` as given, else argmax of h W^T + b; None without either."""
    if b is not None and W is None:
        raise ValueError("b was given without W: the bias needs the classifier rows W (K, D)")
    if predicted is not None:
        pred = _nc_int_labels(predicted, "predicted", len(h))
        if pred.min() < 0 or pred.max() >= k:
            raise ValueError(
                f"predicted must lie in 0..{k - 1}, got values in {int(pred.min())}..{int(pred.max())}"
            )
        return pred
    if W is None:
        return None
    w = _nc_matrix(W, "W", (k, h.shape[1]))
    bias = np.zeros(k) if b is None else _nc_matrix(b, "b", (k,))
    return (h @ w.T + bias).argmax(1)  # (N,)


def _nearest_class_mean(h: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(N,) index of the Euclidean-nearest class mean (ties to the lower index)."""
    # ||h - mu||^2 = ||h||^2 - 2 h.mu + ||mu||^2; ||h||^2 is the same for every class
    return (np.sum(means**2, axis=1) - 2.0 * h @ means.T).argmin(1)


def nc4(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    predicted: np.ndarray | None = None,
    W: np.ndarray | None = None,
    b: np.ndarray | None = None,
    n_classes: int | None = None,
) -> float:
    """NC4: fraction of samples whose nearest class mean disagrees with the classifier (predicted or W, b)."""
    h, _, means, _, _ = _class_statistics(features, labels, n_classes, "samples", min_count=1)
    pred = _classifier_predictions(h, len(means), predicted, W, b)
    if pred is None:
        return float("nan")
    return float(np.mean(_nearest_class_mean(h, means) != pred))


def simplex_etf(K: int, D: int | None = None, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """(K, D) rows of norm `scale`, pairwise cosine -1/(K-1) and zero sum (a simplex ETF), seeded rotation."""
    if int(K) != K or K < 2:
        raise ValueError(f"a simplex ETF needs an integer K >= 2, got K={K}")
    K = int(K)
    D = K - 1 if D is None else D
    if int(D) != D or D < K - 1:
        raise ValueError(f"a simplex ETF of K={K} vectors needs an integer D >= {K - 1}, got D={D}")
    D = int(D)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    # rows of sqrt(K/(K-1)) (I - 11^T/K) are unit vectors with pairwise inner products -1/(K-1); they span the
    # (K-1)-dimensional sum-zero subspace of R^K: write them in an orthonormal basis of it (K, K-1)
    rows = math.sqrt(K / (K - 1)) * (np.eye(K) - 1.0 / K)  # (K, K)
    u, s, _ = np.linalg.svd(rows)
    coords = u[:, : K - 1] * s[: K - 1]  # (K, K-1)
    # then into D dims by K-1 orthonormal directions drawn uniformly (QR of a Gaussian, signs fixed)
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((D, K - 1)))  # q (D, K-1)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return scale * coords @ q.T  # (K, D)


def neural_collapse(
    features: np.ndarray,
    labels: np.ndarray,
    W: np.ndarray | None = None,
    b: np.ndarray | None = None,
    *,
    predicted: np.ndarray | None = None,
    n_classes: int | None = None,
    centre: NCCentre = "samples",
) -> NeuralCollapse:
    """NC1-NC4 of penultimate features (N, D), labels (N,); classifier rows W (K, D), bias b (K,) optional.

    NC4 compares the nearest class mean with `predicted` when given (e.g. a model's own argmax), else with
    argmax(h W^T + b); the classifier measures (NC3, NC2 of W, NC4 from W) are NaN without W.
    """
    h, y, means, counts, global_mean = _class_statistics(features, labels, n_classes, centre, min_count=2)
    k = len(means)
    w = None if W is None else _nc_matrix(W, "W", means.shape)
    pred = _classifier_predictions(h, k, predicted, w, b)
    centred = means - global_mean  # (K, D)
    return NeuralCollapse(
        nc1=_nc1_value(h, y, means, global_mean),
        nc2_equinorm=nc2_equinorm(centred),
        nc2_equiangular=nc2_equiangular(centred),
        nc2_max_angle=nc2_max_angle(centred),
        nc3=nc3(centred, w),
        nc4=float("nan") if pred is None else float(np.mean(_nearest_class_mean(h, means) != pred)),
        class_means=means,
        global_mean=global_mean,
        class_counts=counts,
        cosines=_cosines(centred),
        centre=centre,
        nc2_equinorm_classifier=float("nan") if w is None else nc2_equinorm(w),
        nc2_equiangular_classifier=float("nan") if w is None else nc2_equiangular(w),
        nc2_max_angle_classifier=float("nan") if w is None else nc2_max_angle(w),
    )


# =========================================================================== end of neural collapse (NC1-NC4)


# === retrieval (recall@k, mAP@R: "A Metric Learning Reality Check", Musgrave, Belongie & Lim, 2020)


def _retrieval_order(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order (N, N-1) of the other samples by decreasing cosine, same (N, N-1) bool: same label there)."""
    x = np.asarray(embeddings, np.float64)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 2 or len(x) != len(y) or len(y) < 2:
        raise ValueError(f"embeddings must be (N >= 2, D) with one label each, got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings must be finite")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)  # a query never retrieves itself
    order = np.argsort(-sim, axis=1, kind="stable")[:, :-1]  # (N, N-1): the last is the query itself
    return order, y[order] == y[:, None]


def recall_at_k(embeddings: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """The fraction of queries with at least one sample of their class among their k nearest (cosine)."""
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    _, same = _retrieval_order(embeddings, labels)
    return float(same[:, :k].any(axis=1).mean())


def map_at_r(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Mean average precision at R: for each query, R = the number of other samples of its class, and
    AP@R = (1/R) sum_{i <= R} P(i) [the i-th retrieved shares the class]; lone-class queries are skipped."""
    _, same = _retrieval_order(embeddings, labels)
    r = same.sum(axis=1)  # (N,)
    keep = r > 0
    if not keep.any():
        raise ValueError("map_at_r needs at least one class with two or more samples")
    hits = np.cumsum(same, axis=1)  # (N, N-1)
    precision = hits / np.arange(1, same.shape[1] + 1)
    within = np.arange(same.shape[1])[None, :] < r[:, None]  # only the first R retrievals count
    ap = (precision * same * within).sum(axis=1)[keep] / r[keep]
    return float(ap.mean())
