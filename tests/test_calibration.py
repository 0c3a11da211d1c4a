"""Tests for lossviz.calibration: temperature scaling against a known temperature, a torch LBFGS fit and
sklearn's log_loss; calibration maps of margin losses against their closed forms (Bartlett et al. 2006)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from lossviz import calibration, losses, metrics
from lossviz.calibration import (
    apply_temperature,
    calibration_map,
    calibration_panel,
    fit_temperature,
    margin_loss_names,
    temperature_scaling,
)


def _tempered_sample(n: int, k: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and labels drawn from softmax(z / T): T is the calibrating temperature."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    p = np.exp(z / temperature - (z / temperature).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    return z, labels


# ------------------------------------------------------------------------------------ temperature scaling


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_labels_were_drawn_with(true_t: float) -> None:
    z, y = _tempered_sample(50_000, 4, true_t, seed=int(true_t * 10))
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.04)


def test_fit_temperature_binary_logits() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=40_000) * 4.0
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z / 2.0))).astype(int)
    assert fit_temperature(z, y) == pytest.approx(2.0, rel=0.04)
    # (N,) logits are the two-class logits [0, z]
    assert fit_temperature(z, y) == pytest.approx(fit_temperature(np.column_stack([0 * z, z]), y), rel=1e-9)


def _nll_and_slope(z: np.ndarray, y: np.ndarray, log_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of softmax(z / e^log_t) and its derivative in log T, by autograd."""
    loss = torch.nn.functional.cross_entropy(torch.as_tensor(z) / log_t.exp(), torch.as_tensor(y))
    (slope,) = torch.autograd.grad(loss, log_t)
    return loss.detach(), slope


def test_fit_temperature_matches_a_torch_lbfgs_fit_and_is_a_minimum() -> None:
    z, y = _tempered_sample(5_000, 5, 1.7, seed=2)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=200, tolerance_grad=1e-10, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch.as_tensor(z) / log_t.exp(), torch.as_tensor(y))
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = fit_temperature(z, y)
    assert fitted == pytest.approx(float(log_t.detach().exp()), rel=1e-4)
    # a stationary point of the NLL in log T (at least as flat as LBFGS's answer)
    _, slope = _nll_and_slope(z, y, torch.tensor(math.log(fitted), dtype=torch.float64, requires_grad=True))
    assert abs(float(slope)) < 1e-6

    def nll_at(t: float) -> float:
        return log_loss(y, apply_temperature(z, t), labels=list(range(5)))

    assert nll_at(fitted) < min(nll_at(fitted * 1.01), nll_at(fitted / 1.01))


def test_apply_temperature_is_a_tempered_softmax() -> None:
    z = np.random.default_rng(3).normal(size=(20, 4)) * 5
    expected = torch.softmax(torch.as_tensor(z) / 2.5, dim=1).numpy()
    np.testing.assert_allclose(apply_temperature(z, 2.5), expected, rtol=1e-12)
    np.testing.assert_allclose(apply_temperature(z[:, 0], 0.5), 1 / (1 + np.exp(-z[:, 0] / 0.5)), rtol=1e-12)
    with pytest.raises(ValueError, match="temperature must be a positive number, got 0"):
        apply_temperature(z, 0.0)


def test_temperature_scaling_lowers_held_out_nll_and_ece() -> None:
    z, y = _tempered_sample(20_000, 5, 2.0, seed=4)  # z itself is overconfident: T = 2 calibrates it
    result = temperature_scaling(z[:10_000], y[:10_000], z[10_000:], y[10_000:], name="cross_entropy")
    held_out = apply_temperature(z[10_000:], 1.0)
    assert result.nll_before == pytest.approx(log_loss(y[10_000:], held_out, labels=list(range(5))))
    assert result.nll_after < result.nll_before - 0.05
    assert result.ece_after < result.ece_before / 3
    assert result.brier_after < result.brier_before
    assert result.accuracy == pytest.approx(metrics.accuracy(held_out, y[10_000:]))
    assert result.after.ece == result.ece_after and result.before.ece == result.ece_before
    assert (result.n_fit, result.n_eval, result.name) == (10_000, 10_000, "cross_entropy")
    assert result.temperature == pytest.approx(2.0, rel=0.06)


def test_temperature_degenerate_splits_return_the_bounds() -> None:
    separable = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    assert fit_temperature(separable, np.array([0, 1] * 10)) == pytest.approx(
        calibration.TEMPERATURE_BOUNDS[0]
    )
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(3000, 3))
    assert fit_temperature(noise, rng.integers(0, 3, 3000), bounds=(0.1, 10.0)) == pytest.approx(10.0)


def test_temperature_argument_checks() -> None:
    z, y = _tempered_sample(100, 3, 1.0, seed=6)
    with pytest.raises(ValueError, match=r"bounds must satisfy 0 < low < high < inf, got \(2.0, 1.0\)"):
        fit_temperature(z, y, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        fit_temperature(z, y + 1)
    with pytest.raises(ValueError, match="logits must be finite"):
        fit_temperature(np.full((3, 2), np.nan), [0, 1, 0])
    with pytest.raises(ValueError, match="eval_logits and eval_labels together"):
        temperature_scaling(z, y, z)


# ------------------------------------------------------------------------------------- calibration maps


def test_logistic_map_is_the_identity_on_probabilities() -> None:
    m = calibration_map("logistic")
    np.testing.assert_allclose(m.probability, m.eta, atol=1e-8)
    np.testing.assert_allclose(m.f_star, np.log(m.eta / (1 - m.eta)), atol=1e-7)
    assert not m.unbounded.any()


def test_exponential_map_is_half_the_log_odds() -> None:
    m = calibration_map("exponential", eta=np.linspace(0.001, 0.999, 57))
    np.testing.assert_allclose(m.f_star, 0.5 * np.log(m.eta / (1 - m.eta)), atol=1e-7)


@pytest.mark.parametrize("name", ["least_squares", "squared_hinge", "modified_huber"])
def test_square_losses_map_to_two_eta_minus_one(name: str) -> None:
    m = calibration_map(name)
    np.testing.assert_allclose(m.f_star, np.clip(2 * m.eta - 1, -1, 1), atol=1e-7)
    np.testing.assert_allclose(m.f_low, m.f_high, atol=1e-3)  # a strict minimum: a point, not an interval


def test_hinge_map_is_the_sign_and_flat_at_one_half() -> None:
    eta = np.array([0.05, 0.3, 0.49, 0.5, 0.51, 0.7, 0.95])
    m = calibration_map("hinge", eta=eta)
    away = eta != 0.5
    np.testing.assert_allclose(m.f_star[away], np.sign(2 * eta[away] - 1), atol=1e-6)
    np.testing.assert_allclose(m.probability[away], 1 / (1 + np.exp(-np.sign(2 * eta[away] - 1))), atol=1e-6)
    # at eta = 1/2 the conditional risk is 1 on all of [-1, 1]: the interval is reported, f* its midpoint
    half = int(np.flatnonzero(eta == 0.5)[0])
    assert (m.f_low[half], m.f_high[half], m.f_star[half]) == pytest.approx((-1.0, 1.0, 0.0), abs=1e-6)


def test_ramp_map_is_flat_to_the_edge_and_reports_the_inner_end() -> None:
    m = calibration_map("ramp", eta=np.array([0.2, 0.8]), f_range=8.0)
    # for eta > 1/2 the risk is 2 (1 - eta) for every f >= 1: minimisers [1, infinity)
    assert m.f_low[1] == pytest.approx(1.0, abs=1e-6) and m.f_high[1] == pytest.approx(8.0)
    assert m.f_star[1] == pytest.approx(1.0, abs=1e-6) and m.unbounded[1]
    assert m.f_star[0] == pytest.approx(-1.0, abs=1e-6) and m.f_low[0] == pytest.approx(-8.0)


def test_huberized_hinge_flat_interval_follows_its_parameter() -> None:
    # at eta = 1/2 both margins sit in the linear part for |f| <= 1 - delta: the risk is flat there
    m = calibration_map("huberized_hinge", {"delta": 0.2}, eta=np.array([0.5]))
    # a flat part meeting a quadratic one: the sublevel set of tolerance rtol ends ~sqrt(rtol) past the kink
    assert (m.f_low[0], m.f_high[0]) == pytest.approx((-0.8, 0.8), abs=1e-4)
    assert m.params == {"delta": 0.2}
    assert calibration_map("huberized_hinge", eta=np.array([0.5])).f_high[0] == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("name", margin_loss_names())
def test_every_margin_loss_map_is_finite_ordered_and_monotone(name: str) -> None:
    m = calibration_map(name)
    assert np.isfinite(m.f_star).all() and np.all((m.probability >= 0) & (m.probability <= 1))
    assert np.all((m.f_low <= m.f_star + 1e-12) & (m.f_star <= m.f_high + 1e-12))
    # L(f, 1) - L(f, 0) decreases in f for every registered binary loss, so f*(eta) cannot decrease
    assert np.all(np.diff(m.f_star) >= -1e-6)
    assert m.name == name and m.params == losses.get(name).defaults


def test_calibration_map_refuses_what_it_cannot_compute() -> None:
    batch = next(n for n in losses.names("binary") if losses.get(n).batch)
    with pytest.raises(ValueError, match=f"got '{batch}', a batch-level loss"):
        calibration_map(batch)
    assert batch not in margin_loss_names()
    with pytest.raises(ValueError, match="needs a binary loss, got 'cross_entropy'"):
        calibration_map("cross_entropy")
    with pytest.raises(ValueError, match="delta must be in"):
        calibration_map("huberized_hinge", {"delta": -1.0})
    with pytest.raises(ValueError, match="eta must be a non-empty array of values in"):
        calibration_map("logistic", eta=np.array([0.0, 0.5]))
    with pytest.raises(ValueError, match="f_range must be a positive number, got 0"):
        calibration_map("logistic", f_range=0.0)


# -------------------------------------------------------------------------------------- the page's call


def test_calibration_panel_gathers_the_metrics() -> None:
    z, y = _tempered_sample(2000, 3, 1.5, seed=7)
    probs = apply_temperature(z, 1.0)
    panel = calibration_panel(probs, y, name="focal", label="focal (γ=2)", n_bins=10, n_boot=30, seed=1)
    assert panel.equal_width.ece == metrics.ece(probs, y, 10)
    assert panel.equal_mass is not None and panel.equal_mass.ece == metrics.ece(probs, y, 10, "mass")
    assert panel.band is not None and panel.band.n_boot == 30 and panel.band.binning == "width"
    assert panel.smooth is not None and panel.smooth.error == metrics.smooth_ece(probs, y).error
    assert panel.histogram is not None and panel.histogram.counts.sum() == 2000
    assert panel.nll == metrics.nll(probs, y) and panel.brier == metrics.brier(probs, y)
    assert (panel.name, panel.label) == ("focal", "focal (γ=2)")
    lean = calibration_panel(probs, y, name="focal", n_boot=0, smooth=False)
    assert lean.band is None and lean.smooth is None
    assert math.isfinite(lean.accuracy)
