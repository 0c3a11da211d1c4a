"""Train a small model with any registered loss, recording per-epoch metrics and parameter snapshots.

SAM follows "Sharpness-Aware Minimization for Efficiently Improving Generalization" (Foret et al., 2021);
ELR's target is the running average of "Early-Learning Regularization Prevents Memorization of Noisy Labels";
embedding runs train on augmented views (SimCLR / SupCon) and record alignment and uniformity (Wang & Isola,
"Understanding Contrastive Representation Learning through Alignment and Uniformity on the Hypersphere").
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
from lossviz.data import MAX_AUGMENT, augment, augmentation_for
from lossviz.device import resolve_device
from lossviz.losses import BoundLoss, LossSpec, make, n_outputs
from lossviz.metrics import ece_tensor, probabilities_tensor, r2_tensor
from lossviz.results import Dataset, History

OptimizerName = Literal["sgd", "momentum", "adam", "adamw", "sam"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam", "adamw", "sam")
Progress = Callable[[float, str], None]
Positives = Literal["class", "instance"]
POSITIVES: tuple[str, ...] = ("class", "instance")

_MODE_DEPENDENT = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)
_METRICS = ("train_loss", "train_acc", "noisy_acc", "test_acc", "test_nll", "ece", "alignment", "uniformity")
_ALPHA, _T = 2.0, 2.0  # Wang & Isola's alignment power and uniformity sharpness for the recorded metrics
_MAX_PROGRESS_CALLS = 100


def check_compatible(loss: BoundLoss, data: Dataset) -> None:
    """ValueError unless the loss's task fits the dataset (a multiclass loss also fits a 2-class dataset;
    an embedding loss fits any classification dataset: its labels give the positives and the accuracy)."""
    if loss.task not in ("regression", "binary", "multiclass", "embedding"):
        raise ValueError(
            f"fit trains regression, binary, multiclass and embedding losses; {loss.name!r} is {loss.task}"
        )
    if loss.task == "embedding":
        if data.task == "regression" or data.n_classes < 2:
            raise ValueError(
                f"embedding loss {loss.name!r} needs a classification dataset (its labels are the classes "
                f"the embeddings are scored on); dataset {data.name!r} is {data.task}"
            )
        return
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


@dataclass(frozen=True)
class Views:
    """How an embedding loss's batches are made. Defaults: two views (as SimCLR and SupCon), strength 1.

    count: augmented views of each instance per step, drawn by lossviz.data.augment at strength (strength 0
    makes them exact copies; the kind follows the dataset: affine jitter for digits, point jitter otherwise).
    positives "class": views sharing a class label are positives (supervised, SupCon-style); "instance": only
    the views of one instance are (self-supervised, SimCLR-style), which needs count >= 2.
    """

    count: int = 2
    strength: float = 1.0
    positives: Positives = "class"

    def __post_init__(self) -> None:
        _check_int("views.count", self.count, 1)
        if self.count > 8:
            raise ValueError(f"views.count must be an integer in [1, 8], got {self.count!r}")
        strength = _check_number("views.strength", self.strength, 0.0)
        if strength > MAX_AUGMENT:
            raise ValueError(f"views.strength must be in [0, {MAX_AUGMENT:g}], got {self.strength!r}")
        object.__setattr__(self, "strength", strength)
        if self.positives not in POSITIVES:
            raise ValueError(f"views.positives must be one of {list(POSITIVES)}, got {self.positives!r}")
        if self.positives == "instance" and self.count < 2:
            raise ValueError(f"views.count must be >= 2 for instance positives, got {self.count}")


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
    net.eval()
    try:
        with torch.no_grad():
            probe = net(X[:2])
    except RuntimeError as err:  # e.g. a shape mismatch in the first layer
        raise ValueError(
            f"the model cannot take dataset {data.name!r}'s inputs of shape (N, {data.n_features}): {err}"
        ) from None
    net.train()
    if bound.task == "embedding":
        if probe.dim() != 2 or probe.shape[1] < 2:
            raise ValueError(
                f"model outputs shape {tuple(probe.shape[1:])} but embedding loss {bound.name!r} needs "
                "(N, D) embeddings with D >= 2; build the model with n_outputs=D and head='sphere'"
            )
        return
    expected = n_outputs(bound.task, data.n_classes)
    if probe.dim() != 2 or probe.shape[1] != expected:
        raise ValueError(
            f"model outputs shape {tuple(probe.shape[1:])} but loss {bound.name!r} ({bound.task}) on "
            f"dataset {data.name!r} needs (N, {expected}); build the model with n_outputs={expected}"
        )


# A step's batch: (loss value, the model inputs, score: the loss of other outputs on the same batch). SAM
# scores the outputs at shifted weights with the same targets and context.
Batch = tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]


class _Supervised:
    """Batches of (X, y): the loss on the model's outputs, with the context the loss declares."""

    def __init__(self, bound: BoundLoss, split: _Split, context: TrainingContext) -> None:
        self.bound, self.split, self.context = bound, split, context

    def __call__(self, net: nn.Module, idx: torch.Tensor | None) -> Batch:
        split = self.split
        xb, yb = (split.X_train, split.y_train) if idx is None else (split.X_train[idx], split.y_train[idx])
        outputs, features = self.context.forward(net, xb)
        ctx = self.context.batch(idx, outputs, features)

        def score(out: torch.Tensor) -> torch.Tensor:
            return self.bound(out, yb, **ctx)

        return score(outputs), xb, score


def _unit(outputs: torch.Tensor) -> torch.Tensor:
    """Model outputs projected onto the unit sphere (a no-op, to rounding, after a sphere head)."""
    return nn.functional.normalize(outputs, dim=1)  # (N, D)


class _ViewMaker:
    """Augmented views of instances and their labels, view-major: rows [vB, (v+1)B) hold view v of all B."""

    def __init__(self, data: Dataset, views: Views, dev: torch.device) -> None:
        self.kind = augmentation_for(data)
        self.centre = data.X_train.mean(0)  # rotations and scalings of points turn about the data's centre
        self.views, self.dev = views, dev

    def inputs(self, X: np.ndarray, rng: np.random.Generator, count: int | None = None) -> torch.Tensor:
        """(count * B, D) views of the B rows of X (count defaults to the run's views)."""
        count = self.views.count if count is None else count
        strength, centre = self.views.strength, self.centre
        drawn = [augment(X, self.kind, rng, strength, centre=centre) for _ in range(count)]
        return torch.as_tensor(np.concatenate(drawn), device=self.dev)

    def labels(self, y: torch.Tensor) -> torch.Tensor:
        """(count * B,) class labels, or instance ids 0..B-1, repeated for every view."""
        ids = y if self.views.positives == "class" else torch.arange(len(y), device=y.device)
        return ids.repeat(self.views.count)


class _Embedding:
    """Batches of an embedding loss: fresh views of the batch's instances, labelled by class or instance.

    The loss sees the unit-normalised embeddings (count * B, D) of every view at once, so a batch-level loss
    gets the whole batch.
    """

    def __init__(
        self, bound: BoundLoss, split: _Split, context: TrainingContext, maker: _ViewMaker, seed: int
    ) -> None:
        self.bound, self.context, self.maker = bound, context, maker
        self.X_train = split.X_train.cpu().numpy()  # augment works in numpy on the host
        self.y_train = split.y_train
        self.rng = np.random.default_rng([seed, 1])  # the training views; the minibatch order is separate

    def __call__(self, net: nn.Module, idx: torch.Tensor | None) -> Batch:
        X = self.X_train if idx is None else self.X_train[idx.cpu().numpy()]
        xb = self.maker.inputs(X, self.rng)
        labels = self.maker.labels(self.y_train if idx is None else self.y_train[idx])
        outputs, features = self.context.forward(net, xb)
        ctx = self.context.full(features)

        def score(out: torch.Tensor) -> torch.Tensor:
            return self.bound(_unit(out), labels, **ctx)

        return score(outputs), xb, score


def _step_function(
    net: nn.Module,
    batches: Callable[[nn.Module, torch.Tensor | None], Batch],
    recipe: Recipe,
    dev: torch.device,
) -> Callable[[torch.Tensor | None], None]:
    """One optimisation step on a batch of indices (None: the full batch): plain, or SAM's two-pass step."""
    params = [p for p in net.parameters() if p.requires_grad]
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    opt = _make_optimizer(recipe.optimizer, params, recipe.lr, recipe.weight_decay, recipe.momentum, dev)

    def plain(idx: torch.Tensor | None) -> None:
        value, _, _ = batches(net, idx)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    def sam(idx: torch.Tensor | None) -> None:
        # ascend to w + rho g/||g||, take the gradient there, apply it at w (functional: w untouched)
        value, xb, score = batches(net, idx)
        grads = torch.autograd.grad(value, params)
        scale = recipe.rho / (torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) + 1e-12)
        shifted = {
            n: (p.detach() + scale * g).requires_grad_(True)
            for n, p, g in zip(names, params, grads, strict=True)
        }
        sharp = score(functional_call(net, shifted, (xb,)))
        for p, g in zip(params, torch.autograd.grad(sharp, list(shifted.values())), strict=True):
            p.grad = g
        opt.step()

    return sam if recipe.optimizer == "sam" else plain


class _Recorder:
    """Per-epoch metrics in one (E+1, 8) buffer on the device: a no-grad eval forward of both splits."""

    def __init__(
        self, net: nn.Module, bound: BoundLoss, split: _Split, context: TrainingContext, epochs: int
    ) -> None:
        self.net, self.bound, self.split, self.context = net, bound, split, context
        self.buffer = torch.full((epochs + 1, len(_METRICS)), math.nan, device=split.X_train.device)
        self.nan = torch.tensor(math.nan, device=split.X_train.device)
        # eval/train switches walk every module; skip them when no module behaves differently in eval mode
        self.mode_dependent = any(isinstance(m, _MODE_DEPENDENT) for m in net.modules())

    def __call__(self, epoch: int) -> None:
        if self.mode_dependent:
            self.net.eval()
        with torch.no_grad():
            self.buffer[epoch] = torch.stack(self._row()).float()
        if self.mode_dependent:
            self.net.train()

    def _row(self) -> list[torch.Tensor]:
        """One value per name in _METRICS."""
        out, features = self.context.forward(self.net, self.split.X_all)
        n = self.split.n_train
        train_features = features[:n] if features is not None else None
        ctx = self.context.full(train_features)
        return [*self._supervised(out[:n], out[n:], ctx), self.nan, self.nan]  # no alignment, uniformity

    def _supervised(self, out_train: torch.Tensor, out_test: torch.Tensor, ctx: dict) -> list[torch.Tensor]:
        split, bound, nan = self.split, self.bound, self.nan
        train_loss = bound(out_train, split.y_train, **ctx)
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


class _EmbeddingRecorder(_Recorder):
    """Per-epoch metrics of an embedding run, from one eval forward of fixed inputs drawn at the start.

    train_loss: the loss on views of the training set drawn once, in fixed batches of the training batch size
    (one batch when training is full batch) labelled as in training, averaged by instances: the objective the
    steps minimise, at the cost of an epoch's forward passes (pairwise losses never see more rows than in a
    step). train_acc, noisy_acc, test_acc: nearest-class-mean accuracy of the clean embeddings, the class
    means taken from the training split's embeddings under its given labels. alignment: E||f(x) - f(x')||^2
    over two views of each test point; uniformity: log E exp(-2 ||f(x) - f(y)||^2) over pairs of clean test
    embeddings. test_nll and ece are NaN.
    """

    def __init__(
        self,
        net: nn.Module,
        bound: BoundLoss,
        split: _Split,
        context: TrainingContext,
        epochs: int,
        maker: _ViewMaker,
        seed: int,
        n_classes: int,
        batch_size: int,
    ) -> None:
        super().__init__(net, bound, split, context, epochs)
        rng = np.random.default_rng([seed, 2])  # evaluation views: fixed for the run, apart from training's
        n = split.n_train
        train_views = maker.inputs(split.X_train.cpu().numpy(), rng)  # (V n, D) view-major
        n_test = len(split.X_all) - n
        test_pairs = maker.inputs(split.X_all[n:].cpu().numpy(), rng, count=2)  # (2M, D)
        self.inputs = torch.cat([split.X_all, train_views, test_pairs])  # one forward per epoch
        self.sizes = [n, n_test, len(train_views), n_test, n_test]
        self.n_classes = max(n_classes, 2)
        # fixed batches of instances in a fixed random order (an imbalanced split is sorted by class)
        order = torch.as_tensor(rng.permutation(n), device=split.X_train.device)
        chunks = [c for c in order.split(batch_size) if len(c) > 1 or n == 1]  # as training drops them
        self.batches = [
            (torch.cat([v * n + c for v in range(maker.views.count)]), maker.labels(split.y_train[c]))
            for c in chunks
        ]
        sizes = torch.tensor([len(c) for c in chunks], dtype=torch.float32, device=split.X_train.device)
        self.weights = sizes / sizes.sum()

    def _row(self) -> list[torch.Tensor]:
        split, nan = self.split, self.nan
        out, features = self.context.forward(self.net, self.inputs)
        z_train, z_test, z_views, z_a, z_b = _unit(out).split(self.sizes)
        f_views = features.split(self.sizes)[2] if features is not None else None
        train_loss = (
            torch.stack([self._loss(z_views, f_views, *batch) for batch in self.batches]) * self.weights
        ).sum()
        means, present = _class_means(z_train, split.y_train, self.n_classes)
        hits = (_nearest_mean(z_train, means, present) == split.y_train).float()
        return [
            train_loss,
            hits.mean(),
            hits[split.noisy].mean() if split.has_noisy else nan,
            (_nearest_mean(z_test, means, present) == split.y_test).float().mean(),
            nan,
            nan,
            _alignment(z_a, z_b),
            _uniformity(z_test),
        ]

    def _loss(
        self, z: torch.Tensor, features: torch.Tensor | None, rows: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        context = self.context.full(features[rows] if features is not None else None)
        return self.bound(z[rows], labels, **context)


def _class_means(z: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """((K, D) mean embedding of each class, (K,) whether the class has any sample)."""
    sums = torch.zeros(k, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, y, z)
    counts = torch.bincount(y, minlength=k)[:k]
    return sums / counts.clamp_min(1)[:, None].to(z.dtype), counts > 0


def _nearest_mean(z: torch.Tensor, means: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(N,) the class whose mean is nearest in Euclidean distance (classes without samples never win)."""
    distances = torch.cdist(z, means).masked_fill(~present[None, :], math.inf)  # (N, K)
    return distances.argmin(1)


def _alignment(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Wang & Isola's alignment E||a_i - b_i||^alpha of paired unit embeddings (alpha = 2)."""
    return (a - b).norm(dim=1).pow(_ALPHA).mean()


def _uniformity(z: torch.Tensor) -> torch.Tensor:
    """Wang & Isola's uniformity log E_{i != j} exp(-t ||z_i - z_j||^2) of unit embeddings (t = 2)."""
    n = len(z)
    if n < 2:
        return torch.tensor(math.nan, device=z.device)
    squared = torch.pdist(z).pow(2)  # (n (n - 1) / 2,) each unordered pair once: the same mean as i != j
    return torch.logsumexp(-_T * squared, 0) - math.log(len(squared))


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


def _batches_and_recorder(
    net: nn.Module,
    bound: BoundLoss,
    data: Dataset,
    split: _Split,
    context: TrainingContext,
    recipe: Recipe,
    views: Views | None,
    dev: torch.device,
) -> tuple[Callable[[nn.Module, torch.Tensor | None], Batch], _Recorder]:
    """What a step trains on and what each epoch records: (X, y) batches, or views for embedding losses."""
    if bound.task != "embedding":
        return _Supervised(bound, split, context), _Recorder(net, bound, split, context, recipe.epochs)
    maker = _ViewMaker(data, views if views is not None else Views(), dev)
    batch = min(recipe.batch_size or split.n_train, split.n_train)
    record = _EmbeddingRecorder(
        net, bound, split, context, recipe.epochs, maker, recipe.seed, data.n_classes, batch
    )
    return _Embedding(bound, split, context, maker, recipe.seed), record


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
    views: Views | None = None,
    supplied: Mapping[str, np.ndarray | torch.Tensor] | None = None,
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
    loss declares (class counts, feature norms, a running target) comes from lossviz.context; per-sample
    data from elsewhere (a teacher's logits of the training inputs, (N, K)) is handed in as supplied.

    Embedding losses (the model outputs (N, D), normalised onto the unit sphere before the loss) train on
    views (default Views()): each step draws views.count augmented views of every instance in the batch and
    labels them by class or by instance id; the metrics are then those of _EmbeddingRecorder (nearest-class-
    mean accuracy, alignment and uniformity). For the other tasks views is ignored and alignment and
    uniformity are NaN.
    """
    recipe = Recipe(optimizer, lr, weight_decay, epochs, batch_size, seed, snapshots, rho, momentum)
    bound = make(loss)
    check_compatible(bound, data)
    dev = resolve_device(device)
    start = time.perf_counter()

    net = copy.deepcopy(model).to(dev).train()
    split = _Split.of(data, bound.task == "regression", dev)
    _check_outputs(net, bound, data, split.X_train)
    context = TrainingContext(bound, split.y_train, data.n_classes, supplied)
    batches, record = _batches_and_recorder(net, bound, data, split, context, recipe, views, dev)
    step = _step_function(net, batches, recipe, dev)
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
    if task == "regression":
        return _evaluate(model, X, state, batch, lambda out: out.reshape(-1))
    return _evaluate(model, X, state, batch, lambda out: probabilities_tensor(out, task))


def embed(
    model: nn.Module,
    X: np.ndarray,
    state: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    *,
    batch: int = 65536,
) -> np.ndarray:
    """(N, D) unit-norm embeddings of X by an embedding model in eval mode, optionally with other weights.

    state (a snapshot or final_state) is applied with torch.func.functional_call: the model is not modified.
    The outputs are normalised as training normalises them, so any head gives points on the sphere.
    """
    return _evaluate(model, X, state, batch, _unit)


def _evaluate(
    model: nn.Module,
    X: np.ndarray,
    state: Mapping[str, np.ndarray | torch.Tensor] | None,
    batch: int,
    transform: Callable[[torch.Tensor], torch.Tensor],
) -> np.ndarray:
    """transform(model outputs) for X in chunks of batch rows, in eval mode, with state's weights if given."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
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
            parts.append(transform(out))
    return torch.cat(parts).cpu().numpy()
