"""Context data a loss declares beyond (pred, target), built here and nowhere else.

Class counts (VS / LDAM), feature norms (AdaFace: "AdaFace: Quality Adaptive Margin for Face Recognition"),
a running average of each sample's predictions ("Early-Learning Regularization Prevents Memorization
of Noisy Labels") and a teacher's logits of each training sample ("Distilling the Knowledge in a Neural
Network"; lossviz.experiment.run trains the teacher). A loss asks for them with keyword-only `None`
arguments; the trainer and the landscape and curvature views call this module, so no loss name appears in
either.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lossviz.losses import BoundLoss, LossSpec
from lossviz.metrics import probabilities_tensor

PROVIDED: tuple[str, ...] = ("class_counts", "feature_norms", "ema_target", "teacher_logits")
# Rows of the training set that the caller hands to training (fit's `supplied`): the teacher's logits come
# from a separate run (lossviz.experiment.run trains the teacher), not from the student's own data.
SUPPLIED: tuple[str, ...] = ("teacher_logits",)
# ELR's running target t <- beta t + (1 - beta) p reads its momentum from this hyperparameter of the loss
EMA_MOMENTUM = "beta"
# What the static views (landscape, curvature at arbitrary weights) can supply: counts are a property of the
# data; feature norms and a running target exist only along a training run.
AT_ANY_POINT: tuple[str, ...] = ("class_counts",)


def check_supported(spec: LossSpec) -> None:
    """ValueError unless every context argument of the loss can be supplied here."""
    unknown = [name for name in spec.context if name not in PROVIDED]
    if unknown:
        raise ValueError(f"loss {spec.name!r} needs context {unknown}; lossviz supplies {list(PROVIDED)}")
    if "ema_target" in spec.context and EMA_MOMENTUM not in {p.name for p in spec.params}:
        raise ValueError(f"loss {spec.name!r} takes ema_target but has no {EMA_MOMENTUM!r} hyperparameter")


def class_counts(y_train: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(K,) float counts of the training labels as given (noisy), at least two classes."""
    return torch.bincount(y_train.long(), minlength=max(n_classes, 2)).float()


def forward_with_features(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, features): one forward that also returns the representation the head reads."""
    features = net.features(x)  # (N, D) every lossviz model has .features and .head
    return net.head(features), features


def static_context(spec: LossSpec, y_train: torch.Tensor, n_classes: int) -> dict[str, torch.Tensor]:
    """The context available at any point of weight space (class counts); the rest is left out, and the
    loss falls back to its documented stateless form (ELR with t = p, AdaFace with its quality slider)."""
    check_supported(spec)
    if "class_counts" in spec.context:
        return {"class_counts": class_counts(y_train, n_classes).to(y_train.device)}
    return {}


def approximations(spec: LossSpec) -> list[str]:
    """Plain-language notes on what the static views leave out for this loss (empty when nothing)."""
    notes = {
        "feature_norms": "evaluated without feature norms (its quality slider stands in for them)",
        "ema_target": "evaluated without its running target (t = p: the same gradient at these weights)",
        "teacher_logits": "evaluated against a uniform teacher (zero logits): the trained teacher's logits "
        "reach only training",
    }
    return [notes[name] for name in spec.context if name not in AT_ANY_POINT and name in notes]


class TrainingContext:
    """What one training run feeds its loss: fixed class counts, per-batch feature norms, the running target,
    the rows of supplied per-sample data (a teacher's logits) that each batch holds.

    Use: `context = TrainingContext(loss, y_train, n_classes, supplied)`; in each step
    `outputs, features = context.forward(net, xb)` then `loss(outputs, yb, **context.batch(idx, outputs,
    features))`; for whole-set evaluation `context.full(outputs, features)`.
    """

    def __init__(
        self,
        loss: BoundLoss,
        y_train: torch.Tensor,
        n_classes: int,
        supplied: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        check_supported(loss.spec)
        self.needs = frozenset(loss.spec.context)
        self.fixed = static_context(loss.spec, y_train, n_classes)
        self.task = loss.task
        self.rows = _supplied_rows(loss, supplied or {}, len(y_train), y_train.device)  # {name: (N, ...)}
        self.ema: torch.Tensor | None = None
        if "ema_target" in self.needs and loss.task == "embedding":  # views are not the rows it tracks
            raise ValueError(f"loss {loss.spec.name!r}: a running target needs a classification task")
        if "ema_target" in self.needs:
            self.momentum = float(loss.params[EMA_MOMENTUM])
            self.ema = torch.zeros(len(y_train), max(n_classes, 2), device=y_train.device)  # (N, K)

    @property
    def needs_features(self) -> bool:
        """Whether the loss reads the representation before the head (then forward returns it)."""
        return "feature_norms" in self.needs

    def forward(self, net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(outputs, features or None): features only when the loss needs them (they cost nothing extra)."""
        if self.needs_features:
            return forward_with_features(net, x)
        return net(x), None

    def batch(
        self, idx: torch.Tensor | None, outputs: torch.Tensor, features: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """The context of one training step (idx None: the whole training set); updates the running target
        for the samples in the batch before the loss reads it, as ELR does."""
        ctx = dict(self.fixed)
        ctx.update(self.rows if idx is None else {k: v[idx] for k, v in self.rows.items()})
        if features is not None:
            ctx["feature_norms"] = features.detach().norm(dim=1)  # (B,)
        if self.ema is not None:
            p = probabilities_tensor(outputs.detach(), self.task)  # (B, K)
            beta = self.momentum
            if idx is None:
                self.ema.mul_(beta).add_(p, alpha=1 - beta)
                ctx["ema_target"] = self.ema
            else:
                self.ema[idx] = beta * self.ema[idx] + (1 - beta) * p
                ctx["ema_target"] = self.ema[idx]
        return ctx

    def full(self, features: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The context without a step's update of the running target: for evaluating the loss on the whole
        training set, and for every step of an embedding loss (its rows are views, not training samples)."""
        ctx = {**self.fixed, **self.rows}
        if features is not None:
            ctx["feature_norms"] = features.detach().norm(dim=1)
        if self.ema is not None:
            ctx["ema_target"] = self.ema
        return ctx


def _supplied_rows(
    loss: BoundLoss, supplied: Mapping[str, torch.Tensor], n_train: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """The supplied per-sample data the loss declares, checked: one row per training sample, detached."""
    unknown = sorted(set(supplied) - set(SUPPLIED))
    if unknown:
        raise ValueError(f"supplied context {unknown} is not per-sample data; valid: {list(SUPPLIED)}")
    rows = {}
    for name in (n for n in SUPPLIED if n in loss.spec.context):
        if name not in supplied:
            raise ValueError(
                f"loss {loss.spec.name!r} needs {name} for every training sample; train it through "
                "lossviz.experiment.run, which trains the teacher and supplies them"
            )
        if loss.task == "embedding":  # its rows are augmented views, not the training samples
            raise ValueError(f"loss {loss.spec.name!r}: per-sample {name} needs a classification task")
        value = torch.as_tensor(supplied[name]).detach().to(device=device, dtype=torch.float32)
        if value.dim() < 1 or len(value) != n_train:
            raise ValueError(
                f"{name} must have one row per training sample ({n_train}), got shape {tuple(value.shape)}"
            )
        rows[name] = value
    return rows
