"""Preference losses against their plainly written references, the identities that relate them, gradient
signs, KTO's detached reference point, stable log odds and finiteness at the numeric edge."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossviz import losses
from lossviz.losses.preference import LOG_PROB_CEIL, log_odds, log_one_minus_exp, log_ratio_margin
from tests.losses.conftest import extreme_inputs, make_inputs

PREFERENCE = losses.names("preference")
REFERENCE_FREE = ["slic", "orpo", "simpo", "asft"]
# losses that never rise when the chosen answer's log-probability rises (cDPO, soft preference and IPO
# aim at a finite margin, so past it they do)
MONOTONE_IN_CHOSEN = ["dpo", "kto", "slic", "orpo", "simpo", "asft"]


def _inputs(seed: int = 2, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    return make_inputs("preference", scale=scale, seed=seed)


def _settings(name: str):
    """Defaults, each Param at its low, middle and high with the others at their defaults."""
    spec = losses.get(name)
    yield "defaults", {}
    for p in spec.params:
        for where, value in zip(("low", "mid", "high"), p.grid(3), strict=True):
            yield f"{p.name}={where}", {p.name: value}


CASES = [pytest.param(n, s, id=f"{n}-{label}") for n in PREFERENCE for label, s in _settings(n)]


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


def test_the_nine_preference_losses_of_the_issue_are_registered():
    expected = {"dpo", "ipo", "slic", "cdpo", "orpo", "simpo", "kto", "asft", "soft_preference"}
    assert set(PREFERENCE) == expected, PREFERENCE
    assert losses.get("kto").batch and not any(losses.get(n).batch for n in expected - {"kto"})
    assert losses.get("simpo").context == ("lengths",)


# ------------------------------------------------------------------------------------------------------------
# Independent references (explicit sigmoid, log, exp and odds in float64) across the slider ranges
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", CASES)
def test_matches_its_reference_across_the_slider_range(name, params):
    spec = losses.get(name)
    for seed in (0, 1):
        policy, reference = _inputs(seed=seed)
        _close(spec(policy, reference, **params), spec.reference(policy, reference, **spec.bind(**params)))


def test_simpo_matches_its_reference_with_lengths():
    policy, reference = _inputs()
    lengths = torch.randint(1, 40, policy.shape, generator=torch.Generator().manual_seed(0))
    spec = losses.get("simpo")
    for beta, gamma in [(2.0, 1.0), (0.1, 0.0), (10.0, 5.0)]:
        _close(
            spec(policy, reference, beta=beta, gamma=gamma, lengths=lengths),
            spec.reference(policy, reference, beta=beta, gamma=gamma, lengths=lengths),
        )


def _positive_reference_point() -> tuple[torch.Tensor, torch.Tensor]:
    """A policy flatter than the reference: the batch mean of log pi/pi_ref over its answers is > 0."""
    reference, policy = make_inputs("preference", scale=3.0, seed=3)  # the sharp one as the reference
    assert (policy - reference).mean() > 0.1
    return policy, reference


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 10.0])
def test_kto_matches_its_reference_with_a_positive_reference_point(beta):
    policy, reference = _positive_reference_point()
    spec = losses.get("kto")
    for lambda_d, lambda_u in [(1.0, 1.0), (2.0, 0.5), (0.0, 1.3)]:
        params = dict(beta=beta, lambda_d=lambda_d, lambda_u=lambda_u)
        _close(spec(policy, reference, **params), spec.reference(policy, reference, **params))


# ------------------------------------------------------------------------------------------------------------
# Identities
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 10.0])
def test_cdpo_with_no_flips_is_dpo(beta):
    policy, reference = _inputs()
    _close(
        losses.get("cdpo")(policy, reference, beta=beta, eps=0.0),
        losses.get("dpo")(policy, reference, beta=beta),
    )


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 0.5])
def test_cdpo_mixes_dpo_with_dpo_of_the_swapped_pair(eps):
    policy, reference = _inputs()
    dpo = losses.get("dpo")
    swapped = (1 - eps) * dpo(policy, reference, beta=0.5) + eps * dpo(
        policy.flip(-1), reference.flip(-1), beta=0.5
    )
    _close(losses.get("cdpo")(policy, reference, beta=0.5, eps=eps), swapped)


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 10.0])
def test_soft_preference_with_a_certain_label_is_dpo(beta):
    policy, reference = _inputs()
    _close(
        losses.get("soft_preference")(policy, reference, beta=beta, p=1.0),
        losses.get("dpo")(policy, reference, beta=beta),
    )


@pytest.mark.parametrize("p", [0.5, 0.7, 0.95, 1.0])
def test_soft_preference_is_cdpo_with_flip_rate_one_minus_p(p):
    policy, reference = _inputs()
    _close(
        losses.get("soft_preference")(policy, reference, beta=0.3, p=p),
        losses.get("cdpo")(policy, reference, beta=0.3, eps=1.0 - p),
    )


@pytest.mark.parametrize("beta", [0.1, 1.0, 2.0, 10.0])
def test_simpo_with_unit_lengths_and_no_margin_is_dpo_without_a_reference(beta):
    policy, reference = _inputs()
    dpo = losses.get("dpo")(policy, torch.zeros_like(reference), beta=beta)
    simpo = losses.get("simpo")
    _close(simpo(policy, reference, beta=beta, gamma=0.0), dpo)
    _close(simpo(policy, reference, beta=beta, gamma=0.0, lengths=torch.ones_like(policy)), dpo)


def test_simpo_lengths_normalise_the_log_probabilities():
    policy, reference = _inputs()
    lengths = torch.tensor([[3.0, 7.0]]).expand_as(policy)
    simpo = losses.get("simpo")
    _close(simpo(policy, reference, lengths=lengths), simpo(policy / lengths, reference))


@pytest.mark.parametrize("tau", [0.01, 0.1, 0.5, 10.0])
def test_ipo_has_its_minimum_zero_at_margin_one_over_two_tau(tau):
    target = 1.0 / (2.0 * tau)
    margins = torch.linspace(target - 3.0, target + 3.0, 601, dtype=torch.float64)  # step 0.01, target on it
    # h = (pi_w - ref_w) - (pi_l - ref_l) with ref_w = ref_l = pi_l = -100 and pi_w = -100 + h (<= 0)
    policy = torch.stack([-100.0 + margins, torch.full_like(margins, -100.0)], dim=1).requires_grad_(True)
    reference = torch.full_like(policy, -100.0)
    values = losses.get("ipo")(policy, reference, tau=tau)
    best = int(values.argmin())
    assert margins[best].item() == pytest.approx(target, abs=1e-9)
    assert values[best].item() == pytest.approx(0.0, abs=1e-18)
    assert (values[torch.arange(len(values)) != best] > 0).all()
    (grad,) = torch.autograd.grad(values[best], policy)
    assert grad.abs().max() < 1e-9


@pytest.mark.parametrize("name, params, optimum", [
    ("cdpo", dict(beta=0.5, eps=0.2), math.log(0.8 / 0.2) / 0.5),
    ("soft_preference", dict(beta=2.0, p=0.9), math.log(0.9 / 0.1) / 2.0),
])  # fmt: skip
def test_label_noise_forms_stop_at_a_finite_margin(name, params, optimum):
    # at beta h = log((1 - eps)/eps), resp. logit(p), the loss is flat in h; on either side it rises
    policy = torch.tensor([[-50.0 + optimum, -50.0]], dtype=torch.float64, requires_grad=True)
    reference = torch.full_like(policy, -50.0)
    (grad,) = torch.autograd.grad(losses.get(name)(policy, reference, **params).sum(), policy)
    assert grad.abs().max() < 1e-12
    for shift in (-0.5, 0.5):
        moved = policy.detach() + torch.tensor([[shift, 0.0]], dtype=torch.float64)
        assert losses.get(name)(moved, reference, **params) > losses.get(name)(policy, reference, **params)


def test_orpo_without_the_odds_term_is_sft_on_the_chosen():
    policy, reference = _inputs()
    _close(losses.get("orpo")(policy, reference, lam=0.0), -policy[:, 0])


@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0])
def test_asft_untempered_is_the_likelihood_of_the_chosen_and_of_not_the_rejected(lam):
    # sigma(log odds(p)) = p: at beta = 1 the alignment term is -log p_w - log(1 - p_l)
    policy, reference = _inputs()
    expected = -(1.0 + lam) * policy[:, 0] - lam * torch.log(1.0 - torch.exp(policy[:, 1]))
    _close(losses.get("asft")(policy, reference, beta=1.0, lam=lam), expected)


@pytest.mark.parametrize("name", REFERENCE_FREE)
def test_reference_free_losses_ignore_the_reference(name):
    policy, reference = _inputs()
    other = make_inputs("preference", seed=9)[1]
    _close(losses.get(name)(policy, reference), losses.get(name)(policy, other))


@pytest.mark.parametrize("name", ["dpo", "ipo", "cdpo", "soft_preference", "kto"])
def test_losses_with_a_reference_see_it(name):
    policy, reference = _inputs()
    other = make_inputs("preference", seed=9)[1]
    assert not torch.allclose(losses.get(name)(policy, reference), losses.get(name)(policy, other))


# ------------------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 10.0])
def test_dpo_raising_the_chosen_or_lowering_the_rejected_lowers_the_loss(beta):
    policy, reference = _inputs()
    policy.requires_grad_(True)
    (grad,) = torch.autograd.grad(losses.get("dpo")(policy, reference, beta=beta).sum(), policy)
    assert (grad[:, 0] < 0).all() and (grad[:, 1] > 0).all()
    # the two pulls are equal and opposite: DPO sees only the margin h
    _close(grad[:, 0], -grad[:, 1])
    raised = policy.detach() + torch.tensor([0.1, 0.0], dtype=policy.dtype)
    assert (
        losses.get("dpo")(raised, reference, beta=beta) < losses.get("dpo")(policy, reference, beta=beta)
    ).all()


@pytest.mark.parametrize("name", MONOTONE_IN_CHOSEN)
def test_raising_the_chosen_never_raises_the_loss(name):
    spec = losses.get(name)
    for _, params in _settings(name):
        policy, reference = _inputs()
        policy.requires_grad_(True)
        (grad,) = torch.autograd.grad(spec(policy, reference, **params).sum(), policy)
        assert (grad[:, 0] <= 0).all(), (name, params, grad[:, 0])


def test_kto_does_not_back_propagate_through_its_reference_point():
    policy, reference = _positive_reference_point()
    beta, lambda_d, lambda_u = 1.0, 1.0, 1.5
    z0 = float((policy - reference).mean())  # > 0, frozen

    def frozen(x: torch.Tensor) -> torch.Tensor:
        r = x - reference
        desirable = lambda_d * (1.0 - torch.sigmoid(beta * (r[:, 0] - z0)))
        undesirable = lambda_u * (1.0 - torch.sigmoid(beta * (z0 - r[:, 1])))
        return torch.cat([desirable, undesirable]).mean()

    x = policy.clone().requires_grad_(True)
    (ours,) = torch.autograd.grad(
        losses.get("kto")(x, reference, beta=beta, lambda_d=lambda_d, lambda_u=lambda_u), x
    )
    (expected,) = torch.autograd.grad(frozen(x), x)
    _close(ours, expected)
    assert torch.autograd.gradcheck(frozen, (x,), eps=1e-6, atol=1e-7)


def test_the_contract_gradcheck_sees_kto_at_its_floor():
    # test_contract's float64 gradcheck perturbs the policy, which moves a batch estimate of z0; with the
    # policy sharper than the reference z0 is floored at 0 there, so the detached z0 does not matter to it
    policy, reference = make_inputs("preference", scale=1.5, seed=1)
    assert (policy - reference).mean() < 0


def test_simpo_gradcheck_with_lengths():
    policy, reference = make_inputs("preference", scale=1.5, seed=1)
    lengths = torch.randint(1, 20, policy.shape, generator=torch.Generator().manual_seed(1))
    policy.requires_grad_(True)
    spec = losses.get("simpo")
    assert torch.autograd.gradcheck(
        lambda x: spec(x, reference, lengths=lengths), (policy,), eps=1e-6, atol=1e-5
    )


# ------------------------------------------------------------------------------------------------------------
# Numerics: stable log odds, finiteness at the edge in float64 and with respect to the reference too
# ------------------------------------------------------------------------------------------------------------


def test_log_odds_is_stable_at_both_ends():
    log_p = torch.tensor([-1e4, -50.0, -1.0, -math.log(2.0), -1e-3, -1e-5, 0.0], dtype=torch.float64)
    plain = torch.log(torch.exp(log_p) / (1.0 - torch.exp(log_p)))
    _close(log_odds(log_p)[1:-1], plain[1:-1])
    assert log_odds(log_p)[0] == -1e4  # p = e^-1e4 underflows, but its log odds is log p
    ceiling = math.log(-math.expm1(LOG_PROB_CEIL))
    assert log_odds(log_p)[-1].item() == pytest.approx(LOG_PROB_CEIL - ceiling)  # p = 1 counts as 1 - 1e-6
    # float32 keeps the near-1 branch accurate (log(1 - p) from expm1, not from 1 - exp)
    near_one = torch.tensor([-1e-3, -1e-5], dtype=torch.float32)
    torch.testing.assert_close(
        log_one_minus_exp(near_one).double(), torch.log(-torch.expm1(near_one.double())), rtol=1e-6, atol=0
    )


def test_margin_and_losses_reject_misshapen_inputs():
    policy, reference = _inputs()
    with pytest.raises(ValueError, match=r"policy must be \(N, 2\).*\(12, 3\)"):
        log_ratio_margin(torch.zeros(12, 3), torch.zeros(12, 3))
    with pytest.raises(ValueError, match=r"reference must have the policy's shape \(12, 2\), got \(12,\)"):
        losses.get("dpo")(policy, reference[:, 0])
    for name in PREFERENCE:
        with pytest.raises(ValueError, match="policy must be"):
            losses.get(name)(policy[:, 0], reference[:, 0])


def test_simpo_rejects_bad_lengths():
    policy, reference = _inputs()
    simpo = losses.get("simpo")
    with pytest.raises(ValueError, match=r"lengths must be \(N, 2\).*got \(12,\)"):
        simpo(policy, reference, lengths=torch.ones(12))
    with pytest.raises(ValueError, match="lengths must all be > 0, got minimum 0"):
        simpo(policy, reference, lengths=torch.zeros_like(policy))


@pytest.mark.parametrize("name, params", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_finite_at_the_edge_for_policy_and_reference(name, params, dtype):
    spec = losses.get(name)
    policy, reference = extreme_inputs("preference", dtype=dtype)
    policy.requires_grad_(True)
    reference.requires_grad_(True)
    out = spec(policy, reference, **params)
    assert torch.isfinite(out).all(), out
    # the reference-free losses do not use the reference: no gradient reaches it
    grads = torch.autograd.grad(out.sum(), (policy, reference), allow_unused=name in REFERENCE_FREE)
    assert all(g is None or torch.isfinite(g).all() for g in grads), grads
    assert grads[0] is not None and (grads[1] is None) == (name in REFERENCE_FREE)


def test_dpo_is_linear_in_a_hopeless_margin_and_zero_in_a_won_one():
    # rows of the extreme inputs with h = -2e4 and h = +2e4 (pi_w, pi_l, ref_w, ref_l in {-1e4, 0})
    policy = torch.tensor([[-1e4, 0.0], [0.0, -1e4]])
    reference = torch.tensor([[0.0, -1e4], [-1e4, 0.0]])
    out = losses.get("dpo")(policy, reference, beta=0.1)
    assert out[0].item() == pytest.approx(2000.0) and out[1].item() == 0.0
    _close(F.softplus(torch.tensor(0.1 * 2e4, dtype=torch.float64)), out[0].double())  # -log sigma(beta h)
