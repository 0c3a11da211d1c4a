"""lossviz.shapes against closed forms, finite differences and direct calls of the loss functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossviz import losses, shapes
from lossviz.losses.registry import Param, register, unregister

SHAPE_LOSSES = [n for n in losses.names() if losses.get(n).task in shapes.SHAPE_TASKS]


@pytest.fixture
def temporary_losses():
    """Register small test losses with known properties; unregister them afterwards."""
    made: list[str] = []

    def add(fn, task, params=(), batch=False):
        register(title=fn.__name__, latex="x", task=task, paper="test", params=params, batch=batch)(fn)
        made.append(fn.__name__)
        return fn.__name__

    yield add
    for name in made:
        unregister(name)


# ------------------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("K", [2, 3, 10])
def test_cross_entropy_on_probability_axis_is_minus_log_p(K):
    (curve,) = shapes.loss_curves("multiclass", [("cross_entropy", {})], axis="p_y", n_classes=K, points=301)
    np.testing.assert_allclose(curve.y, -np.log(curve.x), rtol=1e-10)
    np.testing.assert_allclose(curve.dy, curve.x - 1.0, atol=1e-10)  # dCE/dz_y = p_y - 1
    np.testing.assert_allclose(curve.weight, 1.0, rtol=1e-10)
    np.testing.assert_allclose(curve.p_y, curve.x, rtol=1e-10)


def test_logit_margin_axis_matches_softmax_of_the_margin():
    K = 4
    (curve,) = shapes.loss_curves(
        "multiclass", [("cross_entropy", {})], axis="logit_margin", n_classes=K, points=101
    )
    z = np.zeros((101, K))
    z[:, 0] = curve.x  # any shift gives the same CE: compare with the un-centred logits
    expected = F.cross_entropy(torch.tensor(z), torch.zeros(101, dtype=torch.long), reduction="none").numpy()
    np.testing.assert_allclose(curve.y, expected, rtol=1e-10)
    np.testing.assert_allclose(curve.margin, curve.x)


def test_centred_logits_give_the_requested_probability():
    p = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    for K in (2, 3, 7):
        z = shapes.centred_logits(shapes.margin_from_probability(p, K), K)
        probs = torch.softmax(z, -1)
        torch.testing.assert_close(probs[:, 0], p)
        torch.testing.assert_close(probs[:, 1:], ((1 - p) / (K - 1))[:, None].expand(-1, K - 1))
        torch.testing.assert_close(z.mean(-1), torch.zeros(50, dtype=torch.float64))


def test_logistic_curve_closed_form_and_unit_weight():
    (curve,) = shapes.loss_curves("binary", [("logistic", {})], points=201)
    m = curve.x
    np.testing.assert_allclose(curve.y, np.log1p(np.exp(-m)), rtol=1e-10)
    np.testing.assert_allclose(curve.dy, -1.0 / (1.0 + np.exp(m)), rtol=1e-10)
    np.testing.assert_allclose(curve.weight, 1.0, rtol=1e-10)


def test_squared_error_influence_is_2r_and_has_no_weight():
    (curve,) = shapes.loss_curves("regression", [("squared", {})], points=101)
    np.testing.assert_allclose(curve.y, curve.x**2)
    np.testing.assert_allclose(curve.dy, 2 * curve.x)
    assert curve.weight is None and curve.p_y is None and curve.margin is None


def test_hinge_like_weight_is_zero_past_the_margin(temporary_losses):
    def _test_hinge(logit, target):
        return torch.clamp(1 - (2 * target - 1) * logit, min=0)

    name = temporary_losses(_test_hinge, "binary")
    (curve,) = shapes.loss_curves("binary", [(name, {})], points=401)
    m = curve.x
    far = m > 1.01
    np.testing.assert_allclose(curve.weight[far], 0.0)
    near = m < 0.99
    np.testing.assert_allclose(curve.weight[near], (1 + np.exp(m[near])), rtol=1e-9)  # 1/sigmoid(-m)


@pytest.mark.parametrize("name", [n for n in SHAPE_LOSSES if losses.get(n).task in ("binary", "regression")])
def test_derivative_matches_finite_differences_along_the_axis(name):
    (curve,) = shapes.loss_curves(losses.get(name).task, [(name, {})], points=4001)
    numeric = np.gradient(curve.y, curve.x)
    scale = max(1.0, np.abs(curve.dy).max())
    close = np.abs(numeric - curve.dy) <= 2e-3 * scale
    assert close.mean() > 0.98, f"{name}: autograd and finite differences disagree on {1 - close.mean():.1%}"


def test_focal_with_gamma_zero_is_cross_entropy_through_the_pipeline():
    if "focal" not in losses.names("multiclass"):
        pytest.fail("focal is in the catalogue's teaching defaults and must be registered")
    focal, ce = shapes.loss_curves(
        "multiclass", [("focal", {"gamma": 0.0}), ("cross_entropy", {})], points=200
    )
    np.testing.assert_allclose(focal.y, ce.y, rtol=1e-9)
    np.testing.assert_allclose(focal.dy, ce.dy, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", SHAPE_LOSSES)
def test_every_registered_loss_gives_finite_curves_on_every_axis(name):
    spec = losses.get(name)
    for axis in shapes.axes_for(spec.task):
        (curve,) = shapes.loss_curves(spec.task, [(name, {})], axis=axis, n_classes=4, points=257)
        assert curve.x.shape == curve.y.shape == curve.dy.shape == (257,)
        assert np.isfinite(curve.y).all() and np.isfinite(curve.dy).all(), f"{name} on {axis}"
        if spec.task != "regression":
            assert np.isfinite(curve.weight).all()
        assert ("batch-level" in curve.label) == spec.batch == curve.batch


# ------------------------------------------------------------------------------------ batch-level losses


def test_batch_loss_is_the_loss_of_a_balanced_batch_of_equal_margins(temporary_losses):
    def _test_dice(logit, target, smoothing=1.0):
        p = torch.sigmoid(logit)
        return 1 - (2 * (p * target).sum() + smoothing) / (p.sum() + target.sum() + smoothing)

    name = temporary_losses(_test_dice, "binary", params=[Param("smoothing", 0.1, 10.0)], batch=True)
    (curve,) = shapes.loss_curves("binary", [(name, {"smoothing": 2.0})], points=41)
    for m, value in zip(curve.x, curve.y, strict=True):
        logits = torch.tensor([m, -m], dtype=torch.float64)  # a positive and a negative, both with margin m
        direct = _test_dice(logits, torch.tensor([1.0, 0.0], dtype=torch.float64), smoothing=2.0)
        assert value == pytest.approx(float(direct), rel=1e-12)
    fine = shapes.loss_curves("binary", [(name, {"smoothing": 2.0})], points=2001)[0]
    np.testing.assert_allclose(fine.dy[5:-5], np.gradient(fine.y, fine.x)[5:-5], atol=1e-4)
    assert "batch-level" in curve.label


def test_decomposable_batch_loss_equals_its_per_sample_form(temporary_losses):
    def _test_mean_logistic(logit, target):
        return F.softplus(-(2 * target - 1) * logit).mean()

    def _test_multiclass_batch_ce(logits, target):
        return F.cross_entropy(logits, target)

    binary = temporary_losses(_test_mean_logistic, "binary", batch=True)
    multi = temporary_losses(_test_multiclass_batch_ce, "multiclass", batch=True)
    batch_curve, sample_curve = shapes.loss_curves("binary", [(binary, {}), ("logistic", {})], points=101)
    np.testing.assert_allclose(batch_curve.y, sample_curve.y, rtol=1e-10)
    np.testing.assert_allclose(batch_curve.dy, sample_curve.dy, rtol=1e-10)
    np.testing.assert_allclose(batch_curve.weight, 1.0, rtol=1e-9)
    batch_curve, sample_curve = shapes.loss_curves(
        "multiclass", [(multi, {}), ("cross_entropy", {})], n_classes=5, points=101
    )
    np.testing.assert_allclose(batch_curve.y, sample_curve.y, rtol=1e-10)
    np.testing.assert_allclose(batch_curve.dy, sample_curve.dy, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batch_curve.weight, 1.0, rtol=1e-9)


# ----------------------------------------------------------------------------------------------- sweep


def test_sweep_covers_the_param_range_and_scales_the_loss(temporary_losses):
    def _test_scaled_ce(logits, target, a=1.0):
        return a * F.cross_entropy(logits, target, reduction="none")

    name = temporary_losses(_test_scaled_ce, "multiclass", params=[Param("a", 0.5, 2.5)])
    curves = shapes.sweep_curves(name, "a", n=5, points=101)
    assert [c.param_value for c in curves] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5])
    assert [c.label for c in curves] == ["a = 0.5", "a = 1", "a = 1.5", "a = 2", "a = 2.5"]
    for curve in curves:
        a = curve.param_value
        np.testing.assert_allclose(curve.y, -a * np.log(curve.x), rtol=1e-10)
        np.testing.assert_allclose(curve.weight, a, rtol=1e-10)


def test_sweep_of_a_log_param_is_geometric(temporary_losses):
    def _test_tempered(logits, target, temperature=1.0):
        return F.cross_entropy(logits / temperature, target, reduction="none")

    name = temporary_losses(
        _test_tempered, "multiclass", params=[Param("temperature", 0.01, 100.0, log=True)]
    )
    assert shapes.sweep_values(name, "temperature", 3) == pytest.approx([0.01, 1.0, 100.0])


# --------------------------------------------------------------------------------------------- simplex


def test_simplex_surface_of_cross_entropy():
    surface = shapes.simplex_surface("cross_entropy", resolution=41)
    assert surface.z.shape == (len(surface.ys), len(surface.xs))
    inside = np.isfinite(surface.z)
    assert 0.4 < inside.mean() < 0.6  # a triangle fills half its bounding box
    assert surface.probs.shape == (*surface.z.shape, 3)
    p_y = surface.probs[..., 0][inside]
    interior = p_y > 1e-3
    np.testing.assert_allclose(surface.z[inside][interior], -np.log(p_y[interior]), rtol=1e-4, atol=1e-5)
    probs = surface.probs[inside]  # (M, 3) = (p_y, p_2, p_3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-9)


@pytest.mark.parametrize("name", losses.names("multiclass"))
def test_simplex_surface_is_finite_for_every_multiclass_loss(name):
    surface = shapes.simplex_surface(name, resolution=21)
    inside = np.isfinite(surface.probs[..., 0])
    assert np.isfinite(surface.z[inside]).all()
    assert np.isnan(surface.z[~inside]).all()


# ------------------------------------------------------------------------------------------ properties


def test_properties_of_the_logistic_loss():
    props = shapes.loss_properties("logistic")
    assert props["bounded"] is False and props["convex"] is True and props["calibrated"] is True
    assert props["symmetric"] is False
    assert props["value_at_0"] == pytest.approx(math.log(2))
    assert props["slope_at_0"] == pytest.approx(-0.5)


def test_properties_of_known_margin_losses(temporary_losses):
    def _test_sigmoid(logit, target):
        return torch.sigmoid(-(2 * target - 1) * logit)

    def _test_wrong_way(logit, target):  # convex but phi'(0) > 0: not calibrated
        return F.softplus((2 * target - 1) * logit)

    def _test_slow_bounded(logit, target):  # 1 - 1/sqrt(1+m^2) for m < 0: bounded, approached polynomially
        m = (2 * target - 1) * logit
        return torch.where(m < 0, 1 - 1 / torch.sqrt(1 + m**2), torch.zeros_like(m))

    sig = shapes.loss_properties(temporary_losses(_test_sigmoid, "binary"))
    assert (sig["bounded"], sig["convex"], sig["calibrated"], sig["symmetric"]) == (True, False, None, True)
    assert sig["value_at_0"] == pytest.approx(0.5) and sig["slope_at_0"] == pytest.approx(-0.25)
    wrong = shapes.loss_properties(temporary_losses(_test_wrong_way, "binary"))
    assert wrong["convex"] is True and wrong["calibrated"] is False
    assert shapes.loss_properties(temporary_losses(_test_slow_bounded, "binary"))["bounded"] is True


def test_properties_of_known_regression_losses(temporary_losses):
    def _test_cauchy(pred, target):  # grows like log r: unbounded although slowly
        return torch.log1p((pred - target) ** 2)

    def _test_tukey_like(pred, target):
        return torch.clamp((pred - target) ** 2, max=4.0)

    def _test_pinball(pred, target, q=0.9):
        r = target - pred
        return torch.maximum(q * r, (q - 1) * r)

    cauchy = shapes.loss_properties(temporary_losses(_test_cauchy, "regression"))
    assert (cauchy["bounded"], cauchy["convex"], cauchy["symmetric"]) == (False, False, True)
    assert shapes.loss_properties(temporary_losses(_test_tukey_like, "regression"))["bounded"] is True
    pinball = shapes.loss_properties(
        temporary_losses(_test_pinball, "regression", params=[Param("q", 0.01, 0.99)]), {"q": 0.9}
    )
    assert (pinball["convex"], pinball["symmetric"]) == (True, False)
    assert shapes.loss_properties("squared")["symmetric"] is True


def test_properties_of_multiclass_losses(temporary_losses):
    def _test_mae(logits, target):
        return 2 * (1 - torch.softmax(logits, -1).gather(-1, target[:, None]).squeeze(-1))

    ce = shapes.loss_properties("cross_entropy", n_classes=4)
    assert (ce["bounded"], ce["convex"], ce["symmetric"], ce["calibrated"]) == (False, True, False, None)
    assert ce["value_at_0"] == pytest.approx(math.log(4))
    assert ce["slope_at_0"] == pytest.approx(1 / 4 - 1)
    mae = shapes.loss_properties(temporary_losses(_test_mae, "multiclass"), n_classes=4)
    assert (mae["bounded"], mae["convex"], mae["symmetric"]) == (True, False, True)
    # the p_y axis and the logit margin axis share their origin: p_y = 1/K is margin 0
    on_margin = shapes.loss_properties("cross_entropy", axis="logit_margin", n_classes=4)
    assert on_margin["value_at_0"] == pytest.approx(ce["value_at_0"])


@pytest.mark.parametrize("name", SHAPE_LOSSES)
def test_properties_of_every_loss_are_well_formed(name):
    props = shapes.loss_properties(name)
    for key in ("bounded", "convex", "symmetric"):
        assert isinstance(props[key], bool)
    assert props["calibrated"] in (True, False, None)
    assert (props["calibrated"] is None) or losses.get(name).task == "binary"
    assert math.isfinite(props["value_at_0"])


# -------------------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: shapes.loss_curves("bogus", []), "bogus"),
        (lambda: shapes.loss_curves("binary", [("cross_entropy", {})]), "cross_entropy"),
        (lambda: shapes.loss_curves("binary", [("no_such_loss", {})]), "no_such_loss"),
        (lambda: shapes.loss_curves("binary", [("logistic", {})], axis="p_y"), "p_y"),
        (lambda: shapes.loss_curves("multiclass", [("cross_entropy", {})], n_classes=1), "n_classes"),
        (lambda: shapes.loss_curves("multiclass", [("cross_entropy", {})], points=1), "points"),
        (lambda: shapes.loss_curves("multiclass", [("focal", {"gamma": 99.0})]), "99"),
        (lambda: shapes.loss_curves("multiclass", [("focal", {"gama": 1.0})]), "gama"),
        (lambda: shapes.simplex_surface("logistic"), "logistic"),
        (lambda: shapes.simplex_surface("cross_entropy", resolution=2), "resolution"),
        (lambda: shapes.sweep_curves("focal", "beta"), "beta"),
        (lambda: shapes.loss_curves("binary", [("logistic", {})], device="gpu0"), "gpu0"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_recompute_all_covers_every_loss_of_the_task():
    curves = shapes.recompute_all("binary", points=50)
    assert [c.name for c in curves] == losses.names("binary")


# ---------------------------------------------------------------------------------------- adaptive curves
# What the page draws: a few hundred points chosen from the dense grid (plus the landmarks, multiples of
# LANDMARK_STEP) so that linear interpolation between them reproduces every series within the tolerance.

TOLERANCE = shapes.PLOT_TOLERANCE


def _interpolation_error(adaptive, dense) -> dict[str, float]:
    """Per series, the largest error of the adaptive curve, linearly interpolated, at the dense curve's
    points, in units of the series' range (a landmark can widen it: a spike at exactly 0 that the dense grid
    steps over; the adaptive curve keeps that landmark, so its range is the one it was simplified for)."""
    errors = {}
    for series in ("y", "dy", "weight"):
        kept, full = getattr(adaptive, series), getattr(dense, series)
        if full is None:
            assert kept is None
            continue
        scale = max(float(np.ptp(full)), float(np.ptp(kept)), 1e-9 * (1 + float(np.abs(full).max())))
        errors[series] = float(np.abs(np.interp(dense.x, adaptive.x, kept) - full).max()) / scale
    return errors


@pytest.mark.parametrize("name", SHAPE_LOSSES)
def test_adaptive_curve_matches_the_dense_curve_within_the_tolerance(name):
    task = losses.get(name).task
    for axis in shapes.axes_for(task):
        dense, adaptive = (
            shapes.loss_curves(task, [(name, {})], axis=axis, points=2000, tolerance=tolerance)[0]
            for tolerance in (None, TOLERANCE)
        )
        assert len(adaptive.x) < len(dense.x) and np.all(np.diff(adaptive.x) > 0)
        assert adaptive.x[0] == dense.x[0] and adaptive.x[-1] == dense.x[-1]
        # every dense point is on the grid the adaptive curve was chosen from, so the bound holds at each;
        # 0.1 % slack: an extreme within the tolerance of its segment need not be kept
        for series, error in _interpolation_error(adaptive, dense).items():
            assert error <= 1.001 * TOLERANCE, f"{name} on {axis}: {series} errs by {error:.2e} of its range"
        assert np.diff(adaptive.x).max() <= shapes.PLOT_MAX_GAP * np.ptp(dense.x) * (1 + 1e-9)


def test_adaptive_curves_keep_a_few_hundred_points_at_most():
    for task in shapes.SHAPE_TASKS:
        for axis in shapes.axes_for(task):
            curves = shapes.loss_curves(
                task, [(n, {}) for n in losses.names(task)], axis=axis, tolerance=TOLERANCE
            )
            sizes = {c.name: len(c.x) for c in curves}
            assert max(sizes.values()) <= 400, (axis, sizes)
            assert min(sizes.values()) >= 1 / shapes.PLOT_MAX_GAP, (axis, sizes)  # the hover's steps


@pytest.mark.parametrize(
    ("name", "exact", "kinks"),
    [
        ("hinge", lambda m: np.maximum(0.0, 1.0 - m), [1.0]),
        ("ramp", lambda m: np.clip(1.0 - m, 0.0, 2.0), [-1.0, 1.0]),  # cutoff -1: flat again beyond m = -1
        ("absolute", np.abs, [0.0]),
    ],
)
def test_kinks_are_kept_exactly(name, exact, kinks):
    if name not in losses.names():
        pytest.fail(f"{name} is in the catalogue and must be registered")
    curve = shapes.loss_curve(name, tolerance=TOLERANCE)
    for kink in kinks:
        assert kink in curve.x, f"{name}: the kink at {kink} is not a point of the curve"
        assert curve.y[curve.x == kink][0] == exact(kink)
    # piecewise linear with every kink kept: linear interpolation is the loss itself, at any x
    fine = np.linspace(curve.x[0], curve.x[-1], 20_001)
    np.testing.assert_allclose(np.interp(fine, curve.x, curve.y), exact(fine), rtol=0, atol=1e-12)
    # the derivative's jump sits between the kink and its dense neighbour, not smeared over a long segment
    dense = shapes.loss_curve(name, points=2000)
    step = float(np.diff(dense.x).max())
    for kink in kinks:
        i = int(np.flatnonzero(curve.x == kink)[0])
        around = curve.x[max(i - 1, 0) : i + 2]
        assert np.diff(around).min() <= step * (1 + 1e-9), (name, kink, around)


def test_adaptive_derivative_and_weight_share_x_and_are_exact_there():
    (curve,) = shapes.loss_curves("multiclass", [("cross_entropy", {})], axis="p_y", tolerance=TOLERANCE)
    assert curve.x.shape == curve.y.shape == curve.dy.shape == curve.weight.shape == curve.p_y.shape
    np.testing.assert_allclose(curve.y, -np.log(curve.x), rtol=1e-10)
    np.testing.assert_allclose(curve.dy, curve.x - 1.0, atol=1e-10)
    np.testing.assert_allclose(curve.weight, 1.0, rtol=1e-10)
    (logistic,) = shapes.loss_curves("binary", [("logistic", {})], tolerance=TOLERANCE)
    np.testing.assert_allclose(logistic.dy, -1.0 / (1.0 + np.exp(logistic.x)), rtol=1e-10)


def test_adaptive_sweep_simplifies_each_curve_within_the_tolerance():
    dense = shapes.sweep_curves("huber", "delta", n=4)
    adaptive = shapes.sweep_curves("huber", "delta", n=4, tolerance=TOLERANCE)
    assert [c.label for c in adaptive] == [c.label for c in dense]
    for a, d in zip(adaptive, dense, strict=True):
        assert len(a.x) < len(d.x) / 4
        assert max(_interpolation_error(a, d).values()) <= 1.001 * TOLERANCE


def test_adaptive_indices_keep_ends_gaps_and_non_finite_points():
    x = np.linspace(0.0, 1.0, 101)
    line = 3.0 * x + 1.0
    assert shapes.adaptive_indices(x, [line], 1e-3).tolist() == [0, 100]  # a straight line needs its ends
    gapped = shapes.adaptive_indices(x, [line], 1e-3, max_gap=0.1)
    assert np.diff(x[gapped]).max() <= 0.1 + 1e-12
    holed = line.copy()
    holed[40] = np.nan
    kept = shapes.adaptive_indices(x, [holed, None], 1e-3).tolist()
    assert {0, 39, 40, 41, 100} <= set(kept)
    noisy = 1.0 + 1e-16 * np.sin(50 * x)  # rounding noise on a constant is not detail
    assert shapes.adaptive_indices(x, [noisy], 1e-4).tolist() == [0, 100]
    peak = np.exp(-(((x - 0.37) / 0.01) ** 2))  # a narrow bump is kept
    assert abs(x[shapes.adaptive_indices(x, [peak], 1e-3)] - 0.37).min() < 0.006


@pytest.mark.parametrize("tolerance", [0.0, -1e-3, 1.5, float("nan"), "0.1"])
def test_bad_tolerance_raises_naming_the_value(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        shapes.loss_curves("binary", [("logistic", {})], tolerance=tolerance)
