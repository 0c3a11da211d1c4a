"""Binary margin losses phi(m) of the margin m = (2y - 1) f(x), on one logit per sample, and EnsLoss's check.

See CATALOGUE.md section 2. The convex-calibrated (CC) test is Bartlett, Jordan & McAuliffe (2006), as used by
EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in Classification (Dai, 2024).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, get, register

# exp(-m) is continued linearly (same value and slope) once its exponent passes this cap: e^30 ~ 1e13, so the
# loss at m = -1e4 is ~1e17 and its slope e^30, both finite in float32; no margin shown in the app comes near.
EXPONENT_CAP = 30.0


def binary_margin(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """m = (2y - 1) f: positive when the sample is on the right side.  # (N,)"""
    return (2.0 * target.to(logit.dtype) - 1.0) * logit


def _logistic_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype), reduction="none")


@register(
    title="Logistic",
    latex=r"\log(1 + e^{-m})",
    task="binary",
    paper="(standard) logistic regression / binary cross-entropy",
    reference=_logistic_reference,
    notes="Convex, smooth, classification-calibrated; never exactly zero.",
)
def logistic(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.softplus(-binary_margin(logit, target))


def _hinge_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    signs = torch.where(target > 0.5, 1.0, -1.0).to(logit.dtype)
    return torch.relu(1.0 - signs * logit)


@register(
    title="Hinge",
    latex=r"\max(0,\ 1 - m)",
    task="binary",
    paper="Support-vector networks (Cortes & Vapnik, 1995)",
    reference=_hinge_reference,
    notes="Exactly zero beyond margin 1: well-classified points stop pushing (sparse support vectors).",
)
def hinge(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.clamp(1.0 - binary_margin(logit, target), min=0.0)


def _squared_hinge_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _hinge_reference(logit, target) ** 2


@register(
    title="Squared hinge",
    latex=r"\max(0,\ 1 - m)^2",
    task="binary",
    paper="(standard) L2-SVM; A dual coordinate descent method for large-scale linear SVM "
    "(Hsieh et al., 2008)",
    reference=_squared_hinge_reference,
    notes="Smooth version of the hinge; quadratic growth makes it more sensitive to badly wrong points.",
)
def squared_hinge(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.clamp(1.0 - binary_margin(logit, target), min=0.0) ** 2


def _exponential_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.exp(-binary_margin(logit, target))  # fine for the moderate inputs references are called on


@register(
    title="Exponential",
    latex=r"e^{-m}",
    task="binary",
    paper="A decision-theoretic generalization of on-line learning and an application to boosting (AdaBoost)",
    reference=_exponential_reference,
    notes="AdaBoost's loss: exponentially large for wrong points, so outliers and label noise dominate. "
    f"Continued linearly beyond m = -{EXPONENT_CAP:g} so it stays finite.",
)
def exponential(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    exponent = -binary_margin(logit, target)
    # e^u for u <= cap, e^cap (1 + u - cap) beyond: same value and slope at the cap, so still convex and C^1.
    return torch.exp(torch.clamp(exponent, max=EXPONENT_CAP)) * (
        1.0 + torch.clamp(exponent - EXPONENT_CAP, min=0.0)
    )


def _least_squares_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    signs = 2.0 * target.to(logit.dtype) - 1.0
    return F.mse_loss(logit, signs, reduction="none")  # (y' - f)^2 = (1 - m)^2 since y'^2 = 1


@register(
    title="Least squares",
    latex=r"(1 - m)^2",
    task="binary",
    paper="(standard) least-squares classification on labels ±1",
    reference=_least_squares_reference,
    notes="Convex and calibrated, but it also penalises points that are 'too right' (m > 1).",
)
def least_squares(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (1.0 - binary_margin(logit, target)) ** 2


def _modified_huber_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    m = binary_margin(logit, target)
    return torch.where(m >= -1.0, torch.relu(1.0 - m) ** 2, -4.0 * m)


@register(
    title="Modified Huber",
    latex=r"\begin{cases} \max(0, 1-m)^2 & m \ge -1 \\ -4m & m < -1 \end{cases}",
    task="binary",
    paper="Statistical behavior and consistency of classification methods based on convex risk minimization "
    "(Zhang, 2004)",
    reference=_modified_huber_reference,
    notes="Squared hinge near the boundary, linear for badly wrong points: smooth yet outlier-tolerant; "
    "scikit-learn's SGDClassifier(loss='modified_huber').",
)
def modified_huber(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    m = binary_margin(logit, target)
    near = (
        torch.clamp(1.0 - torch.clamp(m, min=-1.0), min=0.0) ** 2
    )  # squared hinge, frozen at 4 below m = -1
    return near + 4.0 * torch.clamp(-1.0 - m, min=0.0)  # plus the linear part below m = -1


def _huberized_hinge_reference(logit: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    m = binary_margin(logit, target)
    return torch.where(
        m > 1.0,
        torch.zeros_like(m),
        torch.where(m > 1.0 - delta, (1.0 - m) ** 2 / (2 * delta), 1.0 - m - delta / 2),
    )


@register(
    title="Huberized hinge",
    latex=r"\begin{cases} 0 & m > 1 \\ \frac{(1-m)^2}{2\delta} & 1-\delta < m \le 1 \\ "
    r"1 - m - \frac{\delta}{2} & m \le 1 - \delta \end{cases}",
    task="binary",
    paper="Piecewise linear regularized solution paths (Rosset & Zhu, 2007); "
    "An improved GLMNET for L1-regularized logistic regression / HHSVM (Wang, Zhu & Zou, 2008)",
    params=[Param("delta", 0.01, 5.0, log=True, help="width of the quadratic zone below margin 1")],
    reference=_huberized_hinge_reference,
    notes="The hinge with its kink rounded over a zone of width delta: differentiable, "
    "still zero beyond m = 1.",
)
def huberized_hinge(logit: torch.Tensor, target: torch.Tensor, delta: float = 0.5) -> torch.Tensor:
    gap = torch.clamp(1.0 - binary_margin(logit, target), min=0.0)  # hinge value (N,)
    quadratic = torch.clamp(gap, max=delta)
    return quadratic**2 / (2.0 * delta) + (gap - quadratic)


def _smooth_hinge_reference(logit: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    m = binary_margin(logit, target)
    inside = torch.clamp(m, 0.0, 1.0) ** (alpha + 1) / (alpha + 1) - m + alpha / (alpha + 1)
    return torch.where(m <= 0.0, alpha / (alpha + 1) - m, torch.where(m >= 1.0, torch.zeros_like(m), inside))


@register(
    title="Smooth hinge",
    latex=r"\begin{cases} \frac{\alpha}{\alpha+1} - m & m \le 0 \\ \frac{m^{\alpha+1}}{\alpha+1} - m + "
    r"\frac{\alpha}{\alpha+1} & 0 < m < 1 \\ 0 & m \ge 1 \end{cases}",
    task="binary",
    paper="Smooth hinge classification (Rennie, 2005); "
    "Loss functions for preference levels (Rennie & Srebro, 2005)",
    params=[
        Param(
            "alpha", 0.1, 10.0, log=True, help="smoothness: 1 is the quadratic smooth hinge, large -> hinge"
        )
    ],
    reference=_smooth_hinge_reference,
    notes="Rennie's generalized smooth hinge: alpha = 1 rounds the corner quadratically over [0, 1]; "
    "large alpha approaches the plain hinge.",
)
def smooth_hinge(logit: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    m = binary_margin(logit, target)
    inside = torch.clamp(m, 0.0, 1.0)  # clamp before the power: a negative base gives NaN gradients
    curved = inside ** (alpha + 1.0) / (alpha + 1.0) - inside + alpha / (alpha + 1.0)
    return curved + torch.clamp(-m, min=0.0)  # linear continuation for m < 0


def _ramp_reference(logit: torch.Tensor, target: torch.Tensor, cutoff: float) -> torch.Tensor:
    # Collobert et al.: R_s(m) = H_1(m) - H_s(m), a difference of two hinges
    m = binary_margin(logit, target)
    return torch.relu(1.0 - m) - torch.relu(cutoff - m)


@register(
    title="Ramp",
    latex=r"\min\big(1 - s,\ \max(0,\ 1 - m)\big) = H_1(m) - H_s(m)",
    task="binary",
    paper="Trading convexity for scalability (Collobert, Sinz, Weston & Bottou, 2006)",
    params=[Param("cutoff", -5.0, 0.9, help="margin s below which the loss is flat at 1 - s")],
    reference=_ramp_reference,
    notes="A hinge capped at 1 - s: bounded and non-convex, so one badly wrong point cannot dominate.",
)
def ramp(logit: torch.Tensor, target: torch.Tensor, cutoff: float = -1.0) -> torch.Tensor:
    return torch.clamp(1.0 - binary_margin(logit, target), min=0.0, max=1.0 - cutoff)


def _sigmoid_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    m = binary_margin(logit, target)
    return 1.0 / (1.0 + torch.exp(m))


@register(
    title="Sigmoid",
    latex=r"\frac{1}{1 + e^{m}}",
    task="binary",
    paper="(standard) smoothed 0-1 loss; see Bartlett, Jordan & McAuliffe (2006)",
    reference=_sigmoid_reference,
    notes="A smooth 0-1 loss: bounded in (0, 1), non-convex, robust to label noise, "
    "flat far from the boundary.",
)
def sigmoid(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(-binary_margin(logit, target))


def _savage_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    m = binary_margin(logit, target)
    return 1.0 / (1.0 + torch.exp(2.0 * m)) ** 2


@register(
    title="Savage",
    latex=r"\frac{1}{(1 + e^{2m})^2}",
    task="binary",
    paper="On the design of loss functions for classification: theory, robustness to outliers, "
    "and SavageBoost (Masnadi-Shirazi & Vasconcelos, 2008)",
    reference=_savage_reference,
    notes="Derived from a proper scoring rule; bounded and non-convex, so outliers get vanishing weight.",
)
def savage(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(-2.0 * binary_margin(logit, target)) ** 2


@register(
    title="Tangent",
    latex=r"(2\arctan(m) - 1)^2",
    task="binary",
    paper="On the design of robust classifiers for computer vision "
    "(Masnadi-Shirazi, Mahadevan & Vasconcelos, 2010)",
    notes="Bounded and non-convex; penalises both wrong points and over-confident right ones "
    "(minimum at m = tan(1/2)).",
)
def tangent(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (2.0 * torch.atan(binary_margin(logit, target)) - 1.0) ** 2


def _bce_focal_reference(
    logit: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float
) -> torch.Tensor:
    # the torchvision sigmoid_focal_loss recipe, written on probabilities
    y = target.to(logit.dtype)
    p = torch.sigmoid(logit)
    ce = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return alpha_t * ce * (1 - p_t) ** gamma


@register(
    title="Binary focal",
    latex=r"-\alpha_t (1 - p_t)^\gamma \log p_t,\quad p_t = \sigma(m)",
    task="binary",
    paper="Focal loss for dense object detection (Lin, Goyal, Girshick, He & Dollár, 2017)",
    params=[
        Param("alpha", 0.0, 1.0, help="weight of the positive class (1 - alpha for the negative class)"),
        Param("gamma", 0.0, 5.0, help="focusing: 0 is weighted BCE, larger down-weights easy samples"),
    ],
    reference=_bce_focal_reference,
    notes="Down-weights well-classified samples by (1 - p_t)^gamma; alpha re-weights the two classes.",
)
def bce_focal(
    logit: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    y = target.to(logit.dtype)
    m = binary_margin(logit, y)
    alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y)
    # (1 - p_t)^gamma = sigmoid(-m)^gamma in log space: no 0^gamma (NaN gradients) at saturated margins
    modulating = torch.exp(gamma * F.logsigmoid(-m))
    return alpha_t * modulating * F.softplus(-m)


def _asymmetric_reference(
    logit: torch.Tensor, target: torch.Tensor, gamma_pos: float, gamma_neg: float, clip: float
) -> torch.Tensor:
    # a port of the official ASL recipe (probabilities, probability shifting, then focusing)
    y = target.to(logit.dtype)
    xs_pos = torch.sigmoid(logit)
    xs_neg = torch.clamp(1 - xs_pos + clip, max=1.0)
    loss = y * torch.log(xs_pos.clamp(min=1e-12)) + (1 - y) * torch.log(xs_neg.clamp(min=1e-12))
    pt = xs_pos * y + xs_neg * (1 - y)
    gamma = gamma_pos * y + gamma_neg * (1 - y)
    return -loss * (1 - pt) ** gamma


@register(
    title="Asymmetric (ASL)",
    latex=r"\begin{cases} -(1-p)^{\gamma_+}\log p & y = 1 \\ -p_c^{\gamma_-}\log(1 - p_c),\ "
    r"p_c = \max(p - c, 0) & y = 0 \end{cases}",
    task="binary",
    paper="Asymmetric Loss For Multi-Label Classification (Ridnik et al., 2021)",
    params=[
        Param("gamma_pos", 0.0, 5.0, help="focusing exponent on positive samples"),
        Param("gamma_neg", 0.0, 10.0, help="focusing exponent on negative samples"),
        Param("clip", 0.0, 0.5, help="probability margin: negatives with p < clip give zero loss"),
    ],
    reference=_asymmetric_reference,
    notes="Focuses differently on positives and negatives and discards easy negatives (p < clip) entirely: "
    "made for many-negative multi-label data.",
)
def asymmetric(
    logit: torch.Tensor,
    target: torch.Tensor,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
) -> torch.Tensor:
    y = target.to(logit.dtype)
    # positives: (1 - p)^gamma_pos * (-log p), both in log space
    positive = torch.exp(gamma_pos * F.logsigmoid(-logit)) * F.softplus(-logit)
    # negatives: shifted probability p_c = max(p - clip, 0); log(1 - p_c) = min(log(sigmoid(-f) + clip), 0)
    log_not_p = F.logsigmoid(-logit)
    if clip > 0.0:
        log_not_p = torch.logaddexp(log_not_p, torch.full_like(log_not_p, math.log(clip)))
    negative_log = torch.clamp(-log_not_p, min=0.0)  # -log(1 - p_c) (N,)
    if gamma_neg == 0.0:
        weight = torch.ones_like(logit)
    else:
        shifted = torch.clamp(torch.sigmoid(logit) - clip, min=0.0)
        alive = shifted > 0.0
        # safe base where p_c = 0: the power's gradient there would be 0 * inf = NaN for gamma_neg < 1
        weight = torch.where(alive, torch.where(alive, shifted, 1.0) ** gamma_neg, 0.0)
    return y * positive + (1.0 - y) * weight * negative_log


def _binary_encouraging_reference(
    logit: torch.Tensor, target: torch.Tensor, bonus_end: float
) -> torch.Tensor:
    # a port of the official multiclass recipe to one sigmoid probability p_y = sigmoid(m)
    p = torch.sigmoid(binary_margin(logit, target))
    bonus = torch.log(torch.clamp(1 - p, min=1e-5))
    if bonus_end < 1.0:
        tangent_line = (p - bonus_end) / (bonus_end - 1) + math.log(1 - bonus_end)
        bonus = torch.where(p > bonus_end, tangent_line, bonus)
    return -torch.log(p) + bonus


@register(
    title="Encouraging (binary)",
    latex=r"-\log p + \log(1 - p),\ p = \sigma(m);\ "
    r"\log(1-p) \to \text{its tangent at } p = e \text{ for } p > e",
    task="binary",
    paper="Well-classified Examples are Underestimated in Classification with Deep Neural Networks "
    "(Zhao et al., 2022)",
    params=[
        Param(
            "bonus_end",
            0.0,
            1.0,
            help="probability where the log bonus turns linear (the paper's log_end; 1 = uncapped bonus)",
        )
    ],
    reference=_binary_encouraging_reference,
    notes="Cross-entropy plus a bonus log(1 - p) that keeps rewarding well-classified samples. "
    "In the binary case CE + bonus is exactly -m below the cap.",
)
def binary_encouraging(logit: torch.Tensor, target: torch.Tensor, bonus_end: float = 0.75) -> torch.Tensor:
    m = binary_margin(logit, target)
    if bonus_end >= 1.0:
        # uncapped: -log sigmoid(m) + log sigmoid(-m) = -m exactly (and finite at any margin)
        return -m
    p = torch.sigmoid(m)
    bonus_log = -F.softplus(m)  # log(1 - p), stable
    bonus_linear = (p - bonus_end) / (bonus_end - 1.0) + math.log1p(
        -bonus_end
    )  # tangent of log(1-p) at the end
    bonus = torch.where(p > bonus_end, bonus_linear, bonus_log)
    return F.softplus(-m) + bonus


# ---
# EnsLoss helpers (library functions, not losses): the convex-calibrated check and a random valid margin loss.


def margin_phi(loss: str, **params: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """phi(m) of a registered per-sample binary loss: the loss at logit m for a positive sample."""
    spec = get(loss)
    if spec.task != "binary" or spec.batch:
        raise ValueError(
            f"margin_phi needs a per-sample binary loss, got {loss!r} (task={spec.task}, batch={spec.batch})"
        )
    bound = spec.bind(**params)

    def phi(m: torch.Tensor) -> torch.Tensor:
        return spec.fn(m, torch.ones_like(m), **bound)

    return phi


def is_calibrated_convex(
    phi: Callable[[torch.Tensor], torch.Tensor], m_grid: torch.Tensor | None = None, tol: float = 1e-9
) -> tuple[bool, float, bool]:
    """(convex, phi'(0), calibrated): phi' non-decreasing on m_grid (default [-10, 10]) and phi'(0) < 0.

    For a convex phi differentiable at 0, phi'(0) < 0 is equivalent to classification calibration (Bartlett,
    Jordan & McAuliffe, 2006): the CC condition EnsLoss samples from. `calibrated` is that CC condition, so
    it is False for non-convex losses even where other arguments show calibration (e.g. the sigmoid loss).
    Non-differentiable points get autograd's subgradient choice.
    """
    grid = torch.linspace(-10.0, 10.0, 4001, dtype=torch.float64) if m_grid is None else m_grid
    grid = grid.detach().to(torch.float64).flatten().sort().values.requires_grad_(True)
    (slopes,) = torch.autograd.grad(phi(grid).sum(), grid)  # phi'(m) on the grid (G,)
    scale = 1.0 + float(slopes.abs().max())
    convex = bool((torch.diff(slopes) >= -tol * scale).all())
    zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (slope_at_zero,) = torch.autograd.grad(phi(zero).sum(), zero)
    slope = float(slope_at_zero)
    return convex, slope, convex and slope < 0.0


@dataclass(frozen=True)
class CalibratedMarginLoss:
    """phi(m) = sum_k w_k (s_k softplus((mu_k - m)/s_k))^p_k / phi_0: convex, decreasing, phi(0) = 1."""

    weights: tuple[float, ...]
    locations: tuple[float, ...]
    scales: tuple[float, ...]
    powers: tuple[int, ...]  # 1 (logistic-like, linear tail) or 2 (squared-hinge-like, quadratic tail)
    normalizer: float = 1.0

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        """The loss at margins m, any shape, in m's dtype."""
        total = torch.zeros_like(m)
        for w, mu, s, power in zip(self.weights, self.locations, self.scales, self.powers, strict=True):
            # s*softplus((mu - m)/s) is a smoothed hinge at mu: convex, >= 0, decreasing; so is its square
            total = total + w * (s * F.softplus((mu - m) / s)) ** power
        return total / self.normalizer


def random_calibrated_loss(seed: int, max_terms: int = 4) -> CalibratedMarginLoss:
    """A random convex, classification-calibrated margin loss (EnsLoss) with phi(0) = 1; same seed, same loss.

    EnsLoss samples loss derivatives that are non-decreasing with phi'(0) < 0; this sampler draws a positive
    mixture of smoothed hinges and squared hinges, each of which has a non-decreasing, strictly negative
    derivative, so every draw passes `is_calibrated_convex`.
    """
    if max_terms < 1:
        raise ValueError(f"max_terms must be >= 1, got {max_terms}")
    rng = np.random.default_rng(seed)
    n_terms = int(rng.integers(1, max_terms + 1))
    weights = rng.dirichlet(np.ones(n_terms))
    locations = rng.uniform(-1.0, 2.0, n_terms)  # where each smoothed hinge bends
    scales = np.exp(rng.uniform(math.log(0.05), math.log(2.0), n_terms))  # from nearly sharp to logistic-soft
    powers = rng.choice([1, 2], n_terms, p=[0.7, 0.3])
    unnormalized = CalibratedMarginLoss(
        tuple(map(float, weights)),
        tuple(map(float, locations)),
        tuple(map(float, scales)),
        tuple(map(int, powers)),
    )
    phi0 = float(unnormalized(torch.zeros(1, dtype=torch.float64)))
    return CalibratedMarginLoss(
        unnormalized.weights,
        unnormalized.locations,
        unnormalized.scales,
        unnormalized.powers,
        normalizer=phi0,
    )
