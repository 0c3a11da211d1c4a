"""Regression losses: torch references, Barron's special cases, influence functions, histograms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm

from lossviz import losses
from lossviz.losses.regression import HISTOGRAM_FLOOR, hl_gauss_histogram, two_hot_histogram

R = torch.linspace(-8.0, 8.0, 321, dtype=torch.float64)  # residuals (pred - target with target 0)
ZERO = torch.zeros_like(R)


def _loss(name: str, r: torch.Tensor = R, **params: float) -> torch.Tensor:
    return losses.get(name)(r, torch.zeros_like(r), **params)


def _influence(name: str, r: torch.Tensor = R, **params: float) -> torch.Tensor:
    """psi(r) = dL/dr by autograd."""
    r = r.clone().requires_grad_(True)
    (psi,) = torch.autograd.grad(_loss(name, r, **params).sum(), r)
    return psi


def test_at_least_thirteen_regression_losses():
    assert len(losses.names("regression")) >= 13, losses.names("regression")


@pytest.mark.parametrize("name", ["absolute", "huber", "smooth_l1", "quantile", "epsilon_insensitive"])
def test_losses_use_the_residual_only(name):
    # shifting prediction and target together changes nothing
    spec = losses.get(name)
    pred = torch.linspace(-3, 3, 13, dtype=torch.float64)
    target = torch.cos(pred)
    torch.testing.assert_close(spec(pred + 5.0, target + 5.0), spec(pred, target))


@pytest.mark.parametrize("delta", [0.1, 1.0, 3.0])
def test_huber_is_half_squared_inside_and_linear_outside(delta):
    value = _loss("huber", delta=delta)
    inside = R.abs() <= delta
    torch.testing.assert_close(value[inside], 0.5 * R[inside] ** 2)
    torch.testing.assert_close(value[~inside], delta * (R[~inside].abs() - delta / 2))
    torch.testing.assert_close(value, F.huber_loss(R, ZERO, reduction="none", delta=delta))


@pytest.mark.parametrize("beta", [0.05, 1.0, 4.0])
def test_smooth_l1_matches_torch_and_is_huber_over_beta(beta):
    torch.testing.assert_close(
        _loss("smooth_l1", beta=beta), F.smooth_l1_loss(R, ZERO, reduction="none", beta=beta)
    )
    torch.testing.assert_close(_loss("smooth_l1", beta=beta), _loss("huber", delta=beta) / beta)


def test_absolute_and_squared_match_torch():
    torch.testing.assert_close(_loss("absolute"), F.l1_loss(R, ZERO, reduction="none"))
    torch.testing.assert_close(_loss("squared"), F.mse_loss(R, ZERO, reduction="none"))


@pytest.mark.parametrize("c", [0.01, 1.0, 5.0])
def test_pseudo_huber_limits(c):
    small = torch.tensor([1e-4, -1e-3], dtype=torch.float64) * c
    torch.testing.assert_close(_loss("pseudo_huber", small, c=c), small**2 / (2 * c), rtol=1e-5, atol=0)
    large = torch.tensor([1e3, -1e4], dtype=torch.float64) * c
    torch.testing.assert_close(_loss("pseudo_huber", large, c=c), large.abs() - c, rtol=1e-3, atol=0)
    torch.testing.assert_close(_loss("pseudo_huber", c=c), torch.sqrt(R**2 + c**2) - c)


def test_log_cosh_matches_closed_form_and_limits():
    torch.testing.assert_close(_loss("log_cosh"), torch.log(torch.cosh(R)))
    assert float(_loss("log_cosh", torch.tensor([1e-3], dtype=torch.float64))) == pytest.approx(
        5e-7, rel=1e-6
    )
    huge = torch.tensor([1e6], dtype=torch.float32)
    assert float(_loss("log_cosh", huge)) == pytest.approx(1e6 - math.log(2), rel=1e-6)  # cosh would overflow
    torch.testing.assert_close(_influence("log_cosh"), torch.tanh(R))


def test_cauchy_closed_form_and_small_residuals():
    c = 2.0
    torch.testing.assert_close(_loss("cauchy", c=c), c**2 / 2 * torch.log(1 + (R / c) ** 2))
    small = torch.tensor([1e-3], dtype=torch.float64)
    torch.testing.assert_close(_loss("cauchy", small, c=c), small**2 / 2, rtol=1e-6, atol=0)


def test_welsch_bounded_and_redescending():
    c = 2.0
    value = _loss("welsch", c=c)
    assert (value <= c**2 / 2).all()
    psi = _influence("welsch", c=c)
    torch.testing.assert_close(psi, R * torch.exp(-((R / c) ** 2)))


@pytest.mark.parametrize("c", [1.0, 4.685])
def test_tukey_bounded_and_zero_influence_beyond_c(c):
    r = torch.cat([R, torch.tensor([1e3, -1e6], dtype=torch.float64)])
    value = _loss("tukey_biweight", r, c=c)
    assert (value <= c**2 / 6 + 1e-12).all()
    outside = r.abs() > c
    torch.testing.assert_close(value[outside], torch.full_like(value[outside], c**2 / 6))
    psi = _influence("tukey_biweight", r, c=c)
    assert (psi[outside] == 0).all()
    inside = ~outside
    torch.testing.assert_close(psi[inside], r[inside] * (1 - (r[inside] / c) ** 2) ** 2)  # the biweight psi


def test_influence_shapes():
    # squared: unbounded; huber: bounded by delta; cauchy: redescending with its peak at |r| = c
    assert _influence("squared").abs().max() == pytest.approx(16.0)
    assert float(_influence("huber", delta=1.5).abs().max()) == pytest.approx(1.5)
    psi = _influence("cauchy", c=1.0)
    peak = R[psi.argmax()]
    assert float(peak) == pytest.approx(1.0, abs=0.05)
    assert float(psi[-1]) < 0.3 * float(psi.max())  # far residuals pull far less than moderate ones
    torch.testing.assert_close(_influence("absolute")[R != 0], torch.sign(R[R != 0]))


def test_quantile_at_half_is_half_absolute_and_asymmetric_otherwise():
    torch.testing.assert_close(_loss("quantile", q=0.5), 0.5 * _loss("absolute"))
    over, under = torch.tensor([1.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64)
    assert float(_loss("quantile", over, q=0.9)) == pytest.approx(0.1)  # over-prediction costs 1 - q
    assert float(_loss("quantile", under, q=0.9)) == pytest.approx(0.9)  # under-prediction costs q


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_quantile_minimiser_is_the_empirical_quantile(q):
    target = torch.tensor(np.random.default_rng(0).standard_normal(401))
    grid = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    preds, targets = torch.broadcast_tensors(grid[:, None], target[None, :])  # (G, N) constant predictions
    risk = losses.get("quantile")(preds.flatten(), targets.flatten(), q=q).view(len(grid), -1).mean(1)
    assert float(grid[risk.argmin()]) == pytest.approx(float(np.quantile(target.numpy(), q)), abs=2e-3)


def test_epsilon_insensitive_tube():
    value = _loss("epsilon_insensitive", eps=1.0)
    assert (value[R.abs() <= 1.0] == 0).all()
    torch.testing.assert_close(value[R.abs() > 1.0], R[R.abs() > 1.0].abs() - 1.0)


# --- Barron's general robust loss ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_barron_special_cases(scale):
    z = (R / scale) ** 2
    # alpha = 2: half squared error (scaled); alpha = 1: pseudo-Huber / Charbonnier
    torch.testing.assert_close(_loss("barron", alpha=2.0, scale=scale), 0.5 * z)
    torch.testing.assert_close(_loss("barron", alpha=2.0, scale=scale), _loss("squared") / (2 * scale**2))
    torch.testing.assert_close(_loss("barron", alpha=1.0, scale=scale), torch.sqrt(z + 1) - 1)
    torch.testing.assert_close(
        _loss("barron", alpha=1.0, scale=scale), _loss("pseudo_huber", c=scale) / scale
    )
    # alpha = 0: log(1 + z/2), the Cauchy loss with c = sqrt(2) scale
    torch.testing.assert_close(_loss("barron", alpha=0.0, scale=scale), torch.log1p(0.5 * z))
    cauchy = _loss("cauchy", c=math.sqrt(2) * scale) / scale**2
    torch.testing.assert_close(_loss("barron", alpha=0.0, scale=scale), cauchy)
    # alpha = -2: Geman-McClure
    torch.testing.assert_close(_loss("barron", alpha=-2.0, scale=scale), 2 * z / (z + 4))


def test_barron_is_continuous_at_its_removable_singularities():
    for alpha in (0.0, 2.0):
        exact = _loss("barron", alpha=alpha)
        for offset in (1e-9, 1e-6, 1e-4):
            near = alpha - offset if alpha == 2.0 else alpha + offset
            torch.testing.assert_close(_loss("barron", alpha=near), exact, rtol=10 * offset + 1e-7, atol=1e-9)
        if alpha == 0.0:
            torch.testing.assert_close(_loss("barron", alpha=-1e-6), exact, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("alpha", [-10.0, -3.0, -0.5, 0.5, 1.5])
def test_barron_matches_the_general_formula(alpha):
    r = R.numpy()
    b = abs(alpha - 2)
    expected = b / alpha * (((r / 1.5) ** 2 / b + 1) ** (alpha / 2) - 1)
    np.testing.assert_allclose(
        _loss("barron", alpha=alpha, scale=1.5).numpy(), expected, rtol=1e-10, atol=1e-12
    )


def test_barron_negative_alpha_is_bounded():
    # for alpha < 0 the loss tends to |alpha - 2| / |alpha| as |r| -> inf
    huge = torch.tensor([1e12], dtype=torch.float64)
    for alpha in (-10.0, -2.0, -0.5):
        limit = abs(alpha - 2) / abs(alpha)
        assert (_loss("barron", alpha=alpha) < limit).all()
        assert float(_loss("barron", huge, alpha=alpha)) == pytest.approx(limit, rel=1e-3)


def test_barron_influence_gets_more_robust_as_alpha_falls():
    at_five = [
        float(_influence("barron", torch.tensor([5.0], dtype=torch.float64), alpha=a)) for a in (2, 1, 0, -2)
    ]
    assert at_five == sorted(at_five, reverse=True)


# --- directional losses -------------------------------------------------------------------------------------


def test_madl_rewards_the_right_direction():
    target = torch.tensor([0.5, 0.5, -2.0, -2.0, 0.0])  # realised returns R
    pred = torch.tensor([1.0, -0.1, -0.3, 4.0, 1.0])  # forecasts R-hat
    torch.testing.assert_close(losses.get("madl")(pred, target), torch.tensor([-0.5, 0.5, -2.0, 2.0, 0.0]))


def test_madl_has_zero_gradient_and_gmadl_approaches_half_madl():
    target = torch.tensor([0.5, -1.0, 2.0, -0.7], dtype=torch.float64)
    pred = torch.tensor([1.0, 1.5, 0.8, -2.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(losses.get("madl")(pred, target).sum(), pred)
    assert (grad == 0).all()
    madl = losses.get("madl")(pred, target).detach()
    gmadl = losses.get("gmadl")(pred, target, slope=1000.0, magnitude_power=1.0).detach()
    torch.testing.assert_close(gmadl, 0.5 * madl)
    # with a moderate slope gmadl has a gradient pushing each forecast towards the realised direction
    (ggrad,) = torch.autograd.grad(losses.get("gmadl")(pred, target, slope=1.0).sum(), pred)
    assert (torch.sign(-ggrad) == torch.sign(target)).all()


# --- histogram losses ---------------------------------------------------------------------------------------


def test_hl_gauss_histogram_matches_scipy():
    values = torch.tensor([-9.5, -0.3, 0.0, 4.2, 10.0, 25.0], dtype=torch.float64)
    bins, sigma, support = 20, 0.75, 10.0
    ours = hl_gauss_histogram(values, bins, sigma, support).numpy()
    edges = np.linspace(-support, support, bins + 1)
    width = sigma * (edges[1] - edges[0])
    for row, v in zip(ours, np.clip(values.numpy(), -support, support), strict=True):
        cdf = norm.cdf(edges, loc=v, scale=width)
        np.testing.assert_allclose(row, np.diff(cdf) / (cdf[-1] - cdf[0]), atol=1e-12)
    np.testing.assert_allclose(ours.sum(1), 1.0, atol=1e-12)


def test_two_hot_histogram_has_the_value_as_its_mean():
    values = torch.tensor([-10.0, -3.33, 0.0, 0.1, 7.77, 10.0], dtype=torch.float64)
    hist = two_hot_histogram(values, bins=21, support=10.0)
    centres = torch.linspace(-10, 10, 21, dtype=torch.float64)
    torch.testing.assert_close(hist.sum(1), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(hist @ centres, values)
    assert ((hist > 0).sum(1) <= 2).all()


@pytest.mark.parametrize("name", ["hl_gauss", "two_hot"])
def test_histogram_losses_are_minimised_at_the_target(name):
    spec = losses.get(name)
    for y in (-4.13, 0.0, 2.71):
        preds = y + torch.linspace(-1.5, 1.5, 301, dtype=torch.float64)
        values = spec(preds, torch.full_like(preds, y))
        assert float(preds[values.argmin()]) == pytest.approx(y, abs=0.011)


def test_hl_gauss_value_at_the_target_is_the_histogram_entropy():
    target = torch.tensor([-1.234, 3.0], dtype=torch.float64)
    hist = hl_gauss_histogram(target, 51, 0.75, 10.0)
    entropy = -(hist * torch.log(hist.clamp(min=1e-300))).sum(1)
    torch.testing.assert_close(losses.get("hl_gauss")(target, target), entropy, atol=1e-4, rtol=0)


def test_histogram_losses_saturate_far_from_the_target():
    # beyond the histogram overlap the cost is -log(floor), with no gradient
    ceiling = -math.log(HISTOGRAM_FLOOR / (1 + 51 * HISTOGRAM_FLOOR))
    pred = torch.tensor([8.0], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([-8.0], dtype=torch.float64)
    for name in ("hl_gauss", "two_hot"):
        value = losses.get(name)(pred, target)
        (grad,) = torch.autograd.grad(value.sum(), pred)
        assert float(value.detach()) == pytest.approx(ceiling, rel=1e-6) and float(grad) == pytest.approx(0.0)
