"""Tests for lossviz.metrics against scikit-learn, torchmetrics, the smooth-ECE definition, hand formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, f1_score, log_loss, roc_auc_score

from lossviz import losses
from lossviz.metrics import (
    accuracy,
    auc,
    brier,
    confidence_histogram,
    ece,
    ece_tensor,
    macro_f1,
    mce,
    nll,
    per_sample_gradient_weight,
    probabilities_tensor,
    r2_tensor,
    reliability,
    reliability_band,
    smooth_ece,
)
from lossviz.models import make_model


def _random_probs(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, rng.integers(0, k, n)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_accuracy_nll_brier_against_sklearn(k: int) -> None:
    probs, y = _random_probs(500, k, seed=k)
    assert accuracy(probs, y) == pytest.approx(np.mean(probs.argmax(1) == y))
    assert nll(probs, y) == pytest.approx(log_loss(y, probs, labels=list(range(k))), rel=1e-10)
    expected_brier = np.mean(np.sum((probs - np.eye(k)[y]) ** 2, 1))
    assert brier(probs, y) == pytest.approx(expected_brier, rel=1e-12)
    if k == 2:
        # sklearn's binary Brier score is mean (p1 - y)^2: half of the two-class sum
        assert brier(probs, y) == pytest.approx(2 * brier_score_loss(y, probs[:, 1]), rel=1e-10)
        assert brier(probs[:, 1], y) == pytest.approx(brier(probs, y))  # 1-D = P(class 1)


def test_ece_hand_computed() -> None:
    # 3 bins: (0, 1/3], (1/3, 2/3], (2/3, 1]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.45, 0.55], [0.7, 0.3]])
    labels = np.array([0, 1, 1, 0, 0])
    # confidences: 0.9 (right), 0.8 (wrong), 0.6 (right), 0.55 (wrong), 0.7 (right)
    # bin 2 holds 0.9, 0.8, 0.7: acc 2/3, conf 0.8; bin 1 holds 0.6, 0.55: acc 1/2, conf 0.575
    expected_ece = 3 / 5 * abs(2 / 3 - 0.8) + 2 / 5 * abs(0.5 - 0.575)
    rel = reliability(probs, labels, n_bins=3)
    assert rel.ece == pytest.approx(expected_ece)
    assert rel.mce == pytest.approx(max(abs(2 / 3 - 0.8), abs(0.5 - 0.575)))
    np.testing.assert_array_equal(rel.counts, [0, 2, 3])
    assert np.isnan(rel.confidence[0]) and np.isnan(rel.accuracy[0])
    np.testing.assert_allclose(rel.confidence[1:], [0.575, 0.8])
    np.testing.assert_allclose(rel.edges, [0, 1 / 3, 2 / 3, 1])
    assert ece(probs, labels, 3) == rel.ece and mce(probs, labels, 3) == rel.mce


def test_ece_bin_edges_are_right_closed() -> None:
    # confidence exactly 0.6 with 5 bins belongs to (0.4, 0.6], not (0.6, 0.8]
    rel = reliability(np.array([[0.6, 0.4]]), np.array([0]), n_bins=5)
    np.testing.assert_array_equal(rel.counts, [0, 0, 1, 0, 0])
    assert rel.ece == pytest.approx(0.4)


def test_perfectly_calibrated_ece_is_small() -> None:
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0, 1, 200_000)
    y = (rng.uniform(0, 1, p1.size) < p1).astype(int)
    assert ece(p1, y) < 0.01


@pytest.mark.parametrize("k", [2, 5])
def test_ece_tensor_matches_numpy(k: int) -> None:
    probs, y = _random_probs(1000, k, seed=10 + k)
    value = ece_tensor(torch.as_tensor(probs), torch.as_tensor(y))
    assert float(value) == pytest.approx(ece(probs, y), rel=1e-9)


def test_ece_tensor_survives_nan() -> None:
    probs = torch.tensor([[float("nan"), float("nan")], [0.9, 0.1]])
    assert torch.isfinite(ece_tensor(probs, torch.tensor([0, 0])))


def test_macro_f1_against_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.uniform(size=300) < 0.6, y, rng.integers(0, 5, 300))
    assert macro_f1(pred, y) == pytest.approx(f1_score(y, pred, average="macro"))
    # a class that is never predicted (and one never present) still counts, as in sklearn
    pred2 = np.where(pred == 4, 0, pred)
    y2 = np.where(y == 3, 2, y)
    assert macro_f1(pred2, y2) == pytest.approx(f1_score(y2, pred2, average="macro", zero_division=0))


def test_auc_against_sklearn_with_ties() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    scores = np.round(y * 0.5 + rng.normal(size=400), 1)  # rounding creates many ties
    assert auc(scores, y) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)
    probs = np.column_stack([1 - 1 / (1 + np.exp(-scores)), 1 / (1 + np.exp(-scores))])
    assert auc(probs, y) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        auc(scores, np.zeros(400, int))


def test_probabilities_and_r2_tensors() -> None:
    logit = torch.tensor([[0.0], [2.0]])
    torch.testing.assert_close(probabilities_tensor(logit, "binary")[:, 1], torch.sigmoid(logit[:, 0]))
    logits = torch.randn(4, 3)
    torch.testing.assert_close(probabilities_tensor(logits, "multiclass"), torch.softmax(logits, 1))
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    pred = torch.tensor([1.1, 1.9, 3.2, 3.8])
    ss_res, ss_tot = 0.01 + 0.01 + 0.04 + 0.04, 5.0
    assert float(r2_tensor(pred, target)) == pytest.approx(1 - ss_res / ss_tot)


def test_per_sample_gradient_weight_matches_closed_form_for_ce() -> None:
    # For cross-entropy dL_i/dz_i = p_i - e_{y_i}
    model = make_model("mlp", 2, 3, width=8, seed=0)
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    y = np.arange(20) % 3
    weights = per_sample_gradient_weight(model, "cross_entropy", X, y)
    with torch.no_grad():
        p = torch.softmax(model(torch.as_tensor(X)), 1)
    expected = (p - torch.eye(3)[y]).norm(dim=1).numpy()
    np.testing.assert_allclose(weights, expected, rtol=1e-5)


def test_per_sample_gradient_weight_is_bounded_for_robust_losses_and_model_untouched() -> None:
    # GCE's weight p_y^q (p - e_y) vanishes for badly misfit samples, CE's does not
    model = make_model("mlp", 2, 2, width=8, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    with torch.no_grad():
        wrong = 1 - model(torch.as_tensor(X)).argmax(1).numpy()  # labels the model contradicts
    ce = per_sample_gradient_weight(model, "cross_entropy", X, wrong)
    gce = per_sample_gradient_weight(model, losses.make("gce", q=0.7), X, wrong)
    assert np.all(gce < ce)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_per_sample_gradient_weight_binary_and_class_counts() -> None:
    model = make_model("linear", 2, 1, seed=0)
    X = np.random.default_rng(3).normal(size=(10, 2)).astype(np.float32)
    y = np.array([0, 1] * 5)
    weights = per_sample_gradient_weight(model, "logistic", X, y)
    with torch.no_grad():
        s = torch.sigmoid(model(torch.as_tensor(X))[:, 0]).numpy()
    np.testing.assert_allclose(weights, np.abs(s - y), rtol=1e-5)  # d/dz log(1+e^-m) = sigmoid(z) - y
    vs = per_sample_gradient_weight(make_model("linear", 2, 2, seed=0), "vs_loss", X, y)
    assert vs.shape == (10,) and np.isfinite(vs).all()


# ------------------------------------------------------------------- binning, bootstrap band, smooth ECE


def _binary_sample(n: int, seed: int, miscalibration: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """(N,) P(class 1) uniform on [0, 1] and labels drawn from a true frequency q(p)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, n)
    q = {
        "none": p,
        "square": p**2,  # overconfident about class 1 everywhere: the residual has one sign
        "s_curve": np.clip(p + 0.2 * np.sin(2 * np.pi * p), 0.0, 1.0),  # residual changes sign
    }[miscalibration]
    return p, (rng.uniform(size=n) < q).astype(np.int64)


@pytest.mark.parametrize("binning, strategy", [("width", "uniform"), ("mass", "quantile")])
@pytest.mark.parametrize("n_bins", [5, 10, 23])
def test_positive_class_reliability_matches_sklearn_calibration_curve(
    binning: str, strategy: str, n_bins: int
) -> None:
    p, y = _binary_sample(3000, seed=n_bins, miscalibration="s_curve")
    rel = reliability(p, y, n_bins, binning, mode="positive")
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    filled = rel.counts > 0  # sklearn drops empty bins
    np.testing.assert_allclose(rel.accuracy[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(rel.confidence[filled], prob_pred, rtol=1e-12)
    assert rel.binning == binning and rel.mode == "positive" and rel.counts.sum() == len(p)


@pytest.mark.parametrize("binning, strategy", [("width", "uniform"), ("mass", "quantile")])
def test_top_label_reliability_matches_sklearn_on_correctness(binning: str, strategy: str) -> None:
    # top-label reliability is sklearn's binary curve of [argmax = label] against the top probability
    probs, y = _random_probs(2000, 4, seed=3)
    rel = reliability(probs, y, 12, binning)
    correct = (probs.argmax(1) == y).astype(int)
    prob_true, prob_pred = calibration_curve(correct, probs.max(1), n_bins=12, strategy=strategy)
    filled = rel.counts > 0
    np.testing.assert_allclose(rel.accuracy[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(rel.confidence[filled], prob_pred, rtol=1e-12)


def test_equal_mass_bins_hold_equal_counts_and_width_stays_the_default() -> None:
    probs, y = _random_probs(1500, 3, seed=4)
    mass = reliability(probs, y, 15, "mass")
    assert mass.counts.max() - mass.counts.min() <= 1  # 1500 distinct confidences: 100 per bin
    np.testing.assert_allclose(mass.edges[[0, -1]], [probs.max(1).min(), probs.max(1).max()])
    default = reliability(probs, y)
    assert default.binning == "width" and len(default.counts) == 15
    np.testing.assert_allclose(default.edges, np.linspace(0, 1, 16))
    assert ece(probs, y) == default.ece and ece(probs, y, 15, "mass") == mass.ece != default.ece
    assert mce(probs, y, 15, "mass") == mass.mce


@pytest.mark.parametrize("k, n_bins", [(3, 10), (5, 15), (10, 7)])
def test_ece_mce_match_torchmetrics_multiclass(k: int, n_bins: int) -> None:
    from torchmetrics.classification import MulticlassCalibrationError

    probs, y = _random_probs(4000, k, seed=20 + k)
    preds, target = torch.as_tensor(probs), torch.as_tensor(y)
    l1 = MulticlassCalibrationError(num_classes=k, n_bins=n_bins, norm="l1")(preds, target)
    top = MulticlassCalibrationError(num_classes=k, n_bins=n_bins, norm="max")(preds, target)
    # torchmetrics works in float32
    assert ece(probs, y, n_bins) == pytest.approx(float(l1), abs=1e-6)
    assert mce(probs, y, n_bins) == pytest.approx(float(top), abs=1e-6)


def test_positive_mode_ece_matches_torchmetrics_binary() -> None:
    from torchmetrics.classification import BinaryCalibrationError

    p, y = _binary_sample(5000, seed=7, miscalibration="s_curve")
    expected = BinaryCalibrationError(n_bins=10, norm="l1")(torch.as_tensor(p), torch.as_tensor(y))
    assert ece(p, y, 10, mode="positive") == pytest.approx(float(expected), abs=1e-6)
    assert ece(p, y, 10, mode="positive") > 0.05  # the S-curve is visibly miscalibrated


def test_binary_log_loss_and_brier_against_sklearn() -> None:
    p, y = _binary_sample(2000, seed=8, miscalibration="square")
    assert nll(p, y) == pytest.approx(log_loss(y, p), rel=1e-10)
    assert brier(p, y) == pytest.approx(2 * brier_score_loss(y, p), rel=1e-10)


def test_calibration_argument_checks_name_the_value() -> None:
    probs, y = _random_probs(50, 3, seed=0)
    with pytest.raises(ValueError, match="n_bins must be >= 1, got 0"):
        reliability(probs, y, 0)
    with pytest.raises(ValueError, match=r"binning must be one of .* got 'quantile'"):
        reliability(probs, y, 10, "quantile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode 'positive' needs binary probs"):
        reliability(probs, y, mode="positive")
    with pytest.raises(ValueError, match=r"mode must be one of .* got 'top'"):
        ece(probs, y, mode="top")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_boot must be >= 1, got 0"):
        reliability_band(probs, y, n_boot=0)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1\.5"):
        reliability_band(probs, y, level=1.5)
    with pytest.raises(ValueError, match="sigma must be a positive number or None, got 0"):
        smooth_ece(probs, y, sigma=0.0)
    diverged = probs.copy()
    diverged[:2] = np.nan
    assert np.isnan(ece(diverged, y))  # equal width keeps reporting NaN for a diverged model, as before
    for call in (
        lambda: reliability(diverged, y, binning="mass"),
        lambda: reliability_band(diverged, y),
        lambda: smooth_ece(diverged, y),
    ):
        with pytest.raises(ValueError, match="needs finite probabilities, got 2 rows"):
            call()


def test_reliability_band_matches_a_plain_bootstrap_loop() -> None:
    probs, y = _random_probs(300, 3, seed=9)
    band = reliability_band(probs, y, 6, "mass", n_boot=50, level=0.8, seed=3)
    # the same resamples drawn one replicate at a time, bins recomputed by reliability() on fixed edges
    rng = np.random.default_rng(3)
    confidence, correct = probs.max(1), probs.argmax(1) == y
    edges = band.edges
    accuracies = []
    for _ in range(50):
        draw = rng.integers(0, 300, 300)
        idx = np.searchsorted(edges[1:-1], confidence[draw])
        counts = np.bincount(idx, minlength=6)
        accuracies.append(np.bincount(idx, weights=correct[draw], minlength=6) / np.maximum(counts, 1))
    low, high = np.percentile(np.array(accuracies), [10, 90], axis=0)
    np.testing.assert_allclose(band.low, low)
    np.testing.assert_allclose(band.high, high)
    full = reliability(probs, y, 6, "mass")
    np.testing.assert_array_equal(band.accuracy, full.accuracy)
    np.testing.assert_array_equal(band.edges, full.edges)


def test_reliability_band_is_seeded_and_has_binomial_width() -> None:
    p, y = _binary_sample(20_000, seed=10)
    band = reliability_band(p, y, 10, mode="positive", n_boot=400, level=0.9, seed=0)
    again = reliability_band(p, y, 10, mode="positive", n_boot=400, level=0.9, seed=0)
    other = reliability_band(p, y, 10, mode="positive", n_boot=400, level=0.9, seed=1)
    np.testing.assert_array_equal(band.low, again.low)
    assert not np.array_equal(band.low, other.low)
    rel = reliability(p, y, 10, mode="positive")
    assert np.all((band.low <= rel.accuracy) & (rel.accuracy <= band.high))
    # a 90% interval of a bin's mean of n_b Bernoulli(a) is about 2 * 1.645 * sqrt(a (1 - a) / n_b) wide
    expected = 2 * 1.645 * np.sqrt(rel.accuracy * (1 - rel.accuracy) / rel.counts)
    middle = slice(2, 8)  # bins away from 0 and 1, where the normal approximation holds
    np.testing.assert_allclose((band.high - band.low)[middle], expected[middle], rtol=0.25)


def test_reliability_band_skips_empty_bins() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.95, 0.05]])
    band = reliability_band(probs, np.array([0, 1, 0]), 10, n_boot=20)
    assert np.isnan(band.low[:7]).all() and np.isnan(band.confidence[:7]).all()
    assert np.isfinite(band.low[7:]).all() and np.isfinite(band.high[7:]).all()  # (0.7, 0.8], ..., (0.9, 1]


def test_confidence_histogram_counts_and_correct() -> None:
    probs, y = _random_probs(1000, 3, seed=11)
    hist = confidence_histogram(probs, y, 20)
    counts, edges = np.histogram(probs.max(1), bins=20, range=(0.0, 1.0))
    np.testing.assert_array_equal(hist.counts, counts)
    np.testing.assert_allclose(hist.edges, edges)
    assert hist.correct.sum() == np.sum(probs.argmax(1) == y)
    assert np.all(hist.correct <= hist.counts)
    assert hist.accuracy == pytest.approx(accuracy(probs, y))
    assert hist.mean_confidence == pytest.approx(probs.max(1).mean())


def _smooth_ece_direct(f: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """smECE_sigma by the definition: explicit reflected-Gaussian images at the exact sample positions and
    a fine trapezoid integral over t (no grid for the samples, no FFT)."""
    t = np.linspace(0.0, 1.0, 4001)
    total = np.zeros_like(t)
    for shift in range(-4, 5):  # images f + 2k and -f + 2k of the reflections at 0 and 1
        for image in (f + 2 * shift, -f + 2 * shift):
            gauss = np.exp(-0.5 * ((t[:, None] - image[None, :]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
            total += gauss @ (y - f)
    return float(np.trapezoid(np.abs(total / len(f)), t))


@pytest.mark.parametrize("kind", ["none", "s_curve"])
def test_smooth_ece_matches_its_definition(kind: str) -> None:
    p, y = _binary_sample(1500, seed=12, miscalibration=kind)
    result = smooth_ece(p, y, mode="positive")
    assert result.error == pytest.approx(result.sigma, abs=1e-9)  # the fixed point smECE_sigma* = sigma*
    assert result.error == pytest.approx(_smooth_ece_direct(p, y.astype(float), result.sigma), rel=1e-4)
    fixed = smooth_ece(p, y, sigma=0.05, mode="positive")
    assert fixed.sigma == 0.05
    assert fixed.error == pytest.approx(_smooth_ece_direct(p, y.astype(float), 0.05), rel=1e-4)


def test_smooth_ece_vanishes_for_calibrated_samples_as_n_grows() -> None:
    small = smooth_ece(*_binary_sample(2_000, seed=13), mode="positive").error
    large = smooth_ece(*_binary_sample(200_000, seed=13), mode="positive").error
    assert large < 0.01 and large < small / 2  # shrinks roughly like N^(-1/3)


def test_smooth_ece_equals_binned_ece_when_the_residual_has_one_sign() -> None:
    # confidence - accuracy > 0 everywhere: every estimator of E|acc - conf| equals |mean residual|
    p, y = _binary_sample(20_000, seed=14, miscalibration="square")
    smooth = smooth_ece(p, y, mode="positive").error
    residual = abs(np.mean(y - p))
    assert smooth == pytest.approx(residual, rel=1e-9)
    assert smooth == pytest.approx(ece(p, y, mode="positive"), rel=1e-9) and smooth > 0.15


def test_smooth_ece_is_close_to_binned_ece_on_a_strongly_miscalibrated_sample() -> None:
    p, y = _binary_sample(50_000, seed=15, miscalibration="s_curve")
    binned = ece(p, y, 15, mode="positive")
    smooth = smooth_ece(p, y, mode="positive")
    assert binned > 0.1
    assert smooth.error == pytest.approx(binned, abs=0.025)
    # the smoothed curve follows the true frequency where the data is dense (away from the ends)
    inner = (smooth.t > 0.2) & (smooth.t < 0.8)
    truth = np.clip(smooth.t + 0.2 * np.sin(2 * np.pi * smooth.t), 0, 1)
    assert np.max(np.abs(smooth.accuracy[inner] - truth[inner])) < 0.1


def test_smooth_ece_is_deterministic_monotone_in_sigma_and_its_density_integrates_to_one() -> None:
    probs, y = _random_probs(3000, 4, seed=16)
    first, second = smooth_ece(probs, y), smooth_ece(probs, y)
    assert first.error == second.error
    np.testing.assert_array_equal(first.accuracy, second.accuracy)
    errors = [smooth_ece(probs, y, sigma=s).error for s in (0.01, 0.03, 0.1, 0.3, 1.0)]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(errors))
    assert np.trapezoid(first.density, first.t) == pytest.approx(1.0, abs=1e-2)
    assert first.t[0] == 0.0 and first.t[-1] == 1.0 and len(first.t) == 201
