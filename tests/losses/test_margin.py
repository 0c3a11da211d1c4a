"""Binary margin losses: named identities, scikit-learn references, bounds, and the EnsLoss CC check."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.linear_model import _sgd_fast

from lossviz import losses
from lossviz.losses.margin import (
    EXPONENT_CAP,
    binary_margin,
    is_calibrated_convex,
    margin_phi,
    random_calibrated_loss,
)

MARGINS = torch.linspace(-6.0, 6.0, 241, dtype=torch.float64)
POSITIVE = torch.ones_like(MARGINS)

# per-sample binary losses that are a function of the margin alone (class-symmetric)
SYMMETRIC = [
    n
    for n in losses.names("binary")
    if not losses.get(n).batch and n not in ("bce_focal", "asymmetric")  # class weights / asymmetric focusing
]
CONVEX_CALIBRATED = [
    "logistic",
    "hinge",
    "squared_hinge",
    "exponential",
    "least_squares",
    "modified_huber",
    "huberized_hinge",
    "smooth_hinge",
]
NOT_CONVEX = ["sigmoid", "ramp", "savage", "tangent"]


def _loss(name: str, m: torch.Tensor = MARGINS, **params: float) -> torch.Tensor:
    return losses.get(name)(m, torch.ones_like(m), **params)


def test_at_least_thirteen_per_sample_binary_losses():
    per_sample = [n for n in losses.names("binary") if not losses.get(n).batch]
    assert len(per_sample) >= 13, per_sample


@pytest.mark.parametrize("name", SYMMETRIC)
def test_margin_losses_depend_on_the_margin_only(name):
    # phi((2y-1) f): a positive at logit f costs what a negative at logit -f costs
    spec = losses.get(name)
    f = torch.linspace(-4, 4, 33, dtype=torch.float64)
    torch.testing.assert_close(spec(f, torch.ones_like(f)), spec(-f, torch.zeros_like(f)))


def test_binary_margin_signs():
    logit = torch.tensor([2.0, 2.0, -3.0])
    target = torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(binary_margin(logit, target), torch.tensor([2.0, -2.0, 3.0]))


@pytest.mark.parametrize(
    ("name", "sklearn_loss"),
    [
        ("hinge", _sgd_fast.Hinge(1.0)),
        ("squared_hinge", _sgd_fast.SquaredHinge(1.0)),
        ("modified_huber", _sgd_fast.ModifiedHuber()),
    ],
)
def test_matches_scikit_learn_sgd_losses(name, sklearn_loss):
    # scikit-learn's SGD losses take (prediction, y in {-1, 1}): with y = 1 the prediction is the margin
    ours = _loss(name)
    theirs = torch.tensor([sklearn_loss.py_loss(float(m), 1.0) for m in MARGINS], dtype=torch.float64)
    torch.testing.assert_close(ours, theirs)


def test_closed_forms_of_the_classics():
    m = MARGINS
    torch.testing.assert_close(_loss("logistic"), torch.log1p(torch.exp(-m)))
    torch.testing.assert_close(_loss("exponential"), torch.exp(-m))
    torch.testing.assert_close(_loss("least_squares"), (1 - m) ** 2)
    torch.testing.assert_close(_loss("sigmoid"), 1 / (1 + torch.exp(m)))
    torch.testing.assert_close(_loss("savage"), 1 / (1 + torch.exp(2 * m)) ** 2)
    torch.testing.assert_close(_loss("tangent"), (2 * torch.atan(m) - 1) ** 2)


def test_exponential_is_continued_linearly_beyond_the_cap():
    m = torch.tensor([-EXPONENT_CAP + 1, -EXPONENT_CAP - 1, -1e4], dtype=torch.float64, requires_grad=True)
    value = _loss("exponential", m)
    (slope,) = torch.autograd.grad(value.sum(), m)
    cap = math.exp(EXPONENT_CAP)
    torch.testing.assert_close(value[0], torch.tensor(math.exp(EXPONENT_CAP - 1), dtype=torch.float64))
    torch.testing.assert_close(value[1], torch.tensor(2 * cap, dtype=torch.float64))  # e^c (1 + 1)
    torch.testing.assert_close(slope[1:], torch.full((2,), -cap, dtype=torch.float64))
    # float32 at the extreme logit stays finite
    assert torch.isfinite(_loss("exponential", torch.tensor([-1e4], dtype=torch.float32))).all()


def test_huberized_and_smooth_hinge_agree_at_unit_width():
    # Rennie's smooth hinge with alpha = 1 is the hinge huberized over [0, 1]
    torch.testing.assert_close(_loss("smooth_hinge", alpha=1.0), _loss("huberized_hinge", delta=1.0))


def test_smoothed_hinges_tend_to_the_hinge():
    hinge = _loss("hinge")
    assert (_loss("huberized_hinge", delta=0.01) - hinge).abs().max() <= 0.01 / 2 + 1e-12
    assert (_loss("smooth_hinge", alpha=10.0) - hinge).abs().max() < 0.1
    # and both lie below the hinge (they round its corner from beneath)
    assert (_loss("huberized_hinge") <= hinge + 1e-12).all()
    assert (_loss("smooth_hinge", alpha=3.0) <= hinge + 1e-12).all()


def test_ramp_is_a_capped_hinge():
    for cutoff in (-2.0, -1.0, 0.0, 0.5):
        ramp = _loss("ramp", cutoff=cutoff)
        torch.testing.assert_close(ramp, torch.clamp(_loss("hinge"), max=1 - cutoff))
        assert ramp.max() == pytest.approx(1 - cutoff)


@pytest.mark.parametrize(
    ("name", "upper"), [("sigmoid", 1.0), ("savage", 1.0), ("tangent", (math.pi + 1) ** 2)]
)
def test_bounded_losses_stay_bounded(name, upper):
    m = torch.cat([MARGINS, torch.tensor([-1e4, 1e4], dtype=torch.float64)])
    values = _loss(name, m)
    assert (values >= 0).all()
    assert (values <= upper + 1e-12).all()
    assert values[-2] == pytest.approx(upper, rel=1e-3)  # the supremum is approached by badly wrong points


def test_tangent_minimum_at_tan_half():
    m = torch.linspace(0, 2, 20001, dtype=torch.float64)
    assert float(m[_loss("tangent", m).argmin()]) == pytest.approx(math.tan(0.5), abs=1e-3)


def test_bce_focal_with_gamma_zero_and_alpha_half_is_half_logistic():
    logit = 3 * torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = (torch.rand(64, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    focal = losses.get("bce_focal")(logit, target, alpha=0.5, gamma=0.0)
    torch.testing.assert_close(focal, 0.5 * losses.get("logistic")(logit, target))


def test_bce_focal_down_weights_easy_samples():
    easy, hard = torch.tensor([4.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64)
    ratio = {
        g: float(_loss("bce_focal", easy, gamma=g) / _loss("bce_focal", hard, gamma=g)) for g in (0, 2, 5)
    }
    assert ratio[0] > ratio[2] > ratio[5]


def test_asymmetric_reduces_to_bce_without_focusing_or_clipping():
    logit = 3 * torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    target = (torch.rand(64, generator=torch.Generator().manual_seed(4)) > 0.5).double()
    asl = losses.get("asymmetric")(logit, target, gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    torch.testing.assert_close(asl, losses.get("logistic")(logit, target))


def test_asymmetric_discards_easy_negatives_below_the_clip():
    clip = 0.05
    p = torch.tensor([0.01, 0.04, 0.06, 0.5], dtype=torch.float64)
    logit = torch.log(p / (1 - p))
    out = losses.get("asymmetric")(logit, torch.zeros_like(logit), clip=clip)
    assert (out[:2] == 0).all() and (out[2:] > 0).all()
    # matches the paper's formula p_c^gamma * -log(1 - p_c), p_c = p - clip
    pc = p[2:] - clip
    torch.testing.assert_close(out[2:], pc**4 * -torch.log(1 - pc))


def test_asymmetric_reference_at_other_settings():
    spec = losses.get("asymmetric")
    logit = 2 * torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    target = (torch.arange(40) % 2).double()
    for params in (
        {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.2},
        {"gamma_pos": 0.5, "gamma_neg": 0.5, "clip": 0.0},
    ):
        full = spec.defaults | params
        torch.testing.assert_close(spec(logit, target, **params), spec.reference(logit, target, **full))


def test_binary_encouraging_is_minus_margin_below_the_cap():
    end = 0.75
    m = torch.linspace(-6, math.log(end / (1 - end)) - 1e-6, 50, dtype=torch.float64)
    torch.testing.assert_close(_loss("binary_encouraging", m, bonus_end=end), -m)
    torch.testing.assert_close(_loss("binary_encouraging", MARGINS, bonus_end=1.0), -MARGINS)


def test_binary_encouraging_is_continuous_and_bounded_below_with_a_cap():
    spec = losses.get("binary_encouraging")
    for end in (0.3, 0.75, 0.99):
        threshold = math.log(end / (1 - end))
        around = torch.tensor([threshold - 1e-7, threshold + 1e-7], dtype=torch.float64)
        left, right = _loss("binary_encouraging", around, bonus_end=end)
        assert float(left) == pytest.approx(float(right), abs=1e-5)
        far = _loss("binary_encouraging", torch.tensor([50.0], dtype=torch.float64), bonus_end=end)
        assert float(far) == pytest.approx(
            -1 + math.log(1 - end), abs=1e-9
        )  # CE -> 0, bonus -> its tangent at p=1
    # and it matches the ported official recipe at another cap
    m = MARGINS
    torch.testing.assert_close(spec(m, POSITIVE, bonus_end=0.5), spec.reference(m, POSITIVE, bonus_end=0.5))


def test_binary_encouraging_rewards_well_classified_samples_more_than_logistic():
    # its slope at a confident margin is larger in magnitude than the logistic's (which vanishes)
    m = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    (enc,) = torch.autograd.grad(_loss("binary_encouraging", m).sum(), m)
    (log,) = torch.autograd.grad(_loss("logistic", m).sum(), m)
    assert float(enc) < float(log) < 0


# --- EnsLoss helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONVEX_CALIBRATED)
def test_known_convex_losses_are_calibrated(name):
    convex, slope, calibrated = is_calibrated_convex(margin_phi(name))
    assert convex and calibrated and slope < 0


def test_slopes_at_zero_match_the_closed_forms():
    expected = {
        "logistic": -0.5,
        "hinge": -1.0,
        "exponential": -1.0,
        "squared_hinge": -2.0,
        "least_squares": -2.0,
    }
    for name, slope in expected.items():
        assert is_calibrated_convex(margin_phi(name))[1] == pytest.approx(slope)


@pytest.mark.parametrize("name", NOT_CONVEX)
def test_bounded_losses_are_not_convex(name):
    convex, _, calibrated = is_calibrated_convex(margin_phi(name))
    assert not convex and not calibrated


def test_convex_but_uncalibrated_losses_are_caught():
    # convex with phi'(0) >= 0: minimising them does not follow the Bayes rule
    assert is_calibrated_convex(lambda m: m**2) == (True, 0.0, False)
    convex, slope, calibrated = is_calibrated_convex(torch.exp)
    assert convex and slope == pytest.approx(1.0) and not calibrated


def test_calibration_check_respects_hyperparameters():
    # the ramp with a far cutoff is still not convex; a huberized hinge of any width is
    assert not is_calibrated_convex(margin_phi("ramp", cutoff=-5.0))[0]
    for delta in (0.01, 1.0, 5.0):
        assert is_calibrated_convex(margin_phi("huberized_hinge", delta=delta))[2]


def test_margin_phi_refuses_batch_and_other_tasks():
    with pytest.raises(ValueError, match="per-sample binary"):
        margin_phi("soft_dice")
    with pytest.raises(ValueError, match="per-sample binary"):
        margin_phi("squared")


@pytest.mark.parametrize("seed", range(25))
def test_sampled_losses_pass_the_check(seed):
    phi = random_calibrated_loss(seed)
    convex, slope, calibrated = is_calibrated_convex(phi, torch.linspace(-20, 20, 4001))
    assert convex and calibrated and slope < 0
    assert float(phi(torch.zeros(1, dtype=torch.float64))) == pytest.approx(1.0)
    # decreasing towards zero for confident margins
    far = phi(torch.tensor([50.0, 100.0], dtype=torch.float64))
    assert (far >= 0).all() and far[1] <= far[0] < 1e-3


def test_sampled_losses_are_reproducible_and_varied():
    m = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(random_calibrated_loss(7)(m), random_calibrated_loss(7)(m))
    curves = torch.stack([random_calibrated_loss(s)(m) for s in range(10)])
    assert (curves.std(0)[m < 0] > 1e-3).all()


def test_sampled_losses_are_finite_at_extreme_float32_margins():
    m = torch.tensor([-1e4, 1e4], dtype=torch.float32, requires_grad=True)
    for seed in range(10):
        value = random_calibrated_loss(seed)(m)
        (grad,) = torch.autograd.grad(value.sum(), m)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        assert value.dtype == torch.float32
