"""Tests for lossviz.landscape: directions (Li et al. 2018), the batched evaluator vs a naive loop, PCA."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from lossviz import landscape, losses
from lossviz.models import MLP, DigitsCNN

XS = np.linspace(-1.0, 1.0, 5)
YS = np.linspace(-0.5, 0.5, 3)


def conv_net() -> nn.Module:
    """Conv2d, BatchNorm2d, Flatten, Linear, Tanh: the stacked engine's image path on (N, 1, 6, 6) inputs."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 4),
        nn.Tanh(),
        nn.Linear(4, 3),
    )


def data(n: int = 24, d: int = 2, k: int = 3, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randint(0, k, (n,), generator=g)


def naive_surface(model, loss, X, y, d1, d2, xs, ys):
    """The reference approach: write theta + x d1 + y d2 into a copy of the model, one point at a time."""
    bound = losses.make(loss)
    m = copy.deepcopy(model).eval()
    theta = {n: p.detach().clone() for n, p in m.named_parameters()}
    z = np.zeros((len(ys), len(xs)))
    acc = np.zeros_like(z)
    with torch.no_grad():
        for i, b in enumerate(ys):
            for j, a in enumerate(xs):
                for n, p in m.named_parameters():
                    p.copy_(theta[n] + float(a) * d1[n] + float(b) * d2[n])
                out = m(X)
                z[i, j] = float(bound(out, y))
                pred = out.argmax(-1) if out.shape[-1] > 1 else (out[:, 0] > 0).long()
                acc[i, j] = float((pred == y).double().mean())
    return z, acc


# ---------------------------------------------------------------------------------------------------------
# directions
# ---------------------------------------------------------------------------------------------------------


def test_filter_normalization_matches_each_filter_norm():
    model = conv_net()
    d = landscape.random_direction(model, seed=3, norm="filter", ignore="biasbn")
    for name, w in model.named_parameters():
        if w.dim() > 1:
            for i in range(w.shape[0]):  # every output filter, conv and linear rows alike
                torch.testing.assert_close(d[name][i].norm(), w[i].detach().norm(), rtol=1e-5, atol=1e-6)
            assert not torch.allclose(d[name], w.detach())  # rescaled noise, not the weights


def test_biasbn_zeroes_every_one_dimensional_parameter():
    model = conv_net()
    d = landscape.random_direction(model, seed=1, ignore="biasbn")
    one_d = [n for n, p in model.named_parameters() if p.dim() == 1]
    assert {"0.bias", "1.weight", "1.bias", "4.bias"} <= set(one_d)
    for name in one_d:
        assert torch.count_nonzero(d[name]) == 0
    kept = landscape.random_direction(model, seed=1, ignore=None)
    for name in one_d:  # without "biasbn" a 1-D filter is one element: |d_i| = |w_i|
        torch.testing.assert_close(kept[name].abs(), dict(model.named_parameters())[name].detach().abs())


def test_layer_and_model_normalization():
    model = conv_net()
    weights = dict(model.named_parameters())
    layer = landscape.random_direction(model, seed=0, norm="layer", ignore=None)
    for name, w in weights.items():
        torch.testing.assert_close(layer[name].norm(), w.detach().norm(), rtol=1e-5, atol=1e-6)
    whole = landscape.random_direction(model, seed=0, norm="model", ignore=None)
    total = lambda t: torch.sqrt(sum(v.detach().double().pow(2).sum() for v in t.values()))  # noqa: E731
    torch.testing.assert_close(total(whole), total(weights), rtol=1e-6, atol=0)
    raw = landscape.random_direction(model, seed=0, norm=None, ignore=None)
    g = torch.Generator().manual_seed(0)
    for name, w in weights.items():  # un-normalised: the seeded Gaussian draws in parameter order
        torch.testing.assert_close(raw[name], torch.randn(w.shape, generator=g))


def test_direction_is_deterministic_per_seed():
    model = MLP(2, 3, width=8)
    a, b = landscape.random_direction(model, 7), landscape.random_direction(model, 7)
    c = landscape.random_direction(model, 8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["body.0.weight"], c["body.0.weight"])
    assert list(a) == [n for n, _ in model.named_parameters()]


def test_filter_normalize_public_and_checks_arguments():
    model = MLP(2, 3, width=8)
    raw = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    d = landscape.filter_normalize(raw, model)
    w = model.head.weight.detach()
    torch.testing.assert_close(
        d["head.weight"], w.norm(dim=1, keepdim=True) / np.sqrt(8) * torch.ones_like(w)
    )
    assert torch.equal(raw["head.weight"], torch.ones_like(w))  # the input direction is not modified
    with pytest.raises(ValueError, match="norm must be one of"):
        landscape.random_direction(model, 0, norm="weights")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ignore must be one of"):
        landscape.random_direction(model, 0, ignore="bias")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not parameters"):
        landscape.filter_normalize({"nope": torch.ones(2)}, model)


# ---------------------------------------------------------------------------------------------------------
# surfaces against the naive loop
# ---------------------------------------------------------------------------------------------------------


def mlp_bn_residual():
    torch.manual_seed(1)
    model = MLP(2, 3, width=6, depth=3, batch_norm=True, residual=True).double()
    with torch.no_grad():  # non-trivial running statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


CASES = {
    "mlp": (lambda: MLP(2, 3, width=6, activation="tanh").double(), "cross_entropy", 3, 2),
    "mlp-bn-residual": (mlp_bn_residual, "focal", 3, 2),
    "harmonic-gelu": (
        lambda: MLP(2, 3, width=5, activation="gelu", head="harmonic").double(),
        "cross_entropy",
        3,
        2,
    ),
    "binary-silu": (lambda: MLP(2, 1, width=5, activation="silu").double(), "logistic", 2, 2),
    "cnn": (lambda: DigitsCNN(n_outputs=3, channels=2).double(), "cross_entropy", 3, 64),
    "cnn-bn-sequential": (lambda: conv_net().double(), "cross_entropy", 3, 36),  # X as (N, 1, 6, 6)
}


ENGINE_CASES = [(c, e) for c in CASES for e in ("auto", "stacked", "vmap", "loop")]


@pytest.mark.parametrize(("case", "engine"), ENGINE_CASES, ids=[f"{c}-{e}" for c, e in ENGINE_CASES])
def test_surface_equals_naive_per_point_loop(case, engine):
    make, loss, k, d = CASES[case]
    torch.manual_seed(0)
    model = make()
    X, y = data(n=20, d=d, k=k)
    if case == "cnn-bn-sequential":
        X = X.reshape(20, 1, 6, 6)  # image inputs (N, C, H, W)
        with torch.no_grad():
            model[1].running_mean.uniform_(-0.5, 0.5)
            model[1].running_var.uniform_(0.5, 2.0)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1, ignore=None)
    surface = landscape.loss_surface(model, loss, X, y, d1, d2, XS, YS, engine=engine)
    z, acc = naive_surface(model, loss, X, y, d1, d2, XS, YS)
    assert surface.z.shape == (len(YS), len(XS))
    np.testing.assert_allclose(surface.z, z, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(surface.accuracy, acc, atol=1e-12)
    assert surface.label == landscape.loss_label(losses.make(loss))
    assert surface.label.startswith(loss)


def test_stacked_engine_refuses_what_it_cannot_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten(), nn.Linear(4, 3))  # grouped convolution
    X, y = data(n=4, d=18, dtype=torch.float32)
    X = X.reshape(4, 2, 3, 3)
    d = landscape.random_direction(model, 0)
    with pytest.raises(ValueError, match="engine='stacked'"):
        landscape.loss_surface(model, "cross_entropy", X, y, d, d, XS, YS, engine="stacked")
    auto = landscape.loss_surface(model, "cross_entropy", X, y, d, d, XS, YS)  # falls back to the loop
    z, _ = naive_surface(model, "cross_entropy", X, y, d, d, XS, YS)
    np.testing.assert_allclose(auto.z, z, rtol=1e-5)
    with pytest.raises(ValueError, match="engine must be one of"):
        landscape.loss_surface(model, "cross_entropy", X, y, d, d, XS, YS, engine="fast")  # type: ignore[arg-type]


def test_centre_value_is_the_loss_at_theta_float32():
    torch.manual_seed(0)
    model = MLP(2, 3, width=16)
    X, y = data(n=200, k=3, dtype=torch.float32)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    xs = np.linspace(-1, 1, 7)
    surface = landscape.loss_surface(model, "cross_entropy", X.numpy(), y.numpy(), d1, d2, xs, xs)
    with torch.no_grad():
        out = model(X)
    assert surface.z[3, 3] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-6)
    assert surface.accuracy[3, 3] == pytest.approx(float((out.argmax(1) == y).float().mean()))
    assert np.all(np.isfinite(surface.z))


def test_regression_and_batch_level_losses():
    torch.manual_seed(0)
    model = MLP(2, 1, width=6).double()
    X, _ = data(n=30)
    target = torch.randn(30, dtype=torch.float64)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    surface = landscape.loss_surface(model, "huber", X, target, d1, d2, XS, YS, batch_size=7)
    z, _ = naive_surface(model, "huber", X, target, d1, d2, XS, YS)
    np.testing.assert_allclose(surface.z, z, rtol=1e-10)
    assert surface.accuracy is None  # no accuracy for regression
    labels = (torch.arange(30) % 2).long()
    # soft Dice only exists for the whole batch: batch_size must not split it
    dice = landscape.loss_surface(model, "soft_dice", X, labels, d1, d2, XS, YS, batch_size=7, memory_mb=1e-4)
    z_dice, acc = naive_surface(model, "soft_dice", X, labels, d1, d2, XS, YS)
    np.testing.assert_allclose(dice.z, z_dice, rtol=1e-10)
    np.testing.assert_allclose(dice.accuracy, acc)


@pytest.mark.parametrize("engine", ["stacked", "vmap", "loop"])
def test_data_chunks_and_memory_bound_do_not_change_values(engine):
    model = MLP(2, 3, width=6).double()
    X, y = data(n=50)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    whole = landscape.loss_surface(model, "cross_entropy", X, y, d1, d2, XS, YS, engine=engine)
    tiny = landscape.loss_surface(
        model, "cross_entropy", X, y, d1, d2, XS, YS, batch_size=7, engine=engine, memory_mb=1e-4
    )
    np.testing.assert_allclose(tiny.z, whole.z, rtol=1e-12)
    np.testing.assert_array_equal(tiny.accuracy, whole.accuracy)


@pytest.mark.parametrize("engine", ["stacked", "vmap", "loop"])
def test_memory_bound_splits_the_data_of_a_cnn(engine, monkeypatch):
    model = DigitsCNN(n_outputs=3, channels=2).double()
    X, y = data(n=200, d=64)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    whole = landscape.loss_surface(model, "cross_entropy", X, y, d1, d2, XS, YS, engine=engine)
    sizes: list[int] = []
    real = landscape._Engine.forward
    monkeypatch.setattr(
        landscape._Engine, "forward", lambda eng, f, Xb, c: sizes.append(len(Xb)) or real(eng, f, Xb, c)
    )
    split = landscape.loss_surface(
        model, "cross_entropy", X, y, d1, d2, XS, YS, engine=engine, memory_mb=0.05
    )
    assert set(sizes) == {50}  # 2 KB per sample and 50 KB: 64 samples at least, made equal: 4 x 50
    np.testing.assert_allclose(split.z, whole.z, rtol=1e-12)


def test_model_is_never_modified():
    torch.manual_seed(0)
    model = MLP(2, 3, width=6, batch_norm=True)
    model.train()  # BatchNorm in training mode would update running statistics if we ran it as is
    before = copy.deepcopy(model.state_dict())
    X, y = data(n=16, dtype=torch.float32)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    for engine in ("stacked", "vmap", "loop"):
        landscape.loss_surface(model, "cross_entropy", X, y, d1, d2, XS, YS, engine=engine)
    list(landscape.refine_surface(model, "cross_entropy", X, y, d1, d2, resolutions=(3, 5)))
    landscape.loss_line(model, "cross_entropy", X, y, d1, XS)
    landscape.interpolate(model, MLP(2, 3, width=6, batch_norm=True), "cross_entropy", X, y)
    after = model.state_dict()
    assert list(before) == list(after)
    for k in before:  # bit-identical, buffers (running stats, num_batches_tracked) included
        assert torch.equal(before[k], after[k]), k
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_loss_surfaces_share_one_plane():
    model = MLP(2, 3, width=6).double()
    X, y = data()
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    both = landscape.loss_surfaces(
        model, ["cross_entropy", losses.make("focal", gamma=1.0)], X, y, d1, d2, XS, YS
    )
    ce = landscape.loss_surface(model, "cross_entropy", X, y, d1, d2, XS, YS)
    focal = landscape.loss_surface(model, losses.make("focal", gamma=1.0), X, y, d1, d2, XS, YS)
    np.testing.assert_allclose(both[0].z, ce.z, rtol=1e-12)
    np.testing.assert_allclose(both[1].z, focal.z, rtol=1e-12)
    assert not np.allclose(both[0].z, both[1].z)
    assert [s.label for s in both] == ["cross_entropy", "focal (gamma=1)"]
    with pytest.raises(ValueError, match="one task"):
        landscape.loss_surfaces(model, ["cross_entropy", "logistic"], X, y, d1, d2, XS, YS)


def test_progress_reaches_one_monotonically():
    model = MLP(2, 3, width=6)
    X, y = data(n=40, dtype=torch.float32)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    calls: list[tuple[float, str]] = []
    xs = np.linspace(-1, 1, 21)
    landscape.loss_surface(
        model,
        "cross_entropy",
        X,
        y,
        d1,
        d2,
        xs,
        xs,
        progress=lambda f, m: calls.append((f, m)),
        memory_mb=0.01,
    )
    fractions = [f for f, _ in calls]
    assert len(calls) > 2 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "441" in calls[-1][1]


def test_refine_surface_reuses_coarse_points_and_matches_the_fine_grid(monkeypatch):
    model = MLP(2, 3, width=6).double()
    X, y = data()
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    evaluated: list[int] = []
    real = landscape._evaluate

    def counting(*args, **kwargs):
        evaluated.append(len(args[5]))  # coeffs
        return real(*args, **kwargs)

    monkeypatch.setattr(landscape, "_evaluate", counting)
    levels = list(landscape.refine_surface(model, "cross_entropy", X, y, d1, d2, (-1, 1), (-2, 2), (3, 5, 9)))
    assert [s.z.shape for s in levels] == [(3, 3), (5, 5), (9, 9)]
    assert evaluated == [9, 25 - 9, 81 - 25]  # every coarse point reused
    fine = landscape.loss_surface(
        model, "cross_entropy", X, y, d1, d2, np.linspace(-1, 1, 9), np.linspace(-2, 2, 9)
    )
    np.testing.assert_allclose(levels[-1].z, fine.z, rtol=1e-12)
    np.testing.assert_allclose(levels[-1].accuracy, fine.accuracy)
    with pytest.raises(ValueError, match="resolutions must be increasing"):
        next(landscape.refine_surface(model, "cross_entropy", X, y, d1, d2, resolutions=(5, 5)))


def test_loss_line_matches_the_surface_row():
    model = MLP(2, 3, width=6).double()
    X, y = data()
    d1 = landscape.random_direction(model, 0)
    zero = {k: torch.zeros_like(v) for k, v in d1.items()}
    line = landscape.loss_line(model, "cross_entropy", X, y, d1, XS)
    z, acc = naive_surface(model, "cross_entropy", X, y, d1, zero, XS, [0.0])
    np.testing.assert_allclose(line.y, z[0], rtol=1e-10)
    np.testing.assert_allclose(line.accuracy, acc[0])
    assert line.name == "cross_entropy" and np.array_equal(line.x, XS)


def test_interpolate_endpoints_values_and_barrier():
    torch.manual_seed(0)
    a, b = MLP(2, 3, width=6).double(), MLP(2, 3, width=6).double()
    X, y = data()
    alphas = np.linspace(-0.25, 1.25, 13)
    result = landscape.interpolate(a, b.state_dict(), "cross_entropy", X, y, alphas)
    bound = losses.make("cross_entropy")
    ref = []
    m = copy.deepcopy(a)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    with torch.no_grad():
        for t in alphas:
            for n, p in m.named_parameters():
                p.copy_((1 - t) * pa[n] + t * pb[n])
            ref.append(float(bound(m(X), y)))
    np.testing.assert_allclose(result.loss, ref, rtol=1e-10)
    with torch.no_grad():
        la, lb = float(bound(a(X), y)), float(bound(b(X), y))
    inside = (alphas >= 0) & (alphas <= 1)
    expected = max(0.0, max(np.array(ref)[inside] - ((1 - alphas[inside]) * la + alphas[inside] * lb)))
    assert result.barrier == pytest.approx(expected, abs=1e-12)
    assert 0 <= result.barrier_alpha <= 1
    assert result.accuracy is not None and result.accuracy.shape == alphas.shape
    with pytest.raises(ValueError, match=r"lacks|shape"):
        landscape.interpolate(a, MLP(2, 3, width=7).double(), "cross_entropy", X, y)


def test_interpolate_barrier_of_a_known_valley():
    # a one-weight "model" f = w x with squared loss to target 0 at x = 1 and two solutions w = +-1 of
    # the loss (w^2 - 1)^2 via the "squared" loss on pred w^2: L(alpha) = ((1 - 2 alpha)^2 - 1)^2
    class Square(nn.Module):
        def __init__(self, w: float) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor([w], dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (self.w * x) ** 2

    X, y = torch.ones(4, 1, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    result = landscape.interpolate(Square(-1.0), Square(1.0), "squared", X, y, np.linspace(0, 1, 11))
    scale = float(
        losses.make("squared")(torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    )
    assert result.barrier == pytest.approx(scale, rel=1e-12)  # at alpha = 1/2, w = 0: loss(0 vs 1)
    assert result.barrier_alpha == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------------
# PCA of a trajectory
# ---------------------------------------------------------------------------------------------------------


def test_pca_directions_recover_a_planar_trajectory():
    model = MLP(2, 3, width=5)
    final = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(0)
    u = {
        n: torch.randn(p.shape, generator=g) if p.dim() > 1 else torch.zeros_like(p) for n, p in final.items()
    }
    v = {
        n: torch.randn(p.shape, generator=g) if p.dim() > 1 else torch.zeros_like(p) for n, p in final.items()
    }
    t = np.linspace(0, 1, 12)
    a, b = -3 * (1 - t) ** 2, np.sin(4 * t) * (1 - t)  # a curved path ending at 0
    snapshots = [
        {n: (final[n] + float(ai) * u[n] + float(bi) * v[n]).numpy() for n in final}
        for ai, bi in zip(a, b, strict=True)
    ]
    pca = landscape.pca_directions(snapshots, final)
    flat = lambda d: np.concatenate([np.asarray(d[n]).reshape(-1) for n in final])  # noqa: E731
    D = np.stack([flat(d) for d in pca.directions])  # (2, P)
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e-5)
    diffs = np.stack([flat(s) - flat({n: final[n].numpy() for n in final}) for s in snapshots])
    np.testing.assert_allclose(pca.coords @ D, diffs, atol=1e-4)  # the plane holds the whole path
    reference = PCA(n_components=2).fit(diffs)
    np.testing.assert_allclose(pca.explained_variance, reference.explained_variance_ratio_, rtol=1e-5)
    assert pca.coords[0, 0] <= 0 and pca.coords[0, 1] <= 0 and pca.coords.shape == (12, 2)
    for n in final:
        if final[n].dim() == 1:
            assert not np.any(pca.directions[0][n])  # "biasbn": 1-D parameters left out


def test_pca_directions_feed_loss_surface():
    model = MLP(2, 3, width=5)
    g = torch.Generator().manual_seed(1)
    final = {n: p.detach().clone() for n, p in model.named_parameters()}
    snapshots = [{n: p + 0.1 * torch.randn(p.shape, generator=g) for n, p in final.items()} for _ in range(4)]
    pca = landscape.pca_directions(snapshots, model)
    X, y = data(dtype=torch.float32)
    surface = landscape.loss_surface(model, "cross_entropy", X, y, *pca.directions, XS, YS)
    assert np.all(np.isfinite(surface.z))
    with pytest.raises(ValueError, match="at least 2"):
        landscape.pca_directions(snapshots[:1], model)


# ---------------------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("engine", ["auto", "vmap", "loop"])
def test_cuda_surface_matches_cpu(engine):
    for model in (MLP(2, 3, width=16), DigitsCNN(n_outputs=3, channels=4)):
        d = 64 if isinstance(model, DigitsCNN) else 2
        X, y = data(n=64, d=d, dtype=torch.float32)
        d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
        cpu = landscape.loss_surface(
            model, "cross_entropy", X, y, d1, d2, XS, YS, device="cpu", engine=engine
        )
        gpu = landscape.loss_surface(
            model, "cross_entropy", X, y, d1, d2, XS, YS, device="cuda", engine=engine
        )
        np.testing.assert_allclose(gpu.z, cpu.z, rtol=1e-4)
        assert next(model.parameters()).device.type == "cpu"
