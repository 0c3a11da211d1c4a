"""Datasets for training views: toy generators, scikit-learn's bundled real sets, CSV upload, label noise,
and the augmented views embedding losses train on (SimCLR-style: jitter, rotation and noise of points,
small affine jitter of digits).

Label-noise kinds follow "Normalized Loss Functions for Deep Learning with Noisy Labels" (symmetric,
asymmetric, pair flips); the long-tailed imbalance profile follows LDAM/VS-loss (n_k = n_max * r^(-k/(K-1))).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import IO, Literal

import numpy as np
from sklearn import datasets as skdata
from sklearn.model_selection import train_test_split

# label noise lives in lossviz.noise; its kinds and corrupt_labels are re-exported where datasets are made
from lossviz.noise import NOISE_KINDS as ALL_NOISE_KINDS
from lossviz.noise import NoiseKind, Transition, corrupt_labels
from lossviz.results import Dataset, Projection

CsvTask = Literal["auto", "classification", "regression"]
# The kinds the shared experiment controls offer (lossviz.ui.experiment_fields has a title for each of these
# only). ALL_NOISE_KINDS, every kind a dataset accepts, adds "transition" (it needs the matrix T that the
# Label-noise study page edits) and "instance".
NOISE_KINDS: tuple[str, ...] = ("symmetric", "asymmetric", "pair")

# name -> (kind, default noise, fixed class count or None when n_classes is a choice, description)
_TOY: dict[str, tuple[str, float, int | None, str]] = {
    "moons": ("classification", 0.2, 2, "two interleaving half circles (noise = Gaussian jitter)"),
    "circles": ("classification", 0.1, 2, "a small circle inside a large one (noise = Gaussian jitter)"),
    "blobs": ("classification", 1.0, None, "K Gaussian blobs (noise = cluster standard deviation)"),
    "spirals": ("classification", 0.1, None, "K interleaved spiral arms (noise = Gaussian jitter)"),
    "xor": ("classification", 0.15, 2, "the four quadrants, opposite ones share a class (noise = jitter)"),
    "gaussian_quantiles": (
        "classification",
        0.1,
        None,
        "K concentric shells of one Gaussian (noise = jitter)",
    ),
    "checkerboard": ("classification", 0.05, 2, "a 4x4 checkerboard on [-2, 2]^2 (noise = jitter)"),
    "sine": ("regression", 0.1, None, "y = sin(x) + Gaussian noise; label_noise = fraction of outliers"),
    "line": (
        "regression",
        0.3,
        None,
        "y = 0.5x + 1 + noise * Student-t(2) (heavy tails); label_noise = outliers",
    ),
}
_REAL: dict[str, tuple[Callable[..., object], str]] = {
    "iris": (skdata.load_iris, "Fisher's iris: 150 flowers, 4 measurements, 3 species"),
    "wine": (skdata.load_wine, "UCI wine: 178 wines, 13 chemical measurements, 3 cultivars"),
    "breast_cancer": (
        skdata.load_breast_cancer,
        "Wisconsin breast cancer: 569 tumours, 30 features, 2 classes",
    ),
    "digits": (skdata.load_digits, "UCI handwritten digits: 1797 8x8 images, 10 classes"),
}
DATASETS: dict[str, str] = {**{k: v[3] for k, v in _TOY.items()}, **{k: v[1] for k, v in _REAL.items()}}
REGRESSION_DATASETS: tuple[str, ...] = tuple(k for k, v in _TOY.items() if v[0] == "regression")


def default_noise(name: str) -> float:
    """The input noise a toy generator uses when none is given; ValueError for other names."""
    if name not in _TOY:
        raise ValueError(f"default_noise is defined for the toy sets {sorted(_TOY)}, got {name!r}")
    return _TOY[name][1]


def is_toy(name: str) -> bool:
    """Whether a dataset is one of the generated toy sets (its size and noise are choices)."""
    return name in _TOY


def size_of(name: str) -> int:
    """The number of rows of a bundled real dataset; ValueError for other names."""
    if name not in _REAL:
        raise ValueError(f"size_of is defined for the real sets {sorted(_REAL)}, got {name!r}")
    if name not in _REAL_SIZES:
        _REAL_SIZES[name] = len(_REAL[name][0]().target)  # type: ignore[attr-defined]
    return _REAL_SIZES[name]


_REAL_SIZES: dict[str, int] = {}

_DEFAULT_N = 500


def _seeds(seed: int) -> tuple[int, int, int, int]:
    """Independent seeds for (generation, split, imbalance, label noise): the clean data never depends on
    label_noise or imbalance, so sweeping them compares the same points."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    children = np.random.SeedSequence(int(seed)).spawn(4)
    return tuple(int(c.generate_state(1)[0] % (2**31 - 1)) for c in children)  # type: ignore[return-value]


def _split_counts(n: int, k: int) -> list[int]:
    return [n // k + (i < n % k) for i in range(k)]


def _toy_classification(name: str, n: int, noise: float, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, 2), y (n,)) for a 2-D toy set with k balanced classes."""
    rng = np.random.default_rng(seed)
    counts = _split_counts(n, k)
    if name == "moons":
        X, y = skdata.make_moons(n_samples=tuple(counts), noise=noise, random_state=seed)
    elif name == "circles":
        X, y = skdata.make_circles(n_samples=tuple(counts), noise=noise, factor=0.5, random_state=seed)
    elif name == "blobs":
        X, y = skdata.make_blobs(n_samples=counts, cluster_std=noise, center_box=(-5, 5), random_state=seed)
    elif name == "spirals":
        parts = []
        for c, m in enumerate(counts):
            t = rng.uniform(0.0, 1.0, m)
            theta = 2 * np.pi * c / k + 3 * np.pi * t  # 1.5 turns per arm
            parts.append(np.column_stack([2 * t * np.cos(theta), 2 * t * np.sin(theta)]))
        X = np.concatenate(parts) + noise * rng.standard_normal((n, 2))
        y = np.repeat(np.arange(k), counts)
    elif name == "gaussian_quantiles":
        X, y = skdata.make_gaussian_quantiles(n_samples=n, n_features=2, n_classes=k, random_state=seed)
        X = X + noise * rng.standard_normal((n, 2))
    elif name == "xor":
        X = rng.uniform(-1, 1, (n, 2))
        y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
        X = X + noise * rng.standard_normal((n, 2))
    else:  # checkerboard
        X = rng.uniform(-2, 2, (n, 2))
        y = ((np.floor(X[:, 0]) + np.floor(X[:, 1])) % 2).astype(np.int64)
        X = X + noise * rng.standard_normal((n, 2))
    return np.asarray(X, np.float32), np.asarray(y, np.int64)


def _regression_function(name: str, x: np.ndarray) -> np.ndarray:
    return np.sin(x) if name == "sine" else 0.5 * x + 1.0


def _projection(X_train: np.ndarray) -> Projection:
    """PCA to two components fitted on the (standardised) training features."""
    X64 = np.asarray(X_train, np.float64)
    mean = X64.mean(0)
    centred = X64 - mean
    # eigen-decomposition of the small (D, D) covariance: much cheaper than an SVD of the (N, D) data
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(centred))
    order = np.argsort(eigenvalues)[::-1]
    variance = np.clip(eigenvalues[order], 0.0, None)
    vt = eigenvectors[:, order].T  # (D, D) rows = principal directions, largest variance first
    ratio = variance[:2] / max(float(variance.sum()), 1e-30)
    names = (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})")
    return Projection(
        components=vt[:2].astype(np.float32),
        mean=mean.astype(np.float32),
        explained_variance_ratio=ratio,
        axis_names=names,
    )


def _standardise(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = X_train.mean(0), X_train.std(0)
    std = np.where(std > 1e-12, std, 1.0)  # constant columns (digits' border pixels) stay 0
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)


def _imbalance(y: np.ndarray, k: int, ratio: float, seed: int) -> np.ndarray:
    """Indices of a long-tailed subsample: class 0 the majority, class k-1 the minority, n_0 / n_{k-1} = r.

    The minority keeps m = floor(min_class / ratio) samples and the majority round(m * ratio), so the ratio is
    exact whenever m * ratio is a whole number (always for integer ratios).
    """
    rng = np.random.default_rng(seed)
    available = np.bincount(y, minlength=k)
    m = int(available.min() // ratio)
    if m < 1:
        raise ValueError(
            f"imbalance {ratio:g} needs at least {math.ceil(ratio)} training samples per class, "
            f"the smallest class has {available.min()}; use more samples or a smaller ratio"
        )
    keep = []
    for c in range(k):
        target = m if c == k - 1 else round(m * ratio ** ((k - 1 - c) / (k - 1)))
        idx = np.flatnonzero(y == c)
        keep.append(np.sort(rng.choice(idx, size=min(target, len(idx)), replace=False)))
    return np.concatenate(keep)


def _check_common(test_fraction: float, label_noise: float, noise_kind: str, imbalance: float) -> None:
    if not (0.05 <= test_fraction <= 0.9):
        raise ValueError(f"test_fraction must be in [0.05, 0.9], got {test_fraction!r}")
    if not (0.0 <= label_noise < 1.0):
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise!r}")
    if noise_kind not in ALL_NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {list(ALL_NOISE_KINDS)}, got {noise_kind!r}")
    if not (math.isfinite(imbalance) and imbalance >= 1.0):
        raise ValueError(f"imbalance must be a finite ratio >= 1 (majority:minority), got {imbalance!r}")


def _finish_classification(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: tuple[str, ...],
    class_names: tuple[str, ...],
    *,
    seed: int,
    test_fraction: float,
    label_noise: float,
    noise_kind: NoiseKind,
    imbalance: float,
    standardise: bool,
    notes: tuple[str, ...] = (),
    transition: Transition = (),
) -> Dataset:
    """Stratified split, standardisation, imbalance and label noise on the training split, PCA view."""
    _, split_seed, imbalance_seed, noise_seed = _seeds(seed)
    k = len(class_names)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    notes = list(notes)
    if standardise:
        X_train, X_test = _standardise(X_train, X_test)
        notes.append("features standardised with the training split's mean and standard deviation")
    if imbalance > 1.0:
        keep = _imbalance(y_train, k, imbalance, imbalance_seed)
        X_train, y_train = X_train[keep], y_train[keep]
        notes.append(
            f"training split subsampled to {imbalance:g}:1 (class 0 : class {k - 1}); test set balanced"
        )
    y_noisy = corrupt_labels(
        y_train, k, label_noise, noise_kind, noise_seed, dataset=name, X=X_train, transition=transition
    )
    if label_noise > 0:
        notes.append(
            f"{int((y_noisy != y_train).sum())} training labels flipped ({noise_kind}); test labels clean"
        )
    return Dataset(
        name=name,
        task="binary" if k == 2 else "multiclass",
        X_train=np.ascontiguousarray(X_train, np.float32),
        y_train=y_noisy,
        y_train_clean=np.asarray(y_train, np.int64),
        noisy_mask=y_noisy != y_train,
        X_test=np.ascontiguousarray(X_test, np.float32),
        y_test=np.asarray(y_test, np.int64),
        feature_names=tuple(feature_names),
        class_names=tuple(class_names),
        n_classes=k,
        projection=_projection(X_train) if X.shape[1] > 2 else None,
        notes=tuple(notes),
    )


def _make_regression(
    name: str, n: int, noise: float, seed: int, test_fraction: float, label_noise: float
) -> Dataset:
    gen_seed, split_seed, _, noise_seed = _seeds(seed)
    rng = np.random.default_rng(gen_seed)
    n_test = max(1, round(test_fraction * n))
    n_train = n - n_test
    x_train = rng.uniform(-3, 3, n_train)
    base = rng.standard_normal(n_train) if name == "sine" else rng.standard_t(2.0, n_train)
    y_clean = _regression_function(name, x_train) + noise * base
    x_test = np.sort(np.random.default_rng(split_seed).uniform(-3, 3, n_test))
    # outliers: exactly round(label_noise * N) targets pushed up by 2.5..5, all on one side so that the
    # squared loss's fit is visibly dragged while bounded-influence losses ignore them
    noise_rng = np.random.default_rng(noise_seed)
    count = round(label_noise * n_train)
    outliers = noise_rng.choice(n_train, size=count, replace=False)
    y = y_clean.copy()
    y[outliers] += noise_rng.uniform(2.5, 5.0, count)
    mask = np.zeros(n_train, bool)
    mask[outliers] = True
    notes = ["test targets are the noise-free function"]
    if count:
        notes.append(f"{count} training targets replaced by outliers (shifted up by 2.5 to 5)")
    return Dataset(
        name=name,
        task="regression",
        X_train=x_train[:, None].astype(np.float32),
        y_train=y.astype(np.float32),
        y_train_clean=y_clean.astype(np.float32),
        noisy_mask=mask,
        X_test=x_test[:, None].astype(np.float32),
        y_test=_regression_function(name, x_test).astype(np.float32),
        feature_names=("x",),
        class_names=(),
        n_classes=0,
        notes=tuple(notes),
    )


def make_dataset(
    name: str,
    n: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    label_noise: float = 0.0,
    noise_kind: NoiseKind = "symmetric",
    imbalance: float = 1.0,
    *,
    n_classes: int | None = None,
    transition: Transition = (),
) -> Dataset:
    """A train/test split of a toy or bundled real dataset, with optional label noise and class imbalance.

    n: total samples before the split (toy default 500; real sets default to all their rows, a smaller n
    subsamples them stratified). noise: the generator's noise (see DATASETS; None = its default; real sets
    take none). n_classes: for blobs, spirals and gaussian_quantiles (default 3). imbalance r > 1 subsamples
    the training split to a long-tailed profile with class 0 : class K-1 = r; the test set stays balanced.
    label_noise flips exactly round(rate * n_train) training labels (see corrupt_labels; noise_kind
    "transition" applies the row-stochastic matrix transition at that rate); for regression it is the fraction
    of outliers. Real sets are standardised with the training split's statistics and, when
    they have more than two features, carry a PCA projection fitted on the training split for 2-D views.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
    _check_common(test_fraction, label_noise, noise_kind, imbalance)
    gen_seed = _seeds(seed)[0]
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 20):
        raise ValueError(f"n must be an integer >= 20, got {n!r}")
    if noise is not None and not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")

    if name in _REAL:
        if noise:
            raise ValueError(
                f"noise applies to generated datasets only; {name} is real data, got noise={noise!r}"
            )
        if n_classes is not None:
            raise ValueError(
                f"{name} has a fixed number of classes; n_classes must be None, got {n_classes!r}"
            )
        loader, description = _REAL[name]
        bunch = loader()
        X, y = np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64)
        if n is not None:
            if n > len(y):
                raise ValueError(f"{name} has {len(y)} samples, n must be <= {len(y)}, got {n}")
            if n < len(y):
                X, _, y, _ = train_test_split(X, y, train_size=n, random_state=gen_seed, stratify=y)
        feature_names = tuple(str(f) for f in bunch.feature_names)
        class_names = tuple(str(c) for c in bunch.target_names)
        return _finish_classification(
            name,
            X,
            y,
            feature_names,
            class_names,
            seed=seed,
            test_fraction=test_fraction,
            label_noise=label_noise,
            noise_kind=noise_kind,
            imbalance=imbalance,
            standardise=True,
            notes=(description,),
            transition=transition,
        )

    kind, default_noise, fixed_k, _ = _TOY[name]
    n = _DEFAULT_N if n is None else int(n)
    noise = default_noise if noise is None else float(noise)
    if kind == "regression":
        if imbalance != 1.0:
            raise ValueError(
                f"imbalance applies to classification datasets only, got imbalance={imbalance!r}"
            )
        if n_classes is not None:
            raise ValueError(f"{name} is a regression dataset; n_classes must be None, got {n_classes!r}")
        return _make_regression(name, n, noise, seed, test_fraction, label_noise)
    if fixed_k is not None:
        if n_classes not in (None, fixed_k):
            raise ValueError(
                f"{name} has {fixed_k} classes; n_classes must be None or {fixed_k}, got {n_classes!r}"
            )
        k = fixed_k
    else:
        k = 3 if n_classes is None else n_classes
        if not isinstance(k, (int, np.integer)) or not (2 <= k <= 10):
            raise ValueError(f"n_classes must be an integer in [2, 10], got {n_classes!r}")
    if n < 10 * k:
        raise ValueError(f"n must be at least 10 per class ({10 * k} for {k} classes), got {n}")
    X, y = _toy_classification(name, n, noise, int(k), gen_seed)
    return _finish_classification(
        name,
        X,
        y,
        ("x1", "x2"),
        tuple(f"class {c}" for c in range(k)),
        seed=seed,
        test_fraction=test_fraction,
        label_noise=label_noise,
        noise_kind=noise_kind,
        imbalance=imbalance,
        standardise=False,
        transition=transition,
    )


# ----------------------------------------------------------------------------------------------- CSV upload

_MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}
# C0 control characters other than tab, line feed, vertical tab, form feed and carriage return: text files
# do not hold them, binary ones do (the heuristic of file(1)); NUL would also stop the csv module.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")
_HEADER_BYTES = 65536  # csv_header reads at most this much of the file


def _control_character(text: str) -> str | None:
    """Where the first control character that text files do not hold is, for a message; None if none."""
    found = _CONTROL.search(text)
    return None if found is None else f"0x{ord(found.group()):02x} at character {found.start()}"


def _csv_reader(text: str) -> Iterator[list[str]]:
    """Rows of CSV text in its sniffed dialect (comma, semicolon or tab); CR, LF and CRLF all end a line."""
    # the Sniffer splits its sample on "\n" only: normalise an old-Mac (CR-only) sample before sniffing
    sample = text[:4096].replace("\r\n", "\n").replace("\r", "\n")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # newline="": lines split at any of CR, LF, CRLF, left untranslated, as the csv module expects
    return csv.reader(io.StringIO(text, newline=""), dialect)


def _non_blank(rows: Iterator[list[str]]) -> Iterator[list[str]]:
    return (r for r in rows if any(cell.strip() for cell in r))


def csv_header(content: bytes) -> list[str]:
    """The column names in a CSV's header row (for a target picker); [] when no header can be read."""
    head = bytes(content[:_HEADER_BYTES])
    text = None
    # a multi-byte character cut by the read limit is not an error: drop its first bytes
    for cut in range(4 if len(content) > _HEADER_BYTES else 1):
        try:
            text = head[: len(head) - cut].decode("utf-8-sig")
            break
        except UnicodeDecodeError:
            continue
    if text is None or _control_character(text) is not None:
        return []  # not UTF-8 text, or binary content: load_csv would refuse it whatever the header says
    try:
        first = next(_non_blank(_csv_reader(text)), [])
    except csv.Error:  # e.g. a header field longer than the csv module's field limit
        return []
    return [cell.strip() for cell in first if cell.strip()]


def _read_bytes(
    source: bytes | bytearray | str | os.PathLike[str] | IO[bytes] | IO[str], max_bytes: int
) -> bytes:
    """At most max_bytes + 1 bytes from a path, raw bytes, or a file-like object (e.g. a Streamlit upload)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        size = os.path.getsize(source)
        if size > max_bytes:
            raise ValueError(f"the file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
        with open(source, "rb") as fh:
            data = fh.read(max_bytes + 1)
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
    else:
        raise ValueError(f"expected CSV bytes, a path or a file object, got {type(source).__name__}")
    if len(data) > max_bytes:
        raise ValueError(
            f"the file is larger than {max_bytes / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB"
        )
    return data


def _parse_number(text: str) -> float:
    """float(text), NaN for a missing-value marker; ValueError for anything else."""
    stripped = text.strip()
    if stripped.lower() in _MISSING:
        return math.nan
    return float(stripped)


def load_csv(
    file_or_bytes: bytes | bytearray | str | os.PathLike[str] | IO[bytes] | IO[str],
    target: str,
    task: CsvTask = "auto",
    *,
    max_rows: int = 5000,
    max_cols: int = 50,
    max_bytes: int = 5_000_000,
    max_classes: int = 20,
    test_fraction: float = 0.3,
    seed: int = 0,
    label_noise: float = 0.0,
    noise_kind: NoiseKind = "symmetric",
    imbalance: float = 1.0,
    name: str = "csv",
    transition: Transition = (),
) -> Dataset:
    """A Dataset from a CSV with a header row: `target` names the label column, the others are features.

    task="auto" makes a classification task when the target is non-numeric or holds at most max_classes
    distinct integers, regression otherwise. Rows with missing values are dropped (counted in notes);
    features are standardised (and a regression target too) with the training split's statistics.
    ValueError messages name the offending column, row and value.
    """
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"task must be one of ['auto', 'classification', 'regression'], got {task!r}")
    _check_common(test_fraction, label_noise, noise_kind, imbalance)
    raw = _read_bytes(file_or_bytes, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"the file is not UTF-8 text (undecodable byte at position {err.start})") from None
    if not text.strip():
        raise ValueError("the file is empty")
    control = _control_character(text)
    if control is not None:
        raise ValueError(
            f"the file is not CSV text: it holds a control character ({control}), as binary files do"
        )
    try:
        rows = list(_non_blank(_csv_reader(text)))
    except csv.Error as err:  # e.g. a field longer than the csv module's limit (an unclosed quote)
        raise ValueError(f"the file could not be read as CSV: {err}") from None
    if not rows:
        raise ValueError("the file has no row with a value; the first row must be a header")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if len(header) > max_cols:
        raise ValueError(f"the file has {len(header)} columns; the limit is {max_cols}")
    if len(body) > max_rows:
        raise ValueError(f"the file has {len(body)} data rows; the limit is {max_rows}")
    if any(not h for h in header):
        raise ValueError(f"column {header.index('') + 1} has an empty name; the first row must be a header")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ValueError(f"duplicate column names in the header: {', '.join(duplicates)}")
    if target not in header:
        raise ValueError(f"target column {target!r} not found; the columns are: {', '.join(header)}")
    if len(header) < 2:
        raise ValueError(f"need at least one feature column besides the target {target!r}")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(f"row {i + 2} has {len(r)} fields but the header has {len(header)}")

    t_col = header.index(target)
    features = [h for h in header if h != target]
    feature_idx = [header.index(h) for h in features]
    X = np.empty((len(body), len(features)), np.float64)
    for j, c in enumerate(feature_idx):
        for i, r in enumerate(body):
            try:
                X[i, j] = _parse_number(r[c])
            except ValueError:
                raise ValueError(
                    f"column {header[c]!r} is not numeric: {r[c].strip()!r} in row {i + 2}; "
                    "encode it as numbers or remove the column"
                ) from None
            if math.isinf(X[i, j]):
                raise ValueError(
                    f"column {header[c]!r} has an infinite value {r[c].strip()!r} in row {i + 2}"
                )
    labels = [r[t_col].strip() for r in body]
    missing_target = np.array([s.lower() in _MISSING for s in labels], bool)
    complete = ~np.isnan(X).any(1) & ~missing_target
    dropped = int((~complete).sum())
    X = X[complete]
    labels = [s for s, ok in zip(labels, complete, strict=True) if ok]
    notes = [f"dropped {dropped} rows with missing values"] if dropped else []
    if len(labels) < 10:
        raise ValueError(
            f"need at least 10 complete rows, got {len(labels)} (after dropping {dropped} with missing "
            "values)"
        )

    numeric: np.ndarray | None
    try:
        numeric = np.array([float(s) for s in labels], np.float64)
        if not np.isfinite(numeric).all():
            raise ValueError(f"target column {target!r} has an infinite value")
    except ValueError as err:
        if "infinite" in str(err):
            raise
        numeric = None
    distinct = sorted(set(labels))
    if task == "auto":
        integer_like = numeric is not None and bool(np.all(numeric == np.round(numeric)))
        task = (
            "classification"
            if numeric is None or (integer_like and len(set(numeric)) <= max_classes)
            else "regression"
        )
    if task == "regression":
        if numeric is None:
            bad = next(s for s in labels if not _is_float(s))
            raise ValueError(
                f"target column {target!r} is not numeric ({bad!r}); choose task='classification'"
            )
        return _finish_csv_regression(
            name, X, numeric, tuple(features), seed, test_fraction, label_noise, notes
        )

    if numeric is not None:  # numeric class labels: order by value, name by the value as written
        values = sorted(set(numeric.tolist()))
        class_names = tuple(_format_number(v) for v in values)
        y = np.searchsorted(np.array(values), numeric).astype(np.int64)
    else:
        class_names = tuple(distinct)
        y = np.array([distinct.index(s) for s in labels], np.int64)
    if len(class_names) < 2:
        raise ValueError(f"target column {target!r} has a single class ({class_names[0]!r}); need at least 2")
    if len(class_names) > max_classes:
        raise ValueError(
            f"target column {target!r} has {len(class_names)} distinct values; a class target may have "
            f"at most {max_classes} (choose task='regression' for a numeric target)"
        )
    counts = np.bincount(y, minlength=len(class_names))
    if counts.min() < 2:
        rare = class_names[int(counts.argmin())]
        raise ValueError(
            f"class {rare!r} of target column {target!r} has only 1 row; each class needs at least 2"
        )
    return _finish_classification(
        name,
        X,
        y,
        tuple(features),
        class_names,
        seed=seed,
        test_fraction=test_fraction,
        label_noise=label_noise,
        noise_kind=noise_kind,
        imbalance=imbalance,
        standardise=True,
        notes=tuple(notes),
        transition=transition,
    )


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _finish_csv_regression(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: tuple[str, ...],
    seed: int,
    test_fraction: float,
    label_noise: float,
    notes: list[str],
) -> Dataset:
    if label_noise:
        raise ValueError(f"label_noise applies to classification targets only, got {label_noise!r}")
    _, split_seed, _, _ = _seeds(seed)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=split_seed
    )
    X_train, X_test = _standardise(X_train, X_test)
    mean, std = float(y_train.mean()), float(y_train.std()) or 1.0
    y_train, y_test = ((y_train - mean) / std).astype(np.float32), ((y_test - mean) / std).astype(np.float32)
    notes = [*notes, "features standardised", f"target standardised: (y - {mean:.4g}) / {std:.4g}"]
    return Dataset(
        name=name,
        task="regression",
        X_train=X_train,
        y_train=y_train,
        y_train_clean=y_train.copy(),
        noisy_mask=np.zeros(len(y_train), bool),
        X_test=X_test,
        y_test=y_test,
        feature_names=feature_names,
        class_names=(),
        n_classes=0,
        projection=_projection(X_train) if X.shape[1] > 2 else None,
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------------------------- views

AugmentKind = Literal["points", "jitter", "rotation", "noise", "digits"]
AUGMENTATIONS: tuple[str, ...] = ("points", "jitter", "rotation", "noise", "digits")
MAX_AUGMENT = 4.0  # the strongest views: points rotated by up to ±60°, digits shifted by up to 4 pixels
# per unit of strength: small enough that a view stays near its instance on every toy set
_JITTER = 0.1  # points: distance from the centre scaled by a factor in [1 - 0.1, 1 + 0.1]
_ROTATION = math.pi / 12  # points: ±15° about the centre
_NOISE = 0.1  # points: Gaussian noise σ in feature units (the toys and the standardised sets are unit-scale)
_SHIFT = 1.0  # digits: pixels along each axis
_SCALE = 0.1  # digits: zoom factor in [1 - 0.1, 1 + 0.1]
_TILT = math.pi / 18  # digits: ±10° about the image centre


def augmentation_for(data: Dataset) -> AugmentKind:
    """The augmentation a dataset's views use: affine jitter of the 8x8 digits, point jitter otherwise."""
    return "digits" if data.name == "digits" and data.n_features == 64 else "points"


def augment(
    X: np.ndarray,
    kind: AugmentKind,
    generator: np.random.Generator | int,
    strength: float = 1.0,
    *,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """One random view (N, D) float32 of every row of X (N, D); strength 0 returns an unchanged copy.

    points (any D): each point's distance from centre scaled by a factor in 1 ± 0.1s (jitter), a rotation
    about centre by an angle in ±15°·s within a random plane (the plane itself when D = 2), and Gaussian
    noise of σ = 0.1s; "jitter", "rotation" and "noise" apply one of the three alone. digits (D = 64, 8x8
    images row-major): per image a shift of up to s pixels along each axis, a zoom of 1 ± 0.1s and a rotation
    of ±10°·s about the image centre, resampled bilinearly with the edges clamped, so every output pixel is
    a convex combination of the image's own pixels. generator: a numpy Generator, or an int seed (same seed,
    same views). centre (D,): the point rotations and scalings fix; the origin by default.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"kind must be one of {list(AUGMENTATIONS)}, got {kind!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)):
        raise ValueError(f"strength must be a number in [0, {MAX_AUGMENT:g}], got {strength!r}")
    if not (math.isfinite(strength) and 0.0 <= strength <= MAX_AUGMENT):
        raise ValueError(f"strength must be a number in [0, {MAX_AUGMENT:g}], got {strength!r}")
    if not isinstance(generator, np.random.Generator) and (
        isinstance(generator, bool) or not isinstance(generator, (int, np.integer)) or generator < 0
    ):
        raise ValueError(f"generator must be a numpy Generator or an integer seed >= 0, got {generator!r}")
    X = np.asarray(X)
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be a numeric (N, D) array, got shape {X.shape} and dtype {X.dtype}")
    if kind == "digits" and X.shape[1] != 64:
        raise ValueError(f"kind 'digits' takes 8x8 images as (N, 64) rows, got shape {X.shape}")
    c = np.zeros(X.shape[1]) if centre is None else np.asarray(centre, np.float64)
    if c.shape != (X.shape[1],) or not np.isfinite(c).all():
        raise ValueError(f"centre must be a finite ({X.shape[1]},) point, got shape {c.shape}")
    if strength == 0 or len(X) == 0:
        return X.astype(np.float32, copy=True)
    rng = np.random.default_rng(generator)  # a Generator passes through: its stream advances
    X64 = X.astype(np.float64)
    if kind == "digits":
        return _affine_digits(X64, rng, float(strength)).astype(np.float32)
    return _jitter_points(X64, kind, rng, float(strength), c).astype(np.float32)


def _jitter_points(X: np.ndarray, kind: str, rng: np.random.Generator, s: float, c: np.ndarray) -> np.ndarray:
    n, d = X.shape
    out = X - c  # (N, D) about the centre
    if kind in ("points", "jitter"):
        out = out * rng.uniform(1 - _JITTER * s, 1 + _JITTER * s, (n, 1))
    if kind in ("points", "rotation") and d >= 2:
        out = _rotate(out, rng.uniform(-_ROTATION * s, _ROTATION * s, n), rng)
    if kind in ("points", "noise"):
        out = out + _NOISE * s * rng.standard_normal((n, d))
    return out + c


def _rotate(X: np.ndarray, angles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row turned by its angle within a plane span(u, v): the coordinate plane for D = 2, else random."""
    n, d = X.shape
    if d == 2:
        u, v = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    else:
        g = rng.standard_normal((2, n, d))
        u = g[0] / np.linalg.norm(g[0], axis=1, keepdims=True)
        w = g[1] - (g[1] * u).sum(1, keepdims=True) * u
        v = w / np.linalg.norm(w, axis=1, keepdims=True)
    a, b = (X * u).sum(1, keepdims=True), (X * v).sum(1, keepdims=True)  # (N, 1) in-plane coordinates
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    # (a, b) -> (a cos - b sin, a sin + b cos); the component outside the plane is unchanged
    return X + (cos - 1) * (a * u + b * v) + sin * (a * v - b * u)


def _affine_digits(X: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    n = len(X)
    shift = rng.uniform(-_SHIFT * s, _SHIFT * s, (n, 2))  # (N, 2) rows, columns
    zoom = rng.uniform(1 - _SCALE * s, 1 + _SCALE * s, (n, 1))
    angle = rng.uniform(-_TILT * s, _TILT * s, (n, 1))
    rows, cols = np.divmod(np.arange(64), 8)
    # output pixel p reads the source at q = R(-angle) (p - centre - shift) / zoom + centre  # (N, 64) each
    dr, dc = rows[None] - 3.5 - shift[:, :1], cols[None] - 3.5 - shift[:, 1:]
    cos, sin = np.cos(angle), np.sin(angle)
    src_r = np.clip((cos * dr + sin * dc) / zoom + 3.5, 0.0, 7.0)
    src_c = np.clip((-sin * dr + cos * dc) / zoom + 3.5, 0.0, 7.0)
    r0 = np.minimum(np.floor(src_r), 6.0)
    c0 = np.minimum(np.floor(src_c), 6.0)
    fr, fc = src_r - r0, src_c - c0  # in [0, 1]
    top_left = (r0 * 8 + c0).astype(np.int64)  # (N, 64) flat index of the upper-left neighbour

    def at(offset: int) -> np.ndarray:
        return np.take_along_axis(X, top_left + offset, axis=1)

    return (1 - fr) * ((1 - fc) * at(0) + fc * at(1)) + fr * ((1 - fc) * at(8) + fc * at(9))
