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
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from lossviz import losses

REFERENCES = ("initial", "separate")  # the reference: the initial policy, or a separately seeded one
MAX_PROMPTS, MAX_ANSWERS, MAX_EPOCHS = 256, 10, 5000
AHEAD_CHUNK = 50  # steps training ahead takes per hold of the lock: about 25 ms for four losses here


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


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    return int(value)


def _check(prompts: int, answers: int, lr: float, seed: int, init_scale: float, reference: str):
    _whole("prompts", prompts, 1, MAX_PROMPTS)
    _whole("answers", answers, 2, MAX_ANSWERS)
    _whole("seed", seed, 0, 2**31 - 1)
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
    """Train one copy of the tabular policy per loss of selection ({loss: hyperparameters}) for `epochs`
    full-batch Adam steps, all from the same initial logits: a PreferenceRun per loss."""
    training = PreferenceTraining(
        selection, prompts, answers, lr, seed, init_scale=init_scale, reference=reference
    )
    return training.runs(epochs)


class PreferenceTraining:
    """The toy policies of the losses of selection, trained together and kept, so that asking for more epochs
    continues the run instead of starting again (full-batch Adam is deterministic: E epochs are the first E
    of any longer run, tested) and asking for fewer slices it.

    One loop for all losses: the copies share no parameter, so the gradient of the summed losses is each
    copy's own gradient and element-wise Adam treats each copy as if it trained alone (tested), while the
    loop's per-step overhead is paid once instead of once per loss. Thread-safe: a UI cache may share one.
    """

    def __init__(
        self,
        selection: Mapping[str, Mapping[str, float] | None],
        prompts: int = 8,
        answers: int = 3,
        lr: float = 0.05,
        seed: int = 0,
        *,
        init_scale: float = 1.0,
        reference: str = "initial",
    ) -> None:
        _check(prompts, answers, lr, seed, init_scale, reference)
        if not selection:
            raise ValueError("selection must name at least one preference loss, got none")
        self.bound = {name: bind(name, params) for name, params in selection.items()}
        self.beta = torch.tensor(
            [float(b.params.get("beta", 1.0)) for b in self.bound.values()], dtype=torch.float64
        )
        self.chosen_index, self.rejected_index = preference_pairs(prompts, answers, seed)
        self.chosen, self.rejected = (
            torch.from_numpy(self.chosen_index),
            torch.from_numpy(self.rejected_index),
        )
        self.rows = torch.arange(prompts)
        start = initial_logits(prompts, answers, seed, init_scale)
        ref_logits = (
            start.clone()
            if reference == "initial"
            else initial_logits(prompts, answers, seed + 1, init_scale)
        )
        self.ref_log = torch.log_softmax(ref_logits, dim=1)  # (P, A)
        rows = self.rows
        self.ref_pair = torch.stack(
            [self.ref_log[rows, self.chosen], self.ref_log[rows, self.rejected]], dim=1
        )
        self.logits = start.expand(len(self.bound), -1, -1).clone().requires_grad_(True)  # (L, P, A)
        self.optimizer = torch.optim.Adam([self.logits], lr=lr)
        self.stats: list[torch.Tensor] = []  # per state reached, from 0: (L, 7) curves of PreferenceRun
        self.paths: list[torch.Tensor] = []  # (L, A) prompt 0's probabilities
        self.epochs = 0  # Adam steps taken so far
        self._lock = threading.Lock()
        self._ahead: threading.Thread | None = None

    def _objective(self) -> tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(self.logits, dim=2)  # (L, P, A)
        rows = self.rows
        pair = torch.stack([log_p[:, rows, self.chosen], log_p[:, rows, self.rejected]], dim=2)  # (L, P, 2)
        values = torch.stack([fn(pair[i], self.ref_pair) for i, fn in enumerate(self.bound.values())])  # (L,)
        return values, log_p

    def _record(self, values: torch.Tensor, log_p: torch.Tensor) -> None:
        log_p = log_p.detach()
        p = log_p.exp()
        lw, ll = log_p[:, self.rows, self.chosen], log_p[:, self.rows, self.rejected]  # (L, P)
        h = (lw - self.ref_pair[:, 0]) - (ll - self.ref_pair[:, 1])
        kl = (p * (log_p - self.ref_log)).sum(dim=2).mean(dim=1)
        columns = (lw.exp().mean(1), ll.exp().mean(1), lw.mean(1), ll.mean(1), self.beta * h.mean(1), kl)
        self.stats.append(torch.stack([*columns, values.detach()], dim=1))
        self.paths.append(p[:, 0])

    def _advance(self, epochs: int) -> None:
        """Adam steps until `epochs` have been taken, each state recorded from the forward pass of the step
        that leaves it (the last one from a forward pass of its own)."""
        while self.epochs < epochs:
            values, log_p = self._objective()
            if len(self.stats) == self.epochs:  # not recorded yet
                self._record(values, log_p)
            self.optimizer.zero_grad()
            values.sum().backward()
            self.optimizer.step()
            self.epochs += 1
        if len(self.stats) == self.epochs:
            with torch.no_grad():
                self._record(*self._objective())

    def train_ahead(self, epochs: int, chunk: int = AHEAD_CHUNK) -> threading.Thread | None:
        """Go on training to `epochs` in a background thread, `chunk` steps per hold of the lock, so that a
        later runs() finds its epochs done (a UI's next Epochs step) or waits at most one chunk. The steps
        are the ones runs() would take, in the same order: results are unchanged (tested). Returns the
        thread, or None when it is already there or a thread is already training ahead."""
        epochs = _whole("epochs", epochs, 1, MAX_EPOCHS)
        _whole("chunk", chunk, 1, MAX_EPOCHS)
        with self._lock:
            if self.epochs >= epochs or (self._ahead is not None and self._ahead.is_alive()):
                return None

            def ahead() -> None:
                while True:
                    with self._lock:
                        if self.epochs >= epochs:
                            return
                        self._advance(min(self.epochs + chunk, epochs))

            self._ahead = threading.Thread(target=ahead, name="preference-train-ahead", daemon=True)
            self._ahead.start()
            return self._ahead

    def runs(self, epochs: int) -> dict[str, PreferenceRun]:
        """A PreferenceRun per loss for its first `epochs` steps (training further first if needed)."""
        epochs = _whole("epochs", epochs, 1, MAX_EPOCHS)
        with self._lock:
            self._advance(epochs)
            curves = torch.stack(self.stats[: epochs + 1]).numpy()  # (E + 1, L, 7)
            paths = torch.stack(self.paths[: epochs + 1]).numpy()  # (E + 1, L, A)
        keys = ("chosen", "rejected", "log_chosen", "log_rejected", "margin", "kl", "loss_value")
        return {
            name: PreferenceRun(
                loss=name,
                params=tuple(sorted(b.params.items())),
                beta=float(self.beta[j]),
                epochs=np.arange(epochs + 1),
                **{key: curves[:, j, k].copy() for k, key in enumerate(keys)},
                path=paths[:, j].copy(),
                chosen_index=self.chosen_index,
                rejected_index=self.rejected_index,
            )
            for j, (name, b) in enumerate(self.bound.items())
        }
