"""Train a small model with any registered loss, recording per-epoch metrics and parameter snapshots.

SAM follows "Sharpness-Aware Minimization for Efficiently Improving Generalization" (Foret et al., 2021);
ELR's target is the running average of "Early-Learning Regularization Prevents Memorization of Noisy Labels".
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

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
) -> History:
    """Train a copy of model on data.X_train / data.y_train with loss; per-epoch metrics and snapshots.

    batch_size None trains full batch; seed drives the minibatch order (the initialisation is the model's).
    Every epoch, one no-grad forward of the train and test sets in eval mode records: the loss on the whole
    training set, accuracy on the given labels, accuracy on the noisy subset against its noisy labels
    (memorisation), test accuracy, test NLL and test ECE (see History for regression). snapshots parameter
    dicts are taken at evenly spaced epochs including 0. A non-finite training loss stops the run:
    History.diverged is True and the message says when. The model passed in is never modified; rebuild the
    trained one with `with_state(model, history.final_state)`. progress(fraction, message) is called at most
    about 100 times. rho is SAM's neighbourhood radius, momentum that of "momentum" and "sam".
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    lr = _check_number("lr", lr, 0.0, strict=True)
    weight_decay = _check_number("weight_decay", weight_decay, 0.0)
    rho = _check_number("rho", rho, 0.0, strict=True)
    momentum = _check_number("momentum", momentum, 0.0)
    epochs = _check_int("epochs", epochs, 1)  # type: ignore[assignment]
    batch_size = _check_int("batch_size", batch_size, 1, allow_none=True)
    snapshots = _check_int("snapshots", snapshots, 0)  # type: ignore[assignment]
    seed = _check_int("seed", seed, 0)  # type: ignore[assignment]
    bound = make(loss)
    check_compatible(bound, data)
    dev = resolve_device(device)
    start = time.perf_counter()

    net = copy.deepcopy(model).to(dev).train()
    params = [p for p in net.parameters() if p.requires_grad]
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    regression = bound.task == "regression"
    X_train = torch.as_tensor(data.X_train, dtype=torch.float32, device=dev)
    X_test = torch.as_tensor(data.X_test, dtype=torch.float32, device=dev)
    X_all = torch.cat([X_train, X_test])  # one eval forward per epoch for both splits
    n_train = len(X_train)
    y_dtype = torch.float32 if regression else torch.int64
    y_train = torch.as_tensor(data.y_train, dtype=y_dtype, device=dev)
    y_test = torch.as_tensor(data.y_test, dtype=y_dtype, device=dev)
    noisy = torch.as_tensor(data.noisy_mask, dtype=torch.bool, device=dev)
    has_noisy = bool(data.noisy_mask.any()) and not regression

    expected = n_outputs(bound.task, data.n_classes)
    net.eval()  # a probe forward that leaves batch-norm statistics alone
    try:
        with torch.no_grad():
            probe = net(X_train[:2])
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

    # context data some losses need: class counts (VS/LDAM, ...) and ELR's running target
    context: dict[str, torch.Tensor] = {}
    if "class_counts" in bound.spec.context:
        context["class_counts"] = torch.bincount(y_train, minlength=max(data.n_classes, 2)).float()
    use_ema = "ema_target" in bound.spec.context
    beta = float(bound.params.get("beta", 0.7))
    ema = torch.zeros(n_train, max(data.n_classes, 2), device=dev) if use_ema else None  # (N, K)

    opt = _make_optimizer(optimizer, params, lr, weight_decay, momentum, dev)
    # eval/train switches walk every module; skip them when no module behaves differently in eval mode
    mode_dependent = any(isinstance(m, _MODE_DEPENDENT) for m in net.modules())
    generator = torch.Generator().manual_seed(seed)
    full_batch = batch_size is None or batch_size >= n_train

    def batch_context(idx: torch.Tensor | None, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        if ema is None:
            return context
        # ELR: t_i <- beta t_i + (1 - beta) p_i for the samples in the batch, before the loss uses it
        p = probabilities_tensor(outputs.detach(), bound.task)
        if idx is None:
            ema.mul_(beta).add_(p, alpha=1 - beta)
            return {**context, "ema_target": ema}
        ema[idx] = beta * ema[idx] + (1 - beta) * p
        return {**context, "ema_target": ema[idx]}

    def step(idx: torch.Tensor | None) -> None:
        xb, yb = (X_train, y_train) if idx is None else (X_train[idx], y_train[idx])
        outputs = net(xb)
        ctx = batch_context(idx, outputs)
        value = bound(outputs, yb, **ctx)
        if optimizer != "sam":
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            return
        # SAM: ascend to w + rho g/||g||, take the gradient there, apply it at w (functional: w untouched)
        grads = torch.autograd.grad(value, params)
        scale = rho / (torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) + 1e-12)
        shifted = {
            n: (p.detach() + scale * g).requires_grad_(True)
            for n, p, g in zip(names, params, grads, strict=False)
        }
        sharp = bound(functional_call(net, shifted, (xb,)), yb, **ctx)
        for p, g in zip(params, torch.autograd.grad(sharp, list(shifted.values())), strict=True):
            p.grad = g
        opt.step()

    buffer = torch.full((epochs + 1, len(_METRICS)), math.nan, device=dev)  # (E+1, 6) filled on the device
    nan = torch.tensor(math.nan, device=dev)

    def evaluate(epoch: int) -> None:
        if mode_dependent:
            net.eval()
        with torch.no_grad():
            out = net(X_all)
            out_train, out_test = out[:n_train], out[n_train:]
            ctx = {**context, "ema_target": ema} if ema is not None else context
            train_loss = bound(out_train, y_train, **ctx)
            if regression:
                pred_train, pred_test = out_train.reshape(-1), out_test.reshape(-1)
                row = [
                    train_loss,
                    r2_tensor(pred_train, y_train),
                    nan,
                    r2_tensor(pred_test, y_test),
                    (pred_test - y_test).pow(2).mean(),
                    nan,
                ]
            else:
                probs_test = probabilities_tensor(out_test, bound.task)
                if bound.task == "binary":
                    hit_train = (out_train.reshape(-1) > 0).long() == y_train
                    logit = out_test.reshape(-1)
                    test_nll = nn.functional.binary_cross_entropy_with_logits(logit, y_test.float())
                else:
                    hit_train = out_train.argmax(1) == y_train
                    test_nll = nn.functional.cross_entropy(out_test, y_test)
                hits = hit_train.float()
                row = [
                    train_loss,
                    hits.mean(),
                    hits[noisy].mean() if has_noisy else nan,
                    (probs_test.argmax(1) == y_test).float().mean(),
                    test_nll,
                    ece_tensor(probs_test, y_test),
                ]
            buffer[epoch] = torch.stack(row).float()
        if mode_dependent:
            net.train()

    snapshot_at = set(_snapshot_epochs(epochs, snapshots))
    snapshot_epochs: list[int] = []
    snapshot_list: list[dict[str, torch.Tensor]] = []

    def take_snapshot(epoch: int) -> None:
        snapshot_epochs.append(epoch)
        snapshot_list.append({n: p.detach().clone() for n, p in zip(names, params, strict=False)})

    # host syncs cost nothing on the CPU, so check every epoch there; on accelerators about 100 times
    every = max(1, epochs // _MAX_PROGRESS_CALLS)
    check_every = 1 if dev.type == "cpu" else every
    last_good = {k: v.detach().clone() for k, v in net.state_dict().items()}  # the last finite state
    live = [net.state_dict()[k] for k in last_good]
    diverged_at: int | None = None

    evaluate(0)
    if 0 in snapshot_at:
        take_snapshot(0)
    checked = 0
    for epoch in range(1, epochs + 1):
        if full_batch:
            step(None)
        else:
            order = torch.randperm(n_train, generator=generator).to(dev)
            for idx in order.split(batch_size):  # type: ignore[arg-type]
                if len(idx) > 1 or n_train == 1:  # a batch of one breaks batch norm: drop the remainder
                    step(idx)
        evaluate(epoch)
        if epoch in snapshot_at:
            take_snapshot(epoch)
        if epoch % check_every == 0 or epoch == epochs:
            window = buffer[checked : epoch + 1, 0]
            if not bool(torch.isfinite(window).all()):
                bad = int(torch.nonzero(~torch.isfinite(window))[0, 0]) + checked
                diverged_at = bad
                break
            checked = epoch + 1
            with torch.no_grad():
                for good, current in zip(last_good.values(), live, strict=True):
                    good.copy_(current)
        if progress is not None and (epoch % every == 0 or epoch == epochs):
            progress(epoch / epochs, f"epoch {epoch}/{epochs}: loss {float(buffer[epoch, 0]):.4g}")
    if diverged_at is not None and diverged_at == 0:
        message = f"the loss is {float(buffer[0, 0])} at initialisation; check the loss's parameters"
    elif diverged_at is not None:
        value = float(buffer[diverged_at, 0])
        message = (
            f"diverged at epoch {diverged_at}: the training loss became {value}; try a smaller learning rate"
        )
    else:
        message = ""

    keep = epochs + 1 if diverged_at is None else max(diverged_at, 1)  # rows 0..keep-1 are finite
    table = buffer[:keep].cpu().double().numpy()
    kept_snapshots = [(e, s) for e, s in zip(snapshot_epochs, snapshot_list, strict=False) if e < keep]
    seconds = time.perf_counter() - start
    if not message:
        message = f"trained {epochs} epochs in {seconds:.2f} s"
    if progress is not None and diverged_at is not None:
        progress(1.0, message)
    metric_columns = {name: table[:, i].copy() for i, name in enumerate(_METRICS)}
    return History(
        loss_name=bound.name,
        loss_params=dict(bound.params),
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=None if full_batch else batch_size,
        seed=seed,
        epochs=np.arange(keep),
        **metric_columns,
        snapshot_epochs=np.array([e for e, _ in kept_snapshots], dtype=np.int64),
        snapshots=tuple({n: t.cpu().numpy() for n, t in s.items()} for _, s in kept_snapshots),
        final_state={k: v.cpu().numpy() for k, v in last_good.items()},
        diverged=diverged_at is not None,
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
