"""Tests for lossviz.noise: transition matrices against their closed forms, the row-stochastic check, exact
per-class realisation of T, instance-dependent flips against a brute-force nearest neighbour, memorisation
fractions and gradient-weight quartiles against hand counts, and the seed bands against scipy's t."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from lossviz import data as datasets
from lossviz import noise
from lossviz.experiment import DataSpec, Experiment, dataset

T3 = ((0.0, 0.7, 0.3), (0.1, 0.0, 0.9), (0.5, 0.5, 0.0))  # a zero-diagonal confusion pattern


# ----------------------------------------------------------------------------------------------- matrices


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.6])
def test_symmetric_and_pair_are_the_mixed_uniform_and_cyclic_patterns(k: int, rate: float) -> None:
    uniform = (np.ones((k, k)) - np.eye(k)) / (k - 1)
    shift = np.roll(np.eye(k), 1, axis=1)  # row c has its 1 at column c + 1 mod K
    expected_symmetric = np.where(np.eye(k, dtype=bool), 1 - rate, rate / (k - 1))
    np.testing.assert_allclose(noise.symmetric_transition(k, rate), expected_symmetric)
    np.testing.assert_allclose(noise.mixed_transition(uniform, rate), expected_symmetric)
    np.testing.assert_allclose(noise.pair_transition(k, rate), noise.mixed_transition(shift, rate))
    assert noise.pair_transition(k, rate)[0, 1 % k] == pytest.approx(rate if k > 1 else 0)


def test_class_map_transition_moves_only_the_source_classes() -> None:
    t = noise.class_map_transition(4, {1: 0, 3: 2}, rate=0.4)
    expected = np.eye(4)
    expected[1, [0, 1]] = [0.4, 0.6]
    expected[3, [2, 3]] = [0.4, 0.6]
    np.testing.assert_allclose(t, expected)
    with pytest.raises(ValueError, match="different classes"):
        noise.class_map_transition(3, {1: 1})


def test_asymmetric_map_is_the_one_way_shift_or_the_mnist_confusions() -> None:
    assert noise.asymmetric_map("blobs", 4) == {1: 0, 2: 1, 3: 2}
    assert noise.asymmetric_map("digits", 10) == {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}


def test_check_transition_accepts_typed_decimals_and_makes_rows_exact() -> None:
    t = noise.check_transition([[0.34, 0.33, 0.33], [0, 1, 0], [0.5, 0.25, 0.25]])
    np.testing.assert_array_equal(t.sum(1), np.ones(3))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[0.5, 0.5], [0.3, 0.6]], r"row 1 sums to 0\.9"),
        ([[1.2, -0.2], [0, 1]], r"row 0 column 1 must be a finite probability >= 0, got -0\.2"),
        ([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], r"square K x K matrix .* shape \(2, 3\)"),
        ([[1.0]], r"K >= 2"),
        ([[math.nan, 1.0], [0, 1]], r"row 0 column 0"),
        ("abc", r"K x K matrix"),
    ],
)
def test_check_transition_names_the_bad_row(matrix: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        noise.check_transition(matrix)


def test_check_transition_checks_the_class_count() -> None:
    with pytest.raises(ValueError, match="3 x 3 but the data has 2 classes"):
        noise.check_transition(T3, n_classes=2)


def test_realised_transition_counts_pairs() -> None:
    clean = np.array([0, 0, 0, 0, 1, 1])
    noisy = np.array([0, 1, 1, 2, 1, 0])
    got = noise.realised_transition(clean, noisy, 3)
    np.testing.assert_allclose(got[0], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(got[1], [0.5, 0.5, 0.0])
    assert np.isnan(got[2]).all()  # no sample of class 2


# ----------------------------------------------------------------------------------------------- sampling


def test_largest_remainder_is_hamiltons_method() -> None:
    np.testing.assert_array_equal(noise.largest_remainder(10, np.full(3, 1 / 3)), [4, 3, 3])
    np.testing.assert_array_equal(noise.largest_remainder(7, [0.5, 0.3, 0.2]), [4, 2, 1])  # 3.5, 2.1, 1.4
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.dirichlet(np.ones(5))
        n = int(rng.integers(0, 500))
        counts = noise.largest_remainder(n, p)
        assert counts.sum() == n and np.all(np.abs(counts - n * p) < 1)


def test_sample_from_transition_realises_t_exactly_per_class() -> None:
    y = np.repeat([0, 1, 2], [100, 90, 77])
    t = noise.mixed_transition(T3, 0.4)
    noisy = noise.sample_from_transition(y, t, seed=3)
    for c, n_c in enumerate([100, 90, 77]):
        got = np.bincount(noisy[y == c], minlength=3)
        np.testing.assert_array_equal(got, noise.largest_remainder(n_c, t[c]))
    assert np.abs(noise.realised_transition(y, noisy, 3) - t).max() < 1 / 77
    np.testing.assert_array_equal(noisy, noise.sample_from_transition(y, t, seed=3))  # same seed, same labels
    assert not np.array_equal(noisy, noise.sample_from_transition(y, t, seed=4))  # which samples: the seed


def test_the_flip_kinds_are_unchanged_and_reexported() -> None:
    assert datasets.corrupt_labels is noise.corrupt_labels
    y = np.repeat(np.arange(3), 40)
    # the original symmetric draw, transcribed: choose round(rate N) indices, then shift by 1..K-1
    rng = np.random.default_rng(11)
    chosen = rng.choice(len(y), size=36, replace=False)
    expected = y.copy()
    expected[chosen] = (y[chosen] + rng.integers(1, 3, size=36)) % 3
    np.testing.assert_array_equal(noise.corrupt_labels(y, 3, 0.3, "symmetric", seed=11), expected)


def test_transition_kind_through_make_dataset() -> None:
    kwargs = dict(label_noise=0.5, noise_kind="transition", transition=T3)
    data = datasets.make_dataset("blobs", n=600, seed=2, **kwargs)
    clean = datasets.make_dataset("blobs", n=600, seed=2)
    np.testing.assert_array_equal(clean.y_train, data.y_train_clean)  # the points do not depend on the noise
    counts = np.bincount(data.y_train_clean, minlength=3)
    realised = noise.realised_transition(data.y_train_clean, data.y_train, 3)
    assert np.all(np.abs(realised - noise.mixed_transition(T3, 0.5)) < 1 / counts.min())
    assert data.noisy_mask.mean() == pytest.approx(0.5, abs=0.01)  # a zero diagonal: the rate flips
    with pytest.raises(ValueError, match="3 x 3 but the data has 2 classes"):
        datasets.make_dataset("moons", label_noise=0.2, noise_kind="transition", transition=T3)
    with pytest.raises(ValueError, match="needs a transition matrix"):
        datasets.make_dataset("blobs", label_noise=0.2, noise_kind="transition")


def test_boundary_distances_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 3))  # more than one 512-row block
    y = rng.integers(0, 3, 700)
    distance, nearest_class = noise.boundary_distances(X, y)
    pairwise = cdist(X, X)
    pairwise[y[:, None] == y[None, :]] = np.inf
    np.testing.assert_allclose(distance, pairwise.min(1), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(nearest_class, y[pairwise.argmin(1)])


def test_instance_noise_flips_near_the_boundary_into_the_neighbouring_class() -> None:
    data = datasets.make_dataset("blobs", n=500, seed=1)
    X, y = data.X_train, data.y_train_clean
    noisy = noise.instance_noise(X, y, 0.3, seed=5)
    flipped = noisy != y
    assert flipped.sum() == round(0.3 * len(y))
    distance, nearest_class = noise.boundary_distances(X, y)
    np.testing.assert_array_equal(noisy[flipped], nearest_class[flipped])
    assert np.median(distance[flipped]) < 0.6 * np.median(distance[~flipped])  # 0.42 measured
    np.testing.assert_array_equal(noisy, noise.instance_noise(X, y, 0.3, seed=5))
    weights = noise.instance_flip_weights(distance)
    np.testing.assert_allclose(weights, np.exp(-3 * distance / np.median(distance)))
    via_dataset = datasets.make_dataset("blobs", n=500, seed=1, label_noise=0.3, noise_kind="instance")
    assert via_dataset.noisy_mask.sum() == round(0.3 * len(y))


# ----------------------------------------------------------------------------------------------- DataSpec


def test_dataspec_transition_is_validated_named_and_round_trips() -> None:
    with pytest.raises(ValueError, match=r"data\.transition row 2 sums to 1\.2"):
        DataSpec(noise_kind="transition", transition=((0, 1, 0), (0, 0, 1), (0.6, 0.6, 0)))
    with pytest.raises(ValueError, match=r"data\.transition must be a K x K matrix"):
        DataSpec(noise_kind="transition")
    spec = DataSpec(source="blobs", label_noise=0.3, noise_kind="transition", transition=T3)
    back = Experiment.from_json(Experiment(data=spec).to_json()).data
    assert back == spec and back.transition == T3
    assert len(dataset(back).y_train) == len(dataset(spec).y_train)
    # the other kinds ignore T: dropped, so equal data has one digest
    plain = DataSpec(source="blobs", label_noise=0.3, noise_kind="pair", transition=T3)
    assert plain.transition == () and plain == DataSpec(source="blobs", label_noise=0.3, noise_kind="pair")
    assert "transition" not in json.loads(Experiment(data=plain).to_json())["data"]


# ----------------------------------------------------------------------------------------------- measuring


def test_memorisation_fractions_by_hand() -> None:
    y_clean = np.array([0, 1, 2, 0, 1, 2])
    y_noisy = np.array([0, 1, 2, 1, 2, 0])  # the last three are mislabelled
    predictions = np.array(
        [
            [0, 1, 0, 0, 0, 0],  # clean: 2 of 3 correct; noisy: true, other, memorised
            [0, 1, 2, 1, 2, 0],  # everything fits the given labels: all memorised
        ]
    )
    m = noise.memorisation(predictions, y_clean, y_noisy, np.array([0, 10]))
    np.testing.assert_allclose(m.clean_correct, [2 / 3, 1.0])
    np.testing.assert_allclose(m.clean_wrong, [1 / 3, 0.0])
    np.testing.assert_allclose(m.noisy_true, [1 / 3, 0.0])
    np.testing.assert_allclose(m.noisy_memorised, [1 / 3, 1.0])
    np.testing.assert_allclose(m.noisy_other, [1 / 3, 0.0])
    assert (m.n_clean, m.n_noisy) == (3, 3)
    clean_only = noise.memorisation(predictions, y_clean, y_clean, np.array([0, 10]))
    assert np.isnan(clean_only.noisy_true).all() and clean_only.n_noisy == 0
    with pytest.raises(ValueError, match="predictions must be"):
        noise.memorisation(predictions[:, :4], y_clean, y_noisy, np.array([0, 10]))


def test_weight_summary_quartiles_by_group() -> None:
    rng = np.random.default_rng(0)
    weights = rng.exponential(size=(4, 50))
    mask = np.arange(50) % 5 == 0
    s = noise.weight_summary(weights, mask, np.arange(4))
    np.testing.assert_allclose(s.noisy_median, np.percentile(weights[:, mask], 50, axis=1))
    np.testing.assert_allclose(s.clean_low, np.percentile(weights[:, ~mask], 25, axis=1))
    np.testing.assert_allclose(s.clean_high, np.percentile(weights[:, ~mask], 75, axis=1))
    empty = noise.weight_summary(weights, np.zeros(50, bool), np.arange(4))
    assert np.isnan(empty.noisy_median).all() and np.isfinite(empty.clean_median).all()


@pytest.mark.parametrize("df", [1, 2, 4, 10, 29, 30, 31, 45, 120, 1000])
def test_t_quantile_matches_scipy(df: int) -> None:
    assert noise.t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4)


def test_seed_interval_is_the_t_interval() -> None:
    values = [0.61, 0.72, 0.66, 0.69]
    mean, half, n = noise.seed_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert n == 4 and mean == pytest.approx(np.mean(values))
    assert half == pytest.approx((high - low) / 2, rel=1e-3)
    one = noise.seed_interval([0.5, math.nan])
    assert one[0] == 0.5 and math.isnan(one[1]) and one[2] == 1
    with pytest.raises(ValueError, match="df must be"):
        noise.t_quantile_975(0)


def test_rate_bands_group_by_loss_and_rate() -> None:
    records = [("ce", 0.2, 0.8), ("ce", 0.0, 0.9), ("ce", 0.2, 0.6), ("gce", 0.2, 0.85), ("ce", 0.0, 0.92)]
    bands = noise.rate_bands(records)
    assert list(bands) == ["ce", "gce"]
    np.testing.assert_allclose(bands["ce"].rates, [0.0, 0.2])
    np.testing.assert_allclose(bands["ce"].mean, [0.91, 0.7])
    np.testing.assert_array_equal(bands["ce"].count, [2, 2])
    assert bands["ce"].half_width[1] == pytest.approx(12.706 * np.std([0.8, 0.6], ddof=1) / math.sqrt(2))
    assert np.isnan(bands["gce"].half_width[0])
