"""Preference losses on log-probabilities of a chosen and a rejected answer under a policy and a reference.

DPO, IPO, SLiC, cDPO, ORPO, SimPO, KTO, ASFT and the soft-preference (OSP) form; each entry cites its paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, register

# ----------------------------------------------------------------------------------------------------------
# Conventions shared by every loss of this module:
# - fn(policy, reference, **params): policy and reference are (N, 2) log-probabilities (<= 0) of the chosen
#   answer y_w (column 0) and the rejected answer y_l (column 1) of each prompt, under the model being trained
#   and under the frozen reference; one value per pair (N,). The registry's second argument ("target") is the
#   reference here. Reference-free losses (SLiC, ORPO, SimPO, ASFT) accept it and ignore it.
# - h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l) is DPO's log-ratio margin; beta h is the
#   implicit reward margin.
# - Every loss goes through logsigmoid / softplus / log1p: log-probabilities of -1e4 and of exactly 0 stay
#   finite in float32, with finite gradients, at every slider bound.
# ----------------------------------------------------------------------------------------------------------

# An answer of probability 1 (log-probability 0) has infinite odds; the odds-based losses (ORPO, ASFT) read
# log-probabilities above this ceiling as the ceiling, so log(1 - p) >= log(1e-6) ~ -13.8 stays finite.
# The clamp passes no gradient for such an answer through its odds term (its SFT term still has one).
LOG_PROB_CEIL = -1e-6
_LOG_HALF = -math.log(2.0)

_DPO = "Direct Preference Optimization: Your Language Model is Secretly a Reward Model (Rafailov et al. 2023)"
_IPO = "A General Theoretical Paradigm to Understand Learning from Human Preferences (Azar et al., 2023)"
_SLIC = "SLiC-HF: Sequence Likelihood Calibration with Human Feedback (Zhao et al., 2023)"
_CDPO = "A Note on DPO with Noisy Preferences & Relationship to IPO (Mitchell, 2023)"
_ORPO = "ORPO: Monolithic Preference Optimization without Reference Model (Hong, Lee & Thorne, 2024)"
_SIMPO = "SimPO: Simple Preference Optimization with a Reference-Free Reward (Meng, Xia & Chen, 2024)"
_KTO = "KTO: Model Alignment as Prospect Theoretic Optimization (Ethayarajh et al., 2024)"
_ASFT = "ASFT: Aligned Supervised Fine-Tuning through Absolute Likelihood (Wang, Sun, Hua & Fang, 2024)"

# DPO's log-ratio margin, spelled out in the formulas that use it
_H = r"h = \log\frac{\pi(y_w)}{\pi_{\mathrm{ref}}(y_w)} - \log\frac{\pi(y_l)}{\pi_{\mathrm{ref}}(y_l)}"
_ODDS = r"\mathrm{odds}(y) = \frac{\pi(y)}{1 - \pi(y)}"

_BETA = Param("beta", 0.01, 10.0, log=True, help="β: scale of the log-ratio margin (inverse KL strength)")


def check_log_probs(policy: torch.Tensor, reference: torch.Tensor) -> None:
    """Raise ValueError unless policy and reference are both (N, 2): chosen and rejected columns."""
    if policy.dim() != 2 or policy.shape[1] != 2:
        raise ValueError(
            f"policy must be (N, 2) log-probabilities (chosen, rejected), got {tuple(policy.shape)}"
        )
    if reference.shape != policy.shape:
        raise ValueError(
            f"reference must have the policy's shape {tuple(policy.shape)}, got {tuple(reference.shape)}"
        )


def log_ratio_margin(policy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """DPO's h = (log pi_w - log ref_w) - (log pi_l - log ref_l).  # (N,)"""
    check_log_probs(policy, reference)
    log_ratio = policy - reference  # (N, 2)
    return log_ratio[:, 0] - log_ratio[:, 1]


def log_one_minus_exp(log_p: torch.Tensor) -> torch.Tensor:
    """log(1 - p) from log p (read as at most LOG_PROB_CEIL): log1p(-exp) far from p = 1, log(-expm1) near
    it (Mächler, 2012)."""
    log_p = log_p.clamp(max=LOG_PROB_CEIL)
    # each branch clamped to its own side: the one where() discards stays finite (it is still differentiated)
    far = torch.log1p(-torch.exp(log_p.clamp(max=_LOG_HALF)))
    near = torch.log(-torch.expm1(log_p.clamp(min=_LOG_HALF)))
    return torch.where(log_p < _LOG_HALF, far, near)


def log_odds(log_p: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) from log p, stable for p near 0 and 1 (p above 1 - 1e-6 counts as 1 - 1e-6)."""
    return log_p.clamp(max=LOG_PROB_CEIL) - log_one_minus_exp(log_p)


# ----------------------------------------------------------------------------------------------------------
# References for the tests: the same formulas written plainly (explicit sigmoid, log, exp, odds) and in a
# different arrangement, for moderate inputs in float64 only.
# ----------------------------------------------------------------------------------------------------------


def _plain_margin(policy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(log pi_w - log pi_l) - (log ref_w - log ref_l), grouped by model rather than by answer.  # (N,)"""
    return (policy[:, 0] - policy[:, 1]) - (reference[:, 0] - reference[:, 1])


def _plain_odds(log_p: torch.Tensor) -> torch.Tensor:
    p = torch.exp(log_p)
    return p / (1.0 - p)


def _dpo_reference(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> torch.Tensor:
    return -torch.log(torch.sigmoid(beta * _plain_margin(policy, reference)))


def _ipo_reference(policy: torch.Tensor, reference: torch.Tensor, tau: float) -> torch.Tensor:
    target_margin = 1.0 / (2.0 * tau)
    return (_plain_margin(policy, reference) - target_margin) ** 2


def _slic_reference(policy: torch.Tensor, reference: torch.Tensor, delta: float) -> torch.Tensor:
    return torch.relu(delta - policy[:, 0] + policy[:, 1])


def _cdpo_reference(policy: torch.Tensor, reference: torch.Tensor, beta: float, eps: float) -> torch.Tensor:
    logits = beta * _plain_margin(policy, reference)
    # Bradley-Terry probabilities that the labelled order, and the flipped one, is right
    return -(1.0 - eps) * torch.log(torch.sigmoid(logits)) - eps * torch.log(torch.sigmoid(-logits))


def _orpo_reference(policy: torch.Tensor, reference: torch.Tensor, lam: float) -> torch.Tensor:
    odds_ratio = _plain_odds(policy[:, 0]) / _plain_odds(policy[:, 1])
    return -policy[:, 0] - lam * torch.log(torch.sigmoid(torch.log(odds_ratio)))


def _simpo_reference(
    policy: torch.Tensor,
    reference: torch.Tensor,
    beta: float,
    gamma: float,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    lengths = torch.ones_like(policy) if lengths is None else lengths.to(policy.dtype)
    reward = beta * policy / lengths  # (N, 2) length-normalised implicit rewards
    return -torch.log(torch.sigmoid(reward[:, 0] - reward[:, 1] - gamma))


def _kto_reference(
    policy: torch.Tensor, reference: torch.Tensor, beta: float, lambda_d: float, lambda_u: float
) -> torch.Tensor:
    rewards = policy - reference  # (N, 2)
    z0 = max(0.0, float(rewards.mean()))
    desirable = lambda_d * (1.0 - torch.sigmoid(beta * (rewards[:, 0] - z0)))
    undesirable = lambda_u * (1.0 - torch.sigmoid(beta * (z0 - rewards[:, 1])))
    return torch.cat([desirable, undesirable]).mean()


def _asft_reference(policy: torch.Tensor, reference: torch.Tensor, beta: float, lam: float) -> torch.Tensor:
    chosen_up = torch.sigmoid(beta * torch.log(_plain_odds(policy[:, 0])))
    rejected_down = torch.sigmoid(-beta * torch.log(_plain_odds(policy[:, 1])))
    return -policy[:, 0] + lam * (-torch.log(chosen_up) - torch.log(rejected_down))


def _soft_preference_reference(
    policy: torch.Tensor, reference: torch.Tensor, beta: float, p: float
) -> torch.Tensor:
    logits = beta * _plain_margin(policy, reference)
    return -(p * torch.log(torch.sigmoid(logits)) + (1.0 - p) * torch.log(torch.sigmoid(-logits)))


# ----------------------------------------------------------------------------------------------------------
# Losses with a reference: DPO and its reshapings
# ----------------------------------------------------------------------------------------------------------


@register(
    title="DPO",
    latex=r"-\log\sigma(\beta h),\quad " + _H,
    task="preference",
    paper=_DPO,
    params=[_BETA],
    reference=_dpo_reference,
    notes="Bradley-Terry likelihood of the preference with the implicit reward β log π/π_ref. It only sees "
    "the margin h, so it may lower both answers as long as the rejected falls faster.",
)
def dpo(policy: torch.Tensor, reference: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    return -F.logsigmoid(beta * log_ratio_margin(policy, reference))


@register(
    title="IPO",
    latex=r"\Big(h - \frac{1}{2\tau}\Big)^2,\quad " + _H,
    task="preference",
    paper=_IPO,
    params=[Param("tau", 0.01, 10.0, log=True, help="τ: regularisation; the margin is pulled to 1/(2τ)")],
    reference=_ipo_reference,
    notes="Regresses the log-ratio margin onto the finite target 1/(2τ) instead of pushing it to infinity "
    "(DPO with deterministic preferences); the loss is 0 exactly at h = 1/(2τ).",
)
def ipo(policy: torch.Tensor, reference: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    return (log_ratio_margin(policy, reference) - 1.0 / (2.0 * tau)) ** 2


@register(
    title="Conservative DPO (cDPO)",
    latex=r"-(1-\varepsilon)\log\sigma(\beta h) - \varepsilon\log\sigma(-\beta h),\quad " + _H,
    task="preference",
    paper=_CDPO,
    params=[_BETA, Param("eps", 0.0, 0.5, help="ε: assumed rate of flipped preference labels")],
    reference=_cdpo_reference,
    notes="DPO on labels flipped with probability ε: (1-ε) DPO + ε DPO with chosen and rejected swapped. "
    "For ε > 0 the optimum is the finite margin β h = log((1-ε)/ε); ε = 0 is DPO, ε = 1/2 learns nothing.",
)
def cdpo(policy: torch.Tensor, reference: torch.Tensor, beta: float = 0.1, eps: float = 0.1) -> torch.Tensor:
    logits = beta * log_ratio_margin(policy, reference)  # (N,)
    return (1.0 - eps) * F.softplus(-logits) + eps * F.softplus(logits)


@register(
    title="Soft preference (OSP)",
    latex=r"-p\log\sigma(\beta h) - (1-p)\log\sigma(-\beta h),\quad " + _H,
    task="preference",
    paper="The soft-preference (OSP) form of the project's founding papers, written from issue 10's "
    "description: DPO's Bradley-Terry likelihood (Rafailov et al., 2023) against a soft label p",
    params=[_BETA, Param("p", 0.5, 1.0, help="p: probability that the chosen answer is the preferred one")],
    reference=_soft_preference_reference,
    notes="Cross-entropy between the soft label p and the Bradley-Terry probability σ(β h): the optimum is "
    "β h = log(p/(1-p)). The same function as cDPO with ε = 1 - p (a label probability rather than a flip "
    "rate); p = 1 is DPO. Written from the issue's description, not checked against the OSP paper.",
)
def soft_preference(
    policy: torch.Tensor, reference: torch.Tensor, beta: float = 0.1, p: float = 0.9
) -> torch.Tensor:
    logits = beta * log_ratio_margin(policy, reference)  # (N,)
    return p * F.softplus(-logits) + (1.0 - p) * F.softplus(logits)


@register(
    title="KTO",
    latex=r"\tfrac{1}{2}\big[\lambda_D\,\sigma(-\beta(r_w - z_0)) + \lambda_U\,\sigma(-\beta(z_0 - r_l))\big]"
    r",\quad r = \log\frac{\pi(y)}{\pi_{\mathrm{ref}}(y)}"
    r",\quad z_0 = \max\big(0, \overline{r}_{\mathrm{batch}}\big)",
    task="preference",
    paper=_KTO,
    params=[
        _BETA,
        Param("lambda_d", 0.0, 2.0, help="λ_D: weight of desirable (chosen) answers"),
        Param("lambda_u", 0.0, 2.0, help="λ_U: weight of undesirable (rejected) answers"),
    ],
    batch=True,
    reference=_kto_reference,
    notes="Unpaired: each chosen answer is a desirable example and each rejected one an undesirable example, "
    "valued by a prospect-theory sigmoid around the reference point z₀. Simplification: z₀ is the batch mean "
    "of r over all 2N answers, clamped at 0 and detached (no gradient), where the paper averages r over "
    "mismatched pairs (a prompt with another example's answer); returns the mean over the 2N examples.",
)
def kto(
    policy: torch.Tensor,
    reference: torch.Tensor,
    beta: float = 0.1,
    lambda_d: float = 1.0,
    lambda_u: float = 1.0,
) -> torch.Tensor:
    check_log_probs(policy, reference)
    rewards = policy - reference  # (N, 2) implicit rewards, before beta
    # the KL reference point, as in the paper: a batch estimate, floored at 0, not back-propagated through
    z0 = rewards.detach().mean().clamp(min=0.0)
    desirable = lambda_d * torch.sigmoid(-beta * (rewards[:, 0] - z0))  # lambda_D - v(x, y_w)
    undesirable = lambda_u * torch.sigmoid(-beta * (z0 - rewards[:, 1]))  # lambda_U - v(x, y_l)
    return 0.5 * (desirable.mean() + undesirable.mean())


# ----------------------------------------------------------------------------------------------------------
# Reference-free losses: the second argument is accepted and ignored
# ----------------------------------------------------------------------------------------------------------


@register(
    title="SLiC hinge",
    latex=r"\max\big(0,\ \delta - \log\pi(y_w) + \log\pi(y_l)\big)",
    task="preference",
    paper=_SLIC,
    params=[Param("delta", 0.0, 10.0, help="δ: log-likelihood margin the chosen answer must win by")],
    reference=_slic_reference,
    notes="SLiC-HF's rank calibration loss: zero once log π(y_w) beats log π(y_l) by δ. No reference model "
    "is used (as in SLiC-HF), and its regulariser, cross-entropy on separate SFT targets, is left out.",
)
def slic(policy: torch.Tensor, reference: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    check_log_probs(policy, reference)
    return torch.relu(delta - (policy[:, 0] - policy[:, 1]))


@register(
    title="ORPO",
    latex=r"-\log\pi(y_w) - \lambda\log\sigma\Big(\log\frac{\mathrm{odds}(y_w)}{\mathrm{odds}(y_l)}\Big),"
    r"\quad " + _ODDS,
    task="preference",
    paper=_ORPO,
    params=[Param("lam", 0.0, 2.0, help="λ: weight of the odds-ratio term; the paper uses 0.1")],
    reference=_orpo_reference,
    notes="Supervised fine-tuning on the chosen answer plus λ times a Bradley-Terry loss on the log odds "
    "ratio; no reference model. The paper averages log-probabilities over tokens; here they are taken as "
    "given. Probabilities above 1 - 1e-6 count as 1 - 1e-6 in the odds.",
)
def orpo(policy: torch.Tensor, reference: torch.Tensor, lam: float = 0.1) -> torch.Tensor:
    check_log_probs(policy, reference)
    odds = log_odds(policy)  # (N, 2)
    return -policy[:, 0] - lam * F.logsigmoid(odds[:, 0] - odds[:, 1])


@register(
    title="SimPO",
    latex=r"-\log\sigma\Big(\frac{\beta}{|y_w|}\log\pi(y_w) - \frac{\beta}{|y_l|}\log\pi(y_l) - \gamma\Big)",
    task="preference",
    paper=_SIMPO,
    params=[
        Param("beta", 0.1, 10.0, log=True, help="β: scale of the length-normalised reward; paper: 2-2.5"),
        Param("gamma", 0.0, 5.0, help="γ: target reward margin; the paper uses about 0.5-1.6"),
    ],
    reference=_simpo_reference,
    notes="The reward is the average log-probability per token, β log π(y)/|y|, and the chosen must win by "
    "γ; no reference model. The lengths |y| (N, 2) come as context; without them both are taken as 1.",
)
def simpo(
    policy: torch.Tensor,
    reference: torch.Tensor,
    beta: float = 2.0,
    gamma: float = 1.0,
    *,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    check_log_probs(policy, reference)
    if lengths is None:
        per_token = policy  # both lengths 1
    else:
        lengths = torch.as_tensor(lengths, dtype=policy.dtype, device=policy.device)
        if lengths.shape != policy.shape:
            raise ValueError(
                f"lengths must be (N, 2) like the policy, {tuple(policy.shape)}, got {tuple(lengths.shape)}"
            )
        if not bool((lengths > 0).all()):
            raise ValueError(f"lengths must all be > 0, got minimum {float(lengths.min())}")
        per_token = policy / lengths  # (N, 2)
    return -F.logsigmoid(beta * (per_token[:, 0] - per_token[:, 1]) - gamma)


@register(
    title="ASFT",
    latex=r"-\log\pi(y_w) + \lambda\big[-\log\sigma(\beta\log\mathrm{odds}(y_w)) "
    r"- \log\sigma(-\beta\log\mathrm{odds}(y_l))\big],\quad " + _ODDS,
    task="preference",
    paper=_ASFT,
    params=[
        Param("beta", 0.1, 10.0, log=True, help="β: tempers the log odds; 1 is the untempered form"),
        Param("lam", 0.0, 2.0, help="λ: weight of the alignment term against SFT on the chosen"),
    ],
    reference=_asft_reference,
    notes="Absolute likelihood, no reference: each answer's own odds are pushed (the chosen up, the rejected "
    "down) instead of their difference, so at β = 1 the alignment term is -log p_w - log(1 - p_l). Written "
    "from turbo-alignment's ASFTLoss (the β tempering is from 'The Differences Between Direct Alignment "
    "Algorithms are a Blur'); the paper's equations and its λ were not checked here.",
)
def asft(policy: torch.Tensor, reference: torch.Tensor, beta: float = 1.0, lam: float = 1.0) -> torch.Tensor:
    check_log_probs(policy, reference)
    odds = beta * log_odds(policy)  # (N, 2)
    align = -F.logsigmoid(odds[:, 0]) - F.logsigmoid(-odds[:, 1])
    return -policy[:, 0] + lam * align
