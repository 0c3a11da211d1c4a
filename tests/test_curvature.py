"""Tests for lossviz.curvature against dense Hessians (torch.autograd.functional.hessian) of tiny models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from lossviz import curvature, losses
from lossviz.models import MLP
from lossviz.results import TraceEstimate


def tiny(seed: int = 0, batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(3, 5)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(5))
    layers += [nn.Tanh(), nn.Linear(5, 3)]
    model = nn.Sequential(*layers).double()
    if batch_norm:
        with torch.no_grad():
            model[1].running_mean.uniform_(-0.3, 0.3)
            model[1].running_var.uniform_(0.5, 2.0)
    return model


def data(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def dense_hessian(model: nn.Module, loss: str, X, y) -> torch.Tensor:
    """The full Hessian of the mean loss w.r.t. the flattened parameters (eval mode), by autograd."""
    bound = losses.make(loss)
    m = copy.deepcopy(model).eval()
    names = [n for n, _ in m.named_parameters()]
    shapes = [p.shape for _, p in m.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in m.parameters()])

    def f(flat: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(np.prod(s))
            params[n] = flat[i : i + k].view(s)
            i += k
        return bound(functional_call(m, params, (X,)), y)

    return torch.autograd.functional.hessian(f, theta)


@pytest.fixture(scope="module")
def problem():
    model = tiny()
    X, y = data()
    H = dense_hessian(model, "cross_entropy", X, y)
    return model, X, y, H, torch.linalg.eigvalsh(H)


def test_hvp_matches_dense_hessian(problem):
    model, X, y, H, _ = problem
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    op = curvature.HessianOperator(model, "cross_entropy", X, y)
    torch.testing.assert_close(op(v), H @ v, rtol=1e-10, atol=1e-12)
    chunked = curvature.HessianOperator(model, "cross_entropy", X, y, batch_size=7)
    torch.testing.assert_close(chunked(v), H @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(op.matmat(torch.stack([v, 2 * v])), torch.stack([H @ v, 2 * H @ v]))
    d = op.unflatten(v)
    assert list(d) == [n for n, _ in model.named_parameters()]
    hv = curvature.hessian_vector_product(model, "cross_entropy", X, y, d)
    torch.testing.assert_close(op.flatten(hv), H @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_within_one_percent_of_dense(problem, method):
    model, X, y, _, eig = problem
    k = 3 if method == "lanczos" else 2  # power iteration converges slowly on the close 2nd/3rd eigenvalues
    top = curvature.top_eigenvalues(model, "cross_entropy", X, y, k=k, method=method, seed=0)
    expected = eig.flip(0)[:k].numpy()  # the cross-entropy Hessian of this net: largest are positive
    assert top.shape == (k,)
    np.testing.assert_allclose(top, expected, rtol=1e-2)
    assert abs(top[0] - expected[0]) <= 1e-4 * abs(expected[0])  # converged much better than required


def test_top_eigenpairs_are_eigenvectors(problem):
    model, X, y, H, _ = problem
    values, vectors = curvature.top_eigenpairs(model, "cross_entropy", X, y, k=2, tol=1e-9)
    op = curvature.HessianOperator(model, "cross_entropy", X, y)
    for lam, vec in zip(values, vectors, strict=True):
        u = op.flatten(vec)
        assert float(u.norm()) == pytest.approx(1.0, abs=1e-8)
        torch.testing.assert_close(H @ u, lam * u, rtol=0, atol=1e-6)


def rademacher_rel_std(H: torch.Tensor, n: int) -> float:
    """Relative standard error of Hutchinson with n Rademacher probes; Var(v^T H v) = 2 sum_{i!=j} H_ij^2."""
    off = H - torch.diag(torch.diag(H))
    return float(torch.sqrt(2 * off.pow(2).sum() / n) / H.trace())


def test_hutchinson_trace_within_five_percent(problem):
    model, X, y, H, _ = problem
    n = 5000
    assert rademacher_rel_std(H, n) < 0.02  # so the 5% check below is 2.5 standard errors wide
    kwargs = {"n_samples": n, "seed": 0, "method": "hutchinson"}
    est = curvature.hessian_trace(model, "cross_entropy", X, y, **kwargs, probes_per_call=500)
    assert est.method == "hutchinson" and est.n_matvecs == n
    assert est.value == pytest.approx(float(H.trace()), rel=0.05)
    # its stderr is the standard error of the mean: close to the closed form sqrt(2 sum_{i!=j} H_ij^2 / n)
    assert est.stderr == pytest.approx(rademacher_rel_std(H, n) * float(H.trace()), rel=0.1)
    again = curvature.hessian_trace(model, "cross_entropy", X, y, **kwargs, probes_per_call=250)
    other = curvature.hessian_trace(model, "cross_entropy", X, y, n_samples=16, seed=1, method="hutchinson")
    assert again.value == pytest.approx(est.value, rel=1e-12) and other.value != est.value  # per seed


def _net(sizes: tuple[int, int, int], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.Tanh(), nn.Linear(sizes[1], sizes[2])).double()


def _classification_data(n_features: int, n_classes: int, n: int = 60):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, n_features, generator=g, dtype=torch.float64)
    return X, torch.randint(0, n_classes, (n,), generator=g)


def test_default_trace_of_a_small_model_is_exact():
    model = _net((2, 4, 2))  # 8 + 4 + 8 + 2 = 22 parameters
    X, y = _classification_data(2, 2)
    dense = float(dense_hessian(model, "cross_entropy", X, y).trace())
    est = curvature.hessian_trace(model, "cross_entropy", X, y)
    assert isinstance(est, TraceEstimate) and est.method == "exact" and est.n_matvecs == 22
    assert est.stderr == 0.0
    assert float(est) == pytest.approx(dense, rel=0.05)  # the requirement; in fact exact to round-off
    assert float(est) == pytest.approx(dense, rel=1e-10)
    chunked = curvature.hessian_trace(model, "cross_entropy", X, y, probes_per_call=5)  # 5 does not divide 22
    assert chunked.value == pytest.approx(dense, rel=1e-10)
    assert curvature.hessian_trace(model, "cross_entropy", X, y, seed=3) == est  # no randomness at all


def test_exact_trace_above_the_threshold_when_asked(problem):
    model, X, y, H, _ = problem
    est = curvature.hessian_trace(model, "cross_entropy", X, y, method="exact", exact_max_params=0)
    assert est.method == "exact" and est.value == pytest.approx(float(H.trace()), rel=1e-10)
    # "auto" is exact too whenever the probes would cost at least as many HVPs as the unit basis
    auto = curvature.hessian_trace(model, "cross_entropy", X, y, n_samples=H.shape[0], exact_max_params=0)
    assert auto.method == "exact"
    cheap = curvature.hessian_trace(model, "cross_entropy", X, y, n_samples=16, exact_max_params=0)
    assert cheap.method == "hutch++" and cheap.n_matvecs == 16


def test_hutch_plus_plus_with_a_full_sketch_is_exact(problem):
    # n_samples >= 3 dim: the sketch spans every direction, tr(Q^T H Q) is tr(H) and the remainder is zero
    model, X, y, H, _ = problem
    dim = H.shape[0]
    est = curvature.hessian_trace(model, "cross_entropy", X, y, n_samples=3 * dim + 4, method="hutch++")
    assert est.method == "hutch++" and est.value == pytest.approx(float(H.trace()), rel=1e-9)


@pytest.fixture(scope="module")
def larger():
    model = _net((8, 30, 8))  # 240 + 30 + 240 + 8 = 518 parameters: above the exact threshold
    X, y = _classification_data(8, 8)
    H = dense_hessian(model, "cross_entropy", X, y)
    assert H.shape == (518, 518)
    return model, X, y, float(H.trace())


@pytest.mark.parametrize("method", ["auto", "hutch++", "hutchinson"])
def test_trace_of_a_larger_model_within_four_standard_errors(larger, method):
    model, X, y, dense = larger
    est = curvature.hessian_trace(model, "cross_entropy", X, y, method=method)
    assert est.method == ("hutch++" if method == "auto" else method) and est.n_matvecs == 64
    assert est.stderr > 0
    assert abs(est.value - dense) <= 4 * est.stderr, (est, dense)
    again = curvature.hessian_trace(model, "cross_entropy", X, y, method=method, probes_per_call=7)
    assert again.value == pytest.approx(est.value, rel=1e-10)  # same seed, same result, in any chunking
    assert again.stderr == pytest.approx(est.stderr, rel=1e-8)
    other = curvature.hessian_trace(model, "cross_entropy", X, y, method=method, seed=1)
    assert other.value != est.value


def test_hutch_plus_plus_standard_error_is_calibrated(larger):
    # over independent seeds, about 95% of estimates lie within 2 standard errors of the dense trace
    model, X, y, dense = larger
    z = [
        (e.value - dense) / e.stderr
        for e in (curvature.hessian_trace(model, "cross_entropy", X, y, seed=s) for s in range(20))
    ]
    assert sum(abs(v) < 2 for v in z) >= 16, z


def test_spectral_density_full_lanczos_is_exact(problem):
    model, X, y, H, eig = problem
    dim = H.shape[0]
    spectrum = curvature.spectral_density(
        model, "cross_entropy", X, y, n_iter=dim, n_runs=3, seed=0, grid=3000
    )
    assert spectrum.n_params == dim and spectrum.nodes.shape == (3, dim)
    np.testing.assert_allclose(spectrum.weights.sum(1), 1.0, atol=1e-10)
    assert np.trapezoid(spectrum.density, spectrum.grid) == pytest.approx(1.0, abs=1e-3)
    # a full-length Lanczos run is exact: every node that carries weight is an eigenvalue of H
    nodes = spectrum.nodes[spectrum.weights > 1e-8]
    gaps = np.abs(nodes[:, None] - eig.numpy()[None]).min(1)
    assert gaps.max() < 1e-6 * float(eig.abs().max())
    assert spectrum.eigenvalues[0] == pytest.approx(float(eig[-1]), rel=1e-8)
    short = [
        curvature.spectral_density(model, "cross_entropy", X, y, n_iter=4, n_runs=2, seed=s)
        for s in (0, 0, 1)
    ]
    np.testing.assert_array_equal(short[0].density, short[1].density)  # determinism per seed
    assert not np.array_equal(short[0].nodes, short[2].nodes)


def test_spectral_density_trace_within_five_percent(problem):
    model, X, y, H, _ = problem
    # the quadrature is exact for polynomials of degree <= 2 n_iter - 1, so each run's sum w_i theta_i is
    # v^T H v / |v|^2 exactly: with many short runs the trace is as good as Hutchinson's
    n = 5000
    assert rademacher_rel_std(H, n) < 0.02
    spectrum = curvature.spectral_density(
        model, "cross_entropy", X, y, n_iter=2, n_runs=n, runs_per_call=1000
    )
    assert spectrum.trace == pytest.approx(float(H.trace()), rel=0.05)


def test_batch_norm_model_uses_running_statistics_and_is_untouched():
    model = tiny(batch_norm=True)
    model.train()
    before = copy.deepcopy(model.state_dict())
    X, y = data()
    H = dense_hessian(model, "cross_entropy", X, y)  # eval mode: running statistics
    top = curvature.top_eigenvalues(model, "cross_entropy", X, y, k=1)
    assert top[0] == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-4)
    curvature.hessian_trace(model, "cross_entropy", X, y, n_samples=4)
    curvature.spectral_density(model, "cross_entropy", X, y, n_iter=5, n_runs=1)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_sharpness_along_snapshots_and_threshold(problem):
    model, X, y, _, eig = problem
    other = tiny(seed=5)
    snapshots = [{n: p.detach().numpy() for n, p in model.named_parameters()}, other]
    sharp = curvature.sharpness_along(model, "cross_entropy", X, y, snapshots, lr=0.1, steps=[0, 10])
    assert sharp.threshold == pytest.approx(20.0)
    np.testing.assert_array_equal(sharp.steps, [0, 10])
    assert sharp.top_eigenvalue[0] == pytest.approx(float(eig[-1]), rel=1e-3)
    H_other = dense_hessian(other, "cross_entropy", X, y)
    assert sharp.top_eigenvalue[1] == pytest.approx(float(torch.linalg.eigvalsh(H_other)[-1]), rel=1e-3)
    assert np.isnan(curvature.sharpness_along(model, "cross_entropy", X, y, snapshots[:1]).threshold)


def test_regression_loss_and_mlp_model():
    torch.manual_seed(0)
    model = MLP(3, 1, width=4, activation="tanh").double()
    X, _ = data(n=30)
    target = torch.randn(30, dtype=torch.float64)
    H = dense_hessian(model, "squared", X, target)
    eig = torch.linalg.eigvalsh(H)
    top = curvature.top_eigenvalues(model, "squared", X, target, k=2)
    np.testing.assert_allclose(top, eig.flip(0)[:2].numpy(), rtol=1e-2)


def test_argument_checks(problem):
    model, X, y, _, _ = problem
    with pytest.raises(ValueError, match="k must be an integer in"):
        curvature.top_eigenvalues(model, "cross_entropy", X, y, k=0)
    with pytest.raises(ValueError, match="method must be one of"):
        curvature.top_eigenvalues(model, "cross_entropy", X, y, method="arnoldi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_samples"):
        curvature.hessian_trace(model, "cross_entropy", X, y, n_samples=0)
    with pytest.raises(ValueError, match="method must be one of"):
        curvature.hessian_trace(model, "cross_entropy", X, y, method="lanczos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exact_max_params"):
        curvature.hessian_trace(model, "cross_entropy", X, y, exact_max_params=-1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        curvature.sharpness_along(model, "cross_entropy", X, y, [model], lr=-1.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_curvature_matches_cpu(problem):
    model, X, y, _, eig = problem
    top = curvature.top_eigenvalues(model, "cross_entropy", X, y, k=2, device="cuda")
    np.testing.assert_allclose(top, eig.flip(0)[:2].numpy(), rtol=1e-6)
    for method in ("exact", "hutch++", "hutchinson"):
        kwargs = {"n_samples": 16, "method": method}
        cpu = curvature.hessian_trace(model, "cross_entropy", X, y, device="cpu", **kwargs)
        gpu = curvature.hessian_trace(model, "cross_entropy", X, y, device="cuda", **kwargs)
        assert gpu.value == pytest.approx(cpu.value, rel=1e-9), method


def test_curvature_passes_context_to_losses_that_need_class_counts():
    # VS loss reads class_counts: the curvature must be that of the loss *with* them, not a silent default
    model, (X, y) = tiny(), data()
    counts = torch.tensor([30.0, 8.0, 2.0], dtype=torch.float64)
    bound = losses.make("vs_loss")
    m = copy.deepcopy(model).eval()
    names = [n for n, _ in m.named_parameters()]
    shapes = [p.shape for _, p in m.named_parameters()]

    def f(flat: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(np.prod(s))
            params[n] = flat[i : i + k].view(s)
            i += k
        return bound(functional_call(m, params, (X,)), y, class_counts=counts)

    theta = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    expected = torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, theta)).max().item()
    top = curvature.top_eigenvalues(model, bound, X, y, k=1, context={"class_counts": counts})[0]
    balanced = curvature.top_eigenvalues(model, bound, X, y, k=1)[0]
    assert top == pytest.approx(expected, rel=1e-3)
    assert abs(balanced - expected) > 1e-3 * abs(expected)  # the counts really changed the curvature
    trace = curvature.hessian_trace(model, bound, X, y, n_samples=8, context={"class_counts": counts})
    assert np.isfinite(float(trace)) and trace.method == "exact"  # 38 parameters
