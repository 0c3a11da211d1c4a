"""Multiclass classification losses on logits z (N, K) with int64 targets y (N,).

See CATALOGUE.md section 1 for the formulas and the papers they come from (cited per loss below).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, register

# ----------------------------------------------------------------------------------------------------------
# Shared pieces. Every loss goes through log_softmax / logsumexp: logits of +-1e4 in float32 stay finite.
# ----------------------------------------------------------------------------------------------------------

_LOG_HALF = -math.log(2.0)


def _true_class_log_prob(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p_y computed stably with log_softmax.  # (N,)"""
    return torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)


def _true_class(values: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """values[i, y_i] for (N, K) values.  # (N,)"""
    return values.gather(-1, target.unsqueeze(-1)).squeeze(-1)


def _true_mask(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Boolean one-hot of the targets.  # (N, K)"""
    return F.one_hot(target, logits.shape[-1]).bool()


def _one_minus_p_true(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - p_y via expm1, accurate when p_y is small.  # (N,)"""
    return -torch.expm1(_true_class_log_prob(logits, target))


def _log_one_minus_p_true(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log(1 - p_y), accurate for p_y near 0 (log1p) and near 1 (logsumexp of the others).  # (N,)"""
    log_p_true = _true_class_log_prob(logits, target)  # (N,)
    # p_y <= 1/2: log1p is exact; the clamp keeps the unused branch finite (where() still differentiates it).
    small = torch.log1p(-torch.exp(log_p_true.clamp(max=_LOG_HALF)))
    # p_y > 1/2: 1 - p_y = sum_{k != y} p_k, which stays finite (e.g. -2e4) where 1 - p_y rounds to 0.
    others = logits.masked_fill(_true_mask(logits, target), -math.inf)
    large = torch.logsumexp(others, dim=-1) - torch.logsumexp(logits, dim=-1)
    return torch.where(log_p_true < _LOG_HALF, small, large)


def _ce_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="none")


def _softmax_true(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """p_y from an explicit softmax (for references only).  # (N,)"""
    return _true_class(torch.softmax(logits, dim=-1), target)


# ----------------------------------------------------------------------------------------------------------
# Cross-entropy and its reshapings
# ----------------------------------------------------------------------------------------------------------


@register(
    title="Cross-entropy",
    latex=r"-\log p_y = \log\sum_k e^{z_k} - z_y",
    task="multiclass",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (Mao, Mohri, Zhong, 2023)",
    reference=_ce_reference,
    notes="Unbounded for wrong points; the gradient p - e_y is never zero, so logits keep growing.",
)
def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -_true_class_log_prob(logits, target)


def _temperature_ce_reference(logits: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.cross_entropy(logits / temperature, target, reduction="none")


@register(
    title="Cross-entropy with temperature",
    latex=r"-\log \operatorname{softmax}(z / T)_y",
    task="multiclass",
    paper="Label Distributionally Robust Losses for Multi-class Classification (Zhu, Ying, Yang, 2023)",
    params=[Param("temperature", 0.05, 10.0, log=True, help="T: small T -> hinge on the hardest competitor")],
    reference=_temperature_ce_reference,
    notes="Small T turns CE into a hinge on the hardest wrong class; large T makes it nearly linear in z.",
)
def temperature_ce(logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return -_true_class_log_prob(logits / temperature, target)


def _label_smoothing_reference(logits: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="none", label_smoothing=eps)


@register(
    title="Label smoothing",
    latex=r"(1-\varepsilon)(-\log p_y) + \varepsilon \frac{1}{K}\sum_k (-\log p_k)",
    task="multiclass",
    paper="Rethinking the Inception Architecture for Computer Vision (Szegedy et al., 2016)",
    params=[Param("eps", 0.0, 0.5, help="mass moved from the true class to the uniform distribution")],
    reference=_label_smoothing_reference,
    notes="Cross-entropy against a smoothed target: the optimum is a finite logit gap, which caps "
    "confidence.",
)
def label_smoothing(logits: torch.Tensor, target: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    log_probs = torch.log_softmax(logits, dim=-1)  # (N, K)
    return -(1.0 - eps) * _true_class(log_probs, target) - eps * log_probs.mean(dim=-1)


def _focal_reference(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    p_true = _softmax_true(logits, target)
    return -((1.0 - p_true) ** gamma) * torch.log(p_true)


@register(
    title="Focal",
    latex=r"-(1-p_y)^{\gamma} \log p_y",
    task="multiclass",
    paper="Focal Loss for Dense Object Detection (Lin et al., 2017); discussed in PolyLoss "
    "(Leng et al., 2022)",
    params=[Param("gamma", 0.0, 5.0, help="focusing power; 0 is cross-entropy")],
    reference=_focal_reference,
    notes="Down-weights easy samples: the gradient vanishes as p_y -> 1, so training focuses on hard ones.",
)
def focal(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    # (1 - p_y)^gamma = exp(gamma log(1 - p_y)): finite with a finite gradient even where 1 - p_y rounds to 0.
    weight = torch.exp(gamma * _log_one_minus_p_true(logits, target))
    return -weight * _true_class_log_prob(logits, target)


def _poly1_reference(logits: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    return _ce_reference(logits, target) + eps * (1.0 - _softmax_true(logits, target))


@register(
    title="Poly-1",
    latex=r"-\log p_y + \varepsilon (1 - p_y)",
    task="multiclass",
    paper="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions (Leng et al., 2022)",
    params=[Param("eps", -1.0, 10.0, help="extra weight on the first polynomial term (1 - p_y)")],
    reference=_poly1_reference,
    notes="CE = sum_j (1-p_y)^j / j; Poly-1 perturbs the leading coefficient. eps > 0 pushes harder on "
    "confident samples, eps < 0 softer.",
)
def poly1(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    return cross_entropy(logits, target) + eps * _one_minus_p_true(logits, target)


# Above this value of (1 - tau) * CE the exponential of comp-sum is continued by its tangent line, so that
# tau < 1 stays finite in float32 (exp(50) * 2e4 ~ 1e26 < 3e38) while the gradient keeps its sign.
_COMP_SUM_EXPONENT_CAP = 50.0


def _comp_sum_reference(logits: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    true_logit = _true_class(logits, target).unsqueeze(-1)
    u = torch.exp(logits - true_logit).sum(dim=-1) - 1.0  # sum_{k != y} e^{z_k - z_y}
    if tau == 1.0:
        return torch.log1p(u)
    return ((1.0 + u) ** (1.0 - tau) - 1.0) / (1.0 - tau)


@register(
    title="Comp-sum",
    latex=r"\Phi_\tau\Big(\sum_{k\ne y} e^{z_k - z_y}\Big),\ "
    r"\Phi_\tau(u) = \frac{(1+u)^{1-\tau} - 1}{1-\tau},\ \Phi_1(u) = \log(1+u)",
    task="multiclass",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (Mao, Mohri, Zhong, 2023)",
    params=[Param("tau", 0.0, 2.0, help="0 sum-exp, 1 cross-entropy, (1, 2) GCE, 2 mean absolute error")],
    reference=_comp_sum_reference,
    notes="One slider through a family: sum-exponential (0), CE (1), GCE with q = tau - 1, 1 - p_y (2). "
    "The gradient is the CE gradient times p_y^(tau - 1).",
)
def comp_sum(logits: torch.Tensor, target: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    ce = cross_entropy(logits, target)  # log(1 + u) = -log p_y  # (N,)
    if abs(1.0 - tau) < 1e-8:
        return ce
    # Phi_tau = expm1((1 - tau) CE) / (1 - tau), since 1 + u = 1 / p_y.
    exponent = (1.0 - tau) * ce
    capped = exponent.clamp(max=_COMP_SUM_EXPONENT_CAP)
    # Beyond the cap: value and slope of the tangent at the cap (only reachable for tau < 1 and CE > 50).
    return (torch.expm1(capped) + torch.exp(capped) * (exponent - capped)) / (1.0 - tau)


def _gce_reference(logits: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    return (1.0 - _softmax_true(logits, target) ** q) / q


@register(
    title="Generalized cross-entropy",
    latex=r"\frac{1 - p_y^{\,q}}{q}",
    task="multiclass",
    paper="Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy Labels "
    "(Zhang & Sabuncu, 2018); comp-sum with tau = 1 + q (Mao, Mohri, Zhong, 2023)",
    params=[Param("q", 0.01, 1.0, help="q -> 0 cross-entropy, q = 1 mean absolute error (1 - p_y)")],
    reference=_gce_reference,
    notes="Bounded by 1/q, so mislabelled points cannot dominate: robust to label noise.",
)
def gce(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    return -torch.expm1(q * _true_class_log_prob(logits, target)) / q


def _mae_prob_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return (torch.softmax(logits, dim=-1) - one_hot).abs().sum(dim=-1)


@register(
    title="Mean absolute error on probabilities",
    latex=r"\sum_k |p_k - [k = y]| = 2(1 - p_y)",
    task="multiclass",
    paper="Robust Loss Functions under Label Noise for Deep Neural Networks (Ghosh, Kumar, Sastry, 2017); "
    "Normalized Loss Functions for Deep Learning with Noisy Labels (Ma et al., 2020)",
    reference=_mae_prob_reference,
    notes="Symmetric and bounded, hence robust to label noise, but its gradient p_y (p - e_y) vanishes on "
    "hard samples: it underfits.",
)
def mae_prob(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 2.0 * _one_minus_p_true(logits, target)


def _brier_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return ((torch.softmax(logits, dim=-1) - one_hot) ** 2).sum(dim=-1)


@register(
    title="Brier score",
    latex=r"\sum_k (p_k - [k = y])^2",
    task="multiclass",
    paper="Verification of Forecasts Expressed in Terms of Probability (Brier, 1950); "
    "On Second-Order Scoring Rules for Epistemic Uncertainty Quantification (Bengs et al., 2023)",
    reference=_brier_reference,
    notes="A strictly proper scoring rule bounded in [0, 2]: calibrated but gentle on confidently wrong "
    "points.",
)
def brier(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)  # (N, K)
    wrong = probs.masked_fill(_true_mask(logits, target), 0.0)  # p_k for k != y, 0 at y
    return _one_minus_p_true(logits, target) ** 2 + (wrong**2).sum(dim=-1)


def _squentropy_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    square = ((logits * (1.0 - one_hot)) ** 2).sum(dim=-1) / (logits.shape[-1] - 1)
    return _ce_reference(logits, target) + square


@register(
    title="Squentropy",
    latex=r"-\log p_y + \frac{1}{K-1}\sum_{k\ne y} z_k^2",
    task="multiclass",
    paper="Cut your Losses with Squentropy (Hui, Belkin, Wright, 2023)",
    reference=_squentropy_reference,
    notes="Cross-entropy plus the average squared wrong-class logit: pins wrong logits near 0, which "
    "improves calibration.",
)
def squentropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    wrong = logits.masked_fill(_true_mask(logits, target), 0.0)  # (N, K)
    return cross_entropy(logits, target) + (wrong**2).sum(dim=-1) / (logits.shape[-1] - 1)


def _squared_onehot_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return 0.5 * F.mse_loss(logits, one_hot, reduction="none").sum(dim=-1)


@register(
    title="Squared error on one-hot targets (MSE)",
    latex=r"\tfrac{1}{2}\lVert z - e_y \rVert^2 = \tfrac{1}{2}\sum_k (z_k - [k = y])^2",
    task="multiclass",
    paper="Evaluation of Neural Architectures Trained with Square Loss vs Cross-Entropy in Classification "
    "Tasks (Hui & Belkin, 2021); Neural Collapse Under MSE Loss: Proximity to and Dynamics on the Central "
    "Path (Han, Papyan & Donoho, 2022)",
    reference=_squared_onehot_reference,
    notes="Least squares on the raw logits, no softmax: the target is z = e_y exactly, so logits stay "
    "bounded. Trains about as well as cross-entropy, and its features collapse to a simplex ETF too.",
)
def squared_onehot(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    residual = logits - _true_mask(logits, target).to(logits.dtype)  # (N, K) z - e_y
    return 0.5 * (residual**2).sum(dim=-1)


# Added to the variance so equal logits (e.g. a zero-initialised head) have a finite gradient; it breaks scale
# invariance only for logit spreads below ~1e-3.
_Z_LOSS_VARIANCE_EPS = 1e-6


def _spherical_z_reference(
    logits: torch.Tensor, target: torch.Tensor, sharpness: float, margin: float
) -> torch.Tensor:
    mean = logits.mean(dim=-1, keepdim=True)
    std = torch.sqrt(((logits - mean) ** 2).mean(dim=-1, keepdim=True) + _Z_LOSS_VARIANCE_EPS)
    z_true = _true_class((logits - mean) / std, target)
    return torch.log(1.0 + torch.exp(sharpness * (margin - z_true))) / sharpness


@register(
    title="Z-loss (spherical)",
    latex=r"\frac{1}{a}\operatorname{softplus}\big(a (b - \hat z_y)\big),\ \hat z = \frac{z - \bar "
    r"z}{\sigma(z)}",
    task="multiclass",
    paper="The Z-loss: a shift and scale invariant classification loss belonging to the Spherical Family "
    "(de Brébisson & Vincent, 2016)",
    params=[
        Param("sharpness", 0.1, 10.0, log=True, help="a: how sharply the softplus bends"),
        Param("margin", 0.0, 10.0, help="b: standardised score the true class should exceed"),
    ],
    reference=_spherical_z_reference,
    notes="Acts on standardised logits, so shifting or scaling all logits changes nothing: it only sees "
    "ranks and relative gaps. Not the 'z-loss' regulariser of logit_z_penalty.",
)
def spherical_z(
    logits: torch.Tensor, target: torch.Tensor, sharpness: float = 1.0, margin: float = 3.0
) -> torch.Tensor:
    # Population standard deviation, as in the paper: sigma^2 = (1/K) sum_k (z_k - mean)^2.
    var, mean = torch.var_mean(logits, dim=-1, correction=0, keepdim=True)  # (N, 1) each
    standardised = (logits - mean) / torch.sqrt(var + _Z_LOSS_VARIANCE_EPS)  # (N, K)
    return F.softplus(sharpness * (margin - _true_class(standardised, target))) / sharpness


def _logit_z_penalty_reference(logits: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    log_normaliser = torch.log(torch.exp(logits).sum(dim=-1))
    return _ce_reference(logits, target) + alpha * log_normaliser**2


@register(
    title="Cross-entropy + logit z-penalty",
    latex=r"-\log p_y + \alpha \big(\log\sum_k e^{z_k}\big)^2",
    task="multiclass",
    paper="Small-scale proxies for large-scale Transformer training instabilities (Wortsman et al., 2023); "
    "introduced in PaLM (Chowdhery et al., 2022)",
    params=[Param("alpha", 1e-6, 1e-1, log=True, help="weight of the squared log-normaliser")],
    reference=_logit_z_penalty_reference,
    notes="This is the *other* 'z-loss' (from 'Small-scale proxies...', PaLM), not the spherical Z-loss: it "
    "keeps the softmax normaliser log Z near 0 so logits cannot drift to huge values.",
)
def logit_z_penalty(logits: torch.Tensor, target: torch.Tensor, alpha: float = 1e-4) -> torch.Tensor:
    return cross_entropy(logits, target) + alpha * torch.logsumexp(logits, dim=-1) ** 2


def _ldr_kl_reference(logits: torch.Tensor, target: torch.Tensor, lam: float, margin: float) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    gaps = logits - _true_class(logits, target).unsqueeze(-1) + margin * (1.0 - one_hot)
    return lam * torch.log(torch.exp(gaps / lam).mean(dim=-1))


@register(
    title="LDR-KL",
    latex=r"\lambda \log\Big(\frac{1}{K}\sum_k \exp\frac{z_k - z_y + c\,[k \ne y]}{\lambda}\Big)",
    task="multiclass",
    paper="Label Distributionally Robust Losses for Multi-class Classification: Consistency, Robustness and "
    "Adaptivity (Zhu, Ying, Yang, 2023)",
    params=[
        Param(
            "lam", 0.01, 100.0, log=True, help="lambda: KL-regularisation strength of the worst-case label"
        ),
        Param("margin", 0.0, 2.0, help="c: margin demanded between the true and each wrong logit"),
    ],
    reference=_ldr_kl_reference,
    notes="Worst case over label distributions with a KL penalty to uniform: lambda -> 0 is the "
    "Crammer-Singer hinge, lambda = 1, c = 0 is CE - log K, lambda -> infinity the mean gap "
    "(symmetric, noise-robust). Its minimum is -lambda log K, so training losses go below zero.",
)
def ldr_kl(logits: torch.Tensor, target: torch.Tensor, lam: float = 1.0, margin: float = 1.0) -> torch.Tensor:
    # The paper's form: max_q sum_k q_k (z_k - z_y + c_ky) - lam KL(q || uniform), with c_ky = c [k != y].
    # The authors' code also rescales logits by softplus(z) / mean softplus(z), a model choice left out here.
    gaps = logits - _true_class(logits, target).unsqueeze(-1)  # (N, K), 0 at the true class
    gaps = gaps + margin * (~_true_mask(logits, target)).to(logits.dtype)
    return lam * (torch.logsumexp(gaps / lam, dim=-1) - math.log(logits.shape[-1]))


# ----------------------------------------------------------------------------------------------------------
# Noise-robust losses: normalized, reverse and symmetric cross-entropy (Ma et al., 2020; Wang et al., 2019)
# ----------------------------------------------------------------------------------------------------------

# Log-probabilities are floored here in nce: sum_k log p_k can reach -inf in float32 at logits of +-1e4; the
# floor keeps the ratio finite and in [0, 1]. exp(-100) is far below any probability that matters.
_NCE_LOG_PROB_FLOOR = -100.0
# RCE's log 0 := A. The papers (Wang et al., 2019; Ma et al., 2020) write A = -4, but both official codes
# clamp the one-hot label at 1e-4 before the log, i.e. A = log(1e-4) ~ -9.21: the default reproduces the code.
_RCE_LOG_ZERO = math.log(1e-4)
_RCE_NOTE = "The default A reproduces the official code (one-hot clamped at 1e-4); the papers write A = -4."
_LOG_ZERO = Param(
    "log_zero", -20.0, -1.0, help="A: the value that stands in for log 0 in the one-hot label (code: ln 1e-4)"
)


def _nce_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    log_probs = torch.log(torch.softmax(logits, dim=-1))
    return _true_class(log_probs, target) / log_probs.sum(dim=-1)


@register(
    title="Normalized cross-entropy",
    latex=r"\frac{\log p_y}{\sum_k \log p_k}",
    task="multiclass",
    paper="Normalized Loss Functions for Deep Learning with Noisy Labels (Ma et al., 2020)",
    reference=_nce_reference,
    notes="CE divided by the CE summed over all labels: bounded in [0, 1] and robust to label noise, but an "
    "'active' loss alone underfits.",
)
def nce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    log_probs = torch.log_softmax(logits, dim=-1).clamp(min=_NCE_LOG_PROB_FLOOR)  # (N, K)
    return _true_class(log_probs, target) / log_probs.sum(dim=-1)


def _rce_reference(logits: torch.Tensor, target: torch.Tensor, log_zero: float) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    log_label = (1.0 - one_hot) * log_zero  # log of the one-hot label, with log 0 := A
    return -(torch.softmax(logits, dim=-1) * log_label).sum(dim=-1)


@register(
    title="Reverse cross-entropy",
    latex=r"-\sum_k p_k \log q_k \big|_{\log 0 := A} = -A (1 - p_y)",
    task="multiclass",
    paper="Symmetric Cross Entropy for Robust Learning with Noisy Labels (Wang et al., 2019)",
    params=[_LOG_ZERO],
    reference=_rce_reference,
    notes="Cross-entropy with prediction and label swapped; equals -A (1 - p_y), a scaled MAE: bounded, "
    "symmetric, a 'passive' loss. " + _RCE_NOTE,
)
def rce(logits: torch.Tensor, target: torch.Tensor, log_zero: float = _RCE_LOG_ZERO) -> torch.Tensor:
    return -log_zero * _one_minus_p_true(logits, target)


def _apl_nce_rce_reference(
    logits: torch.Tensor, target: torch.Tensor, alpha: float, beta: float, log_zero: float
) -> torch.Tensor:
    return alpha * _nce_reference(logits, target) + beta * _rce_reference(logits, target, log_zero)


@register(
    title="Active-passive: NCE + RCE",
    latex=r"\alpha\,\mathrm{NCE} + \beta\,\mathrm{RCE},\ \mathrm{RCE} = -A(1 - p_y)",
    task="multiclass",
    paper="Normalized Loss Functions for Deep Learning with Noisy Labels (Ma et al., 2020)",
    params=[
        Param("alpha", 0.1, 10.0, log=True, help="weight of the active term NCE"),
        Param("beta", 0.1, 10.0, log=True, help="weight of the passive term RCE"),
        _LOG_ZERO,
    ],
    reference=_apl_nce_rce_reference,
    notes="An active loss (NCE, raises p_y) plus a passive one (RCE, lowers the other p_k): robust to noisy "
    "labels without the underfitting of either alone. " + _RCE_NOTE,
)
def apl_nce_rce(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
    log_zero: float = _RCE_LOG_ZERO,
) -> torch.Tensor:
    return alpha * nce(logits, target) + beta * rce(logits, target, log_zero=log_zero)


def _sce_reference(
    logits: torch.Tensor, target: torch.Tensor, alpha: float, beta: float, log_zero: float
) -> torch.Tensor:
    return alpha * _ce_reference(logits, target) + beta * _rce_reference(logits, target, log_zero)


@register(
    title="Symmetric cross-entropy",
    latex=r"\alpha(-\log p_y) + \beta\,\mathrm{RCE},\ \mathrm{RCE} = -A(1 - p_y)",
    task="multiclass",
    paper="Symmetric Cross Entropy for Robust Learning with Noisy Labels (Wang et al., 2019); the symmetric "
    "form is also used by Robust Mean Teacher",
    params=[
        Param("alpha", 0.01, 10.0, log=True, help="weight of cross-entropy"),
        Param("beta", 0.1, 10.0, log=True, help="weight of reverse cross-entropy"),
        _LOG_ZERO,
    ],
    reference=_sce_reference,
    notes="CE learns the hard classes, RCE adds noise tolerance; small alpha with beta = 1 is the "
    "noisy-label setting of the paper. " + _RCE_NOTE,
)
def sce(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.1,
    beta: float = 1.0,
    log_zero: float = _RCE_LOG_ZERO,
) -> torch.Tensor:
    return alpha * cross_entropy(logits, target) + beta * rce(logits, target, log_zero=log_zero)


# ----------------------------------------------------------------------------------------------------------
# Losses that keep pushing (or stop pushing) confident samples
# ----------------------------------------------------------------------------------------------------------


def _ovr_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none").sum(dim=-1)


@register(
    title="One-vs-the-rest",
    latex=r"\log(1 + e^{-z_y}) + \sum_{k\ne y} \log(1 + e^{z_k})",
    task="multiclass",
    paper="One-vs-the-Rest Loss to Focus on Important Samples in Adversarial Training (Kanai et al., 2023)",
    reference=_ovr_reference,
    notes="K independent logistic losses: the true logit is pushed up and every wrong one down in absolute "
    "terms, giving larger logit margins than softmax CE.",
)
def ovr(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    signs = 1.0 - 2.0 * _true_mask(logits, target).to(logits.dtype)  # -1 at the true class, +1 elsewhere
    return F.softplus(signs * logits).sum(dim=-1)


def _encouraging_reference(logits: torch.Tensor, target: torch.Tensor, cap: float) -> torch.Tensor:
    p_true = _softmax_true(logits, target)
    bonus = torch.log(1.0 - p_true)
    if cap < 1.0:
        tangent = math.log(1.0 - cap) - (p_true - cap) / (1.0 - cap)
        bonus = torch.where(p_true > cap, tangent, bonus)
    return -torch.log(p_true) + bonus


@register(
    title="Encouraging loss",
    latex=r"-\log p_y + \log(1 - p_y)\ \text{(tangent line beyond } p_y = \text{cap)}",
    task="multiclass",
    paper="Well-classified Examples are Underestimated in Classification with Deep Neural Networks "
    "(Zhao et al., 2022)",
    params=[
        Param("cap", 0.0, 1.0, help="p_y beyond which the bonus log(1 - p_y) continues linearly; 1 = never")
    ],
    reference=_encouraging_reference,
    notes="Cross-entropy plus a bonus that keeps rewarding well-classified samples instead of letting their "
    "gradient vanish; the conservative version caps the bonus by its tangent at p_y = cap.",
)
def encouraging(logits: torch.Tensor, target: torch.Tensor, cap: float = 0.5) -> torch.Tensor:
    # The paper's conservative bonus ('log_end'): log(1 - p) for p <= cap, its tangent line beyond.
    # Uncapped, CE + log(1 - p_y) = logsumexp_{k != y} z_k - z_y: unbounded below.
    bonus = _log_one_minus_p_true(logits, target)  # (N,)
    if cap < 1.0:
        p_true = torch.exp(_true_class_log_prob(logits, target))
        tangent = math.log1p(-cap) - (p_true - cap) / (1.0 - cap)
        bonus = torch.where(p_true > cap, tangent, bonus)
    return cross_entropy(logits, target) + bonus


def _stablemax_ce_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    s = torch.where(logits >= 0, logits + 1.0, 1.0 / (1.0 - logits))
    return -torch.log(_true_class(s, target) / s.sum(dim=-1))


@register(
    title="StableMax cross-entropy",
    latex=r"-\log\frac{s(z_y)}{\sum_k s(z_k)},\ s(x) = \begin{cases} x + 1 & x \ge 0 \\ \frac{1}{1-x} & x < 0"
    r"\end{cases}",
    task="multiclass",
    paper="Grokking at the Edge of Numerical Stability (Prieto et al., 2025)",
    reference=_stablemax_ce_reference,
    notes="Softmax with exp replaced by a function that grows linearly: no 'softmax collapse' (p_y "
    "rounding to 1 and the gradient to 0) in float32, which lets grokking happen without regularisation.",
)
def stablemax_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # log s(x) = log1p(x) for x >= 0 and -log1p(-x) for x < 0; the clamps keep both where() branches finite.
    log_s = torch.where(
        logits >= 0, torch.log1p(logits.clamp(min=0.0)), -torch.log1p((-logits).clamp(min=0.0))
    )
    return torch.logsumexp(log_s, dim=-1) - _true_class(log_s, target)


# Below log(N p_y) = -25 pass@N uses its asymptote -log N - log p_y (relative error ~ N p_y / 2 < 1e-11).
_PASS_AT_N_ASYMPTOTE = -25.0


def _pass_at_n_reference(logits: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
    p_true = _softmax_true(logits, target)
    return -torch.log(1.0 - (1.0 - p_true) ** n)


@register(
    title="Pass@N",
    latex=r"-\log\big(1 - (1 - p_y)^N\big)",
    task="multiclass",
    paper="Rethinking Fine-Tuning when Scaling Test-Time Compute: Limiting Confidence Improves Mathematical "
    "Reasoning (Chen et al., 2025)",
    params=[Param("n", 1, 256, log=True, integer=True, help="N: attempts allowed at test time; 1 is CE")],
    reference=_pass_at_n_reference,
    notes="The log-probability that one of N samples is right: once p_y >> 1/N the gradient vanishes, which "
    "limits overconfidence; N = 1 is cross-entropy.",
)
def pass_at_n(logits: torch.Tensor, target: torch.Tensor, n: int = 4) -> torch.Tensor:
    log_n = math.log(n)
    log_p_true = _true_class_log_prob(logits, target)  # (N,)
    # Where N p_y underflows, (1 - p_y)^N rounds to 1 and the exact form to -log 0: use the asymptote there.
    asymptotic = log_p_true + log_n < _PASS_AT_N_ASYMPTOTE  # (N,) bool
    # x = log (1 - p_y)^N <= 0, replaced by a harmless -1 where unused so that both where() branches and their
    # gradients stay finite.
    x = torch.where(asymptotic, torch.full_like(log_p_true, -1.0), n * _log_one_minus_p_true(logits, target))
    # log(1 - e^x) by the two-branch log1mexp: log1p(-e^x) far from 0, log(-expm1(x)) near 0.
    log1mexp = torch.where(
        x < _LOG_HALF,
        torch.log1p(-torch.exp(x.clamp(max=_LOG_HALF))),
        torch.log(-torch.expm1(x.clamp(max=-1e-30))),
    )
    return torch.where(asymptotic, -(log_n + log_p_true), -log1mexp)


# ----------------------------------------------------------------------------------------------------------
# Class-imbalance losses (need the class counts from the trainer)
# ----------------------------------------------------------------------------------------------------------


def _class_counts(class_counts: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """Class counts (K,) in the logits' dtype and device; None means balanced (all ones)."""
    n_classes = logits.shape[-1]
    if class_counts is None:
        return torch.ones(n_classes, dtype=logits.dtype, device=logits.device)
    counts = torch.as_tensor(class_counts, dtype=logits.dtype, device=logits.device)
    if counts.shape != (n_classes,):
        raise ValueError(f"class_counts must have shape ({n_classes},), got {tuple(counts.shape)}")
    if not bool((counts > 0).all()):
        raise ValueError(f"class_counts must all be > 0, got {counts.tolist()}")
    return counts


def _vs_loss_reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    tau: float,
    class_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    counts = _class_counts(class_counts, logits)
    scaled = logits * (counts / counts.max()) ** gamma + tau * torch.log(counts / counts.sum())
    return F.cross_entropy(scaled, target, reduction="none")


@register(
    title="Vector-scaling (VS) loss",
    latex=r"-\log\operatorname{softmax}(\Delta_k z_k + \iota_k)_y,\ \Delta_k = (n_k / n_{\max})^{\gamma},\ "
    r"\iota_k = \tau \log \pi_k",
    task="multiclass",
    paper="Label-Imbalanced and Group-Sensitive Classification under Overparameterization "
    "(Kini et al., 2021); used in Escaping Saddle Points for Effective Generalization on "
    "Class-Imbalanced Data (Rangwani et al., 2022)",
    params=[
        Param(
            "gamma",
            0.0,
            1.0,
            help="multiplicative adjustment: rare-class logits are shrunk by (n_k/n_max)^gamma",
        ),
        Param("tau", 0.0, 3.0, help="additive adjustment tau log(prior): logit adjustment"),
    ],
    reference=_vs_loss_reference,
    notes="Needs class counts (balanced counts give plain CE). Rare classes get smaller and shifted-down "
    "logits during training, so the boundary moves away from the minority class.",
)
def vs_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 0.2,
    tau: float = 1.0,
    *,
    class_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    counts = _class_counts(class_counts, logits)  # (K,)
    multiplicative = (counts / counts.max()) ** gamma  # Delta_k in (0, 1]
    additive = tau * torch.log(counts / counts.sum())  # iota_k = tau log pi_k
    return cross_entropy(logits * multiplicative + additive, target)


def _ldam_reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    max_margin: float,
    scale: float,
    class_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    counts = _class_counts(class_counts, logits)
    margins = counts ** (-0.25)
    margins = margins * (max_margin / margins.max())
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return F.cross_entropy(scale * (logits - one_hot * margins), target, reduction="none")


@register(
    title="LDAM",
    latex=r"-\log\frac{e^{s(z_y - \Delta_y)}}{e^{s(z_y - \Delta_y)} + \sum_{k\ne y} e^{s z_k}},\ "
    r"\Delta_k \propto n_k^{-1/4}",
    task="multiclass",
    paper="Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss (Cao et al., 2019)",
    params=[
        Param("max_margin", 0.0, 2.0, help="margin of the rarest class; others get C / n_k^(1/4)"),
        Param("scale", 0.1, 64.0, log=True, help="s: logit scale (the paper uses 30 on cosine logits)"),
    ],
    reference=_ldam_reference,
    notes="Needs class counts (balanced counts give CE with one margin on every class). Rare classes must "
    "win by a larger margin, which widens their region.",
)
def ldam(
    logits: torch.Tensor,
    target: torch.Tensor,
    max_margin: float = 0.5,
    scale: float = 1.0,
    *,
    class_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    counts = _class_counts(class_counts, logits)  # (K,)
    margins = counts.pow(-0.25)
    margins = margins * (max_margin / margins.max())  # C chosen so that the largest margin is max_margin
    shifted = logits - _true_mask(logits, target).to(logits.dtype) * margins  # margin on the true logit only
    return cross_entropy(scale * shifted, target)


# ----------------------------------------------------------------------------------------------------------
# Early-learning regularisation (needs the trainer's running average of predictions)
# ----------------------------------------------------------------------------------------------------------

# 1 - <p, t> is floored here, as the authors' code clamps p into [1e-4, 1 - 1e-4]: the log stays finite.
_ELR_FLOOR = 1e-4


def _elr_reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    lam: float,
    beta: float = 0.7,
    ema_target: torch.Tensor | None = None,
) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    if ema_target is None:
        return _ce_reference(logits, target) + 0.5 * lam * torch.log(
            (1.0 - (probs * probs).sum(dim=-1)).clamp(min=_ELR_FLOOR)
        )
    return _ce_reference(logits, target) + lam * torch.log(
        (1.0 - (probs * ema_target).sum(dim=-1)).clamp(min=_ELR_FLOOR)
    )


@register(
    title="Early-learning regularisation",
    latex=r"-\log p_y + \lambda \log\big(1 - \langle p, t\rangle\big),\ t \leftarrow \beta t + (1-\beta) p",
    task="multiclass",
    paper="Early-Learning Regularization Prevents Memorization of Noisy Labels (Liu et al., 2020)",
    params=[
        Param("lam", 0.0, 10.0, help="lambda: weight of the pull towards the running-average prediction t"),
        Param("beta", 0.0, 0.99, help="beta: momentum of the running average t (the trainer reads it)"),
    ],
    reference=_elr_reference,
    notes="The trainer keeps t, a running average of each sample's predictions with momentum beta; the "
    "penalty pulls p towards t, so the early, mostly-clean predictions resist memorising noisy labels.",
)
def elr(
    logits: torch.Tensor,
    target: torch.Tensor,
    lam: float = 3.0,
    beta: float = 0.7,  # consumed by lossviz.context when it updates ema_target, not by the formula
    *,
    ema_target: torch.Tensor | None = None,
) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)  # (N, K)
    one_minus_probs = -torch.expm1(torch.log_softmax(logits, dim=-1))  # 1 - p_k, accurate near p_k = 1
    if ema_target is None:
        # Without a trainer, t = p. lam/2 log(1 - |p|^2) has exactly the gradient of ELR with t = stopgrad(p)
        # (and unlike a detached t, autograd and finite differences agree). 1 - |p|^2 = sum_k p_k (1 - p_k).
        gap = (probs * one_minus_probs).sum(dim=-1)
        return cross_entropy(logits, target) + 0.5 * lam * torch.log(gap.clamp(min=_ELR_FLOOR))
    ema = ema_target.detach().to(logits.dtype)
    if ema.shape != logits.shape:
        raise ValueError(
            f"ema_target must have the logits' shape {tuple(logits.shape)}, got {tuple(ema.shape)}"
        )
    # 1 - <p, t> = (1 - sum t) + sum_k t_k (1 - p_k), exact for any t and accurate when <p, t> is near 1.
    gap = (1.0 - ema.sum(dim=-1)) + (ema * one_minus_probs).sum(dim=-1)
    return cross_entropy(logits, target) + lam * torch.log(gap.clamp(min=_ELR_FLOOR))


# ----------------------------------------------------------------------------------------------------------
# Angular-margin losses on cosine logits (a normalised head: z_k = cos theta_k)
# ----------------------------------------------------------------------------------------------------------

# Cosines of the true class are kept this far inside [-1, 1]: d arccos / dc and d sqrt(1 - c^2) / dc are
# infinite at +-1.
_COS_EDGE = 1.0 - 1e-6


def _margin_logits(cosines: torch.Tensor, target: torch.Tensor, true_logit: torch.Tensor) -> torch.Tensor:
    """Cosines with the true-class entry replaced by true_logit (N,).  # (N, K)"""
    return cosines.scatter(-1, target.unsqueeze(-1), true_logit.unsqueeze(-1))


def _cosface_reference(
    logits: torch.Tensor, target: torch.Tensor, scale: float, margin: float
) -> torch.Tensor:
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return F.cross_entropy(scale * (logits.clamp(-1.0, 1.0) - margin * one_hot), target, reduction="none")


@register(
    title="CosFace (additive cosine margin)",
    latex=r"-\log\frac{e^{s(\cos\theta_y - m)}}{e^{s(\cos\theta_y - m)} + \sum_{k\ne y} e^{s\cos\theta_k}}",
    task="multiclass",
    paper="CosFace: Large Margin Cosine Loss for Deep Face Recognition (Wang et al., 2018); see AdaFace "
    "(Kim et al., 2022)",
    params=[
        Param("scale", 1.0, 64.0, log=True, help="s: radius of the hypersphere the cosines are scaled to"),
        Param("margin", 0.0, 0.8, help="m: subtracted from the true-class cosine"),
    ],
    reference=_cosface_reference,
    notes="Trains on cosine logits from a normalised head (clamped to [-1, 1]); the true class must win by m "
    "in cosine, which tightens classes on the sphere.",
    head="cosine",
)
def cosface(
    logits: torch.Tensor, target: torch.Tensor, scale: float = 30.0, margin: float = 0.35
) -> torch.Tensor:
    cosines = logits.clamp(-1.0, 1.0)  # (N, K)
    return cross_entropy(
        scale * _margin_logits(cosines, target, _true_class(cosines, target) - margin), target
    )


def _arcface_reference(
    logits: torch.Tensor, target: torch.Tensor, scale: float, margin: float
) -> torch.Tensor:
    cosines = logits.clamp(-1.0, 1.0)
    cos_true = _true_class(cosines, target).clamp(-_COS_EDGE, _COS_EDGE)
    theta = torch.arccos(cos_true)
    phi = torch.where(
        theta + margin < math.pi, torch.cos(theta + margin), cos_true - margin * math.sin(margin)
    )
    one_hot = F.one_hot(target, logits.shape[-1]).bool()
    return F.cross_entropy(scale * torch.where(one_hot, phi.unsqueeze(-1), cosines), target, reduction="none")


@register(
    title="ArcFace (additive angular margin)",
    latex=r"-\log\frac{e^{s\cos(\theta_y + m)}}{e^{s\cos(\theta_y + m)} + \sum_{k\ne y} e^{s\cos\theta_k}}",
    task="multiclass",
    paper="ArcFace: Additive Angular Margin Loss for Deep Face Recognition (Deng et al., 2019); see AdaFace "
    "(Kim et al., 2022)",
    params=[
        Param("scale", 1.0, 64.0, log=True, help="s: radius of the hypersphere the cosines are scaled to"),
        Param("margin", 0.0, 0.8, help="m: added to the true-class angle (radians)"),
    ],
    reference=_arcface_reference,
    notes="Expects cosine logits from a normalised head; the true class must win by an angle m, a constant "
    "geodesic margin on the sphere.",
    head="cosine",
)
def arcface(
    logits: torch.Tensor, target: torch.Tensor, scale: float = 30.0, margin: float = 0.5
) -> torch.Tensor:
    cosines = logits.clamp(-1.0, 1.0)  # (N, K)
    cos_true = _true_class(cosines, target).clamp(-_COS_EDGE, _COS_EDGE)  # (N,)
    sin_true = torch.sqrt(1.0 - cos_true**2)  # sin theta >= 0 for theta in [0, pi]
    phi = cos_true * math.cos(margin) - sin_true * math.sin(margin)  # cos(theta + m) without arccos
    # As in the reference implementation (insightface): where theta + m > pi, cos(theta + m) would rise again,
    # so fall back to the CosFace-like cos theta - m sin m, which keeps the target logit decreasing in theta.
    phi = torch.where(cos_true > math.cos(math.pi - margin), phi, cos_true - margin * math.sin(margin))
    return cross_entropy(scale * _margin_logits(cosines, target, phi), target)


# AdaFace's concentration h: the normalised feature norm is (||f|| - mean) / (std / h), clipped to [-1, 1].
_ADAFACE_H = 0.333


def _adaface_reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    scale: float,
    margin: float,
    quality: float,
    feature_norms: torch.Tensor | None = None,
) -> torch.Tensor:
    cosines = logits.clamp(-1.0, 1.0)
    if feature_norms is None:
        q: torch.Tensor | float = quality
    else:  # the authors' batch statistics written out: unbiased std, sum of squares over N - 1
        norms = feature_norms.to(logits.dtype).clamp(1e-3, 100.0)
        std = torch.sqrt(((norms - norms.mean()) ** 2).sum() / (len(norms) - 1))
        q = ((norms - norms.mean()) / (std + 1e-3) * _ADAFACE_H).clamp(-1.0, 1.0)
    theta = torch.arccos(_true_class(cosines, target).clamp(-_COS_EDGE, _COS_EDGE))
    phi = torch.cos((theta - margin * q).clamp(1e-6, math.pi - 1e-6)) - (margin + margin * q)
    one_hot = F.one_hot(target, logits.shape[-1]).bool()
    return F.cross_entropy(scale * torch.where(one_hot, phi.unsqueeze(-1), cosines), target, reduction="none")


@register(
    title="AdaFace (quality-adaptive margin)",
    latex=r"-\log\operatorname{softmax}(s\,\tilde z)_y,\ \tilde z_y = \cos(\theta_y - m\hat q) - (m + "
    r"m\hat q),\ \hat q = \operatorname{clip}\Big(\frac{\|f\| - \mu}{\sigma / h}, -1, 1\Big)",
    task="multiclass",
    paper="AdaFace: Quality Adaptive Margin for Face Recognition (Kim, Jain, Liu, 2022)",
    params=[
        Param("scale", 1.0, 64.0, log=True, help="s: radius of the hypersphere the cosines are scaled to"),
        Param("margin", 0.0, 0.8, help="m: base margin"),
        Param("quality", -1.0, 1.0, help="normalised feature norm q used when no feature_norms are given"),
    ],
    reference=_adaface_reference,
    notes="The margin adapts to image quality via the feature norm: q = -1 (low) is ArcFace-like, q = 0 "
    "CosFace, q = 1 (high) emphasises hard samples. Without feature norms the 'quality' slider stands "
    "in for q.",
    head="cosine",
)
def adaface(
    logits: torch.Tensor,
    target: torch.Tensor,
    scale: float = 30.0,
    margin: float = 0.4,
    quality: float = 0.0,
    *,
    feature_norms: torch.Tensor | None = None,
) -> torch.Tensor:
    cosines = logits.clamp(-1.0, 1.0)  # (N, K)
    if feature_norms is None:
        # Simplification: the paper normalises each feature norm by EMA batch statistics; with no norms
        # given, one proxy q serves every sample (0 = average quality, which makes AdaFace CosFace).
        q = torch.full_like(cosines[:, 0], quality)  # (N,)
    else:
        norms = feature_norms.detach().to(logits.dtype).clamp(1e-3, 100.0)  # (N,), as in the authors' code
        if norms.shape != target.shape:
            raise ValueError(f"feature_norms must have shape {tuple(target.shape)}, got {tuple(norms.shape)}")
        # Batch statistics stand in for the paper's running (EMA) mean and std; the std is the unbiased one
        # (correction=1), as torch.std's default in the authors' code.
        std = norms.std(correction=1) if norms.numel() > 1 else torch.zeros_like(norms[0])
        q = ((norms - norms.mean()) / (std + 1e-3) * _ADAFACE_H).clamp(-1.0, 1.0)
    theta = torch.arccos(_true_class(cosines, target).clamp(-_COS_EDGE, _COS_EDGE))  # (N,)
    # g_angle = -m q, g_add = m + m q; theta + g_angle stays inside (0, pi) as in the authors' code.
    phi = torch.cos((theta - margin * q).clamp(1e-6, math.pi - 1e-6)) - (margin + margin * q)
    return cross_entropy(scale * _margin_logits(cosines, target, phi), target)


# MadaCos, the loss of CFCD (Zhu et al., 2023), as the authors' code sets it (bassyess/CFCD,
# core/model/madacos.py): the scale from the batch's median true-class cosine, floored at 32, and the margin
# that gives the median sample a true-class probability of exactly rho.
_MADACOS_RIVALS = 9_999_999  # the constant in the authors' scale formula
_MADACOS_MIN_SCALE = 32.0
# 1 - median cosine is floored here: the authors' formula divides by it, and a converged batch reaches 1.
_MADACOS_MIN_GAP = 1e-6


def madacos_statistics(
    cosines: torch.Tensor, target: torch.Tensor, rho: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MadaCos's (scale s, margin m) for a batch of cosine logits (N, K), as 0-dim tensors without gradient.

    c = the median of the true-class cosines (the lower one for even N, as torch.median), i its sample;
    s = max(32, log(R (1 - rho) / rho) / (1 - c)) with the authors' R = 9999999;
    m = max(0, c - (log B_i + log(rho / (1 - rho))) / s), B_i = sum_{k != y_i} e^{s cos_ik}, which makes
    e^{s (c - m)} / (e^{s (c - m)} + B_i) = rho.
    """
    # As in the authors' code, s and m are constants of the backward pass. Tensor ops only (no .item()), so
    # that torch.func transforms (vmap, the curvature page's Hessian-vector products) can trace the loss.
    cos = cosines.detach().clamp(-1.0, 1.0)  # (N, K)
    median, i = torch.median(_true_class(cos, target), dim=0)
    gap = (1.0 - median).clamp(min=_MADACOS_MIN_GAP)
    scale = (math.log(_MADACOS_RIVALS * (1 - rho) / rho) / gap).clamp(min=_MADACOS_MIN_SCALE)
    pick = F.one_hot(i, cos.shape[0]).to(cos.dtype)  # (N,) selects the median sample, traceable
    row, wrong = pick @ cos, pick @ (~_true_mask(cos, target)).to(cos.dtype)  # (K,), (K,)
    log_b = torch.logsumexp((scale * row).masked_fill(wrong < 0.5, -math.inf), dim=0)  # log B_i, no overflow
    margin = (median - (log_b + math.log(rho / (1 - rho))) / scale).clamp(min=0.0)
    return scale, margin


def _madacos_reference(
    logits: torch.Tensor, target: torch.Tensor, rho: float, frozen: torch.Tensor | None = None
) -> torch.Tensor:
    """The authors' formula sample by sample, with s and m from `frozen` (default: logits) held constant."""
    stats = (logits if frozen is None else frozen).detach().clamp(-1.0, 1.0).tolist()
    labels = target.tolist()
    true = [row[y] for row, y in zip(stats, labels, strict=True)]
    i = sorted(range(len(true)), key=lambda j: true[j])[(len(true) - 1) // 2]  # the (lower) median sample
    c = true[i]
    s = max(_MADACOS_MIN_SCALE, math.log(_MADACOS_RIVALS * (1 - rho) / rho) / max(1 - c, _MADACOS_MIN_GAP))
    rival_logits = [s * v for k, v in enumerate(stats[i]) if k != labels[i]]
    top = max(rival_logits)
    log_b = top + math.log(sum(math.exp(v - top) for v in rival_logits))
    m = max(0.0, c - (log_b + math.log(rho / (1 - rho))) / s)
    cosines = logits.clamp(-1.0, 1.0)
    values = []
    for n, y in enumerate(labels):
        z = torch.stack([s * (cosines[n, k] - (m if k == y else 0.0)) for k in range(cosines.shape[1])])
        values.append(torch.logsumexp(z, dim=0) - z[y])
    return torch.stack(values).mean()


@register(
    title="MadaCos (CFCD's adaptive margin)",
    latex=r"\frac{1}{N}\sum_i -\log\frac{e^{s(\cos\theta_{y_i} - m)}}{e^{s(\cos\theta_{y_i} - m)} + "
    r"\sum_{k\ne y_i} e^{s\cos\theta_k}},\ "
    r"s = \max\Big(32, \frac{\log(R\,(1-\rho)/\rho)}{1 - \tilde c}\Big),\ "
    r"m = \Big[\tilde c - \frac{1}{s}\log\frac{\rho \tilde B}{1-\rho}\Big]_+",
    task="multiclass",
    batch=True,
    paper="Coarse-to-Fine: Learning Compact Discriminative Representation for Single-Stage Image Retrieval "
    "(Zhu et al., ICCV 2023); the authors' code, bassyess/CFCD core/model/madacos.py",
    params=[
        Param(
            "rho",
            0.001,
            0.5,
            log=True,
            help="ρ: the true-class probability the batch's median sample is held to; the smaller, the "
            "larger the margin (the authors trained with 0.02)",
        )
    ],
    reference=_madacos_reference,
    notes="CosFace with a scale and a margin re-set every batch from its median true-class cosine c̃ (and "
    "B̃, the sum of e^(s cos θ_k) over the wrong classes of that median sample): as the batch tightens, s and "
    "m grow, holding the median sample at true-class probability ρ (or below it, where m = 0). R = 9999999 "
    "is the authors' constant. s and m are constants of the gradient, as in the authors' code. Batch-level, "
    "as s and m only exist per batch: on Loss shapes a batch of equal samples is held at p_y = ρ.",
    head="cosine",
    stop_gradient="the scale s and the margin m (batch statistics)",
)
def madacos(logits: torch.Tensor, target: torch.Tensor, rho: float = 0.02) -> torch.Tensor:
    # The authors drop the margin outside training, where the loss is only logged; here it always applies.
    scale, margin = madacos_statistics(logits, target, rho)
    return cosface(logits, target, scale=scale, margin=margin).mean()  # CosFace at this batch's s and m


# ----------------------------------------------------------------------------------------------------------
# Distance-based head
# ----------------------------------------------------------------------------------------------------------


def _harmonic_reference(logits: torch.Tensor, target: torch.Tensor, n: float) -> torch.Tensor:
    distances = torch.exp(-logits)  # d_k = e^{-z_k}
    weights = distances ** (-n)
    return -torch.log(_true_class(weights, target) / weights.sum(dim=-1))


@register(
    title="Harmonic loss",
    latex=r"-\log\frac{d_y^{-n}}{\sum_k d_k^{-n}} = -\log\operatorname{softmax}(n z)_y,\ z_k = -\log d_k",
    task="multiclass",
    paper="Harmonic Loss Trains Interpretable AI Models (Baek et al., 2025)",
    params=[
        Param("n", 1.0, 30.0, help="harmonic exponent: larger n, sharper (more confident) probabilities")
    ],
    reference=_harmonic_reference,
    notes="Expects logits z_k = -log d_k from a harmonic head (d_k = distance to class centre k), so the "
    "loss is CE(n z): weights become class centres and decision regions are Voronoi cells.",
    head="harmonic",
)
def harmonic(logits: torch.Tensor, target: torch.Tensor, n: float = 2.0) -> torch.Tensor:
    return cross_entropy(n * logits, target)
