"""RL with verifiable rewards on a K-armed bandit: a tabular policy pi = softmax(theta) over K answers, a
seeded 0/1 correctness vector (the verifier), and groups of G answers sampled per step.

    run = train_bandit("grpo", {"entropy": 0.0}, K=8, G=8, steps=200, lr=0.5, seed=0)
    run.entropy[-1], run.pass_at_k[-1], run.policy[-1]  # entropy collapse, pass@(1, 4, 16), pi at the end

Every objective is a *surrogate to maximise*: a scalar whose gradient with respect to the logits is the
estimator (advantages and old/reference policies are detached inside). `train_bandit` does plain gradient
ascent (SGD) on the sum of the chosen policy term and the optional KL, entropy and entropy-band terms.

`train_tabular` trains the same objectives on P prompts at once, each its own softmax over the K answers with
its own correct set, so that pass@k is a mean over prompts (`TabularRun.pass_at(k)`); `VARIANTS` and
`train_variant` are what the RL page compares, `PRESETS` its measured claims, and `train_likelihood`
fine-tunes the same initial policy with the registered pass@N loss or plain likelihood (cross-entropy).

The objectives accept logits of shape (..., K) broadcast against actions and rewards of shape (..., G): a
batch of independent groups gives one surrogate (the mean over groups), and a (B, K) leaf of logits gives one
gradient estimate per group (times 1/B), which is how tests/test_rl.py measures bias.

On a bandit with 0/1 rewards the exact gradient of the expected reward J = sum_a pi_a r_a is
grad_theta J = pi * (r - J) (`exact_reward_gradient`). In expectation:
- REINFORCE without a baseline, and with the leave-one-out baseline, equals it (unbiased);
- REINFORCE with the group-mean baseline (the baseline includes the sample itself) equals (1 - 1/G) of it;
- GRPO's (r - mean) / (std + eps) equals a known positive multiple of it (`grpo_gradient_scale`): the std
  normalisation rescales the step by how uncertain the group is, but for 0/1 rewards keeps its direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from lossviz import losses

OBJECTIVES = ("reinforce", "grpo", "ppo")
BASELINES = ("none", "mean", "loo")
REWARDS = ("verifiable", "majority")
KL_ESTIMATORS = ("exact", "k3")
NOVELTY_KINDS = ("count", "group")
PASS_KS = (1, 4, 16)
MAX_ARMS, MAX_GROUP, MAX_STEPS, MAX_PROMPTS = 1000, 1024, 20000, 256
STATS_CHUNK = 256  # steps whose logits are stacked at once to compute pi's entropy, KL and pass@k

DEFAULTS: dict[str, float | str] = {
    "baseline": "none",  # REINFORCE: "none", "mean" (group mean) or "loo" (leave-one-out mean)
    "std_eps": 1e-6,  # GRPO: epsilon added to the group's std
    "eps_low": 0.2,  # PPO: the ratio is clipped below at 1 - eps_low
    "eps_high": 0.2,  # PPO: ... and above at 1 + eps_high (DAPO's clip-higher: eps_high > eps_low)
    "inner_steps": 4,  # PPO: steps per sampled group (with one, ratio = 1: clipping idle)
    "kl": 0.0,  # weight of the KL penalty to the reference (the initial policy)
    "kl_estimator": "exact",  # "exact" KL(pi || ref) of the tabular policy, or Schulman's sampled "k3"
    "entropy": 0.0,  # weight of the entropy bonus
    "band_weight": 0.0,  # EPO entropy smoothing: weight of the penalty for leaving the band
    "band_low": 0.9,  # ... the band is [band_low * H_avg, band_high * H_avg]
    "band_high": 1.1,
    "band_momentum": 0.9,  # ... H_avg is an exponential moving average of the entropy with this momentum
    "reward": "verifiable",  # "verifiable" (the 0/1 verifier) or label-free "majority" vote over the group
    "novelty": 0.0,  # weight of the novelty bonus added to the reward
    "novelty_kind": "count",  # ... "count": novelty / sqrt(1 + times sampled so far); "group": novelty times
    # the share of the other samples in the group that differ from this one (`group_novelty_bonus`)
    "n_correct": 1,  # how many of the K answers the verifier accepts
    "init_scale": 1.0,  # std of the initial logits
    "record_every": 10,  # pi is stored every this many steps (and at the first and last)
}


# ----------------------------------------------------------------------------------------------- the bandit


def correct_answers(K: int, n_correct: int, seed: int) -> torch.Tensor:
    """The verifier: a seeded 0/1 float64 vector over the K answers with `n_correct` ones."""
    return correct_sets(1, K, n_correct, seed)[0]


def correct_sets(P: int, K: int, n_correct: int, seed: int) -> torch.Tensor:
    """The verifier of P prompts: (P, K) float64 0/1, each row `n_correct` answers drawn independently (row 0
    is `correct_answers(K, n_correct, seed)`)."""
    if not 1 <= n_correct <= K:
        raise ValueError(f"n_correct must be in [1, K={K}], got {n_correct!r}")
    g = torch.Generator().manual_seed(seed)
    r = torch.zeros(P, K, dtype=torch.float64)
    for row in r:
        row[torch.randperm(K, generator=g)[:n_correct]] = 1.0
    return r


def sample_group(logits: torch.Tensor, G: int, generator: torch.Generator) -> torch.Tensor:
    """G answers per row drawn with replacement from softmax(logits), (K,) -> int64 (G,) or (P, K) -> (P, G);
    no gradient."""
    with torch.no_grad():
        probs = torch.softmax(logits.detach().to(torch.float64), dim=-1)
        return torch.multinomial(probs, G, replacement=True, generator=generator)


def policy_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Exact entropy H(pi) = -sum_a pi_a log pi_a, (..., K) -> (...)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def policy_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact KL(pi || ref) = sum_a pi_a (log pi_a - log ref_a) of two tabular policies, (..., K) -> (...)."""
    logp = torch.log_softmax(logits, dim=-1)
    return (logp.exp() * (logp - torch.log_softmax(ref_logits, dim=-1))).sum(-1)


def pass_at_k(probs: torch.Tensor | np.ndarray, correct: torch.Tensor | np.ndarray, k: int) -> float:
    """Exact pass@k of a policy: the chance that k independent samples contain a correct answer,
    1 - (1 - p_correct)^k with p_correct = sum_a pi_a r_a."""
    p = float(
        (torch.as_tensor(probs, dtype=torch.float64) * torch.as_tensor(correct, dtype=torch.float64)).sum()
    )
    return 1.0 - (1.0 - min(max(p, 0.0), 1.0)) ** k


def mean_pass_at_k(p_correct: np.ndarray, k: int) -> np.ndarray:
    """pass@k averaged over prompts, the last axis of p_correct (..., P) -> (...): the mean of the exact
    1 - (1 - p_i)^k, the chance that k independent samples for prompt i contain a correct answer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    return (1.0 - (1.0 - np.clip(np.asarray(p_correct, np.float64), 0.0, 1.0)) ** k).mean(-1)


def exact_reward_gradient(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """grad_theta E_{a ~ softmax(theta)}[r_a] = pi * (r - E r), (K,) -> (K,)."""
    p = torch.softmax(logits.detach().to(torch.float64), dim=-1)
    r = rewards.to(torch.float64)
    return p * (r - (p * r).sum())


def _logp_of(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) for actions (..., G) under logits (..., K) broadcast to the same batch shape."""
    logp = torch.log_softmax(logits, dim=-1)
    if logp.shape[:-1] == actions.shape[:-1]:  # the training loop's case: no broadcasting to work out
        return logp.gather(-1, actions)
    batch = torch.broadcast_shapes(logp.shape[:-1], actions.shape[:-1])
    logp = logp.expand(*batch, logp.shape[-1])
    return logp.gather(-1, actions.expand(*batch, actions.shape[-1]))


# ------------------------------------------------------------------------------------------------ advantages


def group_advantage(rewards: torch.Tensor, baseline: str = "none") -> torch.Tensor:
    """REINFORCE's advantages over the last axis: r, r - mean(r), or r - mean of the others (LOO)."""
    r = rewards.to(torch.float64)
    if baseline == "none":
        return r
    if baseline == "mean":
        return r - r.mean(-1, keepdim=True)
    if baseline == "loo":
        G = r.shape[-1]
        if G < 2:
            raise ValueError("the leave-one-out baseline needs a group of at least 2")
        return r - (r.sum(-1, keepdim=True) - r) / (G - 1)
    raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")


def grpo_advantage(rewards: torch.Tensor, std_eps: float = 1e-6) -> torch.Tensor:
    """GRPO's group-normalised advantage (r - mean) / (std + eps) over the last axis, with the sample
    (unbiased) std as in the reference implementations; a group of equal rewards gets advantage 0 (Shao et
    al. 2024)."""
    r = rewards.to(torch.float64)
    if r.shape[-1] < 2:
        return torch.zeros_like(r)
    return (r - r.mean(-1, keepdim=True)) / (r.std(-1, keepdim=True) + std_eps)


def grpo_gradient_scale(p_correct: float, G: int, std_eps: float = 1e-6) -> float:
    """The exact factor c with E[GRPO gradient estimate] = c * grad J on a bandit with 0/1 rewards.

    With k ~ Binomial(G, p) correct answers in the group, the correct ones' advantages sum to k (1 - k/G) /
    (s_k + eps), s_k = sqrt(k (G - k) / (G (G - 1))); the advantages sum to zero and which correct
    (incorrect) answer was drawn is independent of the advantages, so E[estimate] = alpha / (p (1 - p))
    grad J with alpha = E[sum over correct A_i] / G."""
    p = float(p_correct)
    if not 0.0 < p < 1.0:
        return 0.0
    alpha = 0.0
    for k in range(1, G):
        s = math.sqrt(k * (G - k) / (G * (G - 1)))
        alpha += math.comb(G, k) * p**k * (1 - p) ** (G - k) * k * (1 - k / G) / (s + std_eps)
    return alpha / G / (p * (1 - p))


# ------------------------------------------------------------------------------------------------ objectives


def reinforce(logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, baseline: str = "none"):
    """REINFORCE (Williams 1992, "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning"): the mean over the group of A_i log pi(a_i), A = r minus an optional baseline
    (`group_advantage`). Its gradient is the score-function estimate of grad E[r]."""
    adv = group_advantage(rewards, baseline).detach()
    return (adv * _logp_of(logits, actions)).mean()


def grpo(logits: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, std_eps: float = 1e-6):
    """GRPO's policy-gradient term (Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical
    Reasoning in Open Language Models"): the mean over the group of A_i log pi(a_i) with A = (r - mean) /
    (std + eps). The on-policy (ratio = 1) case; `ppo_clip` with these advantages is the clipped multi-step
    form."""
    adv = grpo_advantage(rewards, std_eps).detach()
    return (adv * _logp_of(logits, actions)).mean()


def ppo_clip(
    logits: torch.Tensor,
    old_logits: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float | None = None,
):
    """PPO's clipped surrogate (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"): the mean
    of min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) with rho = pi(a) / pi_old(a). Symmetric when
    eps_high is None (= eps_low); asymmetric "clip-higher" with eps_high > eps_low as in DAPO (Yu et al.
    2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale") and EVOL-RL (Zhou et al. 2025,
    "Evolving Language Models without Labels"), which lets low-probability answers with positive advantage
    grow more per group. A sample whose ratio is past the clip in the direction of its advantage
    contributes no gradient."""
    eps_high = eps_low if eps_high is None else eps_high
    adv = advantages.to(torch.float64).detach()
    ratio = torch.exp(_logp_of(logits, actions) - _logp_of(old_logits.detach(), actions))
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    return torch.minimum(ratio * adv, clipped * adv).mean()


def kl_to_reference(
    logits: torch.Tensor,
    ref_logits: torch.Tensor,
    actions: torch.Tensor | None = None,
    estimator: str = "exact",
):
    """KL(pi || pi_ref), the penalty GRPO subtracts (weight beta; Shao et al. 2024). "exact": the tabular
    sum sum_a pi_a (log pi_a - log ref_a), averaged over any batch axes. "k3": Schulman's estimator
    ("Approximating KL divergence", 2020) used by GRPO, the mean over sampled actions of rho - 1 - log rho
    with rho = ref(a) / pi(a); non-negative and unbiased for the KL's value when the actions come from pi
    (its gradient through rho alone is not the KL's gradient)."""
    if estimator == "exact":
        return policy_kl(logits, ref_logits.detach()).mean()
    if estimator == "k3":
        if actions is None:
            raise ValueError("the k3 estimator needs sampled actions")
        log_rho = _logp_of(ref_logits.detach(), actions) - _logp_of(logits, actions)
        return (log_rho.exp() - 1.0 - log_rho).mean()
    raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


def entropy_bonus(logits: torch.Tensor):
    """The entropy bonus (Williams & Peng 1991, "Function optimization using connectionist reinforcement
    learning algorithms"; Mnih et al. 2016, A3C): the exact entropy of pi, added with a positive weight; it
    resists entropy collapse, the policy concentrating on one answer and pass@k for large k falling to
    pass@1."""
    return policy_entropy(logits).mean()


def entropy_band_penalty(logits: torch.Tensor, h_avg: float, band_low: float = 0.9, band_high: float = 1.1):
    """EPO's entropy smoothing regulariser, as read here (Xu et al. 2025, "EPO: Entropy-regularized Policy
    Optimization for LLM Agents Reinforcement Learning"): the paper bounds the policy's entropy within a
    band around its historical average so that it can neither collapse nor blow up from one update to the
    next. Here the band is [band_low * H_avg, band_high * H_avg], H_avg a moving average kept by the
    caller, and the penalty is the distance outside it, relu(h_low - H) + relu(H - h_high): zero (no
    gradient) inside the band, a constant push back towards it outside. Subtract it with a positive weight.
    It slows the entropy's fall rather than setting a floor: the band follows the moving average down."""
    H = policy_entropy(logits).mean()
    return torch.relu(band_low * h_avg - H) + torch.relu(H - band_high * h_avg)


def majority_vote_rewards(actions: torch.Tensor, K: int) -> torch.Tensor:
    """A label-free reward (TTRL, Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning"; EVOL-RL): 1
    for the samples equal to the group's most frequent answer (ties to the lowest index), 0 otherwise. (G,)
    -> (G,), or per group along the last axis, (P, G) -> (P, G)."""
    counts = torch.nn.functional.one_hot(actions, K).sum(-2)  # (..., K)
    mode = torch.argmax(counts, dim=-1, keepdim=True)  # torch returns the first of equal maxima
    return (actions == mode).to(torch.float64)


def novelty_bonus(actions: torch.Tensor, counts: torch.Tensor, weight: float) -> torch.Tensor:
    """A count-based novelty bonus, weight / sqrt(1 + n_a) with n_a the times answer a was sampled before this
    step: a tabular stand-in for EVOL-RL's novelty reward (there, semantic dissimilarity to the group's other
    answers), meant to keep majority voting from collapsing onto one answer. (G,) with counts (K,) -> (G,), or
    (P, G) with counts (P, K) -> (P, G)."""
    return weight / torch.sqrt(1.0 + counts.to(torch.float64).gather(-1, actions))


def group_novelty_bonus(actions: torch.Tensor, K: int, weight: float) -> torch.Tensor:
    """EVOL-RL's novelty read on a tabular task: weight times 1 - the mean similarity of a sample to the
    other G - 1 samples of its group, similarity being 1 for the same answer and 0 otherwise, i.e. weight *
    (1 - (c_a - 1) / (G - 1)) with c_a the group's count of that answer. (..., G) -> (..., G).

    Once the group collapses onto one answer its samples get 0 and a lone other answer gets the full weight:
    with weight > 1 (the majority reward) that lone answer is rewarded more than the majority, which is what
    keeps majority voting from collapsing (measured in tests/test_rl.py); the count-based `novelty_bonus`
    fades as every answer's count grows, and does not."""
    G = actions.shape[-1]
    if G < 2:
        raise ValueError(f"the group novelty needs a group of at least 2, got G={G}")
    counts = torch.nn.functional.one_hot(actions, K).sum(-2).to(torch.float64)  # (..., K)
    return weight * (1.0 - (counts.gather(-1, actions) - 1.0) / (G - 1))


# ------------------------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class BanditRun:
    """What one objective did to the bandit policy; per-step arrays hold the state before training (index 0)
    and after each of the S steps, except the per-group quantities (S,)."""

    objective: str
    params: tuple[tuple[str, object], ...]  # the full parameter set used, defaults filled in
    K: int
    G: int
    correct: np.ndarray  # (K,) 0/1 the verifier
    reward: np.ndarray  # (S,) mean training reward of each sampled group (majority vote + novelty if chosen)
    accuracy: np.ndarray  # (S,) mean verifiable correctness of each sampled group
    entropy: np.ndarray  # (S + 1,) H(pi)
    kl: np.ndarray  # (S + 1,) exact KL(pi || pi_ref), the reference being the initial policy
    p_correct: np.ndarray  # (S + 1,) sum of pi over the correct answers
    ks: tuple[int, ...]  # PASS_KS
    pass_at_k: np.ndarray  # (S + 1, len(ks)) exact 1 - (1 - p_correct)^k
    policy_steps: np.ndarray  # (M,) the steps at which pi was stored
    policy: np.ndarray  # (M, K) pi at those steps


@dataclass(frozen=True)
class TabularRun:
    """What one objective did to a tabular policy on P prompts, each its own softmax over the same K answers
    and its own correct set. Per-step arrays as in BanditRun; entropy and KL are means over the prompts."""

    objective: str
    params: tuple[tuple[str, object], ...]  # the full parameter set used, defaults filled in
    P: int
    K: int
    G: int
    correct: np.ndarray  # (P, K) 0/1 the verifier of each prompt
    reward: np.ndarray  # (S,) mean training reward over the P groups (majority vote + novelty if chosen)
    accuracy: np.ndarray  # (S,) mean verifiable correctness of the P * G samples
    entropy: np.ndarray  # (S + 1,) mean over prompts of H(pi_i)
    kl: np.ndarray  # (S + 1,) mean over prompts of the exact KL(pi_i || ref_i), ref the initial policy
    p_correct: np.ndarray  # (S + 1, P) each prompt's mass on its correct answers (its pass@1)
    policy_steps: np.ndarray  # (M,) the steps at which pi was stored
    policy: np.ndarray  # (M, P, K) pi at those steps

    def pass_at(self, k: int) -> np.ndarray:
        """(S + 1,) pass@k over the prompts at every step (`mean_pass_at_k`)."""
        return mean_pass_at_k(self.p_correct, k)


def _whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


def _check_task(P, K, steps, lr, seed) -> None:
    """The arguments every trainer shares: sizes, steps, learning rate and seed."""
    _whole("P", P, 1, MAX_PROMPTS)
    _whole("K", K, 2, MAX_ARMS)
    _whole("steps", steps, 1, MAX_STEPS)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be a whole number in [0, 2**31), got {seed!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 100:
        raise ValueError(f"lr must be a number in (0, 100], got {lr!r}")


def _resolve(
    objective: str, params: Mapping[str, object] | None, K, G, steps, lr, seed, P: int = 1
) -> dict[str, object]:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    params = dict(params or {})
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    _check_task(P, K, steps, lr, seed)
    _whole("G", G, 2, MAX_GROUP)
    p = {**DEFAULTS, **params}
    choices = (
        ("baseline", BASELINES), ("reward", REWARDS), ("kl_estimator", KL_ESTIMATORS),
        ("novelty_kind", NOVELTY_KINDS),
    )  # fmt: skip
    for name, allowed in choices:
        if p[name] not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {p[name]!r}")
    for name in DEFAULTS:
        if name in {c for c, _ in choices}:
            continue
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if not p["band_low"] <= 1.0 <= p["band_high"]:
        raise ValueError("the entropy band must satisfy band_low <= 1 <= band_high")
    if p["eps_low"] >= 1.0 or not 0.0 <= p["band_momentum"] < 1.0:
        raise ValueError("eps_low must be < 1 and band_momentum in [0, 1)")
    for name in ("inner_steps", "n_correct", "record_every"):
        if int(p[name]) != p[name] or p[name] < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {p[name]!r}")
        p[name] = int(p[name])
    if p["n_correct"] > K:
        raise ValueError(f"n_correct must be in [1, K={K}], got {p['n_correct']!r}")
    return p


def initial_policy(
    P: int, K: int, n_correct: int, init_scale: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """The starting point every trainer shares: logits (P, K) ~ N(0, init_scale^2), the verifier (P, K) and
    the generator that drew the logits (the RL trainers go on sampling from it). Same seed, same start."""
    g = torch.Generator().manual_seed(seed)
    correct = correct_sets(P, K, n_correct, seed + 1)
    theta = torch.randn(P, K, generator=g, dtype=torch.float64) * init_scale
    return theta, correct, g


def _policy_term(objective, p, theta, old, actions, rewards, advantages):
    if objective == "reinforce":
        return reinforce(theta, actions, rewards, p["baseline"])
    if objective == "grpo":
        return grpo(theta, actions, rewards, p["std_eps"])
    return ppo_clip(theta, old, actions, advantages, p["eps_low"], p["eps_high"])


class _Trajectory:
    """pi's statistics at every step (mean entropy, mean KL to the start, each prompt's mass on its correct
    answers) and pi itself at the steps `keep` picks. The logits are reduced STATS_CHUNK steps at a time: the
    per-step work of a 16 x 16 table is dominated by the number of torch calls, not by their size, and memory
    stays bounded however many steps there are."""

    def __init__(self, start: torch.Tensor, correct: torch.Tensor, keep) -> None:
        self.ref, self.correct, self.keep = start.detach().clone(), correct, keep
        self.pending: list[torch.Tensor] = [self.ref]  # the logits of steps self.first, self.first + 1, ...
        self.first = 0
        self.stats: list[tuple[torch.Tensor, ...]] = []
        self.frames: dict[int, torch.Tensor] = {}

    def add(self, logits: torch.Tensor) -> None:
        """The logits after the next step."""
        if len(self.pending) == STATS_CHUNK:
            self._flush()
        self.pending.append(logits.detach().clone())

    def _flush(self) -> None:
        with torch.no_grad():
            chunk = torch.stack(self.pending)  # (C, P, K)
            pi = torch.softmax(chunk, -1)
            h, kl = policy_entropy(chunk).mean(-1), policy_kl(chunk, self.ref).mean(-1)  # (C,)
            self.stats.append((h, kl, (pi * self.correct).sum(-1)))  # ..., (C, P)
        for i in range(len(self.pending)):
            if self.keep(self.first + i):
                self.frames[self.first + i] = pi[i]
        self.first += len(self.pending)
        self.pending = []

    def arrays(self) -> dict[str, np.ndarray]:
        """entropy (S + 1,), kl (S + 1,), p_correct (S + 1, P), policy_steps (M,) and policy (M, P, K)."""
        self._flush()
        entropy, kl, p_correct = (torch.cat(column).numpy() for column in zip(*self.stats, strict=True))
        policy = torch.stack(list(self.frames.values())).numpy() if self.frames else np.zeros((0, 0, 0))
        steps = np.asarray(list(self.frames), dtype=int)
        return dict(entropy=entropy, kl=kl, p_correct=p_correct, policy_steps=steps, policy=policy)


def _train_table(
    objective: str, p: dict[str, object], P: int, K: int, G: int, steps: int, lr: float, seed: int
):
    """The training loop of train_bandit (P = 1) and train_tabular: a group of G answers per prompt per step.

    The objectives average over every group; the surrogate is multiplied by P so that each prompt's row of
    logits takes the step a lone bandit would (the prompts share no parameters), whatever the number of
    prompts. The entropy terms act on the mean entropy over prompts, H_avg follows that mean."""
    theta, correct, g = initial_policy(P, K, p["n_correct"], p["init_scale"], seed)
    theta.requires_grad_(True)
    ref = theta.detach().clone()
    counts = torch.zeros(P, K, dtype=torch.float64)  # times each answer was sampled (count novelty)
    count_novelty = p["novelty"] > 0 and p["novelty_kind"] == "count"
    group_novelty = p["novelty"] > 0 and p["novelty_kind"] == "group"
    h_avg = float(policy_entropy(ref).mean())
    inner = p["inner_steps"] if objective == "ppo" else 1
    trajectory = _Trajectory(ref, correct, lambda step: step % p["record_every"] == 0 or step == steps)
    rewards_log, acc_log = [], []
    for _ in range(steps):
        actions = sample_group(theta, G, g)  # (P, G)
        acc = correct.gather(-1, actions)  # (P, G)
        r = majority_vote_rewards(actions, K) if p["reward"] == "majority" else acc
        if group_novelty:
            r = r + group_novelty_bonus(actions, K, p["novelty"])
        elif count_novelty:
            r = r + novelty_bonus(actions, counts, p["novelty"])
            counts += torch.nn.functional.one_hot(actions, K).sum(-2).to(torch.float64)
        old = theta.detach().clone()
        advantages = grpo_advantage(r, p["std_eps"]) if objective == "ppo" else None  # once per group
        for _ in range(inner):
            s = _policy_term(objective, p, theta, old, actions, r, advantages)
            if p["kl"] > 0:
                s = s - p["kl"] * kl_to_reference(theta, ref, actions, p["kl_estimator"])
            if p["entropy"] > 0:
                s = s + p["entropy"] * entropy_bonus(theta)
            if p["band_weight"] > 0:
                s = s - p["band_weight"] * entropy_band_penalty(theta, h_avg, p["band_low"], p["band_high"])
            (grad,) = torch.autograd.grad(s * P, theta)
            with torch.no_grad():
                theta += lr * grad
        if p["band_weight"] > 0:  # H_avg only feeds the band
            h_now = float(policy_entropy(theta.detach()).mean())
            h_avg = p["band_momentum"] * h_avg + (1.0 - p["band_momentum"]) * h_now
        rewards_log.append(r.mean()), acc_log.append(acc.mean())
        trajectory.add(theta)
    return dict(
        correct=correct.numpy().copy(),
        reward=torch.stack(rewards_log).numpy(),  # (S,)
        accuracy=torch.stack(acc_log).numpy(),  # (S,)
        **trajectory.arrays(),
    )


def train_bandit(
    objective: str,
    params: Mapping[str, object] | None = None,
    K: int = 8,
    G: int = 8,
    steps: int = 200,
    lr: float = 0.5,
    seed: int = 0,
) -> BanditRun:
    """Train pi = softmax(theta) on the bandit by gradient ascent on the objective's surrogate
    policy term - kl * KL(pi || ref) + entropy * H(pi) - band_weight * band penalty (params: DEFAULTS).
    The initial logits, the verifier and the samples all come from `seed`; the reference is the initial pi."""
    p = _resolve(objective, params, K, G, steps, lr, seed)
    t = _train_table(objective, p, 1, K, G, steps, lr, seed)
    pc_arr = t["p_correct"][:, 0]
    return BanditRun(
        objective=objective,
        params=tuple(sorted(p.items())),
        K=K,
        G=G,
        correct=t["correct"][0],
        reward=t["reward"],
        accuracy=t["accuracy"],
        entropy=t["entropy"],
        kl=t["kl"],
        p_correct=pc_arr,
        ks=PASS_KS,
        pass_at_k=np.stack([mean_pass_at_k(t["p_correct"], k) for k in PASS_KS], axis=1),
        policy_steps=t["policy_steps"],
        policy=t["policy"][:, 0],
    )


def train_tabular(
    objective: str,
    params: Mapping[str, object] | None = None,
    P: int = 16,
    K: int = 16,
    G: int = 8,
    steps: int = 300,
    lr: float = 0.5,
    seed: int = 0,
) -> TabularRun:
    """train_bandit on P prompts at once: one independent softmax over K answers per prompt, each with its own
    `n_correct` correct answers, a group of G samples per prompt per step; pass@k is then a mean over prompts
    (some solved, some not) rather than one number pushed to 1."""
    p = _resolve(objective, params, K, G, steps, lr, seed, P)
    t = _train_table(objective, p, P, K, G, steps, lr, seed)
    return TabularRun(objective=objective, params=tuple(sorted(p.items())), P=P, K=K, G=G, **t)


# ------------------------------------------------------------------------------------ the page's variants

# What the RL page compares: name -> (objective, its own parameters); the shared terms come from the page.
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "reinforce": ("reinforce", {"baseline": "none"}),
    "rloo": ("reinforce", {"baseline": "loo"}),  # REINFORCE with the leave-one-out baseline (unbiased)
    "grpo": ("grpo", {}),
    "ppo_clip": ("ppo", {"eps_low": 0.2, "eps_high": 0.2}),
    "ppo_clip_higher": ("ppo", {"eps_low": 0.2, "eps_high": 0.28}),  # DAPO's and EVOL-RL's values
    # label-free (TTRL); with the novelty weight it is EVOL-RL-like (majority anchor + in-group novelty)
    "majority_vote": ("grpo", {"reward": "majority", "novelty_kind": "group"}),
}
LABEL_FREE = ("majority_vote",)  # the variants whose reward takes the novelty bonus
DIVERSITY_TERMS = ("entropy", "band", "novelty")  # the terms meant to keep pi from collapsing
POLICY_FRAMES = 60  # train_variant stores pi about this many times (a frame every steps // 60 steps)

# The task and terms the page starts from (and every preset fills in): its controls carry these keys.
SETTINGS: dict[str, object] = dict(
    prompts=16, answers=16, n_correct=2, group=8, steps=300, lr=0.5, init_scale=1.5, seed=0, kl=0.0,
    entropy=0.0, band=False, novelty=0.0,
)  # fmt: skip


def train_variant(
    variant: str,
    *,
    prompts: int,
    answers: int,
    n_correct: int,
    group: int,
    steps: int,
    lr: float,
    init_scale: float,
    seed: int,
    kl: float = 0.0,
    entropy: float = 0.0,
    band: bool = False,
    novelty: float = 0.0,
) -> TabularRun:
    """One of VARIANTS on the tabular task, with the page's shared terms: the KL weight, the entropy bonus
    weight, EPO's band (weight 1 when on) and, for the label-free variants, the novelty weight. pi is stored
    about POLICY_FRAMES times."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    objective, own = VARIANTS[variant]
    params = {
        **own, "n_correct": n_correct, "init_scale": init_scale, "kl": kl, "entropy": entropy,
        "band_weight": 1.0 if band else 0.0, "novelty": novelty if variant in LABEL_FREE else 0.0,
        "record_every": max(1, steps // POLICY_FRAMES) if isinstance(steps, int) else 1,
    }  # fmt: skip
    return train_tabular(objective, params, prompts, answers, group, steps, lr, seed)


def without_diversity(settings: Mapping[str, object]) -> dict[str, object]:
    """The same settings with every DIVERSITY_TERMS term off: the run the diversity terms are compared to."""
    return {**settings, "entropy": 0.0, "band": False, "novelty": 0.0}


def uses_diversity(variant: str, settings: Mapping[str, object]) -> bool:
    """Whether the diversity terms change this variant's run (novelty only acts on the label-free ones)."""
    entropy, novelty = (float(settings.get(name, 0.0)) for name in ("entropy", "novelty"))  # type: ignore[arg-type]
    return entropy > 0 or bool(settings.get("band", False)) or (novelty > 0 and variant in LABEL_FREE)


# The RL page's presets: the variants to compare and what differs from SETTINGS ("N" is the pass@N loss's N in
# the likelihood comparison, "k" the pass@k shown). The comments give what they showed on seeds 0-4 (measured
# with train_variant; tests/test_rl.py checks seed 0); initial entropy 1.8-2.2 (log 16 = 2.77), pass@1
# 0.08-0.15, pass@16 0.56-0.80.
PRESETS: dict[str, dict[str, object]] = {
    # Entropy collapse: final entropy 0.03-0.14 (GRPO), 0.07-0.42 (REINFORCE, RLOO); pass@1 climbs to
    # 0.93-1.00 (GRPO) and meets pass@16 (0.94-1.00). No prompt's pass@16 fell (of 80): the prompts share no
    # parameters, so sharpening one cannot cost another its coverage; the gap pass@16 - pass@1 closes from
    # below, and each prompt ends on one of its two correct answers.
    "entropy_collapse": dict(variants=("reinforce", "rloo", "grpo")),
    # An entropy bonus of 0.3: final entropy 0.24-0.44 for GRPO (without: 0.03-0.14) at pass@1 0.96-0.98;
    # 1.48-1.60 for RLOO (without: 0.07-0.42), whose smaller reward signal it outweighs: pass@1 0.72-0.78.
    "entropy_bonus": dict(variants=("grpo", "rloo"), entropy=0.3),
    # EPO's band (weight 1, [0.9, 1.1] x the moving average): final entropy 0.17-0.28 for GRPO (without:
    # 0.03-0.14), pass@1 0.97-0.99; it slows the fall, it sets no floor.
    "epo_band": dict(variants=("grpo", "rloo"), band=True),
    # Clip-higher (eps_high 0.28) vs symmetric clip (0.2), PPO with 4 steps per group: final entropy
    # 0.03-0.06 vs 0.02-0.13: not reproduced. In a bandit an answer drawn c times in a group gets c times the
    # push, so the clip binds first on the frequent answer, and a higher clip lets it grow faster.
    "clip_higher": dict(variants=("ppo_clip", "ppo_clip_higher")),
    # Majority vote without labels (TTRL's reward): every prompt collapses onto one answer (mean top
    # probability 0.997, entropy 0.02-0.03), its initially most likely one on 69-100% of the prompts, right or
    # wrong: pass@1 ends at 0.06-0.19 and pass@16 falls to 0.07-0.19. GRPO with the verifier beside it.
    "majority_vote": dict(variants=("grpo", "majority_vote")),
    # ... with the in-group novelty bonus at weight 2 (EVOL-RL-like): entropy 1.58-1.73 (without: 0.02-0.03),
    # pass@16 0.49-0.69 (without: 0.07-0.19), pass@1 0.05-0.13: novelty keeps the answers apart, and with no
    # label nothing makes the right one win.
    "novelty": dict(variants=("majority_vote",), novelty=2.0),
    # pass@N (N = 16) vs likelihood with one correct answer per prompt (the page's second section): final
    # entropy 0.05 for cross-entropy, 1.90-2.06 for pass@N; pass@1 0.99 vs 0.42; pass@16 1.00 for both, and
    # cross-entropy gets there first (step 10: 0.996-1.000 vs 0.943-0.965): every prompt can be fit here.
    "pass_at_n": dict(variants=("grpo",), n_correct=1, N=16),
}


# ------------------------------------------------------------------------------ pass@N versus likelihood

LIKELIHOOD_LOSSES = ("cross_entropy", "pass_at_n")  # registered multiclass losses, as lossviz.losses has them


@dataclass(frozen=True)
class LikelihoodRun:
    """Supervised training of the tabular policy on its correct answers with one registered loss."""

    loss: str
    params: tuple[tuple[str, float], ...]  # the loss's hyperparameters, defaults filled in
    P: int
    K: int
    correct: np.ndarray  # (P, K) 0/1, the same verifier the RL trainers use for this seed
    loss_value: np.ndarray  # (S + 1,) the training loss, mean over the (prompt, correct answer) pairs
    entropy: np.ndarray  # (S + 1,) mean over prompts of H(pi_i)
    p_correct: np.ndarray  # (S + 1, P) each prompt's mass on its correct answers (its pass@1)

    def pass_at(self, k: int) -> np.ndarray:
        """(S + 1,) pass@k over the prompts at every step (`mean_pass_at_k`)."""
        return mean_pass_at_k(self.p_correct, k)


def train_likelihood(
    loss: str,
    params: Mapping[str, float] | None = None,
    *,
    prompts: int = 16,
    answers: int = 16,
    n_correct: int = 1,
    steps: int = 300,
    lr: float = 0.5,
    init_scale: float = 1.0,
    seed: int = 0,
) -> LikelihoodRun:
    """Fine-tune the initial tabular policy (`initial_policy`: the RL trainers' start for the same seed) on
    every (prompt, correct answer) pair with a registered loss: cross-entropy (plain likelihood) or pass@N,
    -log(1 - (1 - pi_y)^N) (Chen et al. 2025, "Rethinking Fine-Tuning when Scaling Test-Time Compute"), by
    gradient descent on the sum over prompts of the mean loss over that prompt's correct answers."""
    if loss not in LIKELIHOOD_LOSSES:
        raise ValueError(f"loss must be one of {LIKELIHOOD_LOSSES}, got {loss!r}")
    _check_task(prompts, answers, steps, lr, seed)
    _whole("n_correct", n_correct, 1, answers)
    if isinstance(init_scale, bool) or not isinstance(init_scale, (int, float)) or not 0 <= init_scale < 1e3:
        raise ValueError(f"init_scale must be a number in [0, 1000), got {init_scale!r}")
    spec = losses.get(loss)
    bound = spec.bind(**dict(params or {}))
    theta, correct, _ = initial_policy(prompts, answers, n_correct, init_scale, seed)
    theta.requires_grad_(True)
    rows, targets = correct.nonzero(as_tuple=True)  # the (prompt, answer) pairs, n_correct per prompt
    values, trajectory = [], _Trajectory(theta, correct, keep=lambda step: False)
    for step in range(steps + 1):
        value = spec.fn(theta[rows], targets, **bound).mean()
        values.append(value.detach())
        if step == steps:
            break
        (grad,) = torch.autograd.grad(value * prompts, theta)  # each prompt's row takes its own full step
        with torch.no_grad():
            theta -= lr * grad
        trajectory.add(theta)
    stats = trajectory.arrays()
    return LikelihoodRun(
        loss=loss, params=tuple(sorted(bound.items())), P=prompts, K=answers, correct=correct.numpy().copy(),
        loss_value=torch.stack(values).numpy(), entropy=stats["entropy"], p_correct=stats["p_correct"],
    )  # fmt: skip
