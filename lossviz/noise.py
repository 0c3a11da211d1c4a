"""Label noise, designed and measured: class-conditional transition matrices (symmetric, pair flip, a class
map, a user's row-stochastic T), instance-dependent flips near the class boundary, and what a model does with
the flipped samples over training: the memorisation fractions of "Early-Learning Regularization Prevents
Memorization of Noisy Labels" (Liu et al., 2020, Fig. 1) and clean against noisy per-sample gradient weight.

The symmetric, pair and asymmetric kinds follow "Normalized Loss Functions for Deep Learning with Noisy
Labels" (Ma et al., 2020) and flip exactly round(rate * N) labels; the transition kind is the T of "Making
Deep Neural Networks Robust to Label Noise: a Loss Correction Approach" (Patrini et al., 2017), realised
exactly per class.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

NoiseKind = Literal["symmetric", "asymmetric", "pair", "transition", "instance"]
NOISE_KINDS: tuple[str, ...] = ("symmetric", "asymmetric", "pair", "transition", "instance")
Transition = tuple[tuple[float, ...], ...]  # a K x K row-stochastic T as nested tuples (hashable, JSON)
# how far a row of a user's T may sum from 1: typed decimals such as 0.33 / 0.33 / 0.34 are fine
ROW_TOLERANCE = 1e-6

# How sharply instance-dependent flips gather at the boundary: a sample at the median distance to another
# class is e^-3 = 5% as likely to flip as one on it. Measured on blobs and moons (500 points): the flipped
# samples' median distance is 0.4-0.5 of the kept ones' at rates 0.1-0.6 (sharpness 1: 0.55-0.75).
INSTANCE_SHARPNESS = 3.0

# Asymmetric noise on digits: the MNIST confusions of Patrini et al. (2017), used by the NCE paper.
DIGITS_ASYMMETRIC = {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}


# ----------------------------------------------------------------------------------------------- matrices


def asymmetric_map(dataset: str, n_classes: int) -> dict[int, int]:
    """The asymmetric kind's one-way class map: MNIST's confusions on digits, else k -> k - 1 for k >= 1."""
    if dataset == "digits" and n_classes == 10:
        return dict(DIGITS_ASYMMETRIC)
    return {c: c - 1 for c in range(1, n_classes)}  # class 0 is never a source: the noise is one-directional


def symmetric_transition(n_classes: int, rate: float) -> np.ndarray:
    """(K, K) T of symmetric noise: keep with 1 - rate, every other class with rate / (K - 1)."""
    _check_rate(rate, closed=True, name="rate")
    k = _check_classes(n_classes)
    matrix = np.full((k, k), rate / (k - 1))
    np.fill_diagonal(matrix, 1.0 - rate)
    return matrix


def pair_transition(n_classes: int, rate: float) -> np.ndarray:
    """(K, K) T of pair flips: class k keeps its label with 1 - rate and becomes (k + 1) mod K with rate."""
    _check_rate(rate, closed=True, name="rate")
    k = _check_classes(n_classes)
    matrix = (1.0 - rate) * np.eye(k)
    matrix[np.arange(k), (np.arange(k) + 1) % k] += rate
    return matrix


def class_map_transition(n_classes: int, mapping: dict[int, int], rate: float = 1.0) -> np.ndarray:
    """(K, K) T that sends each source class c of mapping to mapping[c] with rate (other classes stay)."""
    _check_rate(rate, closed=True, name="rate")
    k = _check_classes(n_classes)
    matrix = np.eye(k)
    for source, target in mapping.items():
        if not (0 <= source < k and 0 <= target < k) or source == target:
            raise ValueError(f"class map {source} -> {target} must join two different classes in 0..{k - 1}")
        matrix[source, source] = 1.0 - rate
        matrix[source, target] += rate
    return matrix


def check_transition(matrix: object, n_classes: int | None = None) -> np.ndarray:
    """A user's transition matrix as a (K, K) float array whose rows sum to exactly 1.

    T[i, j] is the probability that a sample of true class i is given label j. ValueError names the first
    bad entry or row (and its sum) when T is not square, not finite, negative, or not row-stochastic.
    """
    try:
        array = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"transition must be a K x K matrix of numbers, got {matrix!r}") from None
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        raise ValueError(f"transition must be a square K x K matrix with K >= 2, got shape {array.shape}")
    if n_classes is not None and array.shape[0] != n_classes:
        raise ValueError(
            f"transition is {array.shape[0]} x {array.shape[0]} but the data has {n_classes} classes"
        )
    for i, row in enumerate(array):
        for j, value in enumerate(row):
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"transition row {i} column {j} must be a finite probability >= 0, got {value}"
                )
        total = float(row.sum())
        if abs(total - 1.0) > ROW_TOLERANCE:
            raise ValueError(
                f"transition row {i} sums to {total:.6g}; every row of T must sum to 1 (T[i, j] is the "
                f"probability that true class {i} is labelled j)"
            )
    return array / array.sum(axis=1, keepdims=True)  # exactly stochastic: the tolerance never accumulates


def mixed_transition(matrix: object, rate: float) -> np.ndarray:
    """(1 - rate) I + rate T: the user's T applied at a noise rate (T itself at rate 1).

    With a zero diagonal T the rate is the flip probability of every class: T = the uniform off-diagonal
    matrix gives symmetric noise, T = the cyclic shift gives pair flips.
    """
    _check_rate(rate, closed=True, name="rate")
    t = check_transition(matrix)
    return (1.0 - rate) * np.eye(len(t)) + rate * t


def realised_transition(y_clean: np.ndarray, y_noisy: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) the fraction of each true class's samples given each label (rows of absent classes: NaN)."""
    k = _check_classes(n_classes)
    counts = np.zeros((k, k))
    np.add.at(counts, (np.asarray(y_clean, np.int64), np.asarray(y_noisy, np.int64)), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


# ----------------------------------------------------------------------------------------------- sampling


def largest_remainder(n: int, probabilities: np.ndarray) -> np.ndarray:
    """Whole counts summing to n closest to n * probabilities (Hamilton's method; ties to the lower index)."""
    quota = n * np.asarray(probabilities, np.float64)
    counts = np.floor(quota).astype(np.int64)
    short = n - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def sample_from_transition(y: np.ndarray, matrix: object, seed: int) -> np.ndarray:
    """Noisy labels realising T exactly per class: of the n_c samples of class c, the largest-remainder
    rounding of n_c * T[c, j] get label j, which ones drawn at random (same seed, same labels)."""
    y = np.asarray(y, np.int64)
    t = check_transition(matrix)
    if y.size and (y.min() < 0 or y.max() >= len(t)):
        raise ValueError(
            f"labels must be in 0..{len(t) - 1} for a {len(t)} x {len(t)} transition, got {y.max()}"
        )
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    for c in range(len(t)):
        members = rng.permutation(np.flatnonzero(y == c))
        noisy[members] = np.repeat(np.arange(len(t)), largest_remainder(len(members), t[c]))
    return noisy


def boundary_distances(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) distance of each sample to the nearest sample of another class, and (N,) that sample's class."""
    X = np.asarray(X, np.float64).reshape(len(y), -1)
    y = np.asarray(y, np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError("instance-dependent noise needs at least two classes among the training labels")
    distance = np.empty(len(y))
    nearest_class = np.empty(len(y), np.int64)
    squared = (X**2).sum(1)
    for start in range(0, len(y), 512):  # (512, N) blocks: memory stays small on the real sets
        rows = slice(start, start + 512)
        block = squared[rows, None] - 2.0 * X[rows] @ X.T + squared[None, :]  # (B, N) squared distances
        block[y[rows, None] == y[None, :]] = np.inf  # only other classes count
        j = block.argmin(1)
        distance[rows] = np.sqrt(np.maximum(block[np.arange(len(j)), j], 0.0))
        nearest_class[rows] = y[j]
    return distance, nearest_class


def instance_flip_weights(distance: np.ndarray) -> np.ndarray:
    """(N,) relative chance of each sample to be mislabelled: exp(-3 d / median d), growing towards the
    boundary whatever the scale of the features."""
    distance = np.asarray(distance, np.float64)
    scale = float(np.median(distance))
    return np.exp(-INSTANCE_SHARPNESS * distance / scale) if scale > 0 else np.ones_like(distance)


def instance_noise(X: np.ndarray, y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Instance-dependent noise: exactly round(rate * N) samples, drawn without replacement with chance
    proportional to instance_flip_weights (close to another class = likely), each relabelled as the class of
    its nearest other-class neighbour, the look-alike an annotator would confuse it with."""
    _check_rate(rate)
    y = np.asarray(y, np.int64)
    noisy = y.copy()
    count = round(rate * len(y))
    if count == 0:
        return noisy
    distance, nearest_class = boundary_distances(X, y)
    weights = instance_flip_weights(distance)
    chosen = np.random.default_rng(seed).choice(len(y), size=count, replace=False, p=weights / weights.sum())
    noisy[chosen] = nearest_class[chosen]
    return noisy


def corrupt_labels(
    y: np.ndarray,
    n_classes: int,
    rate: float,
    kind: NoiseKind,
    seed: int,
    dataset: str = "",
    *,
    X: np.ndarray | None = None,
    transition: Transition | np.ndarray = (),
) -> np.ndarray:
    """Training labels after label noise of a kind at a rate (seeded; the clean labels are not changed).

    symmetric, pair, asymmetric: exactly round(rate * N) flipped, to a uniformly random other class, to
    (k + 1) mod K, or by asymmetric_map, the flipped samples drawn from its source classes only. transition:
    sample_from_transition of mixed_transition(transition, rate). instance: instance_noise on the features X.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {list(NOISE_KINDS)}, got {kind!r}")
    _check_rate(rate)
    y = np.asarray(y, np.int64)
    if kind == "transition":
        if not len(transition):  # type: ignore[arg-type]
            raise ValueError("noise_kind 'transition' needs a transition matrix T (data.transition)")
        check_transition(transition, n_classes)
        return sample_from_transition(y, mixed_transition(transition, rate), seed)
    if kind == "instance":
        if X is None:
            raise ValueError("noise_kind 'instance' needs the training features X")
        return instance_noise(X, y, rate, seed)
    # the three flip kinds below are the original ones: their draws must stay bit-identical (stored results
    # and links are keyed by experiments whose labels they made)
    rng = np.random.default_rng(seed)
    count = round(rate * len(y))
    noisy = y.copy()
    if count == 0:
        return noisy
    if kind == "asymmetric":
        mapping = asymmetric_map(dataset, n_classes)
        candidates = np.flatnonzero(np.isin(y, list(mapping)))
        if count > len(candidates):
            raise ValueError(
                f"asymmetric label_noise {rate:g} needs {count} flips but only {len(candidates)} training "
                f"samples belong to the source classes {sorted(mapping)}; use a smaller rate"
            )
        chosen = rng.choice(candidates, size=count, replace=False)
        noisy[chosen] = [mapping[int(c)] for c in y[chosen]]
        return noisy
    chosen = rng.choice(len(y), size=count, replace=False)
    if kind == "pair":
        noisy[chosen] = (y[chosen] + 1) % n_classes
    else:  # a uniformly random *other* class: shift by 1..K-1
        noisy[chosen] = (y[chosen] + rng.integers(1, n_classes, size=count)) % n_classes
    return noisy


# ----------------------------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Memorisation:
    """What a classifier predicts for the training samples at each snapshot (Liu et al. 2020, Fig. 1).

    Clean samples: predicting their label (correct) or not (wrong); mislabelled samples: predicting their
    true class (true), the wrong label they were given (memorised), or another class (other). Each group's
    fractions sum to 1 at every snapshot (NaN when the group is empty).
    """

    epochs: np.ndarray  # (S,)
    clean_correct: np.ndarray  # (S,)
    clean_wrong: np.ndarray  # (S,)
    noisy_true: np.ndarray  # (S,)
    noisy_memorised: np.ndarray  # (S,)
    noisy_other: np.ndarray  # (S,)
    n_clean: int
    n_noisy: int


def memorisation(
    predictions: np.ndarray, y_clean: np.ndarray, y_noisy: np.ndarray, epochs: np.ndarray
) -> Memorisation:
    """Memorisation fractions from (S, N) predicted classes at S snapshot epochs, and the (N,) labels."""
    predictions = np.asarray(predictions, np.int64)
    y_clean, y_noisy = np.asarray(y_clean, np.int64), np.asarray(y_noisy, np.int64)
    epochs = np.asarray(epochs)
    if predictions.ndim != 2 or predictions.shape[1] != len(y_clean) or len(y_noisy) != len(y_clean):
        raise ValueError(
            f"predictions must be (S, N) with N = {len(y_clean)} labels, got shape {predictions.shape}"
        )
    if len(epochs) != len(predictions):
        raise ValueError(f"epochs has {len(epochs)} entries for {len(predictions)} snapshots")
    noisy = y_clean != y_noisy
    clean_hits = predictions[:, ~noisy] == y_clean[~noisy]  # (S, n_clean)
    true_hits = predictions[:, noisy] == y_clean[noisy]  # (S, n_noisy)
    memorised = predictions[:, noisy] == y_noisy[noisy]

    def fraction(hits: np.ndarray) -> np.ndarray:
        return hits.mean(1) if hits.shape[1] else np.full(len(predictions), np.nan)

    other = ~(true_hits | memorised)
    return Memorisation(
        epochs=epochs,
        clean_correct=fraction(clean_hits),
        clean_wrong=fraction(~clean_hits),
        noisy_true=fraction(true_hits),
        noisy_memorised=fraction(memorised),
        noisy_other=fraction(other),
        n_clean=int((~noisy).sum()),
        n_noisy=int(noisy.sum()),
    )


@dataclass(frozen=True)
class WeightSummary:
    """Per-sample gradient weight |dL_i/dz_i| of the clean and the mislabelled samples at each snapshot:
    median and quartiles (NaN where a group is empty)."""

    epochs: np.ndarray  # (S,)
    clean_median: np.ndarray  # (S,)
    clean_low: np.ndarray  # (S,) first quartile
    clean_high: np.ndarray  # (S,) third quartile
    noisy_median: np.ndarray  # (S,)
    noisy_low: np.ndarray  # (S,)
    noisy_high: np.ndarray  # (S,)


def weight_summary(weights: np.ndarray, noisy_mask: np.ndarray, epochs: np.ndarray) -> WeightSummary:
    """Quartiles of (S, N) per-sample gradient weights for the clean and the noisy (N,) samples."""
    weights = np.asarray(weights, np.float64)
    noisy_mask = np.asarray(noisy_mask, bool)
    if weights.ndim != 2 or weights.shape[1] != len(noisy_mask) or len(epochs) != len(weights):
        raise ValueError(
            f"weights must be (S, N) with S = {len(epochs)} epochs and N = {len(noisy_mask)}, got "
            f"{weights.shape}"
        )

    def quartiles(group: np.ndarray) -> np.ndarray:  # (3, S)
        if not group.shape[1]:
            return np.full((3, len(weights)), np.nan)
        return np.nanquantile(group, [0.25, 0.5, 0.75], axis=1)

    clean, noisy = quartiles(weights[:, ~noisy_mask]), quartiles(weights[:, noisy_mask])
    return WeightSummary(
        epochs=np.asarray(epochs),
        clean_median=clean[1],
        clean_low=clean[0],
        clean_high=clean[2],
        noisy_median=noisy[1],
        noisy_low=noisy[0],
        noisy_high=noisy[2],
    )


# ----------------------------------------------------------------------------------------------- seeds

# Two-sided 95% quantiles t_{0.975, df} of Student's t for df = 1..30 (the usual table, 3 decimals); df > 30
# uses the normal's 1.96 with two Cornish-Fisher correction terms, within 1e-4 of the exact value.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval with df degrees of freedom."""
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # the normal's quantile, corrected for df by the Cornish-Fisher expansion's first two terms
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def seed_interval(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, half-width of its t-based 95% confidence interval, count) over the finite values of seeds.

    The half-width is t_{0.975, n-1} * s / sqrt(n) with s the sample standard deviation; NaN for one seed.
    """
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    n = len(finite)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(finite.mean())
    if n == 1:
        return mean, math.nan, 1
    return mean, t_quantile_975(n - 1) * float(finite.std(ddof=1)) / math.sqrt(n), n


@dataclass(frozen=True)
class RateBand:
    """One loss's metric against the noise rate: mean over seeds with its 95% t interval."""

    name: str  # loss registry key
    rates: np.ndarray  # (R,) sorted
    mean: np.ndarray  # (R,)
    half_width: np.ndarray  # (R,) NaN where only one seed finished
    count: np.ndarray  # (R,) seeds with a finite value


def rate_bands(records: Iterable[tuple[str, float, float]]) -> dict[str, RateBand]:
    """{loss: RateBand} from (loss, noise rate, value) records, one per finished run, losses in first-seen
    order."""
    grouped: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, rate, value in records:
        grouped[name][round(float(rate), 9)].append(float(value))
    bands = {}
    for name, by_rate in grouped.items():
        rates = sorted(by_rate)
        stats = [seed_interval(by_rate[r]) for r in rates]
        bands[name] = RateBand(
            name=name,
            rates=np.asarray(rates),
            mean=np.asarray([s[0] for s in stats]),
            half_width=np.asarray([s[1] for s in stats]),
            count=np.asarray([s[2] for s in stats], np.int64),
        )
    return bands


# ----------------------------------------------------------------------------------------------- checks


def _check_rate(rate: float, *, closed: bool = False, name: str = "label_noise") -> None:
    """A rate in [0, 1) (a label-noise rate) or, closed, in [0, 1] (a matrix's mixing weight)."""
    number = isinstance(rate, (int, float, np.floating)) and not isinstance(rate, bool)
    if not (number and math.isfinite(rate) and 0.0 <= rate and (rate <= 1.0 if closed else rate < 1.0)):
        raise ValueError(f"{name} must be in [0, 1{']' if closed else ')'}, got {rate!r}")


def _check_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return int(n_classes)
