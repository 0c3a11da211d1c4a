"""A toy policy trained with the preference losses: tabular logits over A answers for each of P prompts, a
frozen reference, and one (chosen, rejected) pair per prompt; full-batch Adam.

    run = train_preference("dpo", {"beta": 0.1}, prompts=8, answers=3, epochs=200, lr=0.05, seed=0)
    run.chosen[-1], run.rejected[-1], run.path[:, :]  # mean pi(chosen), mean pi(rejected), prompt 0's simplex

With tabular logits, log pi_w - log pi_l = z_w - z_l: every pairwise loss moves only the two logits of a pair,
by equal and opposite amounts under Adam's sign-like steps. The shared log-normaliser then falls on both
answers alike, so once pi_w > pi_l the rejected answer's log-probability falls faster than the chosen's rises
(the ASFT paper's observation about DPO, Wang et al. 2024, measured in tests/test_preference_policy.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from lossviz import losses

REFERENCES = ("initial", "separate")  # the reference: the initial policy, or a separately seeded one
MAX_PROMPTS, MAX_ANSWERS, MAX_EPOCHS = 256, 10, 5000


@dataclass(frozen=True)
class PreferenceRun:
    """What one loss did to the toy policy, recorded before training (index 0) and after every epoch."""

    loss: str
    params: tuple[tuple[str, float], ...]
    beta: float  # the loss's beta, or 1: the scale of the implicit reward margin
    epochs: np.ndarray  # (E + 1,) 0..E
    chosen: np.ndarray  # (E + 1,) mean over prompts of pi(y_w)
    rejected: np.ndarray  # (E + 1,) mean over prompts of pi(y_l)
    log_chosen: np.ndarray  # (E + 1,) mean over prompts of log pi(y_w)
    log_rejected: np.ndarray  # (E + 1,) mean over prompts of log pi(y_l)
    margin: np.ndarray  # (E + 1,) mean of beta [(log pi_w - log ref_w) - (log pi_l - log ref_l)]
    kl: np.ndarray  # (E + 1,) mean over prompts of KL(pi || pi_ref)
    loss_value: np.ndarray  # (E + 1,) the training loss (the mean over pairs, or KTO's batch value)
    path: np.ndarray  # (E + 1, A) prompt 0's probabilities over its A answers
    chosen_index: np.ndarray  # (P,) int: the chosen answer of each prompt
    rejected_index: np.ndarray  # (P,) int: the rejected answer of each prompt


def _check(prompts: int, answers: int, epochs: int, lr: float, seed: int, init_scale: float, reference: str):
    def whole(name: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
        return int(value)

    whole("prompts", prompts, 1, MAX_PROMPTS)
    whole("answers", answers, 2, MAX_ANSWERS)
    whole("epochs", epochs, 1, MAX_EPOCHS)
    whole("seed", seed, 0, 2**31 - 1)
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 10:
        raise ValueError(f"lr must be a number in (0, 10], got {lr!r}")
    if not isinstance(init_scale, (int, float)) or not math.isfinite(init_scale) or not 0 <= init_scale <= 10:
        raise ValueError(f"init_scale must be a number in [0, 10], got {init_scale!r}")
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {list(REFERENCES)}, got {reference!r}")


def preference_pairs(prompts: int, answers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rejected) answer indices per prompt, two different answers drawn by the seed.  # (P,), (P,)"""
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.permutation(answers)[:2] for _ in range(prompts)])  # (P, 2)
    return picks[:, 0].astype(np.int64), picks[:, 1].astype(np.int64)


def initial_logits(prompts: int, answers: int, seed: int, init_scale: float = 1.0) -> torch.Tensor:
    """The policy's starting logits, N(0, init_scale²) drawn by the seed.  # (P, A) float64"""
    generator = torch.Generator().manual_seed(seed)
    return init_scale * torch.randn(prompts, answers, generator=generator, dtype=torch.float64)


def train_preference(
    loss: str,
    params: Mapping[str, float] | None,
    prompts: int = 8,
    answers: int = 3,
    epochs: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    *,
    init_scale: float = 1.0,
    reference: str = "initial",
) -> PreferenceRun:
    """Train the tabular policy with one preference loss (full batch, Adam); ValueError naming bad values."""
    selection = {loss: params or {}}
    runs = train_preferences(
        selection, prompts, answers, epochs, lr, seed, init_scale=init_scale, reference=reference
    )
    return runs[loss]


def bind(loss: str, params: Mapping[str, float] | None = None) -> losses.BoundLoss:
    """The registered preference loss with its hyperparameters; ValueError naming a bad name or value."""
    try:
        spec = losses.get(loss)
    except KeyError:
        raise ValueError(
            f"loss {loss!r} is not registered; preference losses: {losses.names('preference')}"
        ) from None
    if spec.task != "preference":
        raise ValueError(
            f"loss {loss!r} is a {spec.task} loss; preference losses: {losses.names('preference')}"
        )
    return losses.make(spec, **dict(params or {}))  # ValueError naming a bad hyperparameter


def train_preferences(
    selection: Mapping[str, Mapping[str, float] | None],
    prompts: int = 8,
    answers: int = 3,
    epochs: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    *,
    init_scale: float = 1.0,
    reference: str = "initial",
) -> dict[str, PreferenceRun]:
    """Train one copy of the tabular policy per loss of selection ({loss: hyperparameters}), all from the same
    initial logits, in one loop: the copies share no parameter, so the gradient of the summed losses is each
    copy's own gradient and element-wise Adam treats each copy as if it trained alone (tested), while the
    loop's per-step overhead is paid once instead of once per loss."""
    _check(prompts, answers, epochs, lr, seed, init_scale, reference)
    if not selection:
        raise ValueError("selection must name at least one preference loss, got none")
    bound = {name: bind(name, params) for name, params in selection.items()}
    beta = torch.tensor([float(b.params.get("beta", 1.0)) for b in bound.values()], dtype=torch.float64)
    chosen_np, rejected_np = preference_pairs(prompts, answers, seed)
    chosen, rejected = torch.from_numpy(chosen_np), torch.from_numpy(rejected_np)
    rows = torch.arange(prompts)
    start = initial_logits(prompts, answers, seed, init_scale)
    ref_logits = (
        start.clone() if reference == "initial" else initial_logits(prompts, answers, seed + 1, init_scale)
    )
    ref_log = torch.log_softmax(ref_logits, dim=1)  # (P, A)
    ref_pair = torch.stack([ref_log[rows, chosen], ref_log[rows, rejected]], dim=1)  # (P, 2)
    logits = start.expand(len(bound), -1, -1).clone().requires_grad_(True)  # (L, P, A): one policy per loss
    optimizer = torch.optim.Adam([logits], lr=lr)

    n = epochs + 1
    stats = torch.empty(n, len(bound), 7, dtype=torch.float64)  # the PreferenceRun curves, per epoch and loss
    path = torch.empty(n, len(bound), answers, dtype=torch.float64)

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(logits, dim=2)  # (L, P, A)
        pair = torch.stack([log_p[:, rows, chosen], log_p[:, rows, rejected]], dim=2)  # (L, P, 2)
        values = torch.stack([fn(pair[i], ref_pair) for i, fn in enumerate(bound.values())])  # (L,)
        return values, log_p

    def record(i: int, values: torch.Tensor, log_p: torch.Tensor) -> None:
        log_p = log_p.detach()
        p = log_p.exp()
        lw, ll = log_p[:, rows, chosen], log_p[:, rows, rejected]  # (L, P)
        h = (lw - ref_pair[:, 0]) - (ll - ref_pair[:, 1])
        kl = (p * (log_p - ref_log)).sum(dim=2).mean(dim=1)
        columns = (lw.exp().mean(1), ll.exp().mean(1), lw.mean(1), ll.mean(1), beta * h.mean(1), kl)
        stats[i] = torch.stack([*columns, values.detach()], dim=1)
        path[i] = p[:, 0]

    for epoch in range(epochs):
        values, log_p = objective()
        record(epoch, values, log_p)
        optimizer.zero_grad()
        values.sum().backward()
        optimizer.step()
    with torch.no_grad():
        values, log_p = objective()
    record(epochs, values, log_p)
    curves, paths = stats.numpy(), path.numpy()
    keys = ("chosen", "rejected", "log_chosen", "log_rejected", "margin", "kl", "loss_value")
    return {
        name: PreferenceRun(
            loss=name,
            params=tuple(sorted(b.params.items())),
            beta=float(beta[j]),
            epochs=np.arange(n),
            **{key: curves[:, j, k].copy() for k, key in enumerate(keys)},
            path=paths[:, j].copy(),
            chosen_index=chosen_np,
            rejected_index=rejected_np,
        )
        for j, (name, b) in enumerate(bound.items())
    }
