"""The loss registry: one decorated function per loss, everything else (sliders, formulas, tests) derived.

A loss is `fn(pred, target, **params)` returning one value per sample (or a scalar when `batch=True`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch

Task = Literal["regression", "binary", "multiclass", "embedding", "pairwise", "preference"]
TASKS: tuple[str, ...] = ("multiclass", "binary", "regression", "embedding", "pairwise", "preference")
# The output layer a loss trains on: plain logits, cosines of a normalised head (margin-softmax losses),
# negative log-distances to class centres (harmonic loss), or embeddings projected onto the unit sphere
# (the embedding losses: S^1 for two outputs, S^2 for three). lossviz.models builds each.
Head = Literal["linear", "cosine", "harmonic", "sphere"]
HEADS: tuple[str, ...] = ("linear", "cosine", "harmonic", "sphere")

LossFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Param:
    """A hyperparameter's slider range; the default is read from the loss function's signature."""

    name: str
    low: float
    high: float
    log: bool = False
    help: str = ""
    integer: bool = False
    default: float = math.nan  # filled in by register() from the signature

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(
                f"Param {self.name!r}: need finite low < high, got low={self.low}, high={self.high}"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"Param {self.name!r}: a log-scale range needs low > 0, got low={self.low}")

    def contains(self, value: float) -> bool:
        """Whether value lies in [low, high] (with a relative tolerance for float round-off)."""
        tol = 1e-9 * max(1.0, abs(self.low), abs(self.high))
        return self.low - tol <= value <= self.high + tol

    def grid(self, n: int) -> list[float]:
        """n values spanning the range, geometric for log-scale params, rounded for integer ones."""
        if n < 2:
            raise ValueError(f"n must be >= 2, got {n}")
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            values = [math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
        else:
            values = [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)]
        if self.integer:
            values = sorted({float(round(v)) for v in values})
        return values


@dataclass(frozen=True)
class LossSpec:
    """Everything the app and the tests know about one registered loss."""

    name: str
    fn: LossFn
    title: str
    latex: str
    task: Task
    params: tuple[Param, ...]
    paper: str
    batch: bool = False
    reference: LossFn | None = None  # an independent implementation, used only by tests
    notes: str = ""  # one or two sentences on what the loss does, shown in the UI
    # keyword-only arguments that are data, not sliders (e.g. class_counts), supplied by lossviz.context
    context: tuple[str, ...] = ()
    head: Head = "linear"  # the output layer the loss expects its logits from
    # What the loss detaches, as its paper does (e.g. circle loss's pair weights): then its autograd gradient
    # is not the derivative of its value, and the contract checks it against `reference(..., frozen=x0)`, the
    # reference with the detached quantities computed from x0 instead of from its input.
    stop_gradient: str = ""

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, **params: Any) -> torch.Tensor:
        context = {k: params.pop(k) for k in list(params) if k in self.context}
        return self.fn(pred, target, **self.bind(**params), **context)

    @property
    def defaults(self) -> dict[str, float]:
        """The default value of every hyperparameter."""
        return {p.name: p.default for p in self.params}

    def param(self, name: str) -> Param:
        """The Param called name; KeyError listing the valid names otherwise."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter {name!r}; valid: {[p.name for p in self.params]}")

    def bind(self, **params: float) -> dict[str, float]:
        """Defaults overridden by params, checked: unknown names, non-finite or out-of-range values raise."""
        valid = {p.name: p for p in self.params}
        bound = self.defaults
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{self.name} has no parameter {key!r}; valid: {sorted(valid)}")
            p = valid[key]
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{self.name}: {key} must be a number, got {value!r}") from None
            if not math.isfinite(number) or not p.contains(number):
                raise ValueError(f"{self.name}: {key} must be in [{p.low}, {p.high}], got {value!r}")
            bound[key] = round(number) if p.integer else number
        return bound


_REGISTRY: dict[str, LossSpec] = {}


def _signature_arguments(fn: LossFn) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(hyperparameter defaults, context argument names) from fn's signature.

    Arguments after (pred, target) are hyperparameters, except keyword-only ones defaulting to None,
    which are context data such as class_counts.
    """
    sig = inspect.signature(fn)
    args = list(sig.parameters.values())
    if len(args) < 2 or any(p.default is not inspect.Parameter.empty for p in args[:2]):
        raise ValueError(
            f"{fn.__name__}: a loss takes (pred, target, **params) with no default on the first two"
        )
    hyper, context = {}, []
    for p in args[2:]:
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None:
            context.append(p.name)
        else:
            hyper[p.name] = p.default
    return hyper, tuple(context)


def register(
    *,
    title: str,
    latex: str,
    task: Task,
    paper: str,
    params: tuple[Param, ...] | list[Param] = (),
    batch: bool = False,
    reference: LossFn | None = None,
    notes: str = "",
    head: Head | None = None,
    stop_gradient: str = "",
) -> Callable[[LossFn], LossFn]:
    """Decorator adding a loss to the registry under its function name; returns the function unchanged.

    head None: the task's usual output layer, "sphere" for embedding losses and "linear" for the others.
    stop_gradient: what the loss detaches; it then needs a reference that takes `frozen=` (see LossSpec).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if head is None:
        head = "sphere" if task == "embedding" else "linear"
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")

    def decorate(fn: LossFn) -> LossFn:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"loss {name!r} is already registered")
        if stop_gradient and (reference is None or "frozen" not in inspect.signature(reference).parameters):
            raise ValueError(f"{name}: a loss with stop_gradient needs a reference taking frozen=")
        defaults, context = _signature_arguments(fn)
        by_name = {p.name: p for p in params}
        for p in params:
            if p.name not in defaults:
                raise ValueError(f"{name}: Param {p.name!r} is not an argument of the function")
            if defaults[p.name] is inspect.Parameter.empty:
                raise ValueError(f"{name}: argument {p.name!r} needs a default value")
        missing = [a for a in defaults if a not in by_name]
        if missing:
            raise ValueError(f"{name}: arguments {missing} have no Param spec")
        filled = []
        for p in params:
            default = float(defaults[p.name])
            if not p.contains(default):
                raise ValueError(f"{name}: default {p.name}={default} is outside [{p.low}, {p.high}]")
            filled.append(replace(p, default=default))
        _REGISTRY[name] = LossSpec(
            name=name,
            fn=fn,
            title=title,
            latex=latex,
            task=task,
            params=tuple(filled),
            paper=paper,
            batch=batch,
            reference=reference,
            notes=notes,
            context=context,
            head=head,
            stop_gradient=stop_gradient,
        )
        return fn

    return decorate


def names(task: Task | None = None) -> list[str]:
    """Registered loss names in registration order (families stay together), optionally for one task."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return [n for n, s in _REGISTRY.items() if task is None or s.task == task]


def get(name: str) -> LossSpec:
    """The LossSpec registered under name; KeyError suggesting close matches otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see lossviz.losses.names()"
        raise KeyError(f"unknown loss {name!r}{hint}") from None


def unregister(name: str) -> None:
    """Remove a loss (for tests and, later, user-typed custom losses)."""
    _REGISTRY.pop(name, None)


@dataclass(frozen=True)
class BoundLoss:
    """A registered loss with its hyperparameters fixed: what training and landscapes call.

    Takes raw model outputs (N, n_outputs): binary and regression squeeze the single output column.
    """

    spec: LossSpec
    params: dict[str, float]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def task(self) -> Task:
        return self.spec.task

    def per_sample(self, outputs: torch.Tensor, target: torch.Tensor, **context: Any) -> torch.Tensor:
        """Loss per sample (N,), or the batch scalar for batch-level losses."""
        pred = (
            outputs.squeeze(-1) if self.task in ("binary", "regression") and outputs.dim() == 2 else outputs
        )
        if self.task == "multiclass":
            target = target.long()
        elif self.task == "binary":
            target = target.to(pred.dtype)
        context = {k: v for k, v in context.items() if k in self.spec.context}
        return self.spec.fn(pred, target, **self.params, **context)

    def __call__(self, outputs: torch.Tensor, target: torch.Tensor, **context: Any) -> torch.Tensor:
        """Mean loss over the batch (a scalar)."""
        return self.per_sample(outputs, target, **context).mean()


def make(loss: str | LossSpec | BoundLoss, **params: float) -> BoundLoss:
    """A BoundLoss from a registry name (or spec) and hyperparameters, checked by LossSpec.bind."""
    if isinstance(loss, BoundLoss):
        return loss if not params else make(loss.spec, **{**loss.params, **params})
    spec = get(loss) if isinstance(loss, str) else loss
    return BoundLoss(spec=spec, params=spec.bind(**params))


def n_outputs(task: Task, n_classes: int, *, embedding_dim: int = 2) -> int:
    """How many model outputs a task needs: K for multiclass, embedding_dim for embedding, one otherwise."""
    if task == "embedding":
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 2:
            raise ValueError(f"embedding_dim must be an integer >= 2, got {embedding_dim!r}")
        return embedding_dim
    return n_classes if task == "multiclass" else 1
