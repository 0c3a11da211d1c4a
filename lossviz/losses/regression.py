"""Regression losses of the residual r = pred - target, one value per sample.

See CATALOGUE.md section 4. The general robust loss is Barron (2019), MADL Michańków et al. (2023), HL-Gauss
and two-hot Stop Regressing: Training Value Functions via Classification for Scalable Deep RL (2024).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, register

# Probability floor mixed into the prediction's histogram in hl_gauss / two_hot so its log stays finite:
# a prediction whose histogram misses the target's costs at most -log(floor) ~ 13.8 nats.
HISTOGRAM_FLOOR = 1e-6

_BINS = Param("bins", 2, 256, integer=True, help="number of histogram bins on the support")
_SUPPORT = Param("support", 1.0, 1000.0, log=True, help="half-width: the bins cover [-support, support]")


def _squared_reference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target, reduction="none")


@register(
    title="Squared error",
    latex=r"r^2",
    task="regression",
    paper="(standard) least squares",
    reference=_squared_reference,
    notes="Influence grows linearly with the residual: one outlier can drag the fit.",
)
def squared(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target) ** 2


def _absolute_reference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred, target, reduction="none")


@register(
    title="Absolute error",
    latex=r"|r|",
    task="regression",
    paper="(standard) least absolute deviations",
    reference=_absolute_reference,
    notes="Bounded influence (sign of r): fits the median, robust to outliers in the target.",
)
def absolute(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs()


def _huber_reference(pred: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    return F.huber_loss(pred, target, reduction="none", delta=delta)


@register(
    title="Huber",
    latex=r"\begin{cases} \frac12 r^2 & |r| \le \delta \\ "
    r"\delta(|r| - \frac12\delta) & |r| > \delta \end{cases}",
    task="regression",
    paper="Robust estimation of a location parameter (Huber, 1964)",
    params=[Param("delta", 0.01, 10.0, log=True, help="residual where the quadratic turns linear")],
    reference=_huber_reference,
    notes="Squared near zero, linear in the tails: influence capped at delta.",
)
def huber(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    size = (pred - target).abs()
    inner = torch.clamp(size, max=delta)  # quadratic part, frozen at delta
    return 0.5 * inner**2 + delta * (size - inner)


def _smooth_l1_reference(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    return F.smooth_l1_loss(pred, target, reduction="none", beta=beta)


@register(
    title="Smooth L1",
    latex=r"\begin{cases} \frac{r^2}{2\beta} & |r| < \beta \\ |r| - \frac12\beta & |r| \ge \beta \end{cases}",
    task="regression",
    paper="Fast R-CNN (Girshick, 2015)",
    params=[Param("beta", 0.01, 10.0, log=True, help="residual where the quadratic turns linear")],
    reference=_smooth_l1_reference,
    notes="Huber divided by its threshold: slope 1 in the tails whatever beta, "
    "so beta -> 0 is the absolute error.",
)
def smooth_l1(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    return huber(pred, target, delta=beta) / beta


def _pseudo_huber_reference(pred: torch.Tensor, target: torch.Tensor, c: float) -> torch.Tensor:
    return torch.sqrt((pred - target) ** 2 + c**2) - c


@register(
    title="Pseudo-Huber",
    latex=r"\sqrt{r^2 + c^2} - c",
    task="regression",
    paper="Improving Diffusion Models's Data-Corruption Resistance using Scheduled Pseudo-Huber Loss "
    "(Khrapov et al., 2024); Charbonnier et al. (1994)",
    params=[Param("c", 0.001, 10.0, log=True, help="scale: ~r^2/(2c) below c, ~|r| - c above")],
    reference=_pseudo_huber_reference,
    notes="A smooth Huber: quadratic for |r| << c, linear for |r| >> c, smooth everywhere.",
)
def pseudo_huber(pred: torch.Tensor, target: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    size = (pred - target).abs()
    # sqrt(r^2 + c^2) - c rewritten as r^2 / (sqrt(r^2 + c^2) + c): no cancellation for |r| << c,
    # and |r| * (|r| / (hypot + c)) never squares a huge residual
    return size * (size / (torch.hypot(size, torch.full_like(size, c)) + c))


def _log_cosh_reference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.log(
        torch.cosh(pred - target)
    )  # overflows past |r| ~ 710 in float64: references see moderate r


@register(
    title="Log-cosh",
    latex=r"\log\cosh r = |r| + \log(1 + e^{-2|r|}) - \log 2",
    task="regression",
    paper="Statistical properties of the log-cosh loss function used in machine learning "
    "(Saleh & Saleh, 2022)",
    reference=_log_cosh_reference,
    notes="~r^2/2 near zero and ~|r| - log 2 far away: a smooth Huber with influence tanh(r).",
)
def log_cosh(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    size = (pred - target).abs()
    return size + F.softplus(-2.0 * size) - math.log(2.0)


def _cauchy_reference(pred: torch.Tensor, target: torch.Tensor, c: float) -> torch.Tensor:
    r = pred - target
    return c**2 / 2 * (torch.log(c**2 + r**2) - 2 * math.log(c))


@register(
    title="Cauchy (Lorentzian)",
    latex=r"\frac{c^2}{2}\log\left(1 + (r/c)^2\right)",
    task="regression",
    paper="(standard M-estimator) Robust regression using iteratively reweighted least-squares "
    "(Holland & Welsch, 1977)",
    params=[Param("c", 0.01, 10.0, log=True, help="scale where the influence peaks")],
    reference=_cauchy_reference,
    notes="Grows only logarithmically: redescending influence r/(1 + (r/c)^2), largest at |r| = c.",
)
def cauchy(pred: torch.Tensor, target: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    return 0.5 * c**2 * torch.log1p(((pred - target) / c) ** 2)


def _welsch_reference(pred: torch.Tensor, target: torch.Tensor, c: float) -> torch.Tensor:
    r = pred - target
    return c**2 / 2 * (1 - torch.exp(-((r / c) ** 2)))


@register(
    title="Welsch (Leclerc)",
    latex=r"\frac{c^2}{2}\left(1 - e^{-(r/c)^2}\right)",
    task="regression",
    paper="Techniques for nonlinear least squares and robust regression (Dennis & Welsch, 1978)",
    params=[Param("c", 0.1, 10.0, log=True, help="scale of the residuals still trusted")],
    reference=_welsch_reference,
    notes="Bounded by c^2/2 with a smoothly redescending influence: far outliers are ignored "
    "(Barron's alpha -> -inf, up to scale).",
)
def welsch(pred: torch.Tensor, target: torch.Tensor, c: float = 2.9846) -> torch.Tensor:
    return 0.5 * c**2 * -torch.expm1(-(((pred - target) / c) ** 2))


def _tukey_biweight_reference(pred: torch.Tensor, target: torch.Tensor, c: float) -> torch.Tensor:
    r = pred - target
    inside = c**2 / 6 * (1 - (1 - (r / c) ** 2) ** 3)
    return torch.where(r.abs() <= c, inside, torch.full_like(r, c**2 / 6))


@register(
    title="Tukey biweight",
    latex=r"\begin{cases} \frac{c^2}{6}\left(1 - (1 - (r/c)^2)^3\right) & |r| \le c \\ "
    r"\frac{c^2}{6} & |r| > c \end{cases}",
    task="regression",
    paper="The fitting of power series, meaning polynomials, illustrated on band-spectroscopic data "
    "(Beaton & Tukey, 1974)",
    params=[
        Param(
            "c", 0.5, 10.0, log=True, help="residual beyond which a point is ignored (4.685: 95% efficiency)"
        )
    ],
    reference=_tukey_biweight_reference,
    notes="Bounded by c^2/6; influence exactly zero beyond c, so gross outliers are ignored entirely.",
)
def tukey_biweight(pred: torch.Tensor, target: torch.Tensor, c: float = 4.685) -> torch.Tensor:
    ratio = torch.clamp(((pred - target) / c) ** 2, max=1.0)  # (r/c)^2 frozen at 1: flat beyond c
    return c**2 / 6.0 * (1.0 - (1.0 - ratio) ** 3)


def _quantile_reference(pred: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    under = target - pred  # pinball on y - yhat: q for under-prediction, 1 - q for over-prediction
    return torch.where(under >= 0, q * under, (q - 1) * under)


@register(
    title="Quantile (pinball)",
    latex=r"\max\big(q (y - \hat y),\ (q - 1)(y - \hat y)\big)",
    task="regression",
    paper="Regression quantiles (Koenker & Bassett, 1978)",
    params=[Param("q", 0.01, 0.99, help="target quantile: under-prediction costs q, over-prediction 1 - q")],
    reference=_quantile_reference,
    notes="Asymmetric absolute error whose minimiser is the q-th quantile of the target "
    "(q = 1/2: the median).",
)
def quantile(pred: torch.Tensor, target: torch.Tensor, q: float = 0.9) -> torch.Tensor:
    r = pred - target
    return torch.maximum(-q * r, (1.0 - q) * r)


def _epsilon_insensitive_reference(pred: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    r = (pred - target).abs()
    return torch.where(r > eps, r - eps, torch.zeros_like(r))


@register(
    title="Epsilon-insensitive",
    latex=r"\max(0,\ |r| - \varepsilon)",
    task="regression",
    paper="Support vector regression machines (Drucker, Burges, Kaufman, Smola & Vapnik, 1997)",
    params=[Param("eps", 0.0, 5.0, help="half-width of the tube where errors cost nothing")],
    reference=_epsilon_insensitive_reference,
    notes="Support-vector regression: residuals inside the eps-tube cost nothing, "
    "outside they cost linearly.",
)
def epsilon_insensitive(pred: torch.Tensor, target: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    return torch.clamp((pred - target).abs() - eps, min=0.0)


def _barron_reference(pred: torch.Tensor, target: torch.Tensor, alpha: float, scale: float) -> torch.Tensor:
    # the paper's general formula, valid away from alpha in {0, 2}
    z = ((pred - target) / scale) ** 2
    b = abs(alpha - 2)
    return b / alpha * ((z / b + 1) ** (alpha / 2) - 1)


@register(
    title="General robust (Barron)",
    latex=r"\frac{|\alpha - 2|}{\alpha}\left(\left(\frac{(r/c)^2}{|\alpha - 2|} + 1\right)^{\alpha/2}"
    r" - 1\right)",
    task="regression",
    paper="A General and Adaptive Robust Loss Function (Barron, 2019)",
    params=[
        Param(
            "alpha",
            -10.0,
            2.0,
            help="shape: 2 squared, 1 pseudo-Huber, 0 Cauchy, -2 Geman-McClure, -> -inf Welsch",
        ),
        Param("scale", 0.01, 10.0, log=True, help="c: the size of residuals treated as inliers"),
    ],
    reference=_barron_reference,
    notes="One shape parameter sweeps squared, pseudo-Huber, Cauchy, Geman-McClure and Welsch losses; "
    "alpha = 0 and 2 are the limits of the formula.",
)
def barron(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0, scale: float = 1.0) -> torch.Tensor:
    z = ((pred - target) / scale) ** 2  # (N,) squared scaled residual
    if alpha == 2.0:
        return 0.5 * z
    if alpha == 0.0:
        return torch.log1p(0.5 * z)
    # b/alpha * ((z/b + 1)^(alpha/2) - 1) as b/alpha * expm1(alpha/2 * log1p(z/b)): no cancellation as
    # alpha -> 0, and b is kept >= 1e-6 so alpha -> 2 tends smoothly to z/2 instead of dividing by zero
    b = max(abs(alpha - 2.0), 1e-6)
    return b / alpha * torch.expm1(0.5 * alpha * torch.log1p(z / b))


@register(
    title="MADL (directional)",
    latex=r"-\operatorname{sign}(R \hat R)\,|R|",
    task="regression",
    paper="Mean Absolute Directional Loss as a New Loss Function for Machine Learning Problems in "
    "Algorithmic Investment Strategies (Michańków, Sakowski & Ślepaczuk, 2023)",
    notes="R = target (the realised return), R-hat = prediction: gains |R| when the predicted direction "
    "is right, loses |R| when wrong. Piecewise constant in the prediction, so its gradient is zero almost "
    "everywhere (see gmadl for the smooth version).",
)
def madl(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -torch.sign(target * pred) * target.abs()


@register(
    title="GMADL (smooth directional)",
    latex=r"-\left(\sigma(a R \hat R) - \tfrac12\right)|R|^b",
    task="regression",
    paper="Generalized Mean Absolute Directional Loss as a Solution to Overfitting in Algorithmic Investment "
    "Strategies (Michańków, Kwiatkowski & Morajda, 2024)",
    params=[
        Param("slope", 0.1, 1000.0, log=True, help="a: steepness of the sigmoid around a zero forecast"),
        Param("magnitude_power", 0.0, 3.0, help="b: weight of large realised returns |R|^b"),
    ],
    notes="MADL with sign replaced by a sigmoid so it has a gradient; large slope -> MADL/2 (for b = 1).",
)
def gmadl(
    pred: torch.Tensor, target: torch.Tensor, slope: float = 10.0, magnitude_power: float = 1.0
) -> torch.Tensor:
    return -(torch.sigmoid(slope * target * pred) - 0.5) * target.abs() ** magnitude_power


# --- histogram losses of a categorical head, written for one scalar prediction ---


def hl_gauss_histogram(values: torch.Tensor, bins: int, sigma: float, support: float) -> torch.Tensor:
    """Mass of N(value, (sigma * bin width)^2) in each of `bins` equal bins on [-support, support].

    Values are clipped into the support first.  # (N,) -> (N, bins)
    """
    edges = torch.linspace(-support, support, bins + 1, dtype=values.dtype, device=values.device)  # (K+1,)
    width = sigma * 2.0 * support / bins  # the paper's sigma is a multiple of the bin width
    centre = torch.clamp(values, -support, support)[:, None]  # (N, 1)
    cdf = 0.5 * torch.erfc(-(edges[None, :] - centre) / (width * math.sqrt(2.0)))  # Phi at each edge (N, K+1)
    mass = torch.clamp(cdf[:, 1:] - cdf[:, :-1], min=0.0)  # (N, K)
    return mass / (cdf[:, -1:] - cdf[:, :1])  # keep only the mass inside the support


def two_hot_histogram(values: torch.Tensor, bins: int, support: float) -> torch.Tensor:
    """Two-hot encoding on `bins` equally spaced centres spanning [-support, support]: mean equals the value.

    Values are clipped into the support first.  # (N,) -> (N, bins)
    """
    centres = torch.linspace(-support, support, bins, dtype=values.dtype, device=values.device)  # (K,)
    spacing = 2.0 * support / (bins - 1)
    centre = torch.clamp(values, -support, support)[:, None]  # (N, 1)
    # a triangle of half-width one spacing on each centre: exactly the two neighbours get weight, summing to 1
    return torch.clamp(1.0 - (centre - centres[None, :]).abs() / spacing, min=0.0)  # (N, K)


def _histogram_cross_entropy(target_hist: torch.Tensor, pred_hist: torch.Tensor) -> torch.Tensor:
    """-sum_k t_k log q_k with the floor mixed into q.  # (N, K), (N, K) -> (N,)"""
    n_bins = pred_hist.shape[-1]
    floored = (pred_hist + HISTOGRAM_FLOOR) / (1.0 + n_bins * HISTOGRAM_FLOOR)
    return -(target_hist * torch.log(floored)).sum(-1)


@register(
    title="HL-Gauss (histogram)",
    latex=r"-\sum_k h_k(y)\,\log\big(h_k(\hat y) + \epsilon\big),\ h_k(v) = \int_{\text{bin }k}"
    r"\mathcal N(t; v, \sigma^2)\,dt",
    task="regression",
    paper="Stop Regressing: Training Value Functions via Classification for Scalable Deep RL "
    "(Farebrother et al., 2024); Imani & White (2018)",
    params=[
        _BINS,
        Param("sigma", 0.05, 5.0, log=True, help="Gaussian width in bin widths (the paper recommends 0.75)"),
        _SUPPORT,
    ],
    notes="Really a loss of a categorical head. To fit one scalar prediction it is the cross-entropy "
    "between the target's HL-Gauss histogram and the same histogram centred at the prediction "
    "(floored at 1e-6, both clipped into the support): smooth, bounded, with zero gradient far from "
    "the target.",
)
def hl_gauss(
    pred: torch.Tensor, target: torch.Tensor, bins: int = 51, sigma: float = 0.75, support: float = 10.0
) -> torch.Tensor:
    n_bins = int(bins)
    target_hist = hl_gauss_histogram(target.to(pred.dtype), n_bins, sigma, support)  # (N, K)
    return _histogram_cross_entropy(target_hist, hl_gauss_histogram(pred, n_bins, sigma, support))


@register(
    title="Two-hot (histogram)",
    latex=r"-\sum_k t_k(y)\,\log\big(t_k(\hat y) + \epsilon\big),\ t(v) \text{ two-hot on the bin centres}",
    task="regression",
    paper="Stop Regressing: Training Value Functions via Classification for Scalable Deep RL "
    "(Farebrother et al., 2024); MuZero (Schrittwieser et al., 2020)",
    params=[_BINS, _SUPPORT],
    notes="Really a loss of a categorical head. To fit one scalar prediction it is the cross-entropy "
    "between the target's two-hot vector and the prediction's (floored at 1e-6, both clipped into the "
    "support): it only sees predictions within two bins of the target.",
)
def two_hot(pred: torch.Tensor, target: torch.Tensor, bins: int = 51, support: float = 10.0) -> torch.Tensor:
    n_bins = int(bins)
    target_hist = two_hot_histogram(target.to(pred.dtype), n_bins, support)  # (N, K)
    return _histogram_cross_entropy(target_hist, two_hot_histogram(pred, n_bins, support))
