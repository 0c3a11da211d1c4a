"""Train a small model with any registered loss, recording per-epoch metrics and parameter snapshots.

SAM follows "Sharpness-Aware Minimization for Efficiently Improving Generalization" (Foret et al., 2021);
ELR's target is the running average of "Early-Learning Regularization Prevents Memorization of Noisy Labels".
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from lossviz.context import TrainingContext
from lossviz.device import resolve_device
from lossviz.losses import BoundLoss, LossSpec, make, n_outputs
from lossviz.metrics import ece_tensor, probabilities_tensor, r2_tensor
from lossviz.results import Dataset, History

OptimizerName = Literal["sgd", "momentum", "adam", "adamw", "sam"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam", "adamw", "sam")
Progress = Callable[[float, str], None]

_MODE_DEPENDENT = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)
_METRICS = ("train_loss", "train_acc", "noisy_acc", "test_acc", "test_nll", "ece")
_MAX_PROGRESS_CALLS = 100


def check_compatible(loss: BoundLoss, data: Dataset) -> None:
    """ValueError unless the loss's task fits the dataset (a multiclass loss also fits a 2-class dataset)."""
    if loss.task not in ("regression", "binary", "multiclass"):
        raise ValueError(f"fit trains regression, binary and multiclass losses; {loss.name!r} is {loss.task}")
    if (data.task == "regression") != (loss.task == "regression"):
        raise ValueError(f"loss {loss.name!r} is for {loss.task} but dataset {data.name!r} is {data.task}")
    if loss.task == "binary" and data.n_classes != 2:
        raise ValueError(
            f"loss {loss.name!r} is binary but dataset {data.name!r} has {data.n_classes} classes; "
            "choose a multiclass loss"
        )


def _snapshot_epochs(epochs: int, count: int) -> list[int]:
    """count epochs spread evenly over 0..epochs (0 = the initialisation), always ending at the last."""
    if count <= 0:
        return []
    if count == 1:
        return [epochs]
    return sorted({round(e) for e in np.linspace(0, epochs, count)})


def _make_optimizer(
    name: str,
    params: list[nn.Parameter],
    lr: float,
    weight_decay: float,
    momentum: float,
    device: torch.device,
) -> torch.optim.Optimizer:
    # fused kernels (CPU and CUDA) update every tensor in one call: several times faster for small models
    speed: dict[str, bool] = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, **speed)
    if name in ("momentum", "sam"):  # SAM's base optimizer is SGD with momentum, as in the paper
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **speed)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **speed)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **speed)


def _check_number(name: str, value: float, low: float, strict: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < low or (strict and number == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")
    return number


def _check_int(name: str, value: int | None, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(
            f"{name} must be an integer >= {low}{' or None' if allow_none else ''}, got {value!r}"
        )
    return int(value)


@dataclass(frozen=True)
class Recipe:
    """How to train, checked once: what fit's keyword arguments become (see fit for their meaning)."""

    optimizer: OptimizerName = "adam"
    lr: float = 1e-2
    weight_decay: float = 0.0
    epochs: int = 200
    batch_size: int | None = None
    seed: int = 0
    snapshots: int = 20
    rho: float = 0.05
    momentum: float = 0.9

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        checked = {
            "lr": _check_number("lr", self.lr, 0.0, strict=True),
            "weight_decay": _check_number("weight_decay", self.weight_decay, 0.0),
            "rho": _check_number("rho", self.rho, 0.0, strict=True),
            "momentum": _check_number("momentum", self.momentum, 0.0),
            "epochs": _check_int("epochs", self.epochs, 1),
            "batch_size": _check_int("batch_size", self.batch_size, 1, allow_none=True),
            "snapshots": _check_int("snapshots", self.snapshots, 0),
            "seed": _check_int("seed", self.seed, 0),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclass
class _Split:
    """The dataset's tensors on the training device."""

    X_train: torch.Tensor  # (N, D)
    y_train: torch.Tensor  # (N,)
    X_all: torch.Tensor  # (N + M, D) train then test: one eval forward per epoch for both splits
    y_test: torch.Tensor  # (M,)
    noisy: torch.Tensor  # (N,) bool
    has_noisy: bool

    @classmethod
    def of(cls, data: Dataset, regression: bool, dev: torch.device) -> _Split:
        X_train = torch.as_tensor(data.X_train, dtype=torch.float32, device=dev)
        X_test = torch.as_tensor(data.X_test, dtype=torch.float32, device=dev)
        y_dtype = torch.float32 if regression else torch.int64
        return cls(
            X_train=X_train,
            y_train=torch.as_tensor(data.y_train, dtype=y_dtype, device=dev),
            X_all=torch.cat([X_train, X_test]),
            y_test=torch.as_tensor(data.y_test, dtype=y_dtype, device=dev),
            noisy=torch.as_tensor(data.noisy_mask, dtype=torch.bool, device=dev),
            has_noisy=bool(data.noisy_mask.any()) and not regression,
        )

    @property
    def n_train(self) -> int:
        return len(self.X_train)


def _check_outputs(net: nn.Module, bound: BoundLoss, data: Dataset, X: torch.Tensor) -> None:
    """A probe forward (in eval mode, so batch-norm statistics stay) checking the output shape."""
    expected = n_outputs(bound.task, data.n_classes)
    net.eval()
    try:
        with torch.no_grad():
            probe = net(X[:2])
    except RuntimeError as err:  # e.g. a shape mismatch in the first layer
        raise ValueError(
            f"the model cannot take dataset {data.name!r}'s inputs of shape (N, {data.n_features}): {err}"
        ) from None
    net.train()
    if probe.dim() != 2 or probe.shape[1] != expected:
        raise ValueError(
            f"model outputs shape {tuple(probe.shape[1:])} but loss {bound.name!r} ({bound.task}) on "
            f"dataset {data.name!r} needs (N, {expected}); build the model with n_outputs={expected}"
        )


def _step_function(
    net: nn.Module,
    bound: BoundLoss,
    split: _Split,
    context: TrainingContext,
    recipe: Recipe,
    dev: torch.device,
) -> Callable[[torch.Tensor | None], None]:
    """One optimisation step on a batch of indices (None: the full batch): plain, or SAM's two-pass step."""
    params = [p for p in net.parameters() if p.requires_grad]
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    opt = _make_optimizer(recipe.optimizer, params, recipe.lr, recipe.weight_decay, recipe.momentum, dev)

    def batch(idx: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        xb, yb = (split.X_train, split.y_train) if idx is None else (split.X_train[idx], split.y_train[idx])
        outputs, features = context.forward(net, xb)
        ctx = context.batch(idx, outputs, features)
        return bound(outputs, yb, **ctx), ctx, xb

    def plain(idx: torch.Tensor | None) -> None:
        value, _, _ = batch(idx)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    def sam(idx: torch.Tensor | None) -> None:
        # ascend to w + rho g/||g||, take the gradient there, apply it at w (functional: w untouched)
        value, ctx, xb = batch(idx)
        yb = split.y_train if idx is None else split.y_train[idx]
        grads = torch.autograd.grad(value, params)
        scale = recipe.rho / (torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) + 1e-12)
        shifted = {
            n: (p.detach() + scale * g).requires_grad_(True)
            for n, p, g in zip(names, params, grads, strict=True)
        }
        sharp = bound(functional_call(net, shifted, (xb,)), yb, **ctx)
        for p, g in zip(params, torch.autograd.grad(sharp, list(shifted.values())), strict=True):
            p.grad = g
        opt.step()

    return sam if recipe.optimizer == "sam" else plain


class _Recorder:
    """Per-epoch metrics in one (E+1, 6) buffer on the device: a no-grad eval forward of both splits."""

    def __init__(
        self, net: nn.Module, bound: BoundLoss, split: _Split, context: TrainingContext, epochs: int
    ) -> None:
        self.net, self.bound, self.split, self.context = net, bound, split, context
        self.buffer = torch.full((epochs + 1, len(_METRICS)), math.nan, device=split.X_train.device)
        # eval/train switches walk every module; skip them when no module behaves differently in eval mode
        self.mode_dependent = any(isinstance(m, _MODE_DEPENDENT) for m in net.modules())

    def __call__(self, epoch: int) -> None:
        if self.mode_dependent:
            self.net.eval()
        with torch.no_grad():
            out, features = self.context.forward(self.net, self.split.X_all)
            n = self.split.n_train
            train_features = features[:n] if features is not None else None
            row = self._row(out[:n], out[n:], self.context.full(train_features))
            self.buffer[epoch] = torch.stack(row).float()
        if self.mode_dependent:
            self.net.train()

    def _row(self, out_train: torch.Tensor, out_test: torch.Tensor, ctx: dict) -> list[torch.Tensor]:
        split, bound = self.split, self.bound
        train_loss = bound(out_train, split.y_train, **ctx)
        nan = torch.tensor(math.nan, device=out_train.device)
        if bound.task == "regression":
            pred_train, pred_test = out_train.reshape(-1), out_test.reshape(-1)
            r2_train, r2_test = r2_tensor(pred_train, split.y_train), r2_tensor(pred_test, split.y_test)
            return [train_loss, r2_train, nan, r2_test, (pred_test - split.y_test).pow(2).mean(), nan]
        probs_test = probabilities_tensor(out_test, bound.task)
        if bound.task == "binary":
            hits = ((out_train.reshape(-1) > 0).long() == split.y_train).float()
            test_nll = nn.functional.binary_cross_entropy_with_logits(
                out_test.reshape(-1), split.y_test.float()
            )
        else:
            hits = (out_train.argmax(1) == split.y_train).float()
            test_nll = nn.functional.cross_entropy(out_test, split.y_test)
        return [
            train_loss,
            hits.mean(),
            hits[split.noisy].mean() if split.has_noisy else nan,
            (probs_test.argmax(1) == split.y_test).float().mean(),
            test_nll,
            ece_tensor(probs_test, split.y_test),
        ]


class _Guard:
    """Keeps the last state whose training loss was finite; finds the first non-finite epoch."""

    def __init__(self, net: nn.Module, buffer: torch.Tensor) -> None:
        self.buffer = buffer
        self.last_good = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self.live = [net.state_dict()[k] for k in self.last_good]
        self.checked = 0
        self.diverged_at: int | None = None

    def check(self, epoch: int) -> bool:
        """True when the loss stayed finite up to epoch (then the state is saved), False once it did not."""
        window = self.buffer[self.checked : epoch + 1, 0]
        if not bool(torch.isfinite(window).all()):
            self.diverged_at = int(torch.nonzero(~torch.isfinite(window))[0, 0]) + self.checked
            return False
        self.checked = epoch + 1
        with torch.no_grad():
            for good, current in zip(self.last_good.values(), self.live, strict=True):
                good.copy_(current)
        return True

    def message(self, epochs: int, seconds: float) -> str:
        """What happened, for History.message (the UI shows it after the loss's name)."""
        if self.diverged_at is None:
            return f"trained {epochs} epochs in {seconds:.2f} s"
        value = float(self.buffer[self.diverged_at, 0])
        if self.diverged_at == 0:
            return f"the loss is {value} at initialisation; check the loss's parameters"
        return f"the training loss became {value} at epoch {self.diverged_at}; try a smaller learning rate"


def fit(
    model: nn.Module,
    loss: str | LossSpec | BoundLoss,
    data: Dataset,
    optimizer: OptimizerName = "adam",
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    epochs: int = 200,
    batch_size: int | None = None,
    seed: int = 0,
    snapshots: int = 20,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    *,
    rho: float = 0.05,
    momentum: float = 0.9,
    on_snapshot: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> History:
    """Train a copy of model on data.X_train / data.y_train with loss; per-epoch metrics and snapshots.

    batch_size None trains full batch; seed drives the minibatch order (the initialisation is the model's).
    Every epoch, one no-grad forward of the train and test sets in eval mode records: the loss on the whole
    training set, accuracy on the given labels, accuracy on the noisy subset against its noisy labels
    (memorisation), test accuracy, test NLL and test ECE (see History for regression). snapshots parameter
    dicts are taken at evenly spaced epochs including 0. A non-finite training loss stops the run:
    History.diverged is True and the message says when. The model passed in is never modified; rebuild the
    trained one with `with_state(model, history.final_state)`. progress(fraction, message) is called at most
    about 100 times. on_snapshot(epoch, parameters) is called with every snapshot as it is taken (a live
    view). rho is SAM's neighbourhood radius, momentum that of "momentum" and "sam". The context a
    loss declares (class counts, feature norms, a running target) comes from lossviz.context.
    """
    recipe = Recipe(optimizer, lr, weight_decay, epochs, batch_size, seed, snapshots, rho, momentum)
    bound = make(loss)
    check_compatible(bound, data)
    dev = resolve_device(device)
    start = time.perf_counter()

    net = copy.deepcopy(model).to(dev).train()
    split = _Split.of(data, bound.task == "regression", dev)
    _check_outputs(net, bound, data, split.X_train)
    context = TrainingContext(bound, split.y_train, data.n_classes)
    step = _step_function(net, bound, split, context, recipe, dev)
    record = _Recorder(net, bound, split, context, recipe.epochs)
    guard = _Guard(net, record.buffer)
    snapshot_at = set(_snapshot_epochs(recipe.epochs, recipe.snapshots))
    taken: list[tuple[int, dict[str, np.ndarray]]] = []
    generator = torch.Generator().manual_seed(recipe.seed)
    full_batch = recipe.batch_size is None or recipe.batch_size >= split.n_train
    # host syncs cost nothing on the CPU, so check every epoch there; on accelerators about 100 times
    every = max(1, recipe.epochs // _MAX_PROGRESS_CALLS)
    check_every = 1 if dev.type == "cpu" else every

    for epoch in range(recipe.epochs + 1):
        if epoch > 0 and full_batch:
            step(None)
        elif epoch > 0:
            order = torch.randperm(split.n_train, generator=generator).to(dev)
            for idx in order.split(recipe.batch_size):  # type: ignore[arg-type]
                if len(idx) > 1 or split.n_train == 1:  # a batch of one breaks batch norm: drop the rest
                    step(idx)
        record(epoch)
        if epoch in snapshot_at:
            taken.append((epoch, {n: p.detach().cpu().numpy().copy() for n, p in net.named_parameters()}))
            if on_snapshot is not None:
                on_snapshot(epoch, taken[-1][1])
        if (epoch % check_every == 0 or epoch == recipe.epochs) and not guard.check(epoch):
            break
        if progress is not None and epoch > 0 and (epoch % every == 0 or epoch == recipe.epochs):
            progress(
                epoch / recipe.epochs,
                f"epoch {epoch}/{recipe.epochs}: loss {float(record.buffer[epoch, 0]):.4g}",
            )

    seconds = time.perf_counter() - start
    message = guard.message(recipe.epochs, seconds)
    if progress is not None and guard.diverged_at is not None:
        progress(1.0, message)
    keep = recipe.epochs + 1 if guard.diverged_at is None else max(guard.diverged_at, 1)  # finite rows
    table = record.buffer[:keep].cpu().double().numpy()
    kept = [(e, s) for e, s in taken if e < keep]
    return History(
        loss_name=bound.name,
        loss_params=dict(bound.params),
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        batch_size=None if full_batch else recipe.batch_size,
        seed=recipe.seed,
        epochs=np.arange(keep),
        **{name: table[:, i].copy() for i, name in enumerate(_METRICS)},
        snapshot_epochs=np.array([e for e, _ in kept], dtype=np.int64),
        snapshots=tuple(s for _, s in kept),
        final_state={k: v.cpu().numpy() for k, v in guard.last_good.items()},
        diverged=guard.diverged_at is not None,
        message=message,
        seconds=seconds,
    )


def with_state(model: nn.Module, state: Mapping[str, np.ndarray | torch.Tensor]) -> nn.Module:
    """A copy of model (in eval mode) carrying state: a History's final_state or one of its snapshots."""
    trained = copy.deepcopy(model)
    current = trained.state_dict()
    unknown = sorted(set(state) - set(current))
    if unknown:
        raise ValueError(f"state has keys the model lacks: {unknown}; valid: {sorted(current)}")
    loaded = {
        k: torch.as_tensor(np.asarray(v)).to(current[k].device, current[k].dtype) for k, v in state.items()
    }
    trained.load_state_dict({**current, **loaded})
    return trained.eval()


def predict_proba(
    model: nn.Module,
    X: np.ndarray,
    task: str,
    state: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    *,
    batch: int = 65536,
) -> np.ndarray:
    """(N, K) class probabilities (or (N,) regression predictions) in eval mode, optionally with weights.

    state (a snapshot or final_state) is applied with torch.func.functional_call: the model is not modified.
    """
    if task not in ("regression", "binary", "multiclass"):
        raise ValueError(f"task must be one of ['regression', 'binary', 'multiclass'], got {task!r}")
    param = next(iter(model.parameters()), None)
    dev = param.device if param is not None else torch.device("cpu")
    weights: dict[str, Any] = {}
    if state is not None:
        weights = {k: torch.as_tensor(np.asarray(v), device=dev) for k, v in state.items()}
    X_t = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=dev)
    evaluator = copy.deepcopy(model).eval() if model.training else model
    parts = []
    with torch.no_grad():
        for chunk in X_t.split(batch):
            out = functional_call(evaluator, weights, (chunk,)) if weights else evaluator(chunk)
            parts.append(out.reshape(-1) if task == "regression" else probabilities_tensor(out, task))
    return torch.cat(parts).cpu().numpy()
