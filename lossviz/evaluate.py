"""What the pages show of a trained run: decision maps per snapshot, fitted curves, test scores, per-sample
gradient weights, and how to split those weights into groups (clean vs flipped, majority vs minority).

Every function takes the model and a state dict (a snapshot or History.final_state) and evaluates it with
torch.func.functional_call, so a model shared by several sessions is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from lossviz import boundary, metrics
from lossviz.losses import BoundLoss
from lossviz.results import Curve, Dataset, DecisionMap, History
from lossviz.train import predict_proba, with_state

MAP_RESOLUTION = 64  # grid points per axis of a decision map: about what a 300-pixel panel shows
MAP_MARGIN = 0.08  # the map extends this fraction of the data's extent beyond it
FIT_POINTS = 200


def plane_to_inputs(data: Dataset) -> Callable[[np.ndarray], np.ndarray]:
    """Maps (M, 2) points of the plotted plane to model inputs (M, D): the inverse PCA for D > 2, the first
    coordinate for D = 1, themselves for D = 2."""
    if data.projection is not None:
        return data.projection.inverse_transform
    if data.n_features == 1:
        return lambda plane: np.asarray(plane)[:, :1]
    return np.asarray


def decision_map(
    model: nn.Module, task: str, data: Dataset, state: dict[str, Any] | None, resolution: int = MAP_RESOLUTION
) -> DecisionMap:
    """Class probabilities on the plotted plane of the data (train and test points plus a margin)."""
    if data.task == "regression":
        raise ValueError("decision maps need a classification dataset; this one is regression")
    xy = data.view_2d(np.concatenate([data.X_train, data.X_test]))  # (N, 2) the plotted plane
    margin = MAP_MARGIN * float(np.ptp(xy, axis=0).max())
    to_inputs = plane_to_inputs(data)

    def proba(points: np.ndarray) -> np.ndarray:
        return predict_proba(model, np.asarray(to_inputs(points), np.float32), task, state)  # (M, K)

    found = boundary.decision_surface(proba, xy, resolution, margin)
    return DecisionMap(found.xs, found.ys, found.proba.astype(np.float32), label=found.label)


def snapshot_maps(model: nn.Module, task: str, data: Dataset, history: History) -> list[DecisionMap]:
    """A decision map at every snapshot of a run (the animation frames), labelled by epoch."""
    maps = []
    for epoch, state in zip(history.snapshot_epochs, history.snapshots, strict=True):
        found = decision_map(model, task, data, state)
        maps.append(DecisionMap(found.xs, found.ys, found.proba, label=f"epoch {int(epoch)}"))
    return maps


def snapshot_fits(model: nn.Module, data: Dataset, history: History, label: str) -> list[Curve]:
    """A 1-D regression's fitted curve at every snapshot of a run."""
    margin = 0.03 * float(np.ptp(data.X_train[:, 0]) or 1.0)
    fits = []
    for state in history.snapshots:
        curve = boundary.prediction_curve(
            lambda x, state=state: predict_proba(model, x, "regression", state),
            data.X_train,
            FIT_POINTS,
            margin,
        )
        fits.append(Curve(name=history.loss_name, x=curve.x, y=curve.y, label=label))
    return fits


def test_predictions(model: nn.Module, task: str, data: Dataset, history: History) -> np.ndarray:
    """Test predictions of the final (last finite) weights: (M, K) probabilities, (M,) for regression."""
    return predict_proba(model, data.X_test, task, history.final_state)


def test_scores(data: Dataset, predictions: np.ndarray) -> dict[str, float]:
    """Final test metrics by column name: accuracy, NLL, ECE, Brier, macro F1; R², MSE, MAE for regression.
    Empty when the predictions are not finite (a diverged run)."""
    if data.task == "regression":
        residual = np.asarray(predictions, np.float64) - data.y_test
        total = float(np.sum((data.y_test - data.y_test.mean()) ** 2)) or 1e-12
        return {
            "test R²": 1.0 - float(np.sum(residual**2)) / total,
            "test MSE": float(np.mean(residual**2)),
            "test MAE": float(np.mean(np.abs(residual))),
        }
    probs = np.asarray(predictions, np.float64)
    if not np.isfinite(probs).all():
        return {}
    return {
        "test accuracy": metrics.accuracy(probs, data.y_test),
        "NLL": metrics.nll(probs, data.y_test),
        "ECE": metrics.ece(probs, data.y_test),
        "Brier": metrics.brier(probs, data.y_test),
        "macro F1": metrics.macro_f1(probs.argmax(1), data.y_test),
    }


def gradient_weights(model: nn.Module, loss: BoundLoss, data: Dataset, history: History) -> np.ndarray:
    """(N,) per-sample gradient weight |dL_i/dz_i| of the final weights on the training set (given labels)."""
    trained = with_state(model, history.final_state)
    return metrics.per_sample_gradient_weight(trained, loss, data.X_train, data.y_train)


@dataclass(frozen=True)
class WeightGroups:
    """How to split per-sample gradient weights in two: a mask of the second group and the names."""

    second: np.ndarray  # (N,) bool
    first_name: str
    second_name: str
    title: str


def weight_groups(data: Dataset, imbalance: float) -> WeightGroups:
    """Flipped labels (or outliers) when there are any; else the minority class of an imbalanced set; else
    one group of all samples."""
    if data.noisy_mask.any():
        if data.task == "regression":
            return WeightGroups(data.noisy_mask, "inliers", "outliers", "inliers vs outliers")
        return WeightGroups(data.noisy_mask, "clean labels", "flipped labels", "clean vs noisy labels")
    if data.n_classes and imbalance > 1:
        others = "majority" if data.n_classes == 2 else "other classes"
        title = f"majority vs minority class ({data.class_names[-1]})"
        return WeightGroups(data.y_train == data.n_classes - 1, others, "minority", title)
    return WeightGroups(np.zeros(len(data.y_train), bool), "all samples", "", "all training samples")


def frames_by_epoch(
    epochs: Sequence[np.ndarray], items: Sequence[Sequence[Any]]
) -> tuple[list[int], list[list[Any]]]:
    """Align per-loss snapshot lists on the union of their epochs: a loss that stopped early (diverged) keeps
    showing its last snapshot. Returns (epochs, per loss the list of items per frame)."""
    union = sorted({int(e) for es in epochs for e in es})
    per_loss = []
    for es, its in zip(epochs, items, strict=True):
        per_loss.append(
            [its[max(int(np.searchsorted(np.asarray(es), e, side="right")) - 1, 0)] for e in union]
        )
    return union, per_loss


def test_outputs(model: nn.Module, data: Dataset, history: History) -> np.ndarray:
    """Raw test outputs of the final weights: (M, K) logits, (M,) for one binary logit or a regression."""
    weights = {k: torch.as_tensor(np.asarray(v)) for k, v in history.final_state.items()}
    evaluator = copy.deepcopy(model).eval() if model.training else model  # never flip a shared model's mode
    with torch.no_grad():
        out = functional_call(evaluator, weights, (torch.as_tensor(data.X_test, dtype=torch.float32),))
    out = out.cpu().numpy().astype(np.float64)
    return out.reshape(-1) if out.shape[1] == 1 else out
