"""Loss curvature in parameter space: Hessian-vector products, top eigenvalues, trace, spectral density.

HVPs by torch.func (vjp of grad); eigenvalues by Lanczos or power iteration, the trace exactly or by Hutch++
(Meyer et al. 2021), the density by stochastic Lanczos quadrature (Ghorbani et al. 2019); sharpness vs 2/lr
(Cohen et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vjp, vmap

from lossviz.device import resolve_device
from lossviz.landscape import ArrayLike, LossLike, Progress, _bind, _inputs, _setup, loss_label
from lossviz.results import Sharpness, Spectrum, TraceEstimate

Method = Literal["lanczos", "power"]
METHODS: tuple[str, ...] = ("lanczos", "power")


class HessianOperator:
    """v -> H v for the mean loss at a model's parameters, on flat float vectors of length dim.

    The model is copied in eval mode (BatchNorm uses running statistics); state (e.g. a training snapshot)
    replaces its parameters and buffers in the copy. Data are processed in chunks of batch_size samples.
    Each chunk's forward-over-reverse HVP is traced once with torch.func.linearize and replayed (several times
    cheaper than re-running jvp(grad) in eager mode, measured); plain jvp, then vjp-of-grad, are fallbacks.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: LossLike,
        X: ArrayLike,
        y: ArrayLike,
        *,
        state: Mapping[str, ArrayLike] | None = None,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.bound = _bind(loss)
        self._setup = _setup(model, resolve_device(device), state)
        s = self._setup
        self.X, self.y = _inputs(X, y, s.device, s.dtype)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        n = self.X.shape[0]
        whole = context is not None or self.bound.spec.batch  # batch-level losses need the whole set
        self._chunk = n if (batch_size is None or whole) else min(batch_size, n)
        self._context = dict(context or {})
        self.param_names = s.names[: s.n_params]
        self.dim = s.offsets[s.n_params]
        self.theta = s.theta[: self.dim].clone()  # (dim,) the parameters
        self._buffers = {name: s.view(s.theta, name) for name in s.names[s.n_params :]}
        self._cached = batch_size is None or self._chunk == n  # one chunk: keep its graph and replay it
        self._pullback: Callable[[torch.Tensor], tuple[torch.Tensor]] | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.theta.dtype

    @property
    def device(self) -> torch.device:
        return self.theta.device

    def _loss(self, p: torch.Tensor, Xb: torch.Tensor, yb: torch.Tensor, weight: float) -> torch.Tensor:
        s = self._setup
        state = {name: s.view(p, name) for name in self.param_names} | self._buffers
        out = functional_call(s.module, state, (Xb,))
        return self.bound(out, yb, **self._context) * weight  # chunk mean x chunk share = part of the mean

    def loss(self, p: torch.Tensor | None = None) -> float:
        """The mean loss at flat parameters p (theta by default)."""
        p = self.theta if p is None else p
        n = self.X.shape[0]
        with torch.no_grad():
            return float(
                sum(
                    float(self._loss(p, *self._chunk_at(i), self._share(i))) for i in range(0, n, self._chunk)
                )
            )

    def _chunk_at(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i : i + self._chunk], self.y[i : i + self._chunk]

    def _share(self, i: int) -> float:
        n = self.X.shape[0]
        return min(self._chunk, n - i) / n

    def _hvp_chunk(self, v: torch.Tensor, i: int) -> torch.Tensor:
        Xb, yb = self._chunk_at(i)
        w = self._share(i)

        def gradient(p: torch.Tensor) -> torch.Tensor:
            return grad(self._loss)(p, Xb, yb, w)

        # H is symmetric, so the pullback v^T H of the gradient is (H v)^T
        if not self._cached:
            return vjp(gradient, self.theta)[1](v)[0]
        if self._pullback is None:
            self._pullback = vjp(gradient, self.theta)[1]  # forward + backward once, graph kept
        return self._pullback(v)[0]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat vector v (dim,) in any float dtype; the result has v's dtype."""
        if v.shape != (self.dim,):
            raise ValueError(f"v must have shape ({self.dim},), got {tuple(v.shape)}")
        vv = v.to(device=self.device, dtype=self.dtype)
        total = sum(self._hvp_chunk(vv, i) for i in range(0, self.X.shape[0], self._chunk))
        return total.to(v.dtype)  # type: ignore[union-attr]

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """H V^T for a block of vectors V (b, dim), vmapped when every op has a batching rule."""
        try:
            return vmap(self)(V)
        except (RuntimeError, NotImplementedError):
            return torch.stack([self(v) for v in V])

    def flatten(self, d: Mapping[str, ArrayLike]) -> torch.Tensor:
        """A direction keyed like named_parameters() as a flat (dim,) vector (absent names are zero)."""
        unknown = [k for k in d if k not in self.param_names]
        if unknown:
            raise ValueError(f"keys {unknown} are not parameters; valid: {self.param_names}")
        return self._setup.flatten(d, "direction")[: self.dim]

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """A flat (dim,) vector as tensors keyed like named_parameters()."""
        return {name: self._setup.view(v, name).clone() for name in self.param_names}


def hessian_vector_product(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    v: Mapping[str, ArrayLike],
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> dict[str, torch.Tensor]:
    """H v for a direction v keyed like named_parameters(), with H the Hessian of the mean loss."""
    op = HessianOperator(model, loss, X, y, batch_size=batch_size, device=device)
    return op.unflatten(op(op.flatten(v)))


def _generator(seed: int) -> torch.Generator:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def _apply(op: HessianOperator, v: torch.Tensor) -> torch.Tensor:
    """H v in float64 (Lanczos bases are kept in float64 so orthogonality survives float32 HVPs)."""
    return op(v.to(op.dtype)).to(torch.float64)


def _lanczos(
    op: HessianOperator,
    steps: int,
    gen: torch.Generator,
    stop: Callable[[np.ndarray, np.ndarray, int], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Lanczos with full reorthogonalisation: (alpha (m,), beta (m-1,), basis V (m, dim)) with V H V^T = T.

    On breakdown (an invariant subspace found) it restarts from a fresh random vector orthogonal to the basis
    (beta = 0 there), so repeated eigenvalues are found with their multiplicity.
    """
    dim, dev = op.dim, op.device
    steps = min(steps, dim)
    V = torch.zeros(steps, dim, dtype=torch.float64, device=dev)
    alphas: list[float] = []
    betas: list[float] = []
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(dev)
    v = v / v.norm()
    scale = 0.0
    for j in range(steps):
        V[j] = v
        w = _apply(op, v)
        alpha = float(w @ v)
        alphas.append(alpha)
        scale = max(scale, abs(alpha), float(w.norm()))
        # full reorthogonalisation against the whole basis, done twice ("twice is enough", Parlett)
        for _ in range(2):
            w = w - V[: j + 1].T @ (V[: j + 1] @ w)
        beta = float(w.norm())
        if j == steps - 1 or (stop is not None and stop(np.array(alphas), np.array([*betas, beta]), j)):
            break
        if beta <= 1e-10 * max(scale, 1e-300):
            w = torch.randn(dim, generator=gen, dtype=torch.float64).to(dev)
            for _ in range(2):
                w = w - V[: j + 1].T @ (V[: j + 1] @ w)
            beta_norm = float(w.norm())
            if beta_norm <= 1e-12:
                break
            betas.append(0.0)
            v = w / beta_norm
            continue
        betas.append(beta)
        v = w / beta
    m = len(alphas)
    return np.array(alphas), np.array(betas[: m - 1]), V[:m]


def _tridiagonal_eigh(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    return np.linalg.eigh(T)  # ascending Ritz values, eigenvectors in columns


def _check_k(k: int, dim: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= dim:
        raise ValueError(f"k must be an integer in [1, {dim}] (the number of parameters), got {k!r}")


def _eigenpairs(
    op: HessianOperator, k: int, method: str, n_iter: int | None, tol: float | None, seed: int
) -> tuple[np.ndarray, torch.Tensor]:
    """(eigenvalues (k,), eigenvectors (k, dim) float64) of op."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    _check_k(k, op.dim)
    # Lanczos: relative residual of the Ritz pairs; power: relative change of the Rayleigh quotient
    tol = tol if tol is not None else (1e-5 if method == "lanczos" else 1e-4)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if n_iter is not None and (not isinstance(n_iter, int) or n_iter < 1):
        raise ValueError(f"n_iter must be a positive integer or None, got {n_iter!r}")
    gen = _generator(seed)
    if method == "lanczos":
        steps = n_iter or max(50, 4 * k)

        def converged(alphas: np.ndarray, betas: np.ndarray, j: int) -> bool:
            # residual of a Ritz pair = |beta_j * last component of its eigenvector of T|
            if len(alphas) < k + 2 or j % 5:
                return False
            theta, S = _tridiagonal_eigh(alphas, betas[:-1])
            top = slice(len(theta) - k, None)
            residual = np.abs(betas[-1] * S[-1, top])
            return bool(np.all(residual <= tol * np.maximum(np.abs(theta[top]), 1e-12)))

        alphas, betas, V = _lanczos(op, steps, gen, stop=converged)
        theta, S = _tridiagonal_eigh(alphas, betas)
        order = np.argsort(theta)[::-1][:k]
        vectors = torch.as_tensor(S[:, order].T.copy(), device=V.device) @ V  # (k, dim) Ritz vectors
        return theta[order], vectors
    # power iteration with deflation (as PyHessian): largest |eigenvalue| first, then the next one in the
    # orthogonal complement of those found
    steps = n_iter or 100
    values: list[float] = []
    vectors_list: list[torch.Tensor] = []

    def deflate(u: torch.Tensor) -> torch.Tensor:
        for q in vectors_list:
            u = u - (u @ q) * q
        return u

    for _ in range(k):
        v = deflate(torch.randn(op.dim, generator=gen, dtype=torch.float64).to(op.device))
        v = v / v.norm()
        lam = 0.0
        for it in range(steps):
            w = deflate(_apply(op, v))
            new = float(w @ v)
            norm = float(w.norm())
            if norm == 0.0:
                lam = 0.0
                break
            v = w / norm
            if it > 0 and abs(new - lam) <= tol * max(abs(lam), 1e-12):
                lam = new
                break
            lam = new
        values.append(lam)
        vectors_list.append(v)
    return np.array(values), torch.stack(vectors_list)


def top_eigenpairs(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    k: int = 1,
    *,
    method: Method = "lanczos",
    n_iter: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    context: Mapping[str, Any] | None = None,  # data a loss needs, e.g. class_counts
    state: Mapping[str, ArrayLike] | None = None,
) -> tuple[np.ndarray, list[dict[str, torch.Tensor]]]:
    """Top-k Hessian eigenvalues and unit eigenvectors keyed like named_parameters (e.g. landscape axes)."""
    op = HessianOperator(
        model, loss, X, y, state=state, batch_size=batch_size, device=device, context=context
    )
    values, vectors = _eigenpairs(op, k, method, n_iter, tol, seed)
    return values, [op.unflatten(v.to(op.dtype)) for v in vectors]


def top_eigenvalues(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    k: int = 1,
    *,
    method: Method = "lanczos",
    n_iter: int | None = None,
    tol: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    context: Mapping[str, Any] | None = None,  # data a loss needs, e.g. class_counts
    state: Mapping[str, ArrayLike] | None = None,
) -> np.ndarray:
    """The k largest Hessian eigenvalues (k,), descending; method="power" finds the largest in magnitude."""
    op = HessianOperator(
        model, loss, X, y, state=state, batch_size=batch_size, device=device, context=context
    )
    return _eigenpairs(op, k, method, n_iter, tol, seed)[0]


def _rademacher(n: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n, dim), generator=gen, dtype=torch.int8).to(torch.float64) * 2 - 1


TraceMethod = Literal["auto", "exact", "hutch++", "hutchinson"]
TRACE_METHODS: tuple[str, ...] = ("auto", "exact", "hutch++", "hutchinson")
# Up to this many parameters "auto" computes the trace exactly, one HVP per unit vector (batched like the
# probes): for the app's small models that costs a few times 64 probes, and such small traces are where a
# 64-probe Hutchinson estimate is several percent off.
EXACT_TRACE_MAX_PARAMS = 256


def _matmat_chunked(op: HessianOperator, V: torch.Tensor, chunk: int) -> torch.Tensor:
    """H V^T for V (b, dim) in float64, probes_per_call rows per batched HVP.  # (b, dim)"""
    out = [
        op.matmat(V[i : i + chunk].to(device=op.device, dtype=op.dtype)).to(torch.float64)
        for i in range(0, V.shape[0], chunk)
    ]
    return torch.cat(out) if out else V.new_zeros((0, op.dim), dtype=torch.float64, device=op.device)


def _exact_trace(op: HessianOperator, chunk: int) -> TraceEstimate:
    """sum_i e_i^T H e_i over the unit basis: dim HVPs, no sampling error."""
    total = 0.0
    for i in range(0, op.dim, chunk):
        rows = torch.arange(min(chunk, op.dim - i))
        E = torch.zeros(len(rows), op.dim, dtype=torch.float64)
        E[rows, i + rows] = 1.0  # (b, dim) unit vectors e_i .. e_{i+b-1}
        HE = _matmat_chunked(op, E, chunk)
        total += float(HE[rows, i + rows].sum())  # the diagonal entries H_ii
    return TraceEstimate(value=total, stderr=0.0, method="exact", n_matvecs=op.dim)


def _mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """Sample mean and its standard error (std with ddof=1 over sqrt(n); NaN from a single value)."""
    n = values.numel()
    stderr = float(values.std(correction=1)) / n**0.5 if n > 1 else float("nan")
    return float(values.mean()), stderr


def _hutchinson(op: HessianOperator, n: int, gen: torch.Generator, chunk: int) -> TraceEstimate:
    probes = _rademacher(n, op.dim, gen)  # (n, dim), drawn on the CPU: same on every device
    HV = _matmat_chunked(op, probes, chunk)
    value, stderr = _mean_and_stderr((HV * probes.to(HV.device)).sum(1))  # v^T H v per probe (n,)
    return TraceEstimate(value=value, stderr=stderr, method="hutchinson", n_matvecs=n)


def _hutch_plus_plus(op: HessianOperator, n: int, gen: torch.Generator, chunk: int) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021): the trace of H on a sketch of its top range, exactly,
    plus Hutchinson on the deflated remainder, whose probes give the standard error (conditional on Q)."""
    k = min(n // 3, op.dim)
    if k == 0:
        return _hutchinson(op, n, gen, chunk)
    sketch = _rademacher(k, op.dim, gen)  # (k, dim)
    probes = _rademacher(n - 2 * k, op.dim, gen)  # (m, dim)
    Q = torch.linalg.qr(_matmat_chunked(op, sketch, chunk).T).Q  # (dim, k) orthonormal basis of range(H S)
    HQ = _matmat_chunked(op, Q.T.contiguous(), chunk)  # (k, dim)
    top = float((HQ * Q.T).sum())  # tr(Q^T H Q)
    if probes.shape[0] == 0:
        return TraceEstimate(value=top, stderr=float("nan"), method="hutch++", n_matvecs=2 * k)
    G = probes.to(Q.device)
    W = G - (G @ Q) @ Q.T  # (m, dim) probes projected off the sketched range: (I - Q Q^T) g
    rest, stderr = _mean_and_stderr((_matmat_chunked(op, W, chunk) * W).sum(1))  # w^T H w per probe (m,)
    return TraceEstimate(value=top + rest, stderr=stderr, method="hutch++", n_matvecs=n)


def hessian_trace(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    n_samples: int = 64,
    seed: int = 0,
    *,
    method: TraceMethod = "auto",
    exact_max_params: int = EXACT_TRACE_MAX_PARAMS,
    probes_per_call: int = 16,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    context: Mapping[str, Any] | None = None,  # data a loss needs, e.g. class_counts
    state: Mapping[str, ArrayLike] | None = None,
) -> TraceEstimate:
    """tr(H) with its standard error: exact for small models, Hutch++ (or Hutchinson) otherwise.

    method="auto" is exact (one HVP per unit vector, stderr 0) when the model has at most exact_max_params
    parameters or n_samples >= their number, and Hutch++ otherwise. n_samples is the number of HVPs a
    stochastic method spends; Hutch++ spends a third on a sketch S, a third on tr(Q^T H Q) for Q = orth(H S),
    and the rest on Rademacher probes of the deflated remainder. stderr is the standard error of the mean of
    those probes (of all probes for "hutchinson"); float(result) is the value.
    """
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not isinstance(probes_per_call, int) or probes_per_call < 1:
        raise ValueError(f"probes_per_call must be a positive integer, got {probes_per_call!r}")
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {list(TRACE_METHODS)}, got {method!r}")
    if not isinstance(exact_max_params, int) or exact_max_params < 0:
        raise ValueError(f"exact_max_params must be a non-negative integer, got {exact_max_params!r}")
    gen = _generator(seed)
    op = HessianOperator(
        model, loss, X, y, state=state, batch_size=batch_size, device=device, context=context
    )
    if method == "auto":
        method = "exact" if op.dim <= max(exact_max_params, n_samples) else "hutch++"
    if method == "exact":
        return _exact_trace(op, probes_per_call)
    if method == "hutchinson":
        return _hutchinson(op, n_samples, gen, probes_per_call)
    return _hutch_plus_plus(op, n_samples, gen, probes_per_call)


def _lanczos_runs(
    op: HessianOperator, starts: torch.Tensor, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R independent Lanczos runs advanced together, one batched HVP (R vectors) per step.

    Returns alpha (R, m), beta (R, m - 1) and each run's length (R,): a run stops at breakdown (its Krylov
    space is invariant, so its quadrature is already exact).
    """
    R, dim = starts.shape
    m = min(steps, dim)
    V = torch.zeros(R, m, dim, dtype=torch.float64, device=op.device)
    A = np.zeros((R, m))
    B = np.zeros((R, max(m - 1, 0)))
    lengths = np.zeros(R, dtype=np.int64)
    active = torch.ones(R, dtype=torch.bool, device=op.device)
    scale = torch.zeros(R, dtype=torch.float64, device=op.device)
    v = starts.to(device=op.device, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    for j in range(m):
        V[:, j] = v
        w = op.matmat(v.to(op.dtype)).to(torch.float64)  # (R, dim)
        alpha = (w * v).sum(1)
        scale = torch.maximum(scale, torch.maximum(alpha.abs(), w.norm(dim=1)))
        A[:, j] = alpha.cpu().numpy()
        lengths[active.cpu().numpy()] = j + 1
        for _ in range(2):  # full reorthogonalisation of each run against its own basis
            w = w - torch.einsum("rkd,rk->rd", V[:, : j + 1], torch.einsum("rkd,rd->rk", V[:, : j + 1], w))
        beta = w.norm(dim=1)
        active = active & (beta > 1e-10 * scale.clamp_min(1e-300))
        if j == m - 1 or not bool(active.any()):
            break
        B[:, j] = torch.where(active, beta, 0).cpu().numpy()
        v = torch.where(active[:, None], w / beta.clamp_min(1e-300)[:, None], torch.zeros_like(w))
    return A, B, lengths


def spectral_density(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    n_iter: int = 40,
    n_runs: int = 8,
    seed: int = 0,
    grid: int | ArrayLike = 512,
    sigma: float | None = None,
    *,
    runs_per_call: int = 8,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    context: Mapping[str, Any] | None = None,  # data a loss needs, e.g. class_counts
    state: Mapping[str, ArrayLike] | None = None,
    progress: Progress | None = None,
) -> Spectrum:
    """Hessian eigenvalue density by stochastic Lanczos quadrature, broadened by Gaussians of width sigma.

    Each run starts Lanczos from a normalised Rademacher vector v; the Ritz values are the nodes and the
    squared first components of T's eigenvectors the weights: sum_i w_i f(theta_i) = v^T f(H) v ~ tr f(H) / n.
    sigma defaults to 1% of the spectrum's range; grid is a number of points or the eigenvalue axis itself.
    """
    for name, value in (("n_iter", n_iter), ("n_runs", n_runs), ("runs_per_call", runs_per_call)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0 or None, got {sigma!r}")
    op = HessianOperator(
        model, loss, X, y, state=state, batch_size=batch_size, device=device, context=context
    )
    starts = _rademacher(n_runs, op.dim, _generator(seed))  # (R, dim), drawn on the CPU
    m = min(n_iter, op.dim)
    nodes = np.zeros((n_runs, m))
    weights = np.zeros((n_runs, m))
    for r0 in range(0, n_runs, runs_per_call):
        A, B, lengths = _lanczos_runs(op, starts[r0 : r0 + runs_per_call], m)
        for r, length in enumerate(lengths):
            theta, S = _tridiagonal_eigh(A[r, :length], B[r, : length - 1])
            nodes[r0 + r, :length] = theta
            weights[r0 + r, :length] = S[0] ** 2
        if progress is not None:
            done = min(r0 + runs_per_call, n_runs)
            progress(done / n_runs, f"Lanczos runs {done} of {n_runs}")
    used = weights > 0
    lo, hi = float(nodes[used].min()), float(nodes[used].max())
    width = hi - lo if hi > lo else max(abs(hi), 1.0)
    sigma = float(sigma) if sigma is not None else 0.01 * width
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        if grid < 2:
            raise ValueError(f"grid must be >= 2 points or an array, got {grid!r}")
        axis = np.linspace(lo - 0.05 * width - 3 * sigma, hi + 0.05 * width + 3 * sigma, int(grid))
    else:
        axis = np.asarray(grid.detach().cpu() if torch.is_tensor(grid) else grid, dtype=np.float64).reshape(
            -1
        )
    # sum over runs and nodes of weight x Gaussian at the node, one grid row at a time: (M, R * m) stays small
    flat_nodes, flat_weights = nodes[used], weights[used]
    density = np.zeros_like(axis)
    for i in range(0, len(axis), 256):
        diff = (axis[i : i + 256, None] - flat_nodes[None]) / sigma
        density[i : i + 256] = (np.exp(-0.5 * diff**2) * flat_weights).sum(1)
    density /= n_runs * sigma * np.sqrt(2 * np.pi)
    trace = float(op.dim * np.mean((weights * nodes).sum(1)))
    top = np.sort(flat_nodes)[::-1][: min(5, len(flat_nodes))]
    return Spectrum(
        grid=axis,
        density=density,
        nodes=nodes,
        weights=weights,
        eigenvalues=top,
        trace=trace,
        n_params=op.dim,
        sigma=sigma,
    )


def sharpness_along(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    snapshots: Sequence[nn.Module | Mapping[str, ArrayLike]],
    lr: float | None = None,
    steps: ArrayLike | None = None,
    *,
    n_iter: int = 30,
    tol: float = 1e-4,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    context: Mapping[str, Any] | None = None,  # data a loss needs, e.g. class_counts
    progress: Progress | None = None,
) -> Sharpness:
    """Top Hessian eigenvalue at each training snapshot, with 2/lr: gradient descent's stability threshold.

    snapshots are modules or state mappings for model's architecture (e.g. History.snapshots); steps defaults
    to 0..T-1. Full-batch gradient descent with step lr is unstable along directions of curvature above 2/lr.
    """
    if lr is not None and not lr > 0:
        raise ValueError(f"lr must be > 0 or None, got {lr!r}")
    if not len(snapshots):
        raise ValueError("snapshots must hold at least one state")
    steps_np = np.arange(len(snapshots)) if steps is None else np.asarray(steps).reshape(-1)
    if len(steps_np) != len(snapshots):
        raise ValueError(f"steps has {len(steps_np)} entries for {len(snapshots)} snapshots")
    bound = _bind(loss)
    values = np.zeros(len(snapshots))
    for t, snap in enumerate(snapshots):
        state = dict(snap.state_dict()) if isinstance(snap, nn.Module) else snap
        op = HessianOperator(
            model, bound, X, y, state=state, batch_size=batch_size, device=device, context=context
        )
        values[t] = _eigenpairs(op, 1, "lanczos", n_iter, tol, seed)[0][0]
        if progress is not None:
            progress((t + 1) / len(snapshots), f"snapshot {t + 1} of {len(snapshots)}")
    return Sharpness(
        steps=steps_np,
        top_eigenvalue=values,
        threshold=2.0 / lr if lr is not None else float("nan"),
        label=loss_label(bound),
    )
