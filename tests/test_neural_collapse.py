"""Tests for the neural-collapse measures of lossviz.metrics (Papyan, Han & Donoho, 2020): exact collapse,
random features, invariances, a loop-by-loop hand computation, imbalanced classes and argument checks.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from lossviz.metrics import (
    centred_class_means,
    nc1,
    nc2_equiangular,
    nc2_equinorm,
    nc2_max_angle,
    nc3,
    nc4,
    neural_collapse,
    simplex_etf,
)
from lossviz.results import NeuralCollapse

TOL = 1e-10


def _collapsed(
    k: int, d: int, per_class: int | list[int] = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features at exact collapse: every sample is its class mean, the class means a simplex ETF (K, D)."""
    counts = [per_class] * k if isinstance(per_class, int) else per_class
    means = simplex_etf(k, d, scale=3.0, seed=seed)  # (K, D)
    labels = np.repeat(np.arange(k), counts)
    np.random.default_rng(seed).shuffle(labels)
    return means[labels], labels, means


def _hand_nc1(h: np.ndarray, y: np.ndarray, centre: str) -> float:
    """tr(Sigma_W Sigma_B^+) / K by explicit loops over classes and samples (Papyan et al.'s definitions)."""
    n, d = h.shape
    k = int(y.max()) + 1
    means = []
    for c in range(k):
        total, count = np.zeros(d), 0
        for i in range(n):
            if y[i] == c:
                total += h[i]
                count += 1
        means.append(total / count)
    if centre == "samples":
        g = sum(h[i] for i in range(n)) / n
    else:
        g = sum(means) / k
    sigma_w = np.zeros((d, d))
    for i in range(n):
        diff = h[i] - means[y[i]]
        sigma_w += np.outer(diff, diff) / n
    sigma_b = np.zeros((d, d))
    for c in range(k):
        diff = means[c] - g
        sigma_b += np.outer(diff, diff) / k
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / k)


# ----------------------------------------------------------------------------------------------- simplex ETF


@pytest.mark.parametrize(("k", "d"), [(2, None), (3, None), (3, 7), (5, 5), (10, 32), (4, 3)])
def test_simplex_etf_is_equinorm_equiangular_and_centred(k: int, d: int | None) -> None:
    etf = simplex_etf(k, d, scale=2.5, seed=3)
    assert etf.shape == (k, k - 1 if d is None else d)
    np.testing.assert_allclose(np.linalg.norm(etf, axis=1), 2.5, atol=TOL)
    np.testing.assert_allclose(etf.sum(0), 0.0, atol=TOL)
    unit = etf / np.linalg.norm(etf, axis=1, keepdims=True)
    for i, j in itertools.combinations(range(k), 2):
        assert unit[i] @ unit[j] == pytest.approx(-1.0 / (k - 1), abs=TOL), (i, j)
    # an ETF is tight: its Gram matrix is scale^2 K/(K-1) (I - 11^T/K)
    np.testing.assert_allclose(etf @ etf.T, 2.5**2 * k / (k - 1) * (np.eye(k) - 1.0 / k), atol=TOL)
    assert nc2_equinorm(etf) < TOL and nc2_equiangular(etf) < TOL and nc2_max_angle(etf) < TOL


def test_simplex_etf_is_seeded() -> None:
    np.testing.assert_array_equal(simplex_etf(4, 6, seed=1), simplex_etf(4, 6, seed=1))
    assert not np.allclose(simplex_etf(4, 6, seed=1), simplex_etf(4, 6, seed=2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"K": 1}, "K=1"),
        ({"K": 2.5}, "K=2.5"),
        ({"K": 5, "D": 3}, "D >= 4, got D=3"),
        ({"K": 3, "scale": 0.0}, "scale must be finite and > 0, got 0.0"),
        ({"K": 3, "scale": float("nan")}, "got nan"),
    ],
    ids=["one-class", "fractional-K", "too-few-dims", "zero-scale", "nan-scale"],
)
def test_simplex_etf_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simplex_etf(**kwargs)


# ------------------------------------------------------------------------------------------ exact collapse


@pytest.mark.parametrize(("k", "d"), [(2, 2), (3, 2), (4, 10), (10, 20)])
def test_every_measure_is_zero_at_exact_collapse(k: int, d: int) -> None:
    h, y, means = _collapsed(k, d)
    result = neural_collapse(h, y, W=means)
    for field in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_max_angle", "nc3", "nc4"):
        assert abs(getattr(result, field)) < TOL, (field, getattr(result, field))
    for field in ("nc2_equinorm_classifier", "nc2_equiangular_classifier", "nc2_max_angle_classifier"):
        assert abs(getattr(result, field)) < TOL, field
    off_diagonal = result.cosines[~np.eye(k, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, -1.0 / (k - 1), atol=TOL)
    np.testing.assert_allclose(result.class_means, means, atol=TOL)
    np.testing.assert_allclose(result.global_mean, 0.0, atol=TOL)
    np.testing.assert_array_equal(result.class_counts, np.full(k, 4))
    # the per-measure functions agree with the bundle
    assert nc1(h, y) < TOL
    assert nc3(centred_class_means(h, y), means) < TOL
    assert nc4(h, y, W=means) < TOL


def test_collapse_shifted_by_a_global_offset_is_still_collapse() -> None:
    h, y, means = _collapsed(5, 8)
    offset = np.linspace(-4.0, 7.0, 8)  # (D,)
    result = neural_collapse(h + offset, y, W=means, b=-means @ offset)  # logits W (h - offset)
    for field in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_max_angle", "nc3", "nc4"):
        assert abs(getattr(result, field)) < TOL, field
    np.testing.assert_allclose(result.global_mean, offset, atol=TOL)


def test_nc4_counts_disagreements_with_given_predictions() -> None:
    h, y, _ = _collapsed(4, 6, per_class=5)
    assert nc4(h, y, predicted=y) == 0.0
    assert nc4(h, y, predicted=(y + 1) % 4) == 1.0
    wrong = y.copy()
    wrong[:3] = (wrong[:3] + 1) % 4
    assert nc4(h, y, predicted=wrong) == pytest.approx(3 / 20)
    # predicted wins over W: the model's own argmax may come from a head W does not describe
    assert nc4(h, y, predicted=wrong, W=-simplex_etf(4, 6, seed=0)) == pytest.approx(3 / 20)


def test_classifier_measures_are_nan_without_a_classifier() -> None:
    h, y, _ = _collapsed(3, 4)
    result = neural_collapse(h, y)
    assert math.isnan(result.nc3) and math.isnan(result.nc4)
    assert math.isnan(result.nc2_equinorm_classifier) and math.isnan(result.nc2_max_angle_classifier)
    assert math.isnan(nc3(centred_class_means(h, y), None))
    assert math.isnan(nc4(h, y))
    assert result.nc1 < TOL  # the feature measures still come


def test_result_is_frozen_and_checks_its_shapes() -> None:
    h, y, means = _collapsed(3, 4)
    result = neural_collapse(h, y, W=means)
    assert isinstance(result, NeuralCollapse) and result.n_classes == 3 and result.centre == "samples"
    np.testing.assert_allclose(result.centred_means, centred_class_means(h, y))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.nc1 = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="cosines has shape"):
        dataclasses.replace(result, cosines=np.zeros((2, 2)))


# ---------------------------------------------------------------------------------------- random features


@pytest.mark.parametrize("k", [3, 5, 10])
def test_random_gaussian_features_are_far_from_collapse(k: int) -> None:
    rng = np.random.default_rng(k)
    n, d = 4000, 64
    h = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    W = rng.standard_normal((k, d))
    result = neural_collapse(h, y, W=W)
    # Sigma_W ~ I, and the K-1 nonzero eigenvalues of Sigma_B ~ D / (K n_k): NC1 ~ (K-1) n_k / D, in the tens
    assert result.nc1 > 1.0
    assert result.nc1 == pytest.approx((k - 1) * (n / k) / d, rel=0.3)
    # the nearest (noise) class mean and an unrelated linear head agree by chance only
    assert result.nc4 == pytest.approx(1 - 1 / k, abs=0.05)
    assert result.nc3 > 0.5  # independent directions: ||a - b||^2 ~ 2 for unit matrices
    assert result.nc2_max_angle > 0.05


def test_nc1_approaches_collapse_smoothly_in_high_dimension() -> None:
    # K-1 = 9 between-class directions in D = 512: round-off directions of Sigma_B must not be inverted
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(10), 20)
    means = simplex_etf(10, 512, scale=5.0, seed=2)
    noise = rng.standard_normal((len(y), 512))
    values = [nc1(means[y] + sigma * noise, y) for sigma in (1e-2, 1e-3, 1e-4)]
    # NC1 ~ sigma^2 tr(Sigma_B^+) / K: a hundredfold per decade of noise
    assert values[0] / values[1] == pytest.approx(100, rel=0.05)
    assert values[1] / values[2] == pytest.approx(100, rel=0.05)
    assert values[2] < 1e-8


# -------------------------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, 1e4])
def test_nc1_nc2_nc3_are_scale_invariant(scale: float) -> None:
    rng = np.random.default_rng(0)
    k, d = 4, 6
    means = simplex_etf(k, d, scale=2.0)
    y = np.repeat(np.arange(k), 30)
    h = means[y] + 0.7 * rng.standard_normal((len(y), d))
    W = means + 0.3 * rng.standard_normal((k, d))
    base, scaled = neural_collapse(h, y, W=W), neural_collapse(scale * h, y, W=W / scale)
    assert 0 < base.nc1 < 10 and base.nc3 > 0
    for field in ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_max_angle", "nc3", "nc4"):
        assert getattr(scaled, field) == pytest.approx(getattr(base, field), rel=1e-9, abs=1e-12), field
    m = centred_class_means(h, y)
    assert nc3(scale * m, 3.0 * W) == pytest.approx(nc3(m, W), rel=1e-9)
    assert nc1(scale * h, y) == pytest.approx(nc1(h, y), rel=1e-9)


def test_nc1_is_invariant_to_rotation_and_translation() -> None:
    rng = np.random.default_rng(1)
    h = rng.standard_normal((60, 5)) + np.repeat(rng.standard_normal((3, 5)) * 3, 20, axis=0)
    y = np.repeat(np.arange(3), 20)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    assert nc1(h @ rotation.T + 11.0, y) == pytest.approx(nc1(h, y), rel=1e-9)


# ------------------------------------------------------------------------------------ hand computation


@pytest.mark.parametrize("centre", ["samples", "classes"])
@pytest.mark.parametrize("counts", [(3, 3, 3), (2, 5, 3)], ids=["balanced", "imbalanced"])
def test_nc1_matches_a_loop_by_loop_hand_computation(counts: tuple[int, ...], centre: str) -> None:
    rng = np.random.default_rng(sum(counts))
    y = np.repeat(np.arange(3), counts)
    h = rng.standard_normal((len(y), 4)) + 2.0 * np.eye(3, 4)[y]  # (N, 4), D > K: Sigma_B is singular
    assert nc1(h, y, centre=centre) == pytest.approx(_hand_nc1(h, y, centre), rel=1e-9)
    assert neural_collapse(h, y, centre=centre).nc1 == pytest.approx(_hand_nc1(h, y, centre), rel=1e-9)


def test_nc1_of_a_tiny_example_by_hand() -> None:
    # 1-D features, 2 classes: means -1 and 1, within-class deviations +-0.5 (variance 0.25), Sigma_B = 1
    h = np.array([[-1.5], [-0.5], [0.5], [1.5]])
    y = np.array([0, 0, 1, 1])
    assert nc1(h, y) == pytest.approx(0.25 / 2)


def test_nc2_and_nc3_by_hand() -> None:
    v = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])  # norms 1, 2, 3; cosines 0, -1, 0
    assert nc2_equinorm(v) == pytest.approx(np.std([1, 2, 3]) / 2)
    assert nc2_equiangular(v) == pytest.approx(np.std([0.0, -1.0, 0.0]))
    assert nc2_max_angle(v) == pytest.approx((0.5 + 0.5 + 0.5) / 3)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    expected = np.sum((w / np.sqrt(3) - v / np.sqrt(14)) ** 2)
    assert nc3(v, w) == pytest.approx(expected)
    assert nc3(v, 5.0 * v) == pytest.approx(0.0, abs=TOL)


# --------------------------------------------------------------------------------------- imbalanced classes


def test_imbalanced_collapse_weights_samples_in_the_global_mean_not_in_sigma_b() -> None:
    counts = [2, 3, 10, 25]
    h, y, means = _collapsed(4, 5, per_class=counts)
    by_samples = neural_collapse(h, y, W=means)  # Papyan et al.'s mu_G: the mean of all samples
    by_classes = neural_collapse(h, y, W=means, centre="classes")
    np.testing.assert_array_equal(by_samples.class_counts, counts)
    np.testing.assert_allclose(by_samples.global_mean, np.average(means, axis=0, weights=counts), atol=TOL)
    np.testing.assert_allclose(by_classes.global_mean, 0.0, atol=TOL)
    # NC1 and NC4 are 0 for either centre: every sample sits on its class mean
    for result in (by_samples, by_classes):
        assert result.nc1 < TOL and result.nc4 < TOL
    # centred on the class means, an ETF of class means is one whatever the counts
    for field in ("nc2_equinorm", "nc2_equiangular", "nc2_max_angle", "nc3"):
        assert getattr(by_classes, field) < TOL, field
    # centred on the count-weighted mean, the same ETF looks unequal: the majority class mean is pulled in
    assert by_samples.nc2_equinorm > 0.1 and by_samples.nc2_max_angle > 0.05 and by_samples.nc3 > 1e-3
    assert np.argmin(np.linalg.norm(by_samples.centred_means, axis=1)) == 3


def test_imbalanced_sigma_w_weighs_each_sample_once() -> None:
    # class 0 (8 samples) spreads by +-1, class 1 (2 samples) by +-3 along one axis
    h = np.array([[-1.0], [1.0]] * 4 + [[10.0 - 3.0], [10.0 + 3.0]])
    y = np.array([0] * 8 + [1] * 2)
    sigma_w = (8 * 1.0 + 2 * 9.0) / 10  # sample-weighted, not the class average (1 + 9) / 2
    sigma_b = (5.0**2 + 5.0**2) / 2  # unweighted over classes, about the class-mean centre 5
    assert nc1(h, y, centre="classes") == pytest.approx(sigma_w / sigma_b / 2)
    g = h.mean()  # 2.0: the sample mean sits near the majority class
    sigma_b_samples = ((0.0 - g) ** 2 + (10.0 - g) ** 2) / 2
    assert nc1(h, y) == pytest.approx(sigma_w / sigma_b_samples / 2)


# ---------------------------------------------------------------------------------------- argument checks


def _valid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, y, means = _collapsed(3, 4, per_class=3)
    return h, y, means


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda h, y, m: nc1(h, np.zeros(len(y), int)), "at least 2 classes, got 1"),
        (lambda h, y, m: nc1(h, y, n_classes=1), "at least 2 classes, got 1"),
        (lambda h, y, m: nc1(h, y, n_classes=4), "class 3 has none"),
        (lambda h, y, m: nc1(h, np.where(y == 2, 3, y)), "class 2 has none"),
        (lambda h, y, m: nc1(h[:4], np.array([0, 0, 1, 2])), "needs >= 2 samples per class, class 1 has 1"),
        (lambda h, y, m: neural_collapse(h[:4], np.array([0, 0, 1, 2])), "class 1 has 1"),
        (lambda h, y, m: nc1(h, y[:-1]), r"labels must have shape \(9,\)"),
        (lambda h, y, m: nc1(h, y - 1), "labels must be >= 0, got -1"),
        (lambda h, y, m: nc1(h, y + 0.5), "labels must be integers"),
        (lambda h, y, m: nc1(h, y, n_classes=2), "labels must be < n_classes=2, got 2"),
        (lambda h, y, m: nc1(h[:, 0], y), r"features must have shape \(\?, \?\), got \(9,\)"),
        (lambda h, y, m: nc1(np.where(h == h[0, 0], np.nan, h), y), "features must be finite"),
        (lambda h, y, m: nc1(h[:0], y[:0]), "features has no rows"),
        (lambda h, y, m: nc1(h, y, centre="median"), "centre must be one of .*'median'"),
        (lambda h, y, m: neural_collapse(h, y, W=m[:2]), r"W must have shape \(3, 4\), got \(2, 4\)"),
        (lambda h, y, m: neural_collapse(h, y, W=m[:, :3]), r"W must have shape \(3, 4\), got \(3, 3\)"),
        (lambda h, y, m: neural_collapse(h, y, W=m * np.nan), "W must be finite"),
        (lambda h, y, m: neural_collapse(h, y, W=m, b=np.zeros(2)), r"b must have shape \(3,\)"),
        (lambda h, y, m: neural_collapse(h, y, b=np.zeros(3)), "b was given without W"),
        (lambda h, y, m: nc3(m, m.T), r"W must have shape \(3, 4\), got \(4, 3\)"),
        (lambda h, y, m: nc3(m[:1], m[:1]), "at least 2 rows"),
        (lambda h, y, m: nc4(h, y, predicted=y[:3]), r"predicted must have shape \(9,\)"),
        (lambda h, y, m: nc4(h, y, predicted=y + 1), r"predicted must lie in 0..2, got values in 1..3"),
        (lambda h, y, m: nc4(h, y, W=m.T), r"W must have shape \(3, 4\)"),
        (lambda h, y, m: nc2_equinorm(m[:1]), "at least 2 rows"),
        (lambda h, y, m: nc2_equiangular(np.array([[1.0, np.inf], [0.0, 1.0]])), "vectors must be finite"),
    ],
    ids=[
        "one-class", "n_classes-1", "empty-class", "gap-in-labels", "singleton-class", "singleton-bundle",
        "labels-length", "negative-label", "fractional-label", "label-beyond-n_classes", "features-1d",
        "features-nan", "no-rows", "bad-centre", "W-rows", "W-columns", "W-nan", "b-length", "b-without-W",
        "nc3-transposed", "nc3-one-row", "predicted-length", "predicted-range", "nc4-W-shape",
        "nc2-one-row", "nc2-inf",
    ],
)  # fmt: skip
def test_bad_arguments_raise_naming_the_value(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(*_valid())


def test_degenerate_inputs_give_nan_not_noise() -> None:
    h = np.ones((6, 3))  # every class mean is the global mean: no between-class spread
    y = np.repeat(np.arange(3), 2)
    assert math.isnan(nc1(h, y))
    assert math.isnan(nc2_equinorm(np.zeros((3, 2))))
    assert math.isnan(nc3(np.zeros((3, 2)), np.ones((3, 2))))
