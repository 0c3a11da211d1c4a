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
from lossviz.models import SphereHead
from lossviz.results import Curve, Dataset, DecisionMap, History, NeuralCollapse
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


def gradient_weights(
    model: nn.Module, loss: BoundLoss, data: Dataset, history: History, **supplied: np.ndarray
) -> np.ndarray:
    """(N,) per-sample gradient weight |dL_i/dz_i| of the final weights on the training set (given labels).

    supplied: per-sample context the loss trained with (a distillation loss's teacher_logits), so that the
    weights are those of the loss as trained, not against a default.
    """
    trained = with_state(model, history.final_state)
    context = {k: torch.as_tensor(v) for k, v in supplied.items()}
    return metrics.per_sample_gradient_weight(trained, loss, data.X_train, data.y_train, **context)


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


# ============================================================================= neural collapse over training
# Papyan, Han & Donoho (2020); with MSE, Han, Papyan & Donoho (2022). The penultimate features h (N, D) of the
# training split (given labels) at every snapshot; the classifier is the linear head's rows in that snapshot.


class _Penultimate(nn.Module):
    """A model's `features` as a module's forward, so functional_call can run it with a snapshot's weights."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)  # (N, D)


@dataclass(frozen=True)
class CollapseTrajectory:
    """Neural-collapse measures (metrics.neural_collapse) of one run's training features at every snapshot."""

    epochs: np.ndarray  # (S,) int64, the snapshot epochs
    collapse: tuple[NeuralCollapse, ...]  # S measures, one per snapshot
    classifier: np.ndarray | None  # (K, D) the linear head's rows at the last snapshot; None for other heads

    def series(self, measure: str) -> np.ndarray:
        """(S,) one measure of NeuralCollapse ("nc1", "nc2_equinorm", ...) over the snapshots."""
        return np.array([float(getattr(c, measure)) for c in self.collapse], np.float64)

    @property
    def final(self) -> NeuralCollapse:
        """The measures at the last snapshot."""
        return self.collapse[-1]


def _linear_classifier(
    model: nn.Module, weights: dict[str, torch.Tensor]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(W (K, D), b (K,)) of a linear head in these weights; None for a cosine or harmonic head.

    One binary logit w.h + b is the two-class classifier W = [-w/2, w/2], b = [-b/2, b/2]: the same argmax
    and a zero-sum W, as Papyan et al.'s K = 2 case needs.
    """
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        return None
    w = weights.get("head.weight", head.weight).detach().cpu().double().numpy()  # (K, D)
    bias = weights.get("head.bias", head.bias)
    b = np.zeros(len(w)) if bias is None else bias.detach().cpu().double().numpy()  # (K,)
    if len(w) == 1:
        w, b = np.concatenate([-w / 2, w / 2]), np.concatenate([-b / 2, b / 2])
    return w, b


def collapse_over_training(
    model: nn.Module, data: Dataset, history: History, *, centre: metrics.NCCentre = "samples"
) -> CollapseTrajectory:
    """NC1-NC4 of the penultimate features of the training split at every snapshot of a run.

    Each snapshot's weights are applied with functional_call (the model is not modified). A linear head gives
    W and b (NC3, and NC4 from argmax(h W^T + b)); for other heads W is skipped and NC4 compares the
    nearest class mean with the model's own argmax; an encoder onto the sphere is measured on its unit
    embeddings, with no classifier (NC3, NC4 NaN). A run without snapshots gives its final weights only.
    """
    if data.task == "regression" or not data.n_classes:
        raise ValueError("neural collapse needs a classification dataset; this one is regression")
    if not callable(getattr(model, "features", None)):
        raise ValueError(f"{type(model).__name__} has no features() method: no penultimate layer to measure")
    states = list(zip(history.snapshot_epochs, history.snapshots, strict=True))
    if not states:
        states = [(int(history.epochs[-1]), history.final_state)]
    evaluator = copy.deepcopy(model).eval() if model.training else model  # never flip a shared model's mode
    penultimate = _Penultimate(evaluator)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    X = torch.as_tensor(data.X_train, dtype=torch.float32, device=device)  # (N, F)
    found, classifier = [], None
    # An encoder trained onto the sphere (SupCon, InfoNCE, ...) collapses in its embeddings (Graf et al.,
    # 2021): measured there, with no classifier, so NC3 and NC4 are NaN
    encoder = isinstance(getattr(evaluator, "head", None), SphereHead)
    for _, state in states:
        weights = {k: torch.as_tensor(np.asarray(v), device=device) for k, v in state.items()}
        with torch.no_grad():
            linear, predicted = None, None
            if encoder:
                h = functional_call(evaluator, weights, (X,))  # (N, D) unit embeddings
            else:
                named = {f"model.{k}": v for k, v in weights.items()}
                h = functional_call(penultimate, named, (X,))  # (N, D) penultimate features
                linear = _linear_classifier(evaluator, weights)
                if linear is None:  # cosine / harmonic head: its own argmax decides
                    predicted = functional_call(evaluator, weights, (X,)).argmax(1).cpu().numpy()
        W, b = linear if linear is not None else (None, None)
        found.append(
            metrics.neural_collapse(
                h.cpu().double().numpy(),
                data.y_train,
                W,
                b,
                predicted=predicted,
                n_classes=data.n_classes,
                centre=centre,
            )
        )
        classifier = W
    epochs = np.array([int(e) for e, _ in states], dtype=np.int64)
    return CollapseTrajectory(epochs=epochs, collapse=tuple(found), classifier=classifier)


@dataclass(frozen=True)
class MeanGeometry:
    """Centred class means on their principal axes, with a simplex ETF fitted to them (for a 2-D/3-D view)."""

    means: np.ndarray  # (K, d) centred class means along their first d principal axes
    etf: np.ndarray | None  # (K, d) a simplex ETF rotated and scaled onto the means; None when D < K - 1
    classifier: np.ndarray | None  # (K, d) classifier rows on the means' axes, scaled to their Frobenius norm
    explained: float  # fraction of the centred means' squared norm that these d axes hold (1 when K <= d + 1)
    classifier_norms: np.ndarray | None = None  # (K,) norms ||w_k|| of the full classifier rows


def class_mean_geometry(
    collapse: NeuralCollapse, classifier: np.ndarray | None = None, dims: int | None = None
) -> MeanGeometry:
    """The class means of a NeuralCollapse in d dims (2 for K <= 3, else 3) with the simplex-ETF reference.

    K centred means span at most K - 1 dimensions, so K = 3 in 2-D and K = 4 in 3-D lose nothing. The ETF
    (metrics.simplex_etf, K - 1 dims) is aligned to the means by orthogonal Procrustes with the optimal
    scale: min over orthogonal Q and s > 0 of ||s E Q - M||_F (Schönemann 1966), in the means' K - 1 axes.
    """
    centred = np.asarray(collapse.centred_means, np.float64)  # (K, D)
    k, d_features = centred.shape
    dims = min(max(k - 1, 2), 3) if dims is None else int(dims)
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    _, s, vt = np.linalg.svd(centred, full_matrices=False)  # vt (min(K, D), D): principal axes, largest first
    rank = min(k - 1, d_features)
    axes = vt[:rank]  # (r, D)
    coords = centred @ axes.T  # (K, r)
    etf = None
    if d_features >= k - 1:
        reference = metrics.simplex_etf(k)  # (K, K-1) unit rows
        u, sigma, wt = np.linalg.svd(reference.T @ coords)  # (K-1, K-1)
        scale = float(sigma.sum() / np.sum(reference**2))
        etf = scale * reference @ (u @ wt)  # (K, K-1) the nearest scaled, rotated ETF to the means
    total = float(np.sum(s**2))

    def shown(points: np.ndarray) -> np.ndarray:
        out = np.zeros((k, dims))
        out[:, : min(dims, points.shape[1])] = points[:, :dims]
        return out

    projected, row_norms = None, None
    if classifier is not None and np.shape(classifier) == centred.shape:
        row_norms = np.linalg.norm(np.asarray(classifier, np.float64), axis=1)  # (K,)
        w = np.asarray(classifier, np.float64) @ axes.T  # (K, r) the rows' components along the means' axes
        norm_w = np.linalg.norm(w)
        if norm_w > 0:
            projected = shown(w * (np.linalg.norm(coords) / norm_w))
    return MeanGeometry(
        means=shown(coords),
        etf=None if etf is None else shown(etf),
        classifier=projected,
        explained=float(np.sum(s[:dims] ** 2) / total) if total > 0 else 1.0,
        classifier_norms=row_norms,
    )
