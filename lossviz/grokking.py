"""Grokking on modular addition: a small embedding MLP, full batch; softmax or StableMax, AdamW or ⊥AdamW.

Follows "Grokking at the Edge of Numerical Stability" (Prieto, Barsbey, Mediano & Birdal, 2025): Softmax
Collapse (the loss rounding to exactly zero in floating point), StableMax, and the ⊥Grad projection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lossviz import losses
from lossviz.device import resolve_device
from lossviz.results import GrokkingRun

GrokkingLoss = Literal["cross_entropy", "stablemax_ce"]
GrokkingOptimizer = Literal["adamw", "perp_adamw"]
GrokkingDtype = Literal["float32", "float64"]
Combine = Literal["concat", "sum"]
LOSSES: tuple[str, ...] = ("cross_entropy", "stablemax_ce")
OPTIMIZERS: tuple[str, ...] = ("adamw", "perp_adamw")
DTYPES: tuple[str, ...] = ("float32", "float64")
COMBINES: tuple[str, ...] = ("concat", "sum")
_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
Progress = Callable[[float, str], None]
# (epochs, train accuracy, test accuracy) recorded so far: called after each log-spaced record
Recorded = Callable[[np.ndarray, np.ndarray, np.ndarray], None]

# Power et al. (2022) and Prieto et al. train on 30-40% of the p^2 pairs: enough that a general solution
# exists to be found, few enough that memorising comes first and generalising much later (the delay that is
# grokking). Small p has few pairs in all, so below p ~ 40 this MLP needs 0.5-0.6 to grok within a minute.
DEFAULT_TRAIN_FRACTION = 0.4
# Prieto et al.'s AdamW settings (their code's defaults): beta2 = 0.99 and an epsilon of 1e-25, so that Adam
# keeps normalising the tiny gradients of nearly collapsed samples instead of damping them.
DEFAULT_BETAS = (0.9, 0.99)
DEFAULT_EPS = 1e-25
_PARALLEL_TOLERANCE = 64  # ulps of ||g|| below which g_perp counts as rounding noise (g parallel to w)

# Settings for the page, measured with one torch thread on a 2-core CPU (seed 0 unless a range is given;
# memorised = first logged epoch with train accuracy 1, grokked = first with test accuracy >= 0.9).
PRESETS: dict[str, dict[str, Any]] = {
    # Delayed generalisation with weight decay: memorised at ~50, grokked at 960-1900 (seeds 0-2); 4.6 s.
    "grokking_weight_decay": dict(
        p=31, train_fraction=0.6, loss="cross_entropy", dtype="float32", optimizer="adamw", lr=5e-3,
        weight_decay=1.0, epochs=4000,
    ),
    # The literature's fraction at a larger p: memorised at 79-85, grokked at 1570-1850 (seeds 0-2); 6.5 s.
    "grokking_weight_decay_p59": dict(
        p=59, train_fraction=0.4, loss="cross_entropy", dtype="float32", optimizer="adamw", lr=5e-3,
        weight_decay=1.0, epochs=3000,
    ),
    # Softmax Collapse: no weight decay, float32; from epoch ~1400 the loss of up to 81% of the training
    # samples rounds to exactly 0, the logit norm jumps (55 -> 330), test accuracy stays 0; 1.1 s.
    "softmax_collapse": dict(
        p=23, train_fraction=0.4, loss="cross_entropy", dtype="float32", optimizer="adamw", lr=1e-2,
        weight_decay=0.0, epochs=2000,
    ),
    # The same run in float64: identical until float32 collapses, then no collapse in 2000 epochs (it does
    # collapse by 20,000, and does not grok either way); 1.7 s.
    "softmax_collapse_float64": dict(
        p=23, train_fraction=0.4, loss="cross_entropy", dtype="float64", optimizer="adamw", lr=1e-2,
        weight_decay=0.0, epochs=2000,
    ),
    # StableMax without weight decay: no collapse in float32 while its logits grow to ~1e4 (no grokking in
    # 10,000 epochs at p = 59 either, where float32 StableMax collapses too once logits reach ~1e6); 1.7 s.
    "stablemax": dict(
        p=23, train_fraction=0.4, loss="stablemax_ce", dtype="float32", optimizer="adamw", lr=1e-2,
        weight_decay=0.0, epochs=2000,
    ),
    # ⊥AdamW without weight decay (Prieto et al.'s Fig. 6 settings): grokked at 266-305 (seeds 0-2); 2.6 s.
    "perp_adamw": dict(
        p=59, train_fraction=0.4, loss="cross_entropy", dtype="float32", optimizer="perp_adamw", lr=5e-3,
        weight_decay=0.0, epochs=1000,
    ),
    # The paper's p = 113 (5,107 training pairs): ⊥AdamW groks at ~300 epochs; 5 s.
    "perp_adamw_p113": dict(
        p=113, train_fraction=0.4, loss="cross_entropy", dtype="float32", optimizer="perp_adamw", lr=5e-3,
        weight_decay=0.0, epochs=500,
    ),
    # Offline: p = 113 with 30% of the pairs (Power et al.'s setting) and weight decay: memorised at 177,
    # grokked at 1700; ~20-30 s.
    "grokking_weight_decay_p113": dict(
        p=113, train_fraction=0.3, loss="cross_entropy", dtype="float32", optimizer="adamw", lr=5e-3,
        weight_decay=1.0, epochs=3000,
    ),
}  # fmt: skip


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_p(p: int) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 3:
        raise ValueError(f"p must be an integer >= 3, got {p!r}")


def _check_fraction(train_fraction: float) -> None:
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")


def modular_addition(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair (a, b) in Z_p x Z_p, row a*p + b, and its label (a + b) mod p: (p^2, 2) and (p^2,) int64."""
    _check_p(p)
    tokens = torch.arange(p)
    a, b = torch.meshgrid(tokens, tokens, indexing="ij")  # (p, p) each
    pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)  # (p^2, 2)
    return pairs, (pairs[:, 0] + pairs[:, 1]) % p


def split_indices(n: int, train_fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(n): round(train_fraction * n) sorted train indices (>= 1 each side)."""
    _check_fraction(train_fraction)
    if n < 2:
        raise ValueError(f"n must be >= 2 to split, got {n}")
    n_train = min(max(round(train_fraction * n), 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return order[:n_train].sort().values, order[n_train:].sort().values


def modular_addition_split(
    p: int, train_fraction: float = DEFAULT_TRAIN_FRACTION, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train pairs, train labels, test pairs, test labels) of a seeded split of modular addition mod p.

    Pairs are embedding indices (N, 2), not one-hot vectors: the model looks both tokens up in one table.
    """
    pairs, labels = modular_addition(p)
    train, test = split_indices(len(labels), train_fraction, seed)
    return pairs[train], labels[train], pairs[test], labels[test]


class ModularMLP(nn.Module):
    """Token embedding (p x d) shared by a and b, concatenated or summed, one ReLU hidden layer, p logits.

    "concat" (the default) keeps the order of a and b, so the model must discover commutativity itself;
    "sum" builds it in, which gives away every test pair whose mirror (b, a) is a training pair.
    """

    def __init__(self, p: int, embed_dim: int = 32, hidden: int = 128, combine: Combine = "concat") -> None:
        super().__init__()
        _check_choice("combine", combine, COMBINES)
        self.combine = combine
        self.embedding = nn.Embedding(p, embed_dim)
        self.hidden = nn.Linear(embed_dim * (2 if combine == "concat" else 1), hidden)
        self.out = nn.Linear(hidden, p, bias=False)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        e = self.embedding(pairs)  # (N, 2, d)
        x = e.flatten(1) if self.combine == "concat" else e.sum(1)  # (N, 2d) or (N, d)
        return self.out(torch.relu(self.hidden(x)))  # (N, p)


def modular_mlp(
    p: int,
    embed_dim: int = 32,
    hidden: int = 128,
    combine: Combine = "concat",
    seed: int = 0,
    dtype: GrokkingDtype = "float32",
) -> ModularMLP:
    """A freshly initialised ModularMLP, identical for the same arguments and seed (global RNG untouched)."""
    _check_p(p)
    _check_choice("dtype", dtype, DTYPES)
    for name, value in (("embed_dim", embed_dim), ("hidden", hidden)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    # torch's default initialisers draw from the global generator: fork it so nothing leaks out
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = ModularMLP(p, embed_dim, hidden, combine)
    return model.to(_TORCH_DTYPES[dtype])


@torch.no_grad()
def perpendicular_gradients(params: Iterable[torch.Tensor]) -> None:
    """⊥Grad in place, per tensor: g <- g_perp * ||g|| / ||g_perp||, g_perp = g - (g.w / ||w||^2) w.

    Removes the gradient's component along the weights (the direction that only scales them up, which is what
    drives the logits towards Softmax Collapse) and restores the gradient's norm. Where g is parallel to w
    (g_perp is rounding noise) there is no perpendicular direction and g becomes 0; where w = 0 g is kept.
    """
    for w in params:
        g = w.grad
        if g is None:
            continue
        # Branch-free (no host sync per tensor): this runs once per tensor per training step.
        w_flat, g_flat = w.reshape(-1), g.reshape(-1)
        w_sq = torch.dot(w_flat, w_flat)
        coef = torch.where(w_sq > 0, torch.dot(g_flat, w_flat) / w_sq, 0.0)  # w = 0: nothing to remove
        g_perp = g - coef * w
        g_norm, perp_norm = torch.linalg.vector_norm(g), torch.linalg.vector_norm(g_perp)
        # Relative to ||g|| (not an absolute epsilon): rounding leaves a residue of ~eps*||g|| when g || w.
        parallel = perp_norm <= _PARALLEL_TOLERANCE * torch.finfo(g.dtype).eps * g_norm
        g.copy_(g_perp * torch.where(parallel, 0.0, g_norm / perp_norm))


class PerpAdamW(torch.optim.AdamW):
    """⊥AdamW (Prieto et al.): AdamW whose gradients pass through perpendicular_gradients before each step.

    The projection happens before the moment estimates, so Adam's moments only ever see ⊥ gradients;
    decoupled weight decay is applied as in AdamW.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            perpendicular_gradients(group["params"])
        super().step()
        return loss


def embedding_spectrum(embedding: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies k = 0..p//2, normalised power) of the DFT along the token axis of a (p, d) embedding.

    Power at k sums |F_k|^2 over the d columns, folded with its mirror p - k (equal for a real matrix), and
    the spectrum sums to 1 (all zeros for an all-zero embedding). An embedding whose columns are
    cos(2 pi k a / p + phase) puts all its power at k; a grokked model concentrates on a few frequencies.
    """
    if isinstance(embedding, torch.Tensor):
        embedding = embedding.detach().cpu().double().numpy()
    e = np.asarray(embedding, dtype=np.float64)
    if e.ndim != 2 or len(e) < 2:
        raise ValueError(f"embedding must be (p, d) with p >= 2, got shape {e.shape}")
    p = len(e)
    power = (np.abs(np.fft.fft(e, axis=0)) ** 2).sum(axis=1)  # (p,)
    k = np.arange(p // 2 + 1)
    has_mirror = (k > 0) & (2 * k != p)  # k = 0 and (even p) k = p/2 are their own mirrors
    folded = power[k] + np.where(has_mirror, power[(p - k) % p], 0.0)  # (p//2 + 1,)
    total = folded.sum()
    return k, folded / total if total > 0 else folded


def collapse_fraction(
    logits: torch.Tensor, target: torch.Tensor, loss: GrokkingLoss = "cross_entropy"
) -> float:
    """Fraction of samples whose loss, computed in the logits' dtype, is exactly 0 (Softmax Collapse).

    For softmax, log_softmax gives the true class's loss as log sum_k exp(z_k - z_max) when it is the top
    logit, so the loss is 0 exactly when that sum rounds to 1: every competitor is absorbed, p_y is exactly 1,
    and the gradient's true-class component p_y - 1 is exactly 0 (Prieto et al.'s `softmax_collapse` and
    `zero_terms`, equal on correctly classified samples). With the true logit m above K - 1 zeros that needs
    (K - 1) e^-m below half an ulp of 1: m > ~19 for K = 11 in float32 (2^-24), m > ~39 in float64 (2^-53).
    """
    _check_choice("loss", loss, LOSSES)
    with torch.no_grad():
        values = losses.get(loss).fn(logits, target)  # (N,)
    return float((values == 0).double().mean())


def zero_gradient_fraction(
    logits: torch.Tensor, target: torch.Tensor, loss: GrokkingLoss = "cross_entropy"
) -> float:
    """Fraction of samples whose whole loss gradient w.r.t. the logits is exactly 0 in the logits' dtype.

    Stricter than collapse_fraction: the competitors' components p_k = exp(z_k - lse) stay nonzero until
    exp underflows (margins above ~104 in float32, ~745 in float64).
    """
    _check_choice("loss", loss, LOSSES)
    z = logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(losses.get(loss).fn(z, target).sum(), z)  # (N, K)
    return float((g == 0).all(dim=1).double().mean())


def log_epochs(epochs: int, log_points: int = 100) -> np.ndarray:
    """0 and at most log_points distinct log-spaced epochs in 1..epochs, ending at epochs: (T,) int64."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    if log_points < 2:
        raise ValueError(f"log_points must be >= 2, got {log_points!r}")
    spaced = np.round(np.geomspace(1, epochs, log_points)).astype(np.int64)
    return np.unique(np.concatenate([[0], spaced]))


def train_grokking(
    p: int = 59,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    loss: GrokkingLoss = "cross_entropy",
    dtype: GrokkingDtype = "float32",
    optimizer: GrokkingOptimizer = "adamw",
    lr: float = 5e-3,
    weight_decay: float = 1.0,
    epochs: int = 3000,
    seed: int = 0,
    progress: Progress | None = None,
    log_points: int = 100,
    *,
    embed_dim: int = 32,
    hidden: int = 128,
    combine: Combine = "concat",
    betas: tuple[float, float] = DEFAULT_BETAS,
    eps: float = DEFAULT_EPS,
    device: str | torch.device | None = "cpu",
    on_record: Recorded | None = None,
) -> GrokkingRun:
    """Train a ModularMLP full-batch on a seeded split of modular addition; record at log-spaced epochs.
    on_record(epochs, train_accuracy, test_accuracy) sees the curves so far after every record (live views).

    The model, the data and the loss all use `dtype`, so Softmax Collapse happens (or not) in that precision.
    The seed fixes both the split and the initialisation. The default device is the CPU: at these sizes a
    step is launch-bound, and p = 113 still runs at ~10 ms per epoch there.
    """
    _check_p(p)
    _check_fraction(train_fraction)
    _check_choice("loss", loss, LOSSES)
    _check_choice("dtype", dtype, DTYPES)
    _check_choice("optimizer", optimizer, OPTIMIZERS)
    _check_choice("combine", combine, COMBINES)
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    epochs = int(epochs)
    at = log_epochs(epochs, log_points)  # validates log_points
    target_device = resolve_device(device)
    if target_device.type == "mps" and dtype == "float64":
        raise ValueError("dtype 'float64' is not supported on the mps device; use 'float32' or device='cpu'")
    x_train, y_train, x_test, y_test = (
        t.to(target_device) for t in modular_addition_split(p, train_fraction, seed)
    )
    model = modular_mlp(p, embed_dim, hidden, combine, seed, dtype).to(target_device)
    params = list(model.parameters())
    opt_class = PerpAdamW if optimizer == "perp_adamw" else torch.optim.AdamW
    # fused: one kernel for all parameters; the step is launch-bound at these sizes
    opt = opt_class(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps, fused=True)
    loss_fn = losses.get(loss).fn  # per-sample (N,); unbound call: neither loss has hyperparameters
    rows: list[tuple[float, ...]] = []

    def record() -> None:
        with torch.no_grad():
            z = model(x_train)  # (n_train, p)
            values = loss_fn(z, y_train)  # (n_train,)
            z_test = model(x_test)  # (n_test, p)
            rows.append(
                (
                    float((z.argmax(1) == y_train).double().mean()),
                    float((z_test.argmax(1) == y_test).double().mean()),
                    float(values.double().mean()),
                    float(loss_fn(z_test, y_test).double().mean()),
                    float((values == 0).double().mean()),  # = collapse_fraction(z, y_train, loss)
                    zero_gradient_fraction(z, y_train, loss),
                    float(torch.linalg.vector_norm(z, dim=1).double().mean()),
                    math.sqrt(sum(float(w.double().square().sum()) for w in params)),
                )
            )

    record()
    next_log = 1
    for epoch in range(1, epochs + 1):
        opt.zero_grad(set_to_none=False)
        loss_fn(model(x_train), y_train).mean().backward()
        opt.step()
        if epoch == at[next_log]:
            record()
            next_log += 1
            if on_record is not None:
                accuracy = np.array([r[:2] for r in rows], dtype=np.float64)  # (k, 2): train, test
                on_record(at[: len(rows)], accuracy[:, 0], accuracy[:, 1])
            if progress is not None:
                progress(epoch / epochs, f"epoch {epoch:,} of {epochs:,}")
    cols = np.array(rows, dtype=np.float64).T  # (8, T)
    frequencies, spectrum = embedding_spectrum(model.embedding.weight)
    return GrokkingRun(
        p=int(p),
        train_fraction=float(train_fraction),
        loss=loss,
        dtype=dtype,
        optimizer=optimizer,
        lr=float(lr),
        weight_decay=float(weight_decay),
        seed=int(seed),
        n_train=len(y_train),
        n_test=len(y_test),
        epochs=at,
        train_accuracy=cols[0],
        test_accuracy=cols[1],
        train_loss=cols[2],
        test_loss=cols[3],
        collapse=cols[4],
        zero_gradient=cols[5],
        logit_norm=cols[6],
        weight_norm=cols[7],
        frequencies=frequencies,
        spectrum=spectrum,
    )
