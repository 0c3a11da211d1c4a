"""Tests of lossviz.grokking: the modular-addition data, ⊥Grad, Softmax Collapse, the embedding spectrum, and
short full-batch runs (Prieto et al., 2025, "Grokking at the Edge of Numerical Stability")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossviz import losses
from lossviz.grokking import (
    PRESETS,
    PerpAdamW,
    collapse_fraction,
    embedding_spectrum,
    log_epochs,
    modular_addition,
    modular_addition_split,
    modular_mlp,
    perpendicular_gradients,
    split_indices,
    train_grokking,
    zero_gradient_fraction,
)
from lossviz.results import GrokkingRun


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Full-batch steps on a few hundred samples are fastest, and bit-reproducible, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------- data


@pytest.mark.parametrize("p", [3, 7, 12])
def test_dataset_is_every_pair_once_with_its_sum_mod_p(p):
    pairs, labels = modular_addition(p)
    assert pairs.shape == (p * p, 2) and labels.shape == (p * p,)
    assert pairs.dtype == labels.dtype == torch.int64
    assert {tuple(r) for r in pairs.tolist()} == {(a, b) for a in range(p) for b in range(p)}
    for (a, b), y in zip(pairs.tolist(), labels.tolist(), strict=True):
        assert y == (a + b) % p
    assert pairs[2 * p + 1].tolist() == [2, 1]  # row a * p + b
    assert torch.bincount(labels, minlength=p).tolist() == [p] * p  # every class p times


def test_split_sizes_partition_and_seeding():
    train, test = split_indices(121, 0.4, seed=3)
    assert len(train) == round(0.4 * 121) == 48 and len(test) == 73
    assert sorted(torch.cat([train, test]).tolist()) == list(range(121))  # disjoint and complete
    again, _ = split_indices(121, 0.4, seed=3)
    other, _ = split_indices(121, 0.4, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)
    # extreme fractions still leave one sample on each side
    assert len(split_indices(10, 0.01)[0]) == 1 and len(split_indices(10, 0.99)[1]) == 1


def test_modular_addition_split_rows_match_the_dataset():
    x_train, y_train, x_test, y_test = modular_addition_split(11, 0.3, seed=5)
    assert len(x_train) == round(0.3 * 121) and len(x_train) + len(x_test) == 121
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert torch.equal(y, (x[:, 0] + x[:, 1]) % 11)
    seen = {tuple(r) for r in x_train.tolist()}
    assert seen.isdisjoint(tuple(r) for r in x_test.tolist())


# ---------------------------------------------------------------------------------------------- model


def test_model_shapes_dtype_and_seeded_init_without_touching_the_global_rng():
    state = torch.random.get_rng_state()
    a, b = modular_mlp(13, seed=1, dtype="float64"), modular_mlp(13, seed=1, dtype="float64")
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, wa), wb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert wa.dtype == torch.float64 and torch.equal(wa, wb), name
    assert not torch.equal(a.embedding.weight, modular_mlp(13, seed=2, dtype="float64").embedding.weight)
    pairs, _ = modular_addition(13)
    assert a(pairs).shape == (169, 13)
    summed = modular_mlp(13, combine="sum")
    assert torch.allclose(summed(pairs[:, [1, 0]]), summed(pairs))  # "sum" is commutative by construction


# ---------------------------------------------------------------------------------------------- ⊥Grad


def _with_grad(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    w = w.clone().requires_grad_(True)
    w.grad = g.clone()
    return w


def test_perpendicular_gradient_is_orthogonal_per_tensor_with_the_original_norm():
    gen = torch.Generator().manual_seed(0)
    shapes = [(5,), (4, 3), (2, 3, 4)]
    params = [_with_grad(torch.randn(s, generator=gen), torch.randn(s, generator=gen)) for s in shapes]
    before = [p.grad.clone() for p in params]
    perpendicular_gradients(params)
    for param, g0 in zip(params, before, strict=True):
        w, g = param.detach(), param.grad
        assert abs(float((g * w).sum())) < 1e-6 * float(g.norm() * w.norm())  # orthogonal to its own w
        assert math.isclose(float(g.norm()), float(g0.norm()), rel_tol=1e-6)  # norm restored
        assert float((g * g0).sum()) > 0  # still a descent direction
        g_perp = g0 - (g0 * w).sum() / (w * w).sum() * w  # the formula, by hand
        assert torch.allclose(g, g_perp * (g0.norm() / g_perp.norm()), atol=1e-6)


def test_perpendicular_gradient_parallel_zero_and_missing_cases():
    w = torch.tensor([1.0, -2.0, 0.5])
    parallel = _with_grad(w, -3.0 * w)  # g || w: no perpendicular direction left
    zero_weights = _with_grad(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]))  # w = 0: g kept
    zero_grad = _with_grad(w, torch.zeros(3))
    untouched = torch.ones(2, requires_grad=True)  # no .grad at all
    ordinary = _with_grad(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    perpendicular_gradients([parallel, zero_weights, zero_grad, untouched, ordinary])
    assert torch.equal(parallel.grad, torch.zeros(3))
    assert torch.equal(zero_weights.grad, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(zero_grad.grad, torch.zeros(3))  # no NaN from 0/0
    assert untouched.grad is None
    # per tensor: the parallel one's zeroing leaves the others alone; [1, 1] against w = [1, 0] -> [0, sqrt 2]
    assert torch.allclose(ordinary.grad, torch.tensor([0.0, math.sqrt(2.0)]))
    # g = c w for a random w: g_perp is rounding noise, which must be zeroed, not rescaled to ||g||
    for dtype in (torch.float32, torch.float64):
        w = torch.randn(7, 5, generator=torch.Generator().manual_seed(2), dtype=dtype)
        noisy = _with_grad(w, w / 3.0)  # division: g_perp comes out at ~1 ulp of g, not exactly 0
        perpendicular_gradients([noisy])
        assert torch.equal(noisy.grad, torch.zeros_like(w)), dtype


def test_perp_adamw_is_adamw_on_perpendicular_gradients():
    gen = torch.Generator().manual_seed(1)
    w0, grads = torch.randn(4, 3, generator=gen), [torch.randn(4, 3, generator=gen) for _ in range(3)]
    a, b = w0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
    opt_a = PerpAdamW([a], lr=0.1, weight_decay=0.5)
    opt_b = torch.optim.AdamW([b], lr=0.1, weight_decay=0.5)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        perpendicular_gradients([b])
        opt_b.step()
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, w0)


# ---------------------------------------------------------------------------------------------- collapse


def _margin_logits(m: float, n: int = 4, k: int = 11, dtype: torch.dtype = torch.float32):
    """n samples whose true-class logit is m and whose k - 1 competitors are 0."""
    target = torch.arange(n) % k
    return m * torch.nn.functional.one_hot(target, k).to(dtype), target


@pytest.mark.parametrize(
    "margin, float32, float64",
    [
        # 10 e^-m against half an ulp of 1: float32 2^-24 = 6.0e-8, float64 2^-53 = 1.1e-16
        (10.0, 0.0, 0.0),  # 10 e^-10 = 4.5e-4: no collapse anywhere
        (20.0, 1.0, 0.0),  # 10 e^-20 = 2.1e-8: absorbed in float32 only — the paper's point
        (30.0, 1.0, 0.0),  # 10 e^-30 = 9.4e-13
        (40.0, 1.0, 1.0),  # 10 e^-40 = 4.2e-17: float64 absorbs it too
        (1e4, 1.0, 1.0),  # e^-1e4 underflows to 0 in both: +1e4 collapses float64 as well
    ],
)
def test_softmax_collapse_happens_in_float32_before_float64(margin, float32, float64):
    for dtype, expected in ((torch.float32, float32), (torch.float64, float64)):
        logits, target = _margin_logits(margin, dtype=dtype)
        assert collapse_fraction(logits, target) == expected, (margin, dtype)


def test_collapsed_sample_has_a_zero_true_class_gradient_and_zero_gradient_only_on_underflow():
    logits, target = _margin_logits(20.0)
    z = logits.clone().requires_grad_(True)
    losses.get("cross_entropy").fn(z, target).sum().backward()
    true_component = z.grad.gather(1, target[:, None])
    assert torch.equal(true_component, torch.zeros_like(true_component))  # p_y - 1 rounds to exactly 0
    assert zero_gradient_fraction(logits, target) == 0.0  # competitors keep e^-20 ~ 2e-9
    assert zero_gradient_fraction(*_margin_logits(200.0)) == 1.0  # e^-200 underflows in float32
    assert zero_gradient_fraction(*_margin_logits(200.0, dtype=torch.float64)) == 0.0
    assert zero_gradient_fraction(*_margin_logits(1e4, dtype=torch.float64)) == 1.0


def test_stablemax_does_not_collapse_at_extreme_logits_in_float32():
    logits, target = _margin_logits(1e4)
    assert collapse_fraction(logits, target, loss="stablemax_ce") == 0.0
    assert zero_gradient_fraction(logits, target, loss="stablemax_ce") == 0.0
    wrong = torch.roll(logits, 1, dims=1)  # the large logit on a wrong class: a loss, never collapse
    assert collapse_fraction(wrong, target) == 0.0


# ---------------------------------------------------------------------------------------------- spectrum


@pytest.mark.parametrize("p, k", [(13, 1), (13, 4), (13, 6), (12, 6), (12, 0), (31, 7)])
def test_spectrum_of_a_pure_cosine_embedding_is_all_at_its_frequency(p, k):
    a = np.arange(p)[:, None]
    phases = np.linspace(0.0, 2.0, 8)[None, :]  # (1, d): several columns, several phases
    embedding = np.cos(2 * np.pi * k * a / p + phases)  # (p, 8)
    freqs, power = embedding_spectrum(torch.tensor(embedding))
    assert freqs.tolist() == list(range(p // 2 + 1))
    assert math.isclose(power.sum(), 1.0) and power[k] > 1 - 1e-12
    # a mixture of frequencies splits by their energy; k = 0 and k = p/2 have no mirror to fold in
    b = np.arange(12)
    with_dc = 1.0 + np.cos(2 * np.pi * 3 * b / 12) + np.cos(np.pi * b)  # energies 144, 2 * 36, 144
    _, power = embedding_spectrum(with_dc[:, None])
    assert np.allclose(power[[0, 3, 6]], [0.4, 0.2, 0.4]) and math.isclose(power.sum(), 1.0)
    mixed = np.cos(2 * np.pi * 2 * a / p) + 2.0 * np.sin(2 * np.pi * 5 * a / p)
    _, power = embedding_spectrum(mixed)
    assert np.allclose(power[[2, 5]], [0.2, 0.8]) and math.isclose(power.sum(), 1.0)


def test_spectrum_of_a_random_embedding_is_spread_and_bad_shapes_fail():
    gen = np.random.default_rng(0)
    _, power = embedding_spectrum(gen.normal(size=(31, 64)))
    assert power.max() < 0.25 and math.isclose(power.sum(), 1.0)
    _, zeros = embedding_spectrum(np.zeros((5, 3)))
    assert not zeros.any()
    with pytest.raises(ValueError, match=r"\(p, d\)"):
        embedding_spectrum(np.zeros(5))


# ---------------------------------------------------------------------------------------------- training


def test_log_epochs():
    at = log_epochs(3000, 100)
    assert at[0] == 0 and at[-1] == 3000 and np.all(np.diff(at) > 0) and 80 <= len(at) <= 101
    assert log_epochs(1).tolist() == [0, 1]
    assert log_epochs(5, 100).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=2), r"p must be an integer >= 3, got 2"),
        (dict(p=5.5), r"got 5.5"),
        (dict(train_fraction=0.0), r"train_fraction must be in \(0, 1\), got 0.0"),
        (dict(train_fraction=1.0), r"got 1.0"),
        (dict(train_fraction=-0.2), r"got -0.2"),
        (dict(loss="focal"), r"loss must be one of \('cross_entropy', 'stablemax_ce'\), got 'focal'"),
        (dict(optimizer="sgd"), r"optimizer must be one of \('adamw', 'perp_adamw'\), got 'sgd'"),
        (dict(dtype="float16"), r"dtype must be one of \('float32', 'float64'\), got 'float16'"),
        (dict(epochs=0), r"epochs must be an integer >= 1, got 0"),
        (dict(epochs=-3), r"got -3"),
        (dict(lr=0.0), r"lr must be > 0, got 0.0"),
        (dict(weight_decay=-1.0), r"weight_decay must be >= 0, got -1.0"),
        (dict(log_points=1), r"log_points must be >= 2, got 1"),
        (dict(combine="mean"), r"combine must be one of"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_grokking(**{"p": 5, "epochs": 2, **kwargs})


def test_run_fields_determinism_and_progress():
    calls = []
    kw = dict(p=7, train_fraction=0.5, dtype="float64", epochs=40, log_points=10, seed=3)
    run = train_grokking(**kw, progress=lambda f, msg: calls.append((f, msg)))
    assert isinstance(run, GrokkingRun) and run.n_train == round(0.5 * 49) and run.n_test == 49 - run.n_train
    assert run.epochs[0] == 0 and run.epochs[-1] == 40 and len(run.epochs) == len(run.test_accuracy)
    assert run.frequencies.tolist() == [0, 1, 2, 3] and math.isclose(run.spectrum.sum(), 1.0)
    assert np.all((run.collapse >= 0) & (run.collapse <= 1)) and np.all(run.weight_norm > 0)
    assert run.train_loss[-1] < run.train_loss[0]
    assert len(calls) == len(run.epochs) - 1 and calls[-1][0] == 1.0 and "40" in calls[-1][1]
    again = train_grokking(**kw)
    for name in ("train_accuracy", "test_accuracy", "train_loss", "logit_norm", "weight_norm", "spectrum"):
        assert np.array_equal(getattr(run, name), getattr(again, name)), name
    other_seed = train_grokking(**{**kw, "seed": 4})
    assert not np.array_equal(other_seed.train_loss, run.train_loss)


def test_presets_are_valid_arguments():
    for name, kwargs in PRESETS.items():
        run = train_grokking(**{**kwargs, "p": min(kwargs["p"], 7), "epochs": 2, "log_points": 2})
        assert run.loss == kwargs["loss"] and run.optimizer == kwargs["optimizer"], name


def test_perp_adamw_groks_after_memorising():
    """⊥AdamW without weight decay (measured: 1.6 s; train accuracy 1 by epoch ~50-70, test accuracy above
    0.9 by ~250-360 for seeds 0-5)."""
    run = train_grokking(
        p=23, train_fraction=0.6, optimizer="perp_adamw", lr=5e-3, weight_decay=0.0, epochs=700, seed=0
    )
    memorised, grokked = run.memorised_epoch, run.grokked_epoch
    assert memorised is not None and memorised <= 100
    assert np.all(run.test_accuracy[run.epochs <= memorised] < 0.1)  # memorised first, generalised later
    assert grokked is not None and grokked >= 2 * memorised
    assert run.test_accuracy[-1] > 0.9 and run.train_accuracy[-1] == 1.0
    assert run.collapse.max() == 0.0
    # the grokked embedding concentrates on a few frequencies (a random one spreads over all 12)
    assert np.sort(run.spectrum)[-3:].sum() > 0.6


def test_float32_softmax_collapses_where_float64_does_not():
    """AdamW without weight decay (PRESETS["softmax_collapse"]): float32 and float64 runs agree until the
    float32 losses start rounding to 0; then the float32 collapse fraction jumps and float64's stays 0."""
    preset = PRESETS["softmax_collapse"]
    f32, f64 = (train_grokking(**{**preset, "dtype": dt}) for dt in ("float32", "float64"))
    assert f32.train_accuracy[-1] == 1.0 and f64.train_accuracy[-1] == 1.0
    assert f32.collapse.max() > 0.3 and f64.collapse.max() == 0.0
    before = np.cumsum(f32.collapse > 0) == 0  # identical trajectories until collapse sets in
    assert np.allclose(f32.weight_norm[before], f64.weight_norm[before], rtol=1e-3)
    assert f32.test_accuracy[-1] < 0.1  # no grokking without weight decay or ⊥AdamW


def test_adamw_with_weight_decay_groks_long_after_memorising():
    """Classic grokking, PRESETS["grokking_weight_decay"] (measured ~4 s: train accuracy 1 at epoch ~50, test
    accuracy above 0.9 at ~1900 for seed 0; 960-1900 for seeds 0-2)."""
    run = train_grokking(**PRESETS["grokking_weight_decay"], seed=0)
    memorised, grokked = run.memorised_epoch, run.grokked_epoch
    assert memorised is not None and memorised <= 100
    assert np.all(run.test_accuracy[run.epochs <= memorised] < 0.1)
    assert grokked is not None and grokked >= 10 * memorised
    assert run.test_accuracy[-1] > 0.9 and run.train_accuracy[-1] == 1.0


def test_on_record_sees_each_prefix_of_the_recorded_accuracy_curves() -> None:
    seen = []
    run = train_grokking(
        p=11, epochs=60, weight_decay=1.0, log_points=10, on_record=lambda *curves: seen.append(curves)
    )
    assert len(seen) == len(run.epochs) - 1  # once after every record but the initial one
    for k, (epochs, train, test) in enumerate(seen, start=2):
        np.testing.assert_array_equal(epochs, run.epochs[:k])
        np.testing.assert_array_equal(train, run.train_accuracy[:k])
        np.testing.assert_array_equal(test, run.test_accuracy[:k])
