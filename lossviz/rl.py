"""RL with verifiable rewards on a K-armed bandit: a tabular policy pi = softmax(theta) over K answers, a
seeded 0/1 correctness vector (the verifier), and groups of G answers sampled per step.

    run = train_bandit("grpo", {"entropy": 0.0}, K=8, G=8, steps=200, lr=0.5, seed=0)
    run.entropy[-1], run.pass_at_k[-1], run.policy[-1]  # entropy collapse, pass@(1, 4, 16), pi at the end

Every objective is a *surrogate to maximise*: a scalar whose gradient with respect to the logits is the
estimator (advantages and old/reference policies are detached inside). `train_bandit` does plain gradient
ascent (SGD) on the sum of the chosen policy term and the optional KL, entropy and entropy-band terms.

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

OBJECTIVES = ("reinforce", "grpo", "ppo")
BASELINES = ("none", "mean", "loo")
REWARDS = ("verifiable", "majority")
KL_ESTIMATORS = ("exact", "k3")
PASS_KS = (1, 4, 16)
MAX_ARMS, MAX_GROUP, MAX_STEPS = 1000, 1024, 20000

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
    "novelty": 0.0,  # weight of the count-based novelty bonus, novelty / sqrt(1 + times sampled so far)
    "n_correct": 1,  # how many of the K answers the verifier accepts
    "init_scale": 1.0,  # std of the initial logits
    "record_every": 10,  # pi is stored every this many steps (and at the first and last)
}


# ----------------------------------------------------------------------------------------------- the bandit


def correct_answers(K: int, n_correct: int, seed: int) -> torch.Tensor:
    """The verifier: a seeded 0/1 float64 vector over the K answers with `n_correct` ones."""
    if not 1 <= n_correct <= K:
        raise ValueError(f"n_correct must be in [1, K={K}], got {n_correct!r}")
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(K, generator=g)[:n_correct]
    r = torch.zeros(K, dtype=torch.float64)
    r[chosen] = 1.0
    return r


def sample_group(logits: torch.Tensor, G: int, generator: torch.Generator) -> torch.Tensor:
    """G answers drawn with replacement from softmax(logits) (K,) -> int64 (G,); no gradient."""
    with torch.no_grad():
        probs = torch.softmax(logits.detach().to(torch.float64), dim=-1)
        return torch.multinomial(probs, G, replacement=True, generator=generator)


def policy_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Exact entropy H(pi) = -sum_a pi_a log pi_a, (..., K) -> (...)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def pass_at_k(probs: torch.Tensor | np.ndarray, correct: torch.Tensor | np.ndarray, k: int) -> float:
    """Exact pass@k of a policy: the chance that k independent samples contain a correct answer,
    1 - (1 - p_correct)^k with p_correct = sum_a pi_a r_a."""
    p = float(
        (torch.as_tensor(probs, dtype=torch.float64) * torch.as_tensor(correct, dtype=torch.float64)).sum()
    )
    return 1.0 - (1.0 - min(max(p, 0.0), 1.0)) ** k


def exact_reward_gradient(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """grad_theta E_{a ~ softmax(theta)}[r_a] = pi * (r - E r), (K,) -> (K,)."""
    p = torch.softmax(logits.detach().to(torch.float64), dim=-1)
    r = rewards.to(torch.float64)
    return p * (r - (p * r).sum())


def _logp_of(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) for actions (..., G) under logits (..., K) broadcast to the same batch shape."""
    logp = torch.log_softmax(logits, dim=-1)
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
        logp = torch.log_softmax(logits, dim=-1)
        logr = torch.log_softmax(ref_logits.detach(), dim=-1)
        return (logp.exp() * (logp - logr)).sum(-1).mean()
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
    -> (G,)."""
    counts = torch.bincount(actions, minlength=K)
    mode = int(torch.argmax(counts))
    return (actions == mode).to(torch.float64)


def novelty_bonus(actions: torch.Tensor, counts: torch.Tensor, weight: float) -> torch.Tensor:
    """A count-based novelty bonus, weight / sqrt(1 + n_a) with n_a the times answer a was sampled before this
    step: a tabular stand-in for EVOL-RL's novelty reward (there, semantic dissimilarity to the group's other
    answers), which keeps majority voting from collapsing onto one answer. (G,) -> (G,)."""
    return weight / torch.sqrt(1.0 + counts.to(torch.float64)[actions])


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


def _resolve(objective: str, params: Mapping[str, object] | None, K, G, steps, lr, seed) -> dict[str, object]:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    params = dict(params or {})
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    for name, value, low, high in (
        ("K", K, 2, MAX_ARMS),
        ("G", G, 2, MAX_GROUP),
        ("steps", steps, 1, MAX_STEPS),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be a whole number in [0, 2**31), got {seed!r}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 100:
        raise ValueError(f"lr must be a number in (0, 100], got {lr!r}")
    p = {**DEFAULTS, **params}
    choices = (("baseline", BASELINES), ("reward", REWARDS), ("kl_estimator", KL_ESTIMATORS))
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
    return p


def _policy_term(objective, p, theta, old, actions, rewards):
    if objective == "reinforce":
        return reinforce(theta, actions, rewards, p["baseline"])
    if objective == "grpo":
        return grpo(theta, actions, rewards, p["std_eps"])
    adv = grpo_advantage(rewards, p["std_eps"])
    return ppo_clip(theta, old, actions, adv, p["eps_low"], p["eps_high"])


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
    g = torch.Generator().manual_seed(seed)
    correct = correct_answers(K, p["n_correct"], seed + 1)
    theta = (torch.randn(K, generator=g, dtype=torch.float64) * p["init_scale"]).requires_grad_(True)
    ref = theta.detach().clone()
    counts = torch.zeros(K, dtype=torch.float64)
    h_avg = float(policy_entropy(ref))
    inner = p["inner_steps"] if objective == "ppo" else 1

    def stats(t: torch.Tensor) -> tuple[float, float, float, np.ndarray]:
        with torch.no_grad():
            pi = torch.softmax(t, -1)
            pc = float((pi * correct).sum())
            return float(policy_entropy(t)), float(kl_to_reference(t, ref)), pc, pi.numpy().copy()

    ent, kls, pcs, rewards_log, acc_log, pol_steps, pols = [], [], [], [], [], [], []

    def record(step: int) -> None:
        h, kl, pc, pi = stats(theta)
        ent.append(h), kls.append(kl), pcs.append(pc)
        if step % p["record_every"] == 0 or step == steps:
            pol_steps.append(step), pols.append(pi)

    record(0)
    for step in range(1, steps + 1):
        actions = sample_group(theta, G, g)
        acc = correct[actions]
        r = majority_vote_rewards(actions, K) if p["reward"] == "majority" else acc.clone()
        if p["novelty"] > 0:
            r = r + novelty_bonus(actions, counts, p["novelty"])
        counts += torch.bincount(actions, minlength=K).to(torch.float64)
        old = theta.detach().clone()
        for _ in range(inner):
            s = _policy_term(objective, p, theta, old, actions, r)
            if p["kl"] > 0:
                s = s - p["kl"] * kl_to_reference(theta, ref, actions, p["kl_estimator"])
            if p["entropy"] > 0:
                s = s + p["entropy"] * entropy_bonus(theta)
            if p["band_weight"] > 0:
                s = s - p["band_weight"] * entropy_band_penalty(theta, h_avg, p["band_low"], p["band_high"])
            (grad,) = torch.autograd.grad(s, theta)
            with torch.no_grad():
                theta += lr * grad
        h_now = float(policy_entropy(theta.detach()))
        h_avg = p["band_momentum"] * h_avg + (1.0 - p["band_momentum"]) * h_now
        rewards_log.append(float(r.mean())), acc_log.append(float(acc.mean()))
        record(step)

    pc_arr = np.asarray(pcs)
    return BanditRun(
        objective=objective,
        params=tuple(sorted(p.items())),
        K=K,
        G=G,
        correct=correct.numpy().copy(),
        reward=np.asarray(rewards_log),
        accuracy=np.asarray(acc_log),
        entropy=np.asarray(ent),
        kl=np.asarray(kls),
        p_correct=pc_arr,
        ks=PASS_KS,
        pass_at_k=np.stack([1.0 - (1.0 - np.clip(pc_arr, 0, 1)) ** k for k in PASS_KS], axis=1),
        policy_steps=np.asarray(pol_steps),
        policy=np.stack(pols),
    )
