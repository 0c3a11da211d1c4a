"""Tests for lossviz.data: determinism, exact label noise and imbalance, real sets, CSV error messages."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn import datasets as skdata

from lossviz.data import (
    DATASETS,
    REGRESSION_DATASETS,
    augment,
    augmentation_for,
    corrupt_labels,
    csv_header,
    load_csv,
    make_dataset,
)

CLASSIFICATION = [d for d in DATASETS if d not in REGRESSION_DATASETS]
ARRAYS = ("X_train", "y_train", "y_train_clean", "noisy_mask", "X_test", "y_test")


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ARRAYS)


@pytest.mark.parametrize("name", list(DATASETS))
def test_deterministic_per_seed_and_well_formed(name: str) -> None:
    kwargs = {"label_noise": 0.2} if name != "digits" else {"label_noise": 0.2, "n": 300}
    a = make_dataset(name, seed=3, **kwargs)
    b = make_dataset(name, seed=3, **kwargs)
    c = make_dataset(name, seed=4, **kwargs)
    assert _same(a, b)
    assert not _same(a, c)
    assert a.X_train.dtype == np.float32 and a.X_test.dtype == np.float32
    assert a.X_train.shape[1] == a.X_test.shape[1] == len(a.feature_names) == a.n_features
    assert len(a.y_train) == len(a.X_train) == len(a.noisy_mask) == len(a.y_train_clean)
    assert np.isfinite(a.X_train).all() and np.isfinite(a.X_test).all()
    if a.task == "regression":
        assert a.n_classes == 0 and a.class_names == ()
    else:
        assert a.task == ("binary" if a.n_classes == 2 else "multiclass")
        assert len(a.class_names) == a.n_classes
        assert set(np.unique(a.y_test)) == set(range(a.n_classes))
        assert a.y_train.dtype == np.int64
    assert (a.projection is not None) == (a.n_features > 2)
    clean = make_dataset(name, seed=3, **{**kwargs, "label_noise": 0.0})
    assert not clean.noisy_mask.any() and np.array_equal(clean.y_train, clean.y_train_clean)
    assert a.view_2d(a.X_test).shape == (len(a.X_test), 2)


@pytest.mark.parametrize("name", CLASSIFICATION)
@pytest.mark.parametrize("kind", ["symmetric", "pair", "asymmetric"])
@pytest.mark.parametrize("rate", [0.13, 0.4])
def test_label_noise_rate_and_mask_exact(name: str, kind: str, rate: float) -> None:
    data = make_dataset(name, seed=1, label_noise=rate, noise_kind=kind)
    n_train = len(data.y_train)
    assert data.noisy_mask.sum() == round(rate * n_train)
    np.testing.assert_array_equal(data.noisy_mask, data.y_train != data.y_train_clean)
    # the clean data do not depend on the noise: same points, same clean labels as without noise
    clean = make_dataset(name, seed=1)
    np.testing.assert_array_equal(clean.X_train, data.X_train)
    np.testing.assert_array_equal(clean.y_train, data.y_train_clean)
    np.testing.assert_array_equal(clean.y_test, data.y_test)
    flipped_from, flipped_to = data.y_train_clean[data.noisy_mask], data.y_train[data.noisy_mask]
    k = data.n_classes
    if kind == "pair":
        np.testing.assert_array_equal(flipped_to, (flipped_from + 1) % k)
    elif kind == "asymmetric":
        if name == "digits":
            mapping = {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}
            np.testing.assert_array_equal(flipped_to, [mapping[c] for c in flipped_from])
        else:
            np.testing.assert_array_equal(flipped_to, flipped_from - 1)
            assert not (flipped_from == 0).any()


def test_symmetric_noise_spreads_over_the_other_classes() -> None:
    y = np.repeat(np.arange(4), 2500)
    noisy = corrupt_labels(y, 4, 0.5, "symmetric", seed=0)
    flipped = noisy != y
    assert flipped.sum() == 5000
    # from class 0 the flips land on 1, 2, 3 about equally (each ~1/3 of ~1250)
    targets = np.bincount(noisy[flipped & (y == 0)], minlength=4)
    assert targets[0] == 0
    assert np.all(np.abs(targets[1:] / targets[1:].sum() - 1 / 3) < 0.06)


def test_asymmetric_noise_too_high_raises() -> None:
    with pytest.raises(ValueError, match="source classes"):
        make_dataset("moons", label_noise=0.6, noise_kind="asymmetric")


@pytest.mark.parametrize(
    ("name", "k", "ratio"), [("moons", 2, 20.0), ("blobs", 4, 10.0), ("digits", 10, 5.0)]
)
def test_imbalance_ratio_exact_and_test_balanced(name: str, k: int, ratio: float) -> None:
    kwargs = {"n": 2000} if name != "digits" else {}
    if name == "blobs":
        kwargs["n_classes"] = k
    data = make_dataset(name, seed=0, imbalance=ratio, **kwargs)
    counts = np.bincount(data.y_train_clean, minlength=k)
    assert counts[0] == ratio * counts[-1]
    assert counts[0] == counts.max() and counts[-1] == counts.min()
    assert np.all(np.diff(counts) <= 0), counts  # long-tailed, non-increasing
    balanced = make_dataset(name, seed=0, **kwargs)
    np.testing.assert_array_equal(data.y_test, balanced.y_test)  # the test set is untouched


def test_imbalance_then_noise_counts_on_the_subsampled_split() -> None:
    data = make_dataset("moons", n=2000, seed=0, imbalance=20, label_noise=0.1)
    assert data.noisy_mask.sum() == round(0.1 * len(data.y_train))


def test_real_sets_standardised_and_projected() -> None:
    data = make_dataset("wine", seed=0)
    np.testing.assert_allclose(data.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(0), 1, atol=1e-4)
    assert len(data.X_train) + len(data.X_test) == len(skdata.load_wine().target)
    proj = data.projection
    assert proj is not None
    assert proj.axis_names[0].startswith("PC1 (") and proj.axis_names[0].endswith("%)")
    # against an independent PCA: same explained variance, same components up to sign
    centred = data.X_train - data.X_train.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred.T, bias=True))
    top = eigenvectors[:, ::-1][:, :2].T
    np.testing.assert_allclose(np.abs(np.sum(top * proj.components, 1)), 1, atol=1e-4)
    np.testing.assert_allclose(
        proj.explained_variance_ratio, eigenvalues[::-1][:2] / eigenvalues.sum(), rtol=1e-4
    )
    # inverse_transform maps plane coordinates back onto the plane
    z = proj.transform(data.X_test[:5])
    np.testing.assert_allclose(proj.transform(proj.inverse_transform(z)), z, atol=1e-4)


def test_digits_pixels_match_sklearn_and_constant_pixels_stay_finite() -> None:
    data = make_dataset("digits", seed=0)
    assert data.n_classes == 10 and data.n_features == 64
    assert data.class_names == tuple(str(i) for i in range(10))
    assert np.isfinite(data.X_train).all()


def test_regression_outliers_exact() -> None:
    data = make_dataset("sine", n=300, seed=2, label_noise=0.2)
    assert data.task == "regression"
    assert data.noisy_mask.sum() == round(0.2 * len(data.y_train))
    shift = data.y_train - data.y_train_clean
    assert np.all(shift[data.noisy_mask] >= 2.5) and np.all(shift[~data.noisy_mask] == 0)
    np.testing.assert_allclose(data.y_test, np.sin(data.X_test[:, 0]), atol=1e-6)
    line = make_dataset("line", seed=0)
    np.testing.assert_allclose(line.y_test, 0.5 * line.X_test[:, 0] + 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mnist"}, "dataset must be one of"),
        ({"name": "moons", "test_fraction": 0.0}, "test_fraction"),
        ({"name": "moons", "label_noise": 1.0}, r"label_noise must be in \[0, 1\)"),
        ({"name": "moons", "noise_kind": "random"}, "noise_kind must be one of"),
        ({"name": "moons", "imbalance": 0.5}, "imbalance must be"),
        ({"name": "moons", "n": 5}, "n must be an integer >= 20"),
        ({"name": "moons", "n_classes": 3}, "moons has 2 classes"),
        ({"name": "spirals", "n_classes": 1}, "n_classes must be an integer in"),
        ({"name": "iris", "noise": 0.3}, "noise applies to generated datasets only"),
        ({"name": "iris", "n": 1000}, "iris has 150 samples"),
        ({"name": "sine", "imbalance": 2.0}, "imbalance applies to classification"),
        ({"name": "moons", "n": 40, "imbalance": 50.0}, "imbalance 50 needs"),
        ({"name": "moons", "seed": -1}, "seed must be"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_dataset(**kwargs)


# ----------------------------------------------------------------------------------------------------- CSV


def _csv(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


GOOD_ROWS = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(40)]


def test_csv_classification_with_string_labels_and_missing_rows() -> None:
    rows = [*GOOD_ROWS, "1,,yes", "NA,2,no", "3,4,"]
    data = load_csv(_csv(rows), target="label")
    assert data.task == "binary"
    assert data.class_names == ("no", "yes")
    assert data.feature_names == ("a", "b")
    assert len(data.X_train) + len(data.X_test) == 40
    assert "dropped 3 rows with missing values" in data.notes


def test_csv_accepts_file_objects_paths_and_semicolons(tmp_path) -> None:
    raw = _csv(GOOD_ROWS)
    from_bytes = load_csv(raw, "label")
    from_file = load_csv(io.BytesIO(raw), "label")
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    from_path = load_csv(path, "label")
    semicolons = load_csv(raw.replace(b",", b";"), "label")
    for other in (from_file, from_path, semicolons):
        assert _same(from_bytes, other)


def test_csv_numeric_targets_auto_task() -> None:
    few = ["x,y"] + [f"{i},{i % 3}" for i in range(30)]
    data = load_csv(_csv(few), "y")
    assert data.task == "multiclass" and data.class_names == ("0", "1", "2")
    many = ["x,y"] + [f"{i},{i * 0.37:.3f}" for i in range(30)]
    reg = load_csv(_csv(many), "y")
    assert reg.task == "regression" and reg.n_classes == 0
    np.testing.assert_allclose(reg.y_train.mean(), 0, atol=0.6)  # standardised with the train statistics
    forced = load_csv(_csv(few), "y", task="regression")
    assert forced.task == "regression"


BAD_CSVS = [
    (b"", {}, "the file is empty"),
    (b"\xff\xfe\x00bad", {}, "not UTF-8"),
    (_csv(GOOD_ROWS), {"target": "colour"}, "target column 'colour' not found; the columns are: a, b, label"),
    (
        _csv(["a,b,label", *[f"{i},red,{i % 2}" for i in range(20)]]),
        {},
        "column 'b' is not numeric: 'red' in row 2",
    ),
    (_csv(["a,b,label", *[f"{i},{i},1" for i in range(20)]]), {}, r"single class \('1'\)"),
    (
        _csv(["a,b,label", *[f"{i},{i},{i}" for i in range(30)]]),
        {"task": "classification"},
        "30 distinct values",
    ),
    (_csv(GOOD_ROWS), {"max_rows": 10}, "the file has 40 data rows; the limit is 10"),
    (_csv(GOOD_ROWS), {"max_cols": 2}, "the file has 3 columns; the limit is 2"),
    (_csv(GOOD_ROWS), {"max_bytes": 100}, "the limit is 0.0 MB"),
    (_csv(["a,a,label", *GOOD_ROWS[1:]]), {}, "duplicate column names in the header: a"),
    (_csv(["a,b,label", "1,2", *GOOD_ROWS[1:]]), {}, "row 2 has 2 fields but the header has 3"),
    (_csv(["a,b,label", *[f"{i},,{i % 2}" for i in range(20)]]), {}, "need at least 10 complete rows, got 0"),
    (_csv(["label", *[str(i % 2) for i in range(20)]]), {}, "need at least one feature column"),
    (_csv(["a,b,label", *[f"{i},inf,{i % 2}" for i in range(20)]]), {}, "column 'b' has an infinite value"),
    (
        _csv(["a,b,label", *[f"{i},{i},{'x' if i else 'y'}" for i in range(20)]]),
        {},
        "class 'y' .* has only 1 row",
    ),
    (
        _csv(["a,b,label", *[f"{i},{i},c{i % 2}" for i in range(20)]]),
        {"task": "regression"},
        "is not numeric",
    ),
]


@pytest.mark.parametrize(("raw", "kwargs", "message"), BAD_CSVS, ids=[m[:30] for _, _, m in BAD_CSVS])
def test_bad_csv_messages(raw: bytes, kwargs: dict, message: str) -> None:
    kwargs = {"target": "label", **kwargs}
    with pytest.raises(ValueError, match=message):
        load_csv(raw, **kwargs)


def _garbage(kind: str, seed: int, n: int = 4000) -> bytes:
    """Content that is not a CSV: os.urandom-like bytes, random ASCII, or random CSV-ish text."""
    rng = np.random.default_rng(seed)
    if kind == "bytes":
        return rng.bytes(n)
    if kind == "ascii":
        return rng.integers(0, 128, n, dtype=np.uint8).tobytes()
    if kind == "rows":  # a header, then 30 rows of 3 random cells: reaches the number parsing
        cells = ["1", "2.5", "0", "", "NA", "inf", "-0", "1e308", "1e999", "x", '"', "é", " 3 "]
        endings = ["\n", "\r", "\r\n"]
        lines = [",".join(cells[i] for i in rng.integers(0, len(cells), 3)) for _ in range(30)]
        return "".join(line + endings[rng.integers(0, 3)] for line in ["a,b,y", *lines]).encode()
    alphabet = [*"0123456789abcy,;\t\"' .-\r\n", "\r\n", "é", "NA", "inf"] + ["\x00"] * (seed % 4 == 0)
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n // 4)).encode()


GARBAGE = [bytes(range(256)) * 20] + [_garbage(k, s) for k in ("bytes", "ascii") for s in range(5)]


@pytest.mark.parametrize(
    "raw", GARBAGE, ids=["all-bytes"] + [f"{k}-{s}" for k in ("bytes", "ascii") for s in range(5)]
)
def test_csv_random_bytes_raise_a_plain_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError) as info:
        load_csv(raw, "y")
    # exactly ValueError: UnicodeDecodeError subclasses it, csv.Error does not, and neither must escape
    assert type(info.value) is ValueError
    assert "UTF-8" in str(info.value) or "control character" in str(info.value)
    assert csv_header(raw) == []


@pytest.mark.parametrize("seed", range(40))
def test_csv_fuzz_either_loads_or_raises_a_plain_value_error(seed: int) -> None:
    text = _garbage("text", seed)
    for raw in (text, b"a,b,y\n" + text, b"a,b,y\r" + text.replace(b"\n", b"\r"), _garbage("rows", seed)):
        try:
            load_csv(raw, "y")
        except ValueError as err:
            assert type(err) is ValueError, repr(err)
        assert isinstance(csv_header(raw), list)  # never raises


def test_csv_control_characters_and_unparseable_fields_are_named() -> None:
    with pytest.raises(ValueError, match="control character \\(0x00 at character 3\\)"):
        load_csv(b"a,b\x00,label\n1,2,3\n", "label")
    with pytest.raises(ValueError, match="could not be read as CSV: field larger than field limit"):
        load_csv(b'a,b,label\n1,"' + b"2" * 200_000 + b"\n", "label")
    with pytest.raises(ValueError, match="no row with a value"):
        load_csv(b",,\n;;;\n,\n".replace(b";", b","), "label")


@pytest.mark.parametrize("ending", ["\r", "\r\n"], ids=["CR-only", "CRLF"])
def test_csv_old_mac_and_windows_line_endings_load_like_lf(ending: str) -> None:
    lf = _csv(GOOD_ROWS)
    other = lf.replace(b"\n", ending.encode())
    assert b"\n" not in other or ending == "\r\n"
    assert _same(load_csv(other, "label"), load_csv(lf, "label"))
    semicolons = lf.replace(b",", b";")
    assert _same(load_csv(semicolons.replace(b"\n", ending.encode()), "label"), load_csv(lf, "label"))
    # the brief's own example: "a,b,y\r1,2,0\r3,4,1\r..."
    rows = ["a,b,y"] + [f"{i},{(i * 3) % 7},{i % 2}" for i in range(20)]
    cr = ("\r".join(rows) + "\r").encode()
    assert _same(load_csv(cr, "y"), load_csv(_csv(rows), "y"))
    assert csv_header(cr) == ["a", "b", "y"]


def test_csv_quoted_fields_keep_their_line_breaks_with_any_ending() -> None:
    rows = ['"first\nfeature",b,label', *GOOD_ROWS[1:]]
    for ending in (b"\n", b"\r", b"\r\n"):
        raw = _csv(rows).replace(b"\n", ending).replace(b"first" + ending, b"first\n")
        assert load_csv(raw, "label").feature_names == ("first\nfeature", "b")
        assert csv_header(raw) == ["first\nfeature", "b", "label"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_csv(GOOD_ROWS), ["a", "b", "label"]),
        (_csv(GOOD_ROWS).replace(b"\n", b"\r"), ["a", "b", "label"]),
        (_csv(GOOD_ROWS).replace(b"\n", b"\r\n"), ["a", "b", "label"]),
        (_csv(GOOD_ROWS).replace(b",", b";"), ["a", "b", "label"]),
        (_csv(GOOD_ROWS).replace(b",", b"\t"), ["a", "b", "label"]),
        ("\ufeff".encode() + _csv([" a , b ,label", *GOOD_ROWS[1:]]), ["a", "b", "label"]),  # BOM, spaces
        (b"\n\n" + _csv(GOOD_ROWS), ["a", "b", "label"]),  # blank lines first, skipped as load_csv does
        (_csv(["x", "1"]), ["x"]),
        (b"", []),
        (b"\n\r\n", []),
        (b"\xff\xfe\x00bad", []),
        (b"a,b\x00,label\n", []),
        (b"a,\x07b,label\n", []),
    ],
    ids=["lf", "cr", "crlf", "semicolon", "tab", "bom", "blank-first", "one", "empty", "blank", "utf16",
         "nul", "bell"],
)  # fmt: skip
def test_csv_header(raw: bytes, expected: list[str]) -> None:
    assert csv_header(raw) == expected


def test_csv_header_reads_64_kib_and_tolerates_a_character_cut_there() -> None:
    # an 11-byte header, then 2-byte characters: byte 65536 falls in the middle of one
    raw = b"ab,c,label\n" + ("é" * 40_000).encode()
    assert len(b"ab,c,label\n") % 2 == 1 and len(raw) > 65536
    assert csv_header(raw) == ["ab", "c", "label"]
    assert csv_header(b"\xff" + raw) == []  # a bad byte elsewhere is still not UTF-8


def test_csv_header_agrees_with_load_csv() -> None:
    raw = _csv(["x1;x2;label", *[r.replace(",", ";") for r in GOOD_ROWS[1:]]]).replace(b"\n", b"\r")
    data = load_csv(raw, csv_header(raw)[-1])
    assert (*data.feature_names, "label") == tuple(csv_header(raw))


def test_default_noise_is_the_generators_default():
    from lossviz.data import default_noise

    explicit = make_dataset("moons", n=200, noise=default_noise("moons"), seed=3)
    implicit = make_dataset("moons", n=200, seed=3)
    np.testing.assert_array_equal(explicit.X_train, implicit.X_train)
    with pytest.raises(ValueError, match="iris"):
        default_noise("iris")


# ----------------------------------------------------------------------------------------------- views


@pytest.mark.parametrize("kind", ["points", "jitter", "rotation", "noise"])
@pytest.mark.parametrize("dim", [2, 5])
def test_point_augmentations_are_seeded_and_keep_shapes(kind: str, dim: int) -> None:
    X = np.random.default_rng(0).normal(size=(50, dim)).astype(np.float32)
    a, b = augment(X, kind, 7), augment(X, kind, np.random.default_rng(7))
    assert a.shape == X.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # an int seed is the Generator it seeds
    assert not np.array_equal(a, augment(X, kind, 8))
    rng = np.random.default_rng(3)
    first, second = augment(X, kind, rng), augment(X, kind, rng)  # a Generator's stream advances
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(augment(X, kind, 7, 0.0), X)  # strength 0: unchanged
    assert np.abs(a - X).max() < 1.5  # small: views stay near their instance


@pytest.mark.parametrize("dim", [2, 3, 6])
def test_rotation_preserves_norms_about_the_centre(dim: int) -> None:
    X = np.random.default_rng(1).normal(size=(200, dim)).astype(np.float32)
    rotated = augment(X, "rotation", 0, 2.0)
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=1), np.linalg.norm(X, axis=1), rtol=1e-5)
    centre = np.array([3.0, -2.0] + [1.0] * (dim - 2))
    about = augment(X, "rotation", 0, 2.0, centre=centre)
    np.testing.assert_allclose(
        np.linalg.norm(about - centre, axis=1), np.linalg.norm(X - centre, axis=1), rtol=1e-5
    )
    if dim == 2:  # within ±30° at strength 2
        cos = (rotated * X).sum(1) / np.linalg.norm(X, axis=1) ** 2
        assert cos.min() >= np.cos(np.pi / 6) - 1e-6


def test_jitter_scales_distances_from_the_centre_by_at_most_ten_percent() -> None:
    X = np.random.default_rng(2).normal(size=(300, 2)).astype(np.float32)
    ratio = np.linalg.norm(augment(X, "jitter", 0), axis=1) / np.linalg.norm(X, axis=1)
    assert ratio.min() >= 0.9 - 1e-6 and ratio.max() <= 1.1 + 1e-6
    directions = augment(X, "jitter", 0) / np.linalg.norm(augment(X, "jitter", 0), axis=1, keepdims=True)
    np.testing.assert_allclose(directions, X / np.linalg.norm(X, axis=1, keepdims=True), atol=1e-5)


def test_digit_views_stay_in_each_images_range_and_move_the_strokes() -> None:
    raw = skdata.load_digits().data[:100].astype(np.float32)  # pixel values 0..16
    views = augment(raw, "digits", 0)
    assert views.shape == raw.shape and views.dtype == np.float32
    assert views.min() >= 0.0 and views.max() <= 16.0
    assert (views.min(1) >= raw.min(1) - 1e-5).all() and (views.max(1) <= raw.max(1) + 1e-5).all()
    np.testing.assert_array_equal(views, augment(raw, "digits", 0))
    assert 0.5 < np.abs(views - raw).mean() < 6  # changed, but still the digit (mean |pixel| is about 5)
    np.testing.assert_allclose(augment(raw, "digits", 0, 1e-6), raw, atol=1e-3)  # tiny strength: identity
    data = make_dataset("digits", n=100, seed=0)
    standardised = augment(data.X_train, "digits", 1)
    assert (standardised.min(1) >= data.X_train.min(1) - 1e-5).all()
    assert (standardised.max(1) <= data.X_train.max(1) + 1e-5).all()


def test_a_shifted_pixel_moves_by_at_most_one_pixel_at_strength_one() -> None:
    image = np.zeros((500, 64), np.float32)
    image[:, 3 * 8 + 4] = 1.0  # one lit pixel at row 3, column 4
    views = augment(image, "digits", 0).reshape(500, 8, 8)
    rows, cols = np.mgrid[0:8, 0:8]
    mass = views.sum((1, 2))
    centre_r = (views * rows).sum((1, 2)) / mass
    centre_c = (views * cols).sum((1, 2)) / mass
    # shift <= 1 pixel per axis, plus the zoom and rotation's pull at 0.5-1 pixel from the image centre
    assert np.abs(centre_r - 3).max() < 1.3 and np.abs(centre_c - 4).max() < 1.3
    assert np.abs(centre_r - 3).max() > 0.5  # it does move


def test_augmentation_for_picks_affine_views_for_digits_only() -> None:
    assert augmentation_for(make_dataset("digits", n=100, seed=0)) == "digits"
    assert augmentation_for(make_dataset("moons", n=40, seed=0)) == "points"
    assert augmentation_for(make_dataset("iris", seed=0)) == "points"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.zeros((4, 2)), "flip", 0), {}, r"kind must be one of \['points', 'jitter'"),
        ((np.zeros((4, 2)), "points", 0, -1.0), {}, r"strength must be a number in \[0, 4\], got -1.0"),
        ((np.zeros((4, 2)), "points", 0, float("nan")), {}, "strength must be a number in"),
        ((np.zeros((4, 2)), "points", 0, 5.0), {}, r"strength must be a number in \[0, 4\], got 5.0"),
        ((np.zeros((4, 2)), "points", -3), {}, "generator must be a numpy Generator or an integer seed"),
        ((np.zeros(4), "points", 0), {}, r"X must be a numeric \(N, D\) array, got shape \(4,\)"),
        ((np.zeros((4, 63)), "digits", 0), {}, r"kind 'digits' takes 8x8 images as \(N, 64\) rows"),
        ((np.zeros((4, 2)), "points", 0), {"centre": np.zeros(3)}, r"centre must be a finite \(2,\) point"),
    ],
)
def test_bad_augment_arguments_name_the_value(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        augment(*args, **kwargs)
