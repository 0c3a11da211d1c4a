"""Identities and limits that define the multiclass losses (lossviz/losses/classification.py).

Each test compares a loss against an independent closed form or a known special case from its paper.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossviz import losses
from lossviz.losses import classification as C
from tests.losses.conftest import extreme_inputs, make_inputs

EXPECTED_KEYS = {
    "cross_entropy", "temperature_ce", "label_smoothing", "focal", "poly1", "comp_sum", "gce", "mae_prob",
    "brier", "squentropy", "spherical_z", "logit_z_penalty", "ldr_kl", "nce", "rce", "apl_nce_rce", "sce",
    "ovr", "encouraging", "stablemax_ce", "pass_at_n", "vs_loss", "ldam", "elr", "cosface", "arcface",
    "adaface", "madacos", "harmonic", "squared_onehot",
}  # fmt: skip


def _inputs(scale: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return make_inputs("multiclass", scale=scale, seed=seed)  # float64 (12, 4), int64 (12,)


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="none")


def _p_true(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)


def _crammer_singer_hinge(logits: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, max_{k != y} (z_k - z_y + c))."""
    true = logits.gather(1, target[:, None])
    others = (logits - true + margin).scatter(1, target[:, None], -math.inf)
    return others.max(dim=1).values.clamp(min=0.0)


def test_every_multiclass_loss_of_the_catalogue_is_registered():
    # this module's losses (other families, e.g. distillation, register multiclass losses of their own)
    mine = {n for n in losses.names("multiclass") if losses.get(n).fn.__module__ == C.__name__}
    assert mine == EXPECTED_KEYS


# ---- cross-entropy family -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params",
    [("focal", {"gamma": 0.0}), ("poly1", {"eps": 0.0}), ("temperature_ce", {"temperature": 1.0}),
     ("comp_sum", {"tau": 1.0}), ("pass_at_n", {"n": 1}), ("label_smoothing", {"eps": 0.0})],
    ids=["focal-gamma0", "poly1-eps0", "temperature-1", "comp_sum-tau1", "pass_at_n-N1", "smoothing-0"],
)  # fmt: skip
def test_special_cases_equal_cross_entropy(name, params):
    logits, target = _inputs()
    torch.testing.assert_close(losses.get(name)(logits, target, **params), _ce(logits, target))


def test_logit_z_penalty_without_penalty_is_cross_entropy():
    logits, target = _inputs()
    torch.testing.assert_close(C.logit_z_penalty(logits, target, alpha=0.0), _ce(logits, target))
    # and with a penalty it adds alpha (log sum_k e^{z_k})^2
    expected = _ce(logits, target) + 0.01 * torch.log(torch.exp(logits).sum(1)) ** 2
    torch.testing.assert_close(C.logit_z_penalty(logits, target, alpha=0.01), expected)


@pytest.mark.parametrize("temperature", [0.1, 3.0])
def test_temperature_ce_is_cross_entropy_of_scaled_logits(temperature):
    logits, target = _inputs()
    torch.testing.assert_close(
        C.temperature_ce(logits, target, temperature), _ce(logits / temperature, target)
    )


@pytest.mark.parametrize("eps", [0.05, 0.3, 0.5])
def test_label_smoothing_matches_torch(eps):
    logits, target = _inputs()
    expected = F.cross_entropy(logits, target, reduction="none", label_smoothing=eps)
    torch.testing.assert_close(C.label_smoothing(logits, target, eps=eps), expected)


def test_focal_matches_explicit_probability_form():
    logits, target = _inputs()
    p = _p_true(logits, target)
    torch.testing.assert_close(C.focal(logits, target, gamma=3.5), -((1 - p) ** 3.5) * torch.log(p))


def test_comp_sum_endpoints():
    logits, target = _inputs(scale=1.5)
    p = _p_true(logits, target)
    # tau = 2: mean absolute error 1 - p_y
    torch.testing.assert_close(C.comp_sum(logits, target, tau=2.0), 1.0 - p)
    # tau = 0: the sum-exponential loss sum_{k != y} exp(z_k - z_y)
    gaps = logits - logits.gather(1, target[:, None])
    sum_exp = torch.exp(gaps).sum(1) - 1.0
    torch.testing.assert_close(C.comp_sum(logits, target, tau=0.0), sum_exp)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_gce_is_comp_sum_with_tau_one_plus_q(q):
    logits, target = _inputs()
    torch.testing.assert_close(C.gce(logits, target, q=q), C.comp_sum(logits, target, tau=1.0 + q))


def test_gce_limits():
    logits, target = _inputs()
    p = _p_true(logits, target)
    torch.testing.assert_close(C.gce(logits, target, q=1.0), 1.0 - p)
    torch.testing.assert_close(C.gce(logits, target, q=1e-7), _ce(logits, target), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.5, 2.0])
def test_comp_sum_gradient_is_cross_entropy_gradient_times_p_true_power(tau):
    logits, target = _inputs(scale=1.5)
    z = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(C.comp_sum(z, target, tau=tau).sum(), z)
    ce_grad = torch.softmax(logits, 1) - F.one_hot(target, 4).to(logits.dtype)  # p - e_y
    expected = ce_grad * _p_true(logits, target)[:, None] ** (tau - 1.0)
    torch.testing.assert_close(grad, expected)


def test_comp_sum_sum_exp_stays_finite_and_increasing_in_float32():
    # CE = 2e4 here: exp(CE) overflows, the tangent continuation does not and still grows with the gap.
    target = torch.tensor([0, 0])
    logits = torch.tensor([[-1e4, 1e4, 0.0], [-2e4, 2e4, 0.0]])
    out = C.comp_sum(logits, target, tau=0.0)
    assert torch.isfinite(out).all() and out[1] > out[0] > 1e20


def test_mae_prob_and_rce_are_scaled_one_minus_p_true():
    logits, target = _inputs()
    p = _p_true(logits, target)
    torch.testing.assert_close(C.mae_prob(logits, target), 2.0 * (1.0 - p))
    for a in (-6.0, -4.0, -15.0):
        torch.testing.assert_close(C.rce(logits, target, log_zero=a), -a * (1.0 - p))
    torch.testing.assert_close(losses.get("rce")(logits, target, log_zero=-4.0), 4.0 * (1.0 - p))


def _official_rce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RCE as the official SCE / APL code computes it: -sum_k p_k log clamp(onehot_k, 1e-4, 1)."""
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return -(torch.softmax(logits, dim=-1) * torch.log(one_hot.clamp(1e-4, 1.0))).sum(dim=-1)


@pytest.mark.parametrize("name", ["rce", "apl_nce_rce", "sce"])
def test_rce_log_zero_is_a_slider_defaulting_to_the_official_clamp(name):
    p = losses.get(name).param("log_zero")
    assert p.default == math.log(1e-4) and (p.low, p.high) == (-20.0, -1.0)
    assert p.contains(-4.0)  # the papers' value stays reachable
    assert "official code" in losses.get(name).notes and "A = -4" in losses.get(name).notes


def test_rce_default_is_the_official_code():
    logits, target = _inputs()
    torch.testing.assert_close(losses.get("rce")(logits, target), _official_rce(logits, target))
    assert float(_official_rce(logits, target).max()) > 4.0  # A = ln 1e-4 ~ -9.21, not the papers' -4


def test_brier_is_bounded_and_zero_only_when_certain_and_right():
    logits, target = extreme_inputs("multiclass", dtype=torch.float64)
    out = C.brier(logits, target)
    right = torch.arange(len(target)) % 2 == 0  # extreme_inputs: even rows confidently right
    torch.testing.assert_close(out[right], torch.zeros_like(out[right]))
    torch.testing.assert_close(out[~right], torch.full_like(out[~right], 2.0))


def test_squentropy_adds_mean_squared_wrong_logit():
    logits = torch.tensor([[2.0, -1.0, 3.0]], dtype=torch.float64)
    target = torch.tensor([0])
    expected = _ce(logits, target) + (1.0 + 9.0) / 2
    torch.testing.assert_close(C.squentropy(logits, target), expected)


def test_squared_onehot_is_half_the_squared_distance_to_the_one_hot_target():
    logits = torch.tensor([[2.0, -1.0, 3.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    expected = torch.tensor([(1.0 + 1.0 + 9.0) / 2, 0.0], dtype=torch.float64)
    torch.testing.assert_close(C.squared_onehot(logits, target), expected)


def test_squared_onehot_gradient_is_the_residual_and_shifts_are_not_free():
    logits, target = _inputs()
    logits.requires_grad_(True)
    (grad,) = torch.autograd.grad(C.squared_onehot(logits, target).sum(), logits)
    residual = logits.detach() - F.one_hot(target, logits.shape[1]).double()  # (N, K) z - e_y
    torch.testing.assert_close(grad, residual)
    # unlike the softmax losses, adding a constant to every logit changes it: the target is z = e_y itself
    shift = C.squared_onehot(logits.detach() + 1.0, target) - C.squared_onehot(logits.detach(), target)
    torch.testing.assert_close(shift, residual.sum(dim=1) + 0.5 * logits.shape[1])


@pytest.mark.parametrize("scale, shift", [(0.5, 0.0), (10.0, -3.0), (1.0, 100.0)])
def test_spherical_z_is_shift_and_scale_invariant(scale, shift):
    logits, target = _inputs()
    torch.testing.assert_close(
        C.spherical_z(scale * logits + shift, target), C.spherical_z(logits, target), rtol=1e-6, atol=1e-6
    )


# ---- LDR-KL --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.0, 1.0, 2.0])
def test_ldr_kl_approaches_crammer_singer_hinge_as_lambda_vanishes(margin):
    logits, target = _inputs()
    lam = 0.01
    hinge = _crammer_singer_hinge(logits, target, margin)
    out = C.ldr_kl(logits, target, lam=lam, margin=margin)
    # lam log(mean_k e^{gap_k / lam}) lies in [max gap - lam log K, max gap], and max gap = hinge (gap_y = 0).
    assert torch.all(out <= hinge + 1e-12)
    assert torch.all(out >= hinge - lam * math.log(4) - 1e-12)


def test_ldr_kl_approaches_mean_gap_as_lambda_grows():
    logits, target = _inputs()
    margin = 1.0
    gaps = logits - logits.gather(1, target[:, None]) + margin * (1 - F.one_hot(target, 4).to(logits.dtype))
    mean_gap = gaps.mean(1)  # symmetric, linear in the logits
    out = C.ldr_kl(logits, target, lam=1e4, margin=margin)
    assert torch.all(out >= mean_gap - 1e-9)  # Jensen
    torch.testing.assert_close(out, mean_gap, rtol=0, atol=1e-2)


def test_ldr_kl_at_lambda_one_without_margin_is_cross_entropy_minus_log_k():
    logits, target = _inputs()
    torch.testing.assert_close(
        C.ldr_kl(logits, target, lam=1.0, margin=0.0), _ce(logits, target) - math.log(4)
    )


# ---- noise-robust: NCE, RCE, APL, SCE --------------------------------------------------------------------


def test_nce_matches_its_definition():
    logits, target = _inputs()
    log_p = torch.log_softmax(logits, 1)
    torch.testing.assert_close(
        C.nce(logits, target), log_p.gather(1, target[:, None]).squeeze(1) / log_p.sum(1)
    )


@pytest.mark.parametrize("scale", [0.01, 3.0, 100.0, 1e4])
def test_nce_stays_within_zero_one(scale):
    logits, target = make_inputs("multiclass", scale=scale, dtype=torch.float32, seed=3)
    for z in (logits, extreme_inputs("multiclass")[0]):
        out = C.nce(z, target)
        assert torch.isfinite(out).all()
        assert torch.all((out >= 0) & (out <= 1)), out


def test_apl_nce_rce_is_weighted_sum_of_nce_and_rce():
    logits, target = _inputs()
    log_probs = torch.log_softmax(logits, dim=-1)
    nce = log_probs.gather(1, target[:, None]).squeeze(1) / log_probs.sum(dim=-1)
    expected = 2.0 * nce + 0.5 * _official_rce(logits, target)
    torch.testing.assert_close(C.apl_nce_rce(logits, target, alpha=2.0, beta=0.5), expected)
    paper = 2.0 * nce + 0.5 * 4.0 * (1.0 - _p_true(logits, target))  # A = -4
    torch.testing.assert_close(C.apl_nce_rce(logits, target, alpha=2.0, beta=0.5, log_zero=-4.0), paper)


def test_sce_is_weighted_sum_of_ce_and_rce():
    logits, target = _inputs()
    torch.testing.assert_close(
        C.sce(logits, target, alpha=0.3, beta=2.0),
        0.3 * _ce(logits, target) + 2.0 * _official_rce(logits, target),
    )
    rce = 4.0 * (1.0 - _p_true(logits, target))  # -A (1 - p_y) with the papers' A = -4
    torch.testing.assert_close(
        C.sce(logits, target, alpha=0.3, beta=2.0, log_zero=-4.0), 0.3 * _ce(logits, target) + 2.0 * rce
    )


# ---- encouraging, StableMax, pass@N -----------------------------------------------------------------------


def test_encouraging_uncapped_is_log_odds_of_the_true_class():
    logits, target = _inputs()
    others = logits.scatter(1, target[:, None], -math.inf)
    expected = torch.logsumexp(others, 1) - logits.gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(C.encouraging(logits, target, cap=1.0), expected)


def test_encouraging_cap_replaces_bonus_by_its_tangent_above_cap():
    logits, target = _inputs()
    cap = 0.5
    p = _p_true(logits, target)
    capped, uncapped = C.encouraging(logits, target, cap=cap), C.encouraging(logits, target, cap=1.0)
    assert (p > cap).any() and (p <= cap).any()
    torch.testing.assert_close(capped[p <= cap], uncapped[p <= cap])
    # log(1 - p) is concave, so its tangent lies above it: the capped loss is larger where the cap acts
    assert torch.all(capped[p > cap] > uncapped[p > cap])


def test_stablemax_ce_survives_softmax_collapse():
    # In float32, softmax of a logit 200 above the rest is exactly 1: CE is 0 with a zero gradient.
    logits = torch.tensor([[200.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([0])
    z = logits.clone().requires_grad_(True)
    ce = F.cross_entropy(z, target)
    (ce_grad,) = torch.autograd.grad(ce, z)
    assert ce.item() == 0.0 and torch.all(ce_grad == 0)
    z = logits.clone().requires_grad_(True)
    stable = C.stablemax_ce(z, target)
    (stable_grad,) = torch.autograd.grad(stable.sum(), z)
    torch.testing.assert_close(stable, torch.tensor([math.log(204.0 / 201.0)]))
    assert stable_grad[0, 0] < 0 and torch.isfinite(stable_grad).all()


def test_stablemax_ce_matches_its_definition_for_negative_and_positive_logits():
    logits = torch.tensor([[-3.0, 0.0, 2.0]], dtype=torch.float64)
    s = torch.tensor([1 / 4, 1.0, 3.0], dtype=torch.float64)
    for y in range(3):
        expected = -torch.log(s[y] / s.sum())
        torch.testing.assert_close(C.stablemax_ce(logits, torch.tensor([y])), expected[None])


@pytest.mark.parametrize("n", [1, 4, 64, 256])
def test_pass_at_n_matches_direct_formula(n):
    logits, target = _inputs(scale=2.0, seed=5)
    p = _p_true(logits, target)
    expected = -torch.log(-torch.expm1(n * torch.log1p(-p)))
    torch.testing.assert_close(C.pass_at_n(logits, target, n=n), expected)


def test_pass_at_n_uses_log_n_plus_log_p_when_p_underflows():
    # float32 logits with p_y = e^-200 (N p_y far below float32 resolution of 1 - p_y), then p_y = 0 exactly
    logits = torch.tensor([[0.0, 200.0, 0.0, 0.0], [-1e4, 1e4, -1e4, -1e4]])
    target = torch.tensor([0, 0])
    z = logits.clone().requires_grad_(True)
    out = C.pass_at_n(z, target, n=16)
    (grad,) = torch.autograd.grad(out.sum(), z)
    torch.testing.assert_close(out, F.cross_entropy(logits, target, reduction="none") - math.log(16))
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad[0], torch.tensor([-1.0, 1.0, 0.0, 0.0]))


def test_pass_at_n_stops_pushing_once_p_true_is_well_above_one_over_n():
    logits = torch.tensor([[3.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # p_y ~ 0.87
    target = torch.tensor([0])
    grads = {}
    for n in (1, 16):
        z = logits.clone().requires_grad_(True)
        grads[n] = torch.autograd.grad(C.pass_at_n(z, target, n=n).sum(), z)[0][0, 0]
    # d/dz_y = -N p (1 - p)^N / (1 - (1 - p)^N): about 1e-12 of the CE gradient -(1 - p) at N = 16
    assert grads[1] < 0 and grads[16] < 0
    assert abs(grads[16]) < 1e-10 * abs(grads[1])


# ---- class imbalance: VS and LDAM ------------------------------------------------------------------------


def test_vs_loss_with_balanced_counts_is_cross_entropy():
    logits, target = _inputs()
    for counts in (None, torch.full((4,), 7.0)):
        out = C.vs_loss(logits, target, gamma=0.5, tau=2.0, class_counts=counts)
        torch.testing.assert_close(out, _ce(logits, target))


def test_ldam_with_balanced_counts_is_cross_entropy_with_one_margin():
    logits, target = _inputs()
    expected = _ce(3.0 * (logits - 0.7 * F.one_hot(target, 4).to(logits.dtype)), target)
    for counts in (None, torch.full((4,), 7.0)):
        out = C.ldam(logits, target, max_margin=0.7, scale=3.0, class_counts=counts)
        torch.testing.assert_close(out, expected)


def test_ldam_margins_follow_inverse_fourth_root_of_counts():
    counts = torch.tensor([256.0, 16.0, 1.0], dtype=torch.float64)  # margins proportional to 1/4, 1/2, 1
    logits = torch.zeros(3, 3, dtype=torch.float64)
    target = torch.arange(3)
    out = C.ldam(logits, target, max_margin=1.0, scale=1.0, class_counts=counts)
    margins = torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(out, torch.log(torch.exp(-margins) + 2.0) + margins)


@pytest.mark.parametrize(
    "name, params",
    [("vs_loss", {"gamma": 0.0, "tau": 1.0}), ("vs_loss", {"gamma": 0.5, "tau": 0.0}),
     ("ldam", {"max_margin": 0.5, "scale": 1.0})],
    ids=["vs-additive", "vs-multiplicative", "ldam"],
)  # fmt: skip
def test_imbalance_losses_push_harder_on_rare_classes(name, params):
    counts = torch.tensor([100.0, 10.0, 1.0], dtype=torch.float64)  # class 2 is the rarest
    target = torch.arange(3)
    logits = 2.0 * F.one_hot(target, 3).to(torch.float64)  # every sample right by the same logit gap
    z = logits.clone().requires_grad_(True)
    out = losses.get(name).fn(z, target, **params, class_counts=counts)
    (grad,) = torch.autograd.grad(out.sum(), z)
    assert out[0] < out[1] < out[2]
    if name != "vs_loss" or params["tau"] > 0:
        # additive terms also push z_y up harder; VS's multiplicative Delta_y < 1 instead shrinks the rare
        # class's gradient and acts on the margin reached later in training (Kini et al., 2021)
        true_grad = grad.gather(1, target[:, None]).squeeze(1)  # negative: pushes z_y up
        assert true_grad[0] > true_grad[1] > true_grad[2]
    # Plain CE treats the three samples alike.
    assert torch.allclose(_ce(logits, target), _ce(logits, target)[0].expand(3))


@pytest.mark.parametrize(
    "counts, message", [(torch.ones(3), "shape"), (torch.tensor([1.0, 0.0, 2.0, 3.0]), "> 0")]
)
def test_bad_class_counts_are_value_errors(counts, message):
    logits, target = _inputs()
    with pytest.raises(ValueError, match=message):
        C.vs_loss(logits, target, class_counts=counts)
    with pytest.raises(ValueError, match=message):
        C.ldam(logits, target, class_counts=counts)


# ---- ELR -------------------------------------------------------------------------------------------------


def test_elr_without_weight_is_cross_entropy():
    logits, target = _inputs()
    torch.testing.assert_close(C.elr(logits, target, lam=0.0), _ce(logits, target))


def test_elr_with_running_target_matches_its_formula():
    logits, target = _inputs(scale=1.0)
    ema = torch.softmax(
        torch.randn(12, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64), 1
    )
    p = torch.softmax(logits, 1)
    expected = _ce(logits, target) + 3.0 * torch.log(1.0 - (p * ema).sum(1))
    torch.testing.assert_close(C.elr(logits, target, lam=3.0, ema_target=ema), expected)


def test_elr_without_target_has_the_gradient_of_elr_with_detached_predictions():
    logits, target = _inputs(scale=1.0)
    z = logits.clone().requires_grad_(True)
    (grad_default,) = torch.autograd.grad(C.elr(z, target, lam=3.0).sum(), z)
    z = logits.clone().requires_grad_(True)
    ema = torch.softmax(logits, 1)  # t = stopgrad(p)
    (grad_detached,) = torch.autograd.grad(C.elr(z, target, lam=3.0, ema_target=ema).sum(), z)
    torch.testing.assert_close(grad_default, grad_detached)


def test_elr_checks_the_target_shape():
    logits, target = _inputs()
    with pytest.raises(ValueError, match="ema_target"):
        C.elr(logits, target, ema_target=torch.ones(12, 3))


# ---- angular margins --------------------------------------------------------------------------------------


def _cosines(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    cosines = torch.rand(12, 4, generator=g, dtype=torch.float64) * 1.6 - 0.8  # inside (-1, 1)
    return cosines, torch.randint(0, 4, (12,), generator=g)


@pytest.mark.parametrize("name", ["cosface", "arcface", "adaface"])
def test_angular_losses_without_margin_are_scaled_cross_entropy(name):
    cosines, target = _cosines()
    out = losses.get(name)(cosines, target, scale=20.0, margin=0.0)
    torch.testing.assert_close(out, _ce(20.0 * cosines, target))


def test_arcface_adds_the_margin_to_the_true_angle():
    cosines, target = _cosines()
    theta = torch.arccos(cosines.gather(1, target[:, None]))
    shifted = cosines.scatter(1, target[:, None], torch.cos(theta + 0.5))
    torch.testing.assert_close(
        C.arcface(cosines, target, scale=10.0, margin=0.5), _ce(10.0 * shifted, target)
    )


def test_cosface_subtracts_the_margin_from_the_true_cosine():
    cosines, target = _cosines()
    shifted = cosines - 0.35 * F.one_hot(target, 4).to(cosines.dtype)
    torch.testing.assert_close(
        C.cosface(cosines, target, scale=10.0, margin=0.35), _ce(10.0 * shifted, target)
    )


def test_adaface_interpolates_between_arcface_and_cosface():
    cosines, target = _cosines()
    kwargs = {"scale": 10.0, "margin": 0.4}
    # neutral quality: CosFace; lowest quality: angular margin (ArcFace, away from theta + m > pi)
    torch.testing.assert_close(
        C.adaface(cosines, target, **kwargs, quality=0.0), C.cosface(cosines, target, **kwargs)
    )
    torch.testing.assert_close(
        C.adaface(cosines, target, **kwargs, quality=-1.0), C.arcface(cosines, target, **kwargs)
    )
    # equal feature norms are all of average quality, hence CosFace too
    same_norms = torch.full((12,), 5.0, dtype=torch.float64)
    torch.testing.assert_close(
        C.adaface(cosines, target, **kwargs, quality=0.7, feature_norms=same_norms),
        C.cosface(cosines, target, **kwargs),
    )
    with pytest.raises(ValueError, match="feature_norms"):
        C.adaface(cosines, target, feature_norms=torch.ones(5))


def test_adaface_normalises_feature_norms_with_the_unbiased_batch_std():
    # the authors' code: q = clip(h (||f|| - mean) / (std + 1e-3), -1, 1) with torch's default, unbiased std
    cosines, target = _cosines(seed=2)
    norms = torch.tensor([3.0, 9.0, 4.5, 12.0, 6.0, 7.5, 2.0, 5.0, 10.0, 8.0, 6.5, 4.0], dtype=torch.float64)
    n = norms.numpy()
    q = np.clip(0.333 * (n - n.mean()) / (np.std(n, ddof=1) + 1e-3), -1.0, 1.0)
    assert np.abs(q).max() < 1.0  # no clipping, so the std's correction shows in every sample
    kwargs = {"scale": 10.0, "margin": 0.4}
    out = C.adaface(cosines, target, **kwargs, feature_norms=norms)
    for i in range(len(q)):  # each sample is AdaFace with its own quality q_i
        one = C.adaface(cosines[i : i + 1], target[i : i + 1], **kwargs, quality=float(q[i]))
        torch.testing.assert_close(out[i : i + 1], one)
    torch.testing.assert_close(
        out, losses.get("adaface").reference(cosines, target, **kwargs, quality=0.0, feature_norms=norms)
    )
    biased = np.clip(0.333 * (n - n.mean()) / (np.std(n) + 1e-3), -1.0, 1.0)
    wrong = C.adaface(cosines[:1], target[:1], **kwargs, quality=float(biased[0]))
    assert abs(float(wrong[0]) - float(out[0])) > 1e-4  # the biased std would give a different loss


def test_angular_losses_have_finite_gradients_at_cosines_of_exactly_one():
    cosines = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], requires_grad=True)
    target = torch.tensor([0, 0])
    for name in ("cosface", "arcface", "adaface"):
        (grad,) = torch.autograd.grad(losses.get(name)(cosines, target).sum(), cosines)
        assert torch.isfinite(grad).all(), name


# ---- harmonic -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1.0, 2.0, 7.5])
def test_harmonic_is_the_distance_ratio_and_cross_entropy_of_n_z(n):
    g = torch.Generator().manual_seed(4)
    features = torch.randn(12, 2, generator=g, dtype=torch.float64)
    centres = torch.randn(4, 2, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (12,), generator=g)
    distances = torch.cdist(features, centres)  # (12, 4)
    logits = -torch.log(distances)  # the harmonic head's output
    weights = distances ** (-n)
    expected = -torch.log(weights.gather(1, target[:, None]).squeeze(1) / weights.sum(1))
    torch.testing.assert_close(C.harmonic(logits, target, n=n), expected)
    torch.testing.assert_close(C.harmonic(logits, target, n=n), _ce(n * logits, target))


def test_ldr_kl_is_bounded_below_by_minus_lambda_log_k():
    # the 1/K inside the log makes the minimum -lambda log K (the UI notes say why curves go negative)
    fn = losses.get("ldr_kl")
    logits = 5 * torch.randn(64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(1))
    floor = -10.0 * math.log(4)
    assert (fn(logits, target, lam=10.0) >= floor - 1e-9).all()
    confident = torch.tensor([[1e4, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert fn(confident, torch.tensor([0]), lam=10.0).item() == pytest.approx(floor, abs=1e-6)
