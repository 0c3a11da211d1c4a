"""Metrics: accuracy, NLL, Brier, ECE/MCE and reliability bins, macro F1, AUC, gradient weights.

ECE/MCE use equal-width confidence bins as in "On Calibration of Modern Neural Networks" (Guo et al., 2017).
Public functions take numpy arrays and return floats; the `*_tensor` kernels stay on the device for training.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from lossviz.losses import BoundLoss, LossSpec, make
from lossviz.results import Reliability

N_BINS = 15
_EPS = 1e-12


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


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Equal-width bins of the top-label confidence with their accuracy, ECE and MCE."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = _as_probs(probs)
    y = _as_labels(labels, len(p))
    confidence = p.max(1)
    correct = (p.argmax(1) == y).astype(np.float64)
    # bin b holds confidences in (b/B, (b+1)/B]; confidence 0 joins bin 0
    idx = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        mean_acc = np.where(counts > 0, acc_sum / counts, np.nan)
    gaps = np.abs(mean_acc - mean_conf)
    filled = counts > 0
    return Reliability(
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        confidence=mean_conf,
        accuracy=mean_acc,
        counts=counts,
        ece=float(np.sum(counts[filled] * gaps[filled]) / max(len(p), 1)),
        mce=float(gaps[filled].max()) if filled.any() else 0.0,
    )


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error: sum_b (n_b / N) |acc_b - conf_b| over equal-width confidence bins."""
    return reliability(probs, labels, n_bins).ece


def mce(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Maximum calibration error: the largest |acc_b - conf_b| over non-empty bins."""
    return reliability(probs, labels, n_bins).mce


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
