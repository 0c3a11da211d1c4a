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
    _check(prompts, answers, epochs, lr, seed, init_scale, reference)
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
    bound = losses.make(spec, **dict(params or {}))  # ValueError naming a bad hyperparameter
    beta = float(bound.params.get("beta", 1.0))
    chosen_np, rejected_np = preference_pairs(prompts, answers, seed)
    chosen, rejected = torch.from_numpy(chosen_np), torch.from_numpy(rejected_np)
    rows = torch.arange(prompts)
    start = initial_logits(prompts, answers, seed, init_scale)
    ref_logits = (
        start.clone() if reference == "initial" else initial_logits(prompts, answers, seed + 1, init_scale)
    )
    ref_log = torch.log_softmax(ref_logits, dim=1)  # (P, A)
    ref_pair = torch.stack([ref_log[rows, chosen], ref_log[rows, rejected]], dim=1)  # (P, 2)
    logits = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)

    n = epochs + 1
    out = {
        k: np.empty(n) for k in ("chosen", "rejected", "log_chosen", "log_rejected", "margin", "kl", "loss")
    }
    path = np.empty((n, answers))

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(logits, dim=1)  # (P, A)
        pair = torch.stack([log_p[rows, chosen], log_p[rows, rejected]], dim=1)  # (P, 2)
        return bound(pair, ref_pair), log_p

    def record(i: int, value: torch.Tensor, log_p: torch.Tensor) -> None:
        log_p = log_p.detach()
        p = log_p.exp()
        lw, ll = log_p[rows, chosen], log_p[rows, rejected]
        out["chosen"][i], out["rejected"][i] = float(lw.exp().mean()), float(ll.exp().mean())
        out["log_chosen"][i], out["log_rejected"][i] = float(lw.mean()), float(ll.mean())
        h = (lw - ref_pair[:, 0]) - (ll - ref_pair[:, 1])
        out["margin"][i] = beta * float(h.mean())
        out["kl"][i] = float((p * (log_p - ref_log)).sum(dim=1).mean())
        out["loss"][i] = float(value.detach())
        path[i] = p[0].numpy()

    for epoch in range(epochs):
        value, log_p = objective()
        record(epoch, value, log_p)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    with torch.no_grad():
        value, log_p = objective()
    record(epochs, value, log_p)
    return PreferenceRun(
        loss=loss,
        params=tuple(sorted(bound.params.items())),
        beta=beta,
        epochs=np.arange(n),
        chosen=out["chosen"],
        rejected=out["rejected"],
        log_chosen=out["log_chosen"],
        log_rejected=out["log_rejected"],
        margin=out["margin"],
        kl=out["kl"],
        loss_value=out["loss"],
        path=path,
        chosen_index=chosen_np,
        rejected_index=rejected_np,
    )
