"""Loss landscapes: filter-normalized random directions, PCA of a trajectory, 1-D/2-D slices, interpolation.

Implements "Visualizing the Loss Landscape of Neural Nets" (Li et al., 2018) with a batched evaluator that
evaluates many grid points per call on a private eval-mode copy of the model (the caller's is untouched).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from lossviz import losses as _losses
from lossviz.device import resolve_device
from lossviz.losses.registry import BoundLoss, LossSpec
from lossviz.results import Curve, Interpolation, Surface, TrajectoryPCA

Norm = Literal["filter", "layer", "model"]
Ignore = Literal["biasbn"]
Engine = Literal["auto", "stacked", "vmap", "loop"]
NORMS: tuple[str | None, ...] = ("filter", "layer", "model", None)
IGNORES: tuple[str | None, ...] = ("biasbn", None)
ENGINES: tuple[str, ...] = ("auto", "stacked", "vmap", "loop")

LossLike = str | LossSpec | BoundLoss
Direction = dict[str, torch.Tensor]
ArrayLike = torch.Tensor | np.ndarray
DirectionLike = Mapping[str, ArrayLike]
Progress = Callable[[float, str], None]

# Working-set size of one chunk of grid points x samples. On the CPU, cache-sized chunks measured fastest
# (4 MB best among 1-32 MB on both benchmark jobs, on a shared and noisy machine); on a GPU (not measured
# here) bigger chunks amortise kernel launches.
_CPU_CHUNK_MB = 4.0
_GPU_CHUNK_MB = 512.0
_EPS = 1e-10  # as in the reference implementation: keeps a zero filter from dividing by zero


# ----------------------------------------------------------------------------------------------------------
# directions
# ----------------------------------------------------------------------------------------------------------


def model_parameters(model: nn.Module | Mapping[str, ArrayLike]) -> dict[str, torch.Tensor]:
    """Detached copies of the named parameters (or of a name -> array mapping), keyed by name."""
    if isinstance(model, nn.Module):
        return {name: p.detach().clone() for name, p in model.named_parameters()}
    return {
        name: torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v).detach().clone()
        for name, v in model.items()
    }


def _check_norm(norm: str | None, ignore: str | None) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}, got {norm!r}")
    if ignore not in IGNORES:
        raise ValueError(f"ignore must be one of {list(IGNORES)}, got {ignore!r}")


def normalize_direction(
    direction: Mapping[str, torch.Tensor],
    params: nn.Module | Mapping[str, ArrayLike],
    norm: Norm | None = "filter",
    ignore: Ignore | None = "biasbn",
) -> Direction:
    """A rescaled copy of direction: per output filter ("filter"), per tensor ("layer") or whole ("model").

    Filter normalization rescales every slice d[i] along dim 0 to the norm of the same slice w[i] of the
    weights. With ignore="biasbn" every 1-D parameter (biases, norm layers) is zeroed, as in the reference;
    otherwise 1-D parameters are normalized like the rest (a filter of a 1-D tensor is one element).
    """
    _check_norm(norm, ignore)
    weights = model_parameters(params)
    missing = [k for k in direction if k not in weights]
    if missing:
        raise ValueError(f"direction has keys {missing} that are not parameters; valid: {list(weights)}")
    out: Direction = {}
    for name, d in direction.items():
        w = weights[name].to(device=d.device, dtype=d.dtype)
        if d.shape != w.shape:
            raise ValueError(
                f"direction[{name!r}] has shape {tuple(d.shape)}, the parameter {tuple(w.shape)}"
            )
        if ignore == "biasbn" and d.dim() <= 1:
            out[name] = torch.zeros_like(d)
        elif norm == "filter":
            # (out, ...) -> (out, entries): one norm per output filter, broadcast back over its entries
            rows = (d.shape[0], -1) if d.dim() else (1, 1)
            d2, w2 = d.reshape(rows), w.reshape(rows)
            scale = w2.norm(dim=1, keepdim=True) / (d2.norm(dim=1, keepdim=True) + _EPS)
            out[name] = (d2 * scale).reshape(d.shape)
        elif norm == "layer":
            out[name] = d * (w.norm() / (d.norm() + _EPS))
        else:
            out[name] = d.clone()
    if norm == "model":
        # the whole direction gets the norm of the weights it moves (ignored 1-D parameters excluded)
        kept = [k for k in out if not (ignore == "biasbn" and out[k].dim() <= 1)]
        d_norm = math.sqrt(sum(float(out[k].double().pow(2).sum()) for k in kept))
        w_norm = math.sqrt(sum(float(weights[k].double().pow(2).sum()) for k in kept))
        out = {k: v * (w_norm / (d_norm + _EPS)) for k, v in out.items()}
    return out


def filter_normalize(
    direction: Mapping[str, torch.Tensor],
    params: nn.Module | Mapping[str, ArrayLike],
    ignore: Ignore | None = "biasbn",
) -> Direction:
    """Filter normalization (Li et al. 2018): each output filter of direction gets its weights' norm."""
    return normalize_direction(direction, params, norm="filter", ignore=ignore)


def random_direction(
    params: nn.Module | Mapping[str, ArrayLike],
    seed: int,
    norm: Norm | None = "filter",
    ignore: Ignore | None = "biasbn",
) -> Direction:
    """A Gaussian direction keyed like named_parameters(), normalized (filter by default); seeded."""
    _check_norm(norm, ignore)
    weights = model_parameters(params)
    # draw on the CPU in float32 in parameter order, so the direction is the same on every device and dtype
    gen = torch.Generator().manual_seed(int(seed))
    raw = {
        name: torch.randn(w.shape, generator=gen, dtype=torch.float32).to(device=w.device, dtype=w.dtype)
        for name, w in weights.items()
    }
    return normalize_direction(raw, weights, norm=norm, ignore=ignore)


def _floating_keys(state: Mapping[str, Any]) -> list[str]:
    skip = ("running_mean", "running_var", "num_batches_tracked")
    keys = []
    for k, v in state.items():
        t = v if torch.is_tensor(v) else np.asarray(v)
        floating = t.is_floating_point() if torch.is_tensor(t) else np.issubdtype(t.dtype, np.floating)
        if floating and not k.endswith(skip):
            keys.append(k)
    return keys


def pca_directions(
    snapshots: Sequence[nn.Module | Mapping[str, ArrayLike]],
    final: nn.Module | Mapping[str, ArrayLike],
    ignore: Ignore | None = "biasbn",
) -> TrajectoryPCA:
    """The two leading PCA directions of theta_i - theta_final over a trajectory, and its coordinates in them.

    As in Li et al. 2018 (section 7): the differences are centred before PCA, directions are unit vectors in
    parameter space (so coordinates are distances), and with ignore="biasbn" 1-D parameters are left out.
    Signs are fixed so the first snapshot has non-positive coordinates (training moves towards +x, +y).
    """
    if ignore not in IGNORES:
        raise ValueError(f"ignore must be one of {list(IGNORES)}, got {ignore!r}")
    if len(snapshots) < 2:
        raise ValueError(f"pca_directions needs at least 2 snapshots, got {len(snapshots)}")
    final_params = model_parameters(final)
    first = snapshots[0]
    keys = [n for n, _ in first.named_parameters()] if isinstance(first, nn.Module) else _floating_keys(first)
    keys = [k for k in keys if k in final_params]
    if not keys:
        raise ValueError("snapshots and final share no floating-point parameters")
    shapes = {k: final_params[k].shape for k in keys}
    used = [k for k in keys if not (ignore == "biasbn" and len(shapes[k]) <= 1)]

    def flat(state: nn.Module | Mapping[str, ArrayLike]) -> torch.Tensor:
        p = model_parameters(state)
        return torch.cat([p[k].detach().cpu().double().reshape(-1) for k in used])

    origin = flat(final)
    diffs = torch.stack([flat(s) - origin for s in snapshots])  # (T, P)
    centred = diffs - diffs.mean(0)
    _, s, vt = torch.linalg.svd(centred, full_matrices=False)
    if vt.shape[0] < 2:
        raise ValueError("the trajectory spans fewer than 2 dimensions")
    components = vt[:2]  # (2, P) unit rows
    coords = diffs @ components.T  # (T, 2) projection of theta_i - theta_final
    signs = torch.where(coords[0] > 0, -1.0, 1.0).double()
    components, coords = components * signs[:, None], coords * signs
    variance = s.pow(2)
    ratio = (variance[:2] / variance.sum().clamp_min(1e-300)).numpy()
    directions: list[dict[str, np.ndarray]] = []
    for c in components:
        d, offset = {}, 0
        for k in keys:
            n = int(np.prod(shapes[k])) if len(shapes[k]) else 1
            if k in used:
                d[k] = c[offset : offset + n].reshape(shapes[k]).numpy().astype(np.float32)
                offset += n
            else:
                d[k] = np.zeros(tuple(shapes[k]), np.float32)
        directions.append(d)
    return TrajectoryPCA(
        directions=(directions[0], directions[1]), explained_variance=ratio, coords=coords.numpy()
    )


# ----------------------------------------------------------------------------------------------------------
# the batched evaluation engine
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Setup:
    """A private eval-mode copy of the model and its floating-point state flattened into one vector."""

    module: nn.Module
    names: list[str]  # parameters, then floating-point buffers (running statistics)
    shapes: list[torch.Size]
    dtypes: list[torch.dtype]
    offsets: list[int]  # len(names) + 1
    theta: torch.Tensor  # (S,) flat state at the origin
    n_params: int  # how many of names are parameters
    index: dict[str, int] = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return self.theta.dtype

    @property
    def device(self) -> torch.device:
        return self.theta.device

    def view(self, flat: torch.Tensor, name: str) -> torch.Tensor:
        """The slice of flat (..., S) holding one named tensor, shaped (..., *shape)."""
        i = self.index[name]
        t = flat[..., self.offsets[i] : self.offsets[i + 1]].reshape(*flat.shape[:-1], *self.shapes[i])
        return t if self.dtypes[i] == flat.dtype else t.to(self.dtypes[i])

    def state(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: self.view(flat, n) for n in self.names}

    def flatten(self, tensors: Mapping[str, ArrayLike], what: str) -> torch.Tensor:
        """A name -> tensor mapping as one flat (S,) vector; absent names are zero, unknown names raise."""
        out = torch.zeros_like(self.theta)
        for name, value in tensors.items():
            if name not in self.index:
                if not _is_floating(value):
                    continue  # e.g. num_batches_tracked in a state_dict
                raise ValueError(f"{what} has key {name!r} that the model lacks; valid: {self.names}")
            i = self.index[name]
            t = torch.as_tensor(value if torch.is_tensor(value) else np.asarray(value))
            if tuple(t.shape) != tuple(self.shapes[i]):
                raise ValueError(
                    f"{what}[{name!r}] has shape {tuple(t.shape)}, expected {tuple(self.shapes[i])}"
                )
            out[self.offsets[i] : self.offsets[i + 1]] = t.reshape(-1).to(device=out.device, dtype=out.dtype)
        return out


def _is_floating(value: Any) -> bool:
    if torch.is_tensor(value):
        return value.is_floating_point()
    return np.issubdtype(np.asarray(value).dtype, np.floating)


def _setup(model: nn.Module, device: torch.device, state: Mapping[str, ArrayLike] | None = None) -> _Setup:
    """Copy model to device in eval mode (BatchNorm uses running statistics), optionally loading state."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    module = copy.deepcopy(model).to(device).eval()
    module.requires_grad_(False)
    params = dict(module.named_parameters())
    buffers = {n: b for n, b in module.named_buffers() if b.is_floating_point()}
    names = list(params) + list(buffers)
    if not params:
        raise ValueError("model has no parameters")
    tensors = [params[n] if n in params else buffers[n] for n in names]
    dtype = tensors[0].dtype
    offsets = [0]
    for t in tensors:
        offsets.append(offsets[-1] + t.numel())
    theta = torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])
    setup = _Setup(
        module=module,
        names=names,
        shapes=[t.shape for t in tensors],
        dtypes=[t.dtype for t in tensors],
        offsets=offsets,
        theta=theta,
        n_params=len(params),
        index={n: i for i, n in enumerate(names)},
    )
    if state is not None:
        loaded = setup.flatten(state, "state")
        present = torch.zeros_like(theta, dtype=torch.bool)
        for name in state:
            if name in setup.index:
                i = setup.index[name]
                present[offsets[i] : offsets[i + 1]] = True
        setup.theta = torch.where(present, loaded, theta)
    return setup


def _bind(loss: LossLike) -> BoundLoss:
    return _losses.make(loss)


def loss_label(bound: BoundLoss) -> str:
    """Legend text for a bound loss: its name, with its hyperparameters if any, e.g. "focal (gamma=2)"."""
    if not bound.params:
        return bound.name
    return f"{bound.name} ({', '.join(f'{k}={v:g}' for k, v in bound.params.items())})"


def _inputs(
    X: ArrayLike, y: ArrayLike, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    Xt = torch.as_tensor(X if torch.is_tensor(X) else np.asarray(X)).to(device=device, dtype=dtype)
    yt = torch.as_tensor(y if torch.is_tensor(y) else np.asarray(y)).to(device)
    if yt.is_floating_point():
        yt = yt.to(dtype)
    if Xt.shape[0] != yt.shape[0] or Xt.shape[0] == 0:
        raise ValueError(f"X and y need the same non-zero length, got {Xt.shape[0]} and {yt.shape[0]}")
    return Xt, yt


# A plan is a list of ops the stacked engine runs for G grid points at once. Activations live in one of
# three layouts: "shared" inputs (n, F) or (n, C, H, W) common to every point; "vec" (G, n, F); "img"
# (n, G*C, H, W) channels-last, the G points' channels stacked so that one grouped convolution serves all.
_ELEMENTWISE: dict[type[nn.Module], Callable[[torch.Tensor, bool], torch.Tensor]] = {
    nn.ReLU: lambda h, own: h.relu_() if own else h.relu(),
    nn.Tanh: lambda h, own: h.tanh_() if own else h.tanh(),
    nn.Sigmoid: lambda h, own: h.sigmoid_() if own else h.sigmoid(),
    nn.SiLU: lambda h, own: F.silu(h, inplace=own),
    nn.GELU: lambda h, own: F.gelu(h),
    nn.Identity: lambda h, own: h,
    nn.Dropout: lambda h, own: h,  # eval mode
    nn.Dropout2d: lambda h, own: h,
}
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def _plan(module: nn.Module, prefix: str = "") -> list[tuple] | None:
    """Ops for the stacked engine if module chains Linear / Conv2d / norm / pool / elementwise layers."""
    from lossviz import models  # local: landscapes work for arbitrary modules too

    kind = type(module)
    if kind is nn.Linear:
        return [("linear", prefix + "weight", prefix + "bias" if module.bias is not None else None)]
    if kind is nn.Conv2d:
        if module.groups != 1 or module.padding_mode != "zeros":
            return None
        bias = prefix + "bias" if module.bias is not None else None
        return [("conv", prefix + "weight", bias, module.stride, module.padding, module.dilation)]
    if kind in _ELEMENTWISE:
        if kind is nn.GELU and module.approximate != "none":
            return None
        return [("act", _ELEMENTWISE[kind], kind)]
    if kind in _POOLS:
        return [("pool", module)]
    if kind is nn.Flatten:
        return [("flatten",)] if module.start_dim == 1 and module.end_dim == -1 else None
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        if module.running_mean is None or module.running_var is None:
            return None  # no running statistics: eval mode would use batch statistics
        w = prefix + "weight" if module.weight is not None else None
        b = prefix + "bias" if module.bias is not None else None
        return [("bn", w, b, prefix + "running_mean", prefix + "running_var", module.eps)]
    if kind is models.HarmonicHead:
        return [("harmonic", prefix + "weight", module.exponent, module.eps)]
    if kind is nn.Sequential:
        ops: list[tuple] = []
        for name, child in module.named_children():
            sub = _plan(child, f"{prefix}{name}.")
            if sub is None:
                return None
            ops += sub
        # ReLU then max-pool equals max-pool then ReLU (max commutes with monotone maps): ReLU on fewer values
        for i in range(len(ops) - 1):
            if ops[i][0] == "act" and ops[i][2] is nn.ReLU and ops[i + 1][0] == "pool":
                if isinstance(ops[i + 1][1], nn.MaxPool2d):
                    ops[i], ops[i + 1] = ops[i + 1], ops[i]
        return ops
    if kind is models.MLP:
        body, head = _plan(module.body, prefix + "body."), _plan(module.head, prefix + "head.")
        return None if body is None or head is None else body + head
    if kind is models.DigitsCNN:
        body, head = _plan(module.body, prefix + "body."), _plan(module.head, prefix + "head.")
        return None if body is None or head is None else [("image", (1, 8, 8)), *body, *head]
    if kind is models.Linear:
        return _plan(module.head, prefix + "head.")
    if kind is models._ResidualBlock:
        parts = [_plan(getattr(module, n), f"{prefix}{n}.") for n in ("linear", "norm", "act")]
        if any(p is None for p in parts):
            return None
        return [("residual", parts[0] + parts[1] + parts[2])]  # type: ignore[operator]
    return None


class _Stacked:
    """Runs a plan for G grid points at once: per-point weights, batched matmuls and grouped convolutions."""

    def __init__(self, plan: list[tuple], setup: _Setup, directions: torch.Tensor) -> None:
        self.plan, self.setup, self.directions = plan, setup, directions  # directions (k, S)
        self.buffers: dict[tuple[int, ...], torch.Tensor] = {}
        # A first Conv2d on the shared input is linear in its weights and bias, so its output at
        # theta + sum_i c_i d_i is B_0 + sum_i c_i B_i with B_0 = conv(x; theta), B_i = conv(x; d_i): k + 1
        # convolutions per data chunk, then one small matmul per chunk of points. A convolution with one input
        # channel runs at a few GFLOP/s (3.3 ms against 0.24 ms for the matmul, 629 digits, one thread), so
        # this removes what was half of the digits CNN's time. For a first Linear it measured no faster.
        first = next((i for i, op in enumerate(plan) if op[0] not in ("image", "flatten")), None)
        self.first = first if first is not None and plan[first][0] == "conv" else None
        self.bases: dict[tuple[int, int], tuple[torch.Tensor, tuple[int, ...]]] = {}

    def _buffer(self, key: tuple[int, ...], shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        # reuse output buffers across chunks: fresh large allocations page-fault on every call
        buf = self.buffers.get(key)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self.buffers[key] = buf
        return buf[: shape[0]]

    def forward(self, flat: torch.Tensor, X: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """Outputs (G, n, K) of the G points flat (G, S) = theta + coeffs (G, k) @ directions, on X."""
        if self.first is None:
            h, layout, _ = self._run(self.plan, flat, X, "shared", False, ())
        else:
            h, layout, _ = self._run(self.plan[: self.first], flat, X, "shared", False, ())
            h, layout = self._first_layer(h, coeffs)
            h, layout, _ = self._run(self.plan[self.first + 1 :], flat, h, layout, True, (self.first + 1,))
        return self._vec(h, layout, flat.shape[0])

    def _first_layer(self, x: torch.Tensor, coeffs: torch.Tensor) -> tuple[torch.Tensor, str]:
        """The first convolution for G points as one (G, k + 1) @ (k + 1, n * C * H * W) matmul."""
        s, op = self.setup, self.plan[self.first]  # type: ignore[index]
        key = (x.data_ptr(), x.shape[0])  # one basis per data chunk
        if key not in self.bases:
            rows = []
            for vec in (s.theta, *self.directions):  # (k + 1) parameter vectors: theta, then each direction
                b = s.view(vec, op[2]) if op[2] is not None else None
                out = F.conv2d(x, s.view(vec, op[1]), b, *op[3:]).permute(0, 2, 3, 1)  # (n, H, W, C)
                rows.append(out.reshape(-1))
            self.bases[key] = (torch.stack(rows), tuple(out.shape))  # (k + 1, n * H * W * C)
        basis, (n, H, W, C) = self.bases[key]
        g = coeffs.shape[0]
        full = torch.cat([torch.ones_like(coeffs[:, :1]), coeffs], 1)  # (G, k + 1)
        out = self._buffer((self.first, -1), (g, basis.shape[1]), basis)  # type: ignore[arg-type]
        torch.mm(full, basis, out=out)
        if g > 1:  # (G, n, H, W, C) -> (n, H, W, G, C): the stacked channels of the grouped convolutions
            out = out.view(g, n * H * W, C).transpose(0, 1).reshape(n, H, W, g * C)
        return out.view(n, H, W, g * C).permute(0, 3, 1, 2), "img"  # (n, G*C, H, W) in channels-last memory

    @staticmethod
    def _vec(h: torch.Tensor, layout: str, g: int) -> torch.Tensor:
        if layout == "vec":
            return h
        if layout == "shared" and h.dim() == 2:
            return h.unsqueeze(0).expand(g, *h.shape)  # (G, n, F) without a copy
        raise ValueError(f"the stacked engine cannot use a {h.dim()}-D activation as features")

    @staticmethod
    def _img(h: torch.Tensor, layout: str, g: int) -> torch.Tensor:
        if layout == "img":
            return h
        if layout == "shared" and h.dim() == 4:
            return h.repeat(1, g, 1, 1).contiguous(memory_format=torch.channels_last)  # (n, G*C, H, W)
        raise ValueError(f"the stacked engine expected an image activation, got {h.dim()}-D")

    def _run(
        self,
        ops: list[tuple],
        flat: torch.Tensor,
        h: torch.Tensor,
        layout: str,
        own: bool,
        path: tuple[int, ...],
    ) -> tuple[torch.Tensor, str, bool]:
        s = self.setup
        g = flat.shape[0]
        for k, op in enumerate(ops):
            key = (*path, k)
            if op[0] == "linear":
                x = self._vec(h, layout, g)  # (G, n, in)
                w = s.view(flat, op[1])  # (G, out, in)
                bias = s.view(flat, op[2]).unsqueeze(1) if op[2] is not None else None  # (G, 1, out)
                buf = self._buffer(key, (g, x.shape[1], w.shape[1]), x)  # (G, n, out)
                if bias is not None:
                    torch.baddbmm(bias, x, w.transpose(1, 2), out=buf)
                else:
                    torch.bmm(x, w.transpose(1, 2), out=buf)
                h, layout, own = buf, "vec", True
            elif op[0] == "conv":
                _, w_name, b_name, stride, padding, dilation = op
                w = s.view(flat, w_name)  # (G, out, in, kh, kw) -> the G filter banks stacked
                w = w.reshape(g * w.shape[1], *w.shape[2:]).contiguous(memory_format=torch.channels_last)
                bias = s.view(flat, b_name).reshape(-1) if b_name is not None else None
                if layout == "shared":  # one input for all points: an ordinary convolution with G*out filters
                    x, groups = h.contiguous(memory_format=torch.channels_last), 1
                else:
                    x, groups = self._img(h, layout, g), g
                h, layout, own = F.conv2d(x, w, bias, stride, padding, dilation, groups), "img", True
            elif op[0] == "act":
                h = op[1](h, own)
                own = own or layout != "shared"
            elif op[0] == "pool":
                h, own = op[1](h), True  # per channel: the stacked channels are pooled independently
            elif op[0] == "flatten":
                if layout == "img":  # (n, G*C, H, W) -> (G, n, C*H*W) in each point's (C, H, W) order
                    h, layout = h.reshape(h.shape[0], g, -1).transpose(0, 1), "vec"
                elif layout == "shared":
                    h = h.flatten(1)
            elif op[0] == "image":
                if layout != "shared":
                    raise ValueError("the stacked engine reshapes only the input into images")
                if h.dim() == 2:
                    h = h.reshape(h.shape[0], *op[1])
            elif op[0] == "bn":
                _, w_name, b_name, m_name, v_name, eps = op
                scale = torch.rsqrt(s.view(flat, v_name) + eps)  # (G, C)
                if w_name is not None:
                    scale = scale * s.view(flat, w_name)
                shift = -s.view(flat, m_name) * scale
                if b_name is not None:
                    shift = shift + s.view(flat, b_name)
                if layout == "shared" and h.dim() == 2:
                    h, layout, own = self._vec(h, layout, g), "vec", False
                if layout == "vec":
                    scale, shift = scale.unsqueeze(1), shift.unsqueeze(1)  # (G, 1, F)
                else:
                    h, layout = self._img(h, layout, g), "img"
                    scale, shift = scale.reshape(1, -1, 1, 1), shift.reshape(1, -1, 1, 1)  # (1, G*C, 1, 1)
                h = h.mul_(scale).add_(shift) if own else torch.addcmul(shift, h, scale)
                own = True
            elif op[0] == "residual":
                r, _, _ = self._run(op[1], flat, h, layout, False, key)
                h, layout, own = r.add_(self._vec(h, layout, g)), "vec", True
            elif op[0] == "harmonic":
                _, w_name, exponent, eps = op
                x = self._vec(h, layout, g)
                w = s.view(flat, w_name)  # (G, K, D)
                squared = (x.unsqueeze(2) - w.unsqueeze(1)).pow(2).sum(-1)  # (G, n, K), the model's form
                h, layout, own = torch.log(squared + eps**2).mul_(-0.5 * exponent), "vec", True
            else:  # pragma: no cover - plans are built by _plan only
                raise AssertionError(op)
        return h, layout, own


def _activation_profile(module: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(widest, total) floats of activation per sample over every leaf module's output, on one sample."""
    sizes: list[int] = [x[:1].numel()]

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if torch.is_tensor(out):
            sizes.append(out.numel())

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            sizes.append(module(x[:1]).numel())
    finally:
        for h in handles:
            h.remove()
    return max(sizes), sum(sizes)


@dataclass
class _Engine:
    """Evaluates outputs at theta + coeffs @ directions for chunks of grid points and of samples."""

    setup: _Setup
    kind: str  # "stacked" | "vmap" | "loop"
    points_per_chunk: int
    samples_per_chunk: int
    stacked: _Stacked | None = None
    channels_last: bool = False

    def forward(self, flat: torch.Tensor, X: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """Model outputs (G, n, K) for the G states flat (G, S) = theta + coeffs @ directions, on X."""
        s = self.setup
        if self.kind == "stacked":
            assert self.stacked is not None
            return self.stacked.forward(flat, X, coeffs)
        if self.kind == "vmap":
            return vmap(lambda f: functional_call(s.module, s.state(f), (X,)))(flat)
        outs = []
        for f in flat:
            state = s.state(f)
            if self.channels_last:
                # oneDNN runs these small 2-D convolutions faster in channels-last layout (measured)
                state = {
                    k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                    for k, v in state.items()
                }
            outs.append(functional_call(s.module, state, (X,)))
        return torch.stack(outs)


def _make_engine(
    setup: _Setup,
    X: torch.Tensor,
    directions: torch.Tensor,
    engine: str,
    max_samples: int,
    split: bool,
    memory_mb: float | None,
) -> _Engine:
    """Pick the engine and the chunk sizes: a chunk's widest activation stays within memory_mb.

    max_samples caps the samples per forward pass (batch_size); split allows smaller data chunks than that
    (false for batch-level losses, which need every sample at once).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if memory_mb is not None and not (memory_mb > 0):
        raise ValueError(f"memory_mb must be > 0, got {memory_mb!r}")
    plan = _plan(setup.module) if X.dim() in (2, 4) else None
    if engine == "stacked" and plan is None:
        raise ValueError(
            "engine='stacked' needs a chain of Linear / Conv2d (groups=1) / BatchNorm / pooling / activation "
            f"layers (lossviz MLP, DigitsCNN, Linear, nn.Sequential); {type(setup.module).__name__} is not "
            "one: use 'vmap' or 'loop'"
        )
    if engine == "auto":
        # measured in benchmarks/landscape.py: batched matmuls / grouped convolutions win wherever they apply
        # (2x the loop on both jobs); otherwise a per-point loop beats vmap on the CPU (1.1x MLP, 1.6x CNN),
        # while on a GPU vmap is expected to win by amortising kernel launches (not measured here)
        engine = "stacked" if plan is not None else ("vmap" if setup.device.type == "cuda" else "loop")
    budget = (memory_mb or (_GPU_CHUNK_MB if setup.device.type == "cuda" else _CPU_CHUNK_MB)) * 2**20
    widest, total = _activation_profile(setup.module, X)
    # bytes per (point, sample): the stacked engine keeps about one widest activation alive, vmap all of them
    unit = (widest if engine != "vmap" else total) * setup.theta.element_size()
    # the stacked engine wants >= 4 points per call (grouped convolutions and the first-layer matmul are
    # measured faster so, e.g. digits CNN: 256 samples x 4 points beat 629 x 1 by 15%); loops take 1 point
    min_points = 4 if engine == "stacked" else 1
    samples = max_samples
    if split and samples * unit * min_points > budget:
        samples = max(min(64, max_samples), int(budget // (unit * min_points)))  # below ~64, overheads win
        # equal chunks: 1257 samples -> 629 + 628, not 1024 + 233
        samples = -(-max_samples // -(-max_samples // samples))
    points = max(1, int(budget // (samples * unit)))
    if engine == "stacked":
        assert plan is not None
        return _Engine(setup, "stacked", points, samples, stacked=_Stacked(plan, setup, directions))
    if engine == "vmap":
        return _Engine(setup, "vmap", points, samples)
    has_conv = any(isinstance(m, nn.Conv2d) for m in setup.module.modules())
    return _Engine(setup, "loop", 64, samples, channels_last=has_conv and setup.device.type == "cpu")


def _evaluate(
    setup: _Setup,
    bounds: Sequence[BoundLoss],
    X: torch.Tensor,
    y: torch.Tensor,
    directions: torch.Tensor,
    coeffs: np.ndarray,
    *,
    batch_size: int | None,
    engine: str,
    memory_mb: float | None,
    context: Mapping[str, Any] | None,
    progress: Progress | None,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean losses (L, P) and accuracies (P,) (None for regression) at theta + coeffs[p] @ directions."""
    tasks = {b.task for b in bounds}
    if len(tasks) != 1:
        raise ValueError(f"all losses must share one task, got {sorted(tasks)}")
    task = tasks.pop()
    n = X.shape[0]
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    # batch-level losses (Dice, AUC, ...) and per-sample context only exist for the whole set: no data chunks
    whole = context is not None or any(b.spec.batch for b in bounds)
    max_samples = n if (batch_size is None or whole) else min(batch_size, n)
    eng = _make_engine(setup, X, directions, engine, max_samples, not whole, memory_mb)
    n_batch = eng.samples_per_chunk
    coeffs_t = torch.as_tensor(coeffs, dtype=setup.dtype, device=setup.device)  # (P, k)
    n_points = coeffs_t.shape[0]
    loss_sums = torch.zeros(len(bounds), n_points, dtype=torch.float64, device=setup.device)
    correct = torch.zeros(n_points, dtype=torch.float64, device=setup.device)
    ctx = dict(context or {})
    last_report = -1.0
    with torch.no_grad():
        for start in range(0, n_points, eng.points_per_chunk):
            stop = min(start + eng.points_per_chunk, n_points)
            g = stop - start
            flat = torch.addmm(setup.theta, coeffs_t[start:stop], directions)  # (G, S)
            for s0 in range(0, n, n_batch):
                Xb, yb = X[s0 : s0 + n_batch], y[s0 : s0 + n_batch]
                nb = Xb.shape[0]
                out = eng.forward(flat, Xb, coeffs_t[start:stop])  # (G, nb, K)
                out = out.reshape(g, nb, -1)
                for li, bound in enumerate(bounds):
                    if whole:
                        values = torch.stack([bound(out[j], yb, **ctx) for j in range(g)]).double() * nb
                    else:
                        values = bound.per_sample(out.reshape(g * nb, -1), yb.repeat(g))
                        values = values.reshape(g, nb).sum(1, dtype=torch.float64)
                    loss_sums[li, start:stop] += values
                if task == "multiclass":
                    correct[start:stop] += (out.argmax(-1) == yb).sum(1, dtype=torch.float64)
                elif task == "binary":
                    correct[start:stop] += ((out[..., 0] > 0) == (yb > 0.5)).sum(1, dtype=torch.float64)
            if progress is not None:
                frac = span[0] + (span[1] - span[0]) * stop / n_points
                if frac - last_report >= 0.01 or stop == n_points:
                    progress(frac, f"evaluated {stop:,} of {n_points:,} points")
                    last_report = frac
    losses_np = (loss_sums / n).cpu().numpy()
    acc = (correct / n).cpu().numpy() if task in ("multiclass", "binary") else None
    return losses_np, acc


def _directions(setup: _Setup, ds: Sequence[DirectionLike]) -> torch.Tensor:
    return torch.stack([setup.flatten(d, f"direction {i + 1}") for i, d in enumerate(ds)])  # (k, S)


def _axis(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values.detach().cpu() if torch.is_tensor(values) else values, dtype=np.float64).reshape(
        -1
    )
    if arr.size < 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty array of finite numbers, got {values!r}")
    return arr


# ----------------------------------------------------------------------------------------------------------
# public evaluators
# ----------------------------------------------------------------------------------------------------------


def loss_surfaces(
    model: nn.Module,
    losses: Sequence[LossLike],
    X: ArrayLike,
    y: ArrayLike,
    d1: DirectionLike,
    d2: DirectionLike,
    xs: ArrayLike,
    ys: ArrayLike,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    *,
    engine: Engine = "auto",
    memory_mb: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[Surface]:
    """One Surface per loss on the same plane, sharing the forward passes (one colour scale for all)."""
    bounds = [_bind(loss) for loss in losses]
    if not bounds:
        raise ValueError("losses must name at least one loss")
    xs_np, ys_np = _axis(xs, "xs"), _axis(ys, "ys")
    dev = resolve_device(device)
    setup = _setup(model, dev)
    Xt, yt = _inputs(X, y, dev, setup.dtype)
    a, b = np.meshgrid(xs_np, ys_np)  # (ny, nx): row i is ys[i], column j is xs[j]
    coeffs = np.stack([a.reshape(-1), b.reshape(-1)], 1)
    values, acc = _evaluate(
        setup,
        bounds,
        Xt,
        yt,
        _directions(setup, [d1, d2]),
        coeffs,
        batch_size=batch_size,
        engine=engine,
        memory_mb=memory_mb,
        context=context,
        progress=progress,
    )
    shape = (len(ys_np), len(xs_np))
    accuracy = None if acc is None else acc.reshape(shape)  # shared: accuracy does not depend on the loss
    return [
        Surface(xs=xs_np, ys=ys_np, z=v.reshape(shape), label=loss_label(bd), accuracy=accuracy)
        for bd, v in zip(bounds, values, strict=True)
    ]


def loss_surface(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    d1: DirectionLike,
    d2: DirectionLike,
    xs: ArrayLike,
    ys: ArrayLike,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    *,
    engine: Engine = "auto",
    memory_mb: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> Surface:
    """Mean loss on the plane: z[i, j] at theta + xs[j]·d1 + ys[i]·d2; accuracy None for regression."""
    return loss_surfaces(
        model,
        [loss],
        X,
        y,
        d1,
        d2,
        xs,
        ys,
        batch_size,
        device,
        progress,
        engine=engine,
        memory_mb=memory_mb,
        context=context,
    )[0]


def refine_surface(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    d1: DirectionLike,
    d2: DirectionLike,
    xlim: tuple[float, float] = (-1.0, 1.0),
    ylim: tuple[float, float] = (-1.0, 1.0),
    resolutions: Sequence[int] = (11, 51),
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    *,
    engine: Engine = "auto",
    memory_mb: float | None = None,
) -> Iterator[Surface]:
    """Coarse-to-fine surfaces on the same directions (e.g. 11x11 then 51x51), reusing computed points."""
    res = [int(r) for r in resolutions]
    if not res or any(r < 2 for r in res) or any(b <= a for a, b in itertools.pairwise(res)):
        raise ValueError(f"resolutions must be increasing integers >= 2, got {list(resolutions)}")
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if len(lim) != 2 or not (math.isfinite(lim[0]) and math.isfinite(lim[1])) or lim[0] >= lim[1]:
            raise ValueError(f"{name} must be (low, high) with low < high, got {lim!r}")
    bound = _bind(loss)
    dev = resolve_device(device)
    setup = _setup(model, dev)
    Xt, yt = _inputs(X, y, dev, setup.dtype)
    dirs = _directions(setup, [d1, d2])
    todo_total = sum(r * r for r in res)
    done = 0
    prev: tuple[int, np.ndarray, np.ndarray | None] | None = None
    for r in res:
        xs, ys = np.linspace(*xlim, r), np.linspace(*ylim, r)
        z = np.full((r, r), np.nan)
        acc = np.full((r, r), np.nan)
        if prev is not None:
            # grid index j of this level sits on index j * (p - 1) / (r - 1) of the previous one when integral
            p, pz, pacc = prev
            hit = [(j, (j * (p - 1)) // (r - 1)) for j in range(r) if (j * (p - 1)) % (r - 1) == 0]
            rows = np.array([h[0] for h in hit])
            src = np.array([h[1] for h in hit])
            z[np.ix_(rows, rows)] = pz[np.ix_(src, src)]
            if pacc is not None:
                acc[np.ix_(rows, rows)] = pacc[np.ix_(src, src)]
        missing = np.argwhere(np.isnan(z))  # (M, 2) of (i, j)
        coeffs = np.stack([xs[missing[:, 1]], ys[missing[:, 0]]], 1)
        span = (done / todo_total, (done + len(missing)) / todo_total)
        if len(missing):
            values, a = _evaluate(
                setup,
                [bound],
                Xt,
                yt,
                dirs,
                coeffs,
                batch_size=batch_size,
                engine=engine,
                memory_mb=memory_mb,
                context=None,
                progress=progress,
                span=span,
            )
            z[missing[:, 0], missing[:, 1]] = values[0]
            if a is not None:
                acc[missing[:, 0], missing[:, 1]] = a
        done += len(missing)
        todo_total -= r * r - len(missing)
        has_acc = bound.task in ("multiclass", "binary")
        prev = (r, z, acc if has_acc else None)
        yield Surface(xs=xs, ys=ys, z=z, label=loss_label(bound), accuracy=acc if has_acc else None)


def loss_line(
    model: nn.Module,
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    d: DirectionLike,
    alphas: ArrayLike,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    *,
    engine: Engine = "auto",
    memory_mb: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> Curve:
    """Mean loss along one direction: y[k] at theta + alphas[k]·d; Curve.accuracy None for regression."""
    bound = _bind(loss)
    alphas_np = _axis(alphas, "alphas")
    dev = resolve_device(device)
    setup = _setup(model, dev)
    Xt, yt = _inputs(X, y, dev, setup.dtype)
    values, acc = _evaluate(
        setup,
        [bound],
        Xt,
        yt,
        _directions(setup, [d]),
        alphas_np[:, None],
        batch_size=batch_size,
        engine=engine,
        memory_mb=memory_mb,
        context=context,
        progress=progress,
    )
    return Curve(name=bound.name, x=alphas_np, y=values[0], label=loss_label(bound), accuracy=acc)


def _state(model: nn.Module | Mapping[str, ArrayLike]) -> dict[str, Any]:
    return dict(model.state_dict()) if isinstance(model, nn.Module) else dict(model)


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module | Mapping[str, ArrayLike],
    loss: LossLike,
    X: ArrayLike,
    y: ArrayLike,
    alphas: ArrayLike | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    *,
    engine: Engine = "auto",
    memory_mb: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> Interpolation:
    """Loss along (1 - alpha)·theta_a + alpha·theta_b (running statistics too), with the barrier height.

    The barrier is max over alpha in [0, 1] of L(alpha) - ((1 - alpha)·L(0) + alpha·L(1)), the loss barrier of
    "The Role of Permutation Invariance in Linear Mode Connectivity of Neural Networks" (Entezari et al.).
    model_b may be a module of the same architecture or a state dict (e.g. History.final_state).
    """
    bound = _bind(loss)
    alphas_np = np.linspace(-0.5, 1.5, 41) if alphas is None else _axis(alphas, "alphas")
    dev = resolve_device(device)
    setup = _setup(model_a, dev)
    end = setup.flatten(_state(model_b), "model_b")
    state_b = _state(model_b)
    missing = [n for n in setup.names if n not in state_b]
    if missing:
        raise ValueError(f"model_b lacks {missing}: the two models must share one architecture")
    Xt, yt = _inputs(X, y, dev, setup.dtype)
    direction = (end - setup.theta)[None]  # (1, S)
    points = np.concatenate([alphas_np, [0.0, 1.0]])  # the endpoints, exactly, for the barrier
    values, acc = _evaluate(
        setup,
        [bound],
        Xt,
        yt,
        direction,
        points[:, None],
        batch_size=batch_size,
        engine=engine,
        memory_mb=memory_mb,
        context=context,
        progress=progress,
    )
    loss_values = values[0]
    l0, l1 = loss_values[-2], loss_values[-1]
    inside = (points >= 0) & (points <= 1)
    gaps = loss_values[inside] - ((1 - points[inside]) * l0 + points[inside] * l1)
    k = int(np.argmax(gaps))
    return Interpolation(
        alphas=alphas_np,
        loss=loss_values[:-2],
        accuracy=None if acc is None else acc[:-2],
        barrier=float(max(gaps[k], 0.0)),
        barrier_alpha=float(points[inside][k]),
        label=loss_label(bound),
    )
