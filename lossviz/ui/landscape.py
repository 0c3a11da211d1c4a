"""Landscape page helpers: cached planes (filter-normalized random or trajectory-PCA axes), surfaces, slices,
decision boundaries at a point, interpolation and curvature of the models Train & Compare trains.

Implements the views of "Visualizing the Loss Landscape of Neural Nets" (Li et al., 2018); every function is
keyed on Train & Compare's TrainSettings, so a model trained there is reused here (and vice versa).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import streamlit as st
import torch
from torch import nn

from lossviz import boundary, curvature, landscape, losses
from lossviz.losses import make
from lossviz.results import Curve, Interpolation, Sharpness, Spectrum, Surface
from lossviz.train import predict_proba
from lossviz.ui import train as ui
from lossviz.ui.cache import ParamsKey
from lossviz.ui.state import PageState

PAGE = "landscape"
SETTINGS = "landscape.settings"  # session_state: the TrainSettings the page shows now (tests read it)
REFINED = (
    "landscape._refined"  # session_state: views whose fine grid is already cached (skip the coarse pass)
)
Axes = Literal["random", "pca"]
Split = Literal["train", "test"]
AXES: tuple[str, ...] = ("random", "pca")
SPLITS: tuple[str, ...] = ("train", "test")
COARSE = 11  # the first, fast grid (121 points per loss)
RESOLUTIONS: tuple[int, ...] = (
    21,
    31,
    41,
    51,
    61,
    81,
    101,
)  # the refined grid (capped: 101² points per loss)
SPANS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
SLICE_POINTS = 101
PCA_MARGIN = 0.25  # PCA grids cover the trajectory plus this fraction of its extent on every side
SUPPORTED_CONTEXT = ("class_counts",)

# The fast default view (moons, a small MLP, three losses, a short full-batch training): widget values seeded
# into Train & Compare's controls under this page's keys, unless the URL or the session already sets them.
DEFAULTS: dict[str, Any] = {
    "n": 300,
    "width": 16.0,
    "depth": 2,
    "epochs": 100.0,
    "losses.multiclass": ["cross_entropy", "focal", "gce"],
}
_DEFAULT_URL = {"losses.multiclass": "losses"}


@dataclass(frozen=True)
class Plane:
    """Two directions in parameter space through a model's trained weights, and its trajectory in them."""

    d1: dict[str, np.ndarray]  # keyed like named_parameters()
    d2: dict[str, np.ndarray]
    trajectory: Curve  # x, y: snapshot coordinates (final weights at the origin); extra["epoch"]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    axis_names: tuple[str, str]
    explained: np.ndarray | None  # (2,) PCA explained-variance ratio; None for random directions
    residual: float  # fraction of the trajectory's squared length the plane does not capture


@dataclass(frozen=True)
class Curvature:
    """Curvature of one model at its trained weights, and sharpness along its training."""

    eigenvalues: np.ndarray  # (k,) largest Hessian eigenvalues, descending
    trace: float  # Hutchinson estimate of tr(H)
    spectrum: Spectrum
    sharpness: Sharpness
    n_params: int


# ----------------------------------------------------------------------------------------------- settings


def seed_defaults(state: PageState, defaults: Mapping[str, Any] = DEFAULTS) -> None:
    """Give this page's fast defaults to Train & Compare's controls (keys `landscape.*`) before they run,
    unless the session already holds a value or the URL names one."""
    for name, value in defaults.items():
        key = state.key(name)
        if key in st.session_state:
            continue
        url = _DEFAULT_URL.get(name, name)
        try:
            in_url = url in st.query_params
        except Exception:  # a malformed query string: fall back to the default
            in_url = False
        if not in_url:
            st.session_state[key] = list(value) if isinstance(value, list) else value


def clicked_point(event: Mapping[str, Any] | None, panels: list[str]) -> tuple[str, float, float] | None:
    """(loss, x, y) of the first clicked grid node, snapshot or centre in a surfaces chart's selection event.

    Those points carry customdata [value, value, panel]; Streamlit passes a typed array as {"0": .., "1": ..}.
    """
    points = ((event or {}).get("selection") or {}).get("points") or []
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, Mapping):
            custom = [custom.get(str(i)) for i in range(len(custom))]
        if not isinstance(custom, (list, tuple)) or len(custom) != 3 or custom[2] is None:
            continue
        panel = int(custom[2])
        if 0 <= panel < len(panels) and point.get("x") is not None and point.get("y") is not None:
            return panels[panel], round(float(point["x"]), 4), round(float(point["y"]), 4)
    return None


def single(settings: ui.TrainSettings, loss: str, params: ParamsKey) -> ui.TrainSettings:
    """The settings of one loss's run alone: the cache key of its model, whatever else is selected."""
    return replace(settings.run_key(), losses=((loss, params),))


def model(settings: ui.TrainSettings, loss: str, params: ParamsKey) -> nn.Module:
    """The trained model of one loss (Train & Compare's shared cache: never mutate it)."""
    return ui.trained_model(single(settings, loss, params), loss)


def loss_context(settings: ui.TrainSettings, loss: str) -> dict[str, torch.Tensor] | None:
    """Context data a loss needs over the whole training set (class counts), or ValueError if unsupported."""
    spec = losses.get(loss)
    unsupported = [c for c in spec.context if c not in SUPPORTED_CONTEXT]
    if unsupported:
        raise ValueError(
            f"{spec.title} needs {', '.join(unsupported)} during training, which has no value at an "
            "arbitrary "
            "point of the landscape; its surface is not drawn"
        )
    if not spec.context:
        return None
    data = ui.dataset(settings.data)
    counts = np.bincount(data.y_train, minlength=max(data.n_classes, 2))
    return {"class_counts": torch.as_tensor(counts, dtype=torch.float32)}


def _split(settings: ui.TrainSettings, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    data = ui.dataset(settings.data)
    return (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)


def _flat(params: Mapping[str, np.ndarray], keys: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(params[k], np.float64).reshape(-1) for k in keys])


# ----------------------------------------------------------------------------------------------- planes


@st.cache_data(max_entries=64, show_spinner=False)
def plane(
    settings: ui.TrainSettings, loss: str, params: ParamsKey, axes: str, seed: int, span: float
) -> Plane:
    """The plane of one loss's view: random directions (seeds seed, seed + 1) or the trajectory's PCA axes."""
    if axes not in AXES:
        raise ValueError(f"axes must be one of {list(AXES)}, got {axes!r}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span!r}")
    history = ui.train_run(settings.run_key(), loss, params)
    net = model(settings, loss, params)
    keys = [name for name, _ in net.named_parameters()]
    final = {k: np.asarray(history.final_state[k]) for k in keys}
    epochs = np.asarray(history.snapshot_epochs)
    diffs = np.stack([_flat(s, keys) - _flat(final, keys) for s in history.snapshots])  # (T, P)
    if axes == "random":
        d1 = {k: v.numpy() for k, v in landscape.random_direction(net, seed).items()}
        d2 = {k: v.numpy() for k, v in landscape.random_direction(net, seed + 1).items()}
        basis = np.stack([_flat(d1, keys), _flat(d2, keys)], axis=1)  # (P, 2)
        # least-squares coordinates of theta_t - theta_final in the plane of (d1, d2)
        coords = np.linalg.lstsq(basis, diffs.T, rcond=None)[0].T  # (T, 2)
        fitted = coords @ basis.T
        lim = (-float(span), float(span))
        xlim = ylim = lim
        names = ("δ (random, filter-normalized)", "η (random, filter-normalized)")
        explained = None
    else:
        pca = landscape.pca_directions(history.snapshots, history.final_state)
        d1, d2 = pca.directions
        coords = pca.coords
        basis = np.stack([_flat(d1, keys), _flat(d2, keys)], axis=1)
        fitted = coords @ basis.T
        xlim, ylim = (_pca_limits(coords[:, i], span) for i in (0, 1))
        explained = np.asarray(pca.explained_variance)
        names = (f"PC1 ({explained[0]:.0%} of the trajectory)", f"PC2 ({explained[1]:.0%})")
    total = float((diffs**2).sum())
    residual = float(((diffs - fitted) ** 2).sum() / total) if total > 0 else 0.0
    trajectory = Curve(
        name=loss, x=coords[:, 0], y=coords[:, 1], extra={"epoch": epochs}, label="training trajectory"
    )
    return Plane(
        d1={k: np.asarray(v, np.float32) for k, v in d1.items()},
        d2={k: np.asarray(v, np.float32) for k, v in d2.items()},
        trajectory=trajectory,
        xlim=xlim,
        ylim=ylim,
        axis_names=names,
        explained=explained,
        residual=residual,
    )


def _pca_limits(values: np.ndarray, span: float) -> tuple[float, float]:
    """The trajectory's range on one PCA axis (with the origin), padded, scaled by span about the origin."""
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    pad = PCA_MARGIN * (high - low) or 0.1
    return (float(span) * (low - pad), float(span) * (high + pad))


def _grid(lim: tuple[float, float], resolution: int) -> np.ndarray:
    """resolution points over lim; an odd resolution over a symmetric range puts 0 on the grid."""
    return np.linspace(lim[0], lim[1], resolution)


@st.cache_data(max_entries=256, show_spinner=False)
def surface(
    settings: ui.TrainSettings,
    loss: str,
    params: ParamsKey,
    axes: str,
    seed: int,
    span: float,
    split: str,
    resolution: int,
) -> Surface:
    """The mean loss of one model (with its own loss) on its plane, resolution² points; accuracy in extra."""
    if not (isinstance(resolution, int) and 2 <= resolution <= max(RESOLUTIONS)):
        raise ValueError(f"resolution must be an integer in [2, {max(RESOLUTIONS)}], got {resolution!r}")
    p = plane(settings, loss, params, axes, seed, span)
    X, y = _split(settings, split)
    return landscape.loss_surface(
        model(settings, loss, params),
        make(loss, **dict(params)),
        X,
        y,
        p.d1,
        p.d2,
        _grid(p.xlim, resolution),
        _grid(p.ylim, resolution),
        device="cpu",
        context=loss_context(settings, loss),
    )


@st.cache_data(max_entries=128, show_spinner=False)
def slices(
    settings: ui.TrainSettings, loss: str, params: ParamsKey, axes: str, seed: int, span: float, split: str
) -> tuple[Curve, Curve]:
    """1-D slices through the trained weights along each axis of the plane (the other coordinate 0)."""
    p = plane(settings, loss, params, axes, seed, span)
    X, y = _split(settings, split)
    net, bound, context = (
        model(settings, loss, params),
        make(loss, **dict(params)),
        loss_context(settings, loss),
    )
    label = ui.run_label(loss, params)
    curves = []
    for d, lim in ((p.d1, p.xlim), (p.d2, p.ylim)):
        line = landscape.loss_line(
            net, bound, X, y, d, np.linspace(lim[0], lim[1], SLICE_POINTS), device="cpu", context=context
        )
        curves.append(Curve(name=loss, x=line.x, y=line.y, extra=line.extra, label=label))
    return curves[0], curves[1]


@st.cache_data(max_entries=256, show_spinner=False)
def point_value(
    settings: ui.TrainSettings,
    loss: str,
    params: ParamsKey,
    axes: str,
    seed: int,
    span: float,
    split: str,
    x: float,
    y: float,
) -> tuple[float, float]:
    """(mean loss, accuracy) of one model at theta + x·d1 + y·d2 (accuracy NaN for regression)."""
    p = plane(settings, loss, params, axes, seed, span)
    X, Y = _split(settings, split)
    s = landscape.loss_surface(
        model(settings, loss, params), make(loss, **dict(params)), X, Y, p.d1, p.d2, [x], [y],
        device="cpu", context=loss_context(settings, loss),
    )  # fmt: skip
    acc = s.extra.get("accuracy")
    return float(s.z[0, 0]), float(acc[0, 0]) if acc is not None else float("nan")


def shifted_state(net: nn.Module, p: Plane, x: float, y: float) -> dict[str, torch.Tensor]:
    """The parameters theta + x·d1 + y·d2 as new tensors (the model itself is left untouched)."""
    return {
        name: param.detach() + float(x) * torch.as_tensor(p.d1[name], dtype=param.dtype)
        + float(y) * torch.as_tensor(p.d2[name], dtype=param.dtype)
        for name, param in net.named_parameters()
    }  # fmt: skip


@st.cache_data(max_entries=128, show_spinner=False)
def boundary_at(
    settings: ui.TrainSettings,
    loss: str,
    params: ParamsKey,
    axes: str,
    seed: int,
    span: float,
    x: float,
    y: float,
) -> Surface:
    """The decision surface (class probabilities in extra["proba"]) of one model at theta + x·d1 + y·d2."""
    data = ui.dataset(settings.data)
    if data.task == "regression":
        raise ValueError("decision boundaries need a classification dataset; this one is regression")
    net = model(settings, loss, params)
    state = shifted_state(net, plane(settings, loss, params, axes, seed, span), x, y)
    task = losses.get(loss).task
    xy = data.view_2d(np.concatenate([data.X_train, data.X_test]))  # (N, 2) the plotted plane
    margin = 0.08 * float(np.ptp(xy, axis=0).max())
    to_inputs = ui.plane_to_inputs(data)

    def proba(points: np.ndarray) -> np.ndarray:
        return predict_proba(net, np.asarray(to_inputs(points), np.float32), task, state)  # (M, K)

    return boundary.decision_surface(proba, xy, ui.MAP_RESOLUTION, margin)


# ------------------------------------------------------------------------------------------- interpolation


@st.cache_data(max_entries=64, show_spinner=False)
def interpolation(
    settings: ui.TrainSettings,
    first: tuple[str, ParamsKey],
    second: tuple[str, ParamsKey],
    measure: tuple[str, ParamsKey],
    split: str,
) -> Interpolation:
    """Loss (measured with `measure`) and accuracy on the segment between two losses' trained weights."""
    (a, pa), (b, pb), (m, pm) = first, second, measure
    if losses.get(a).task != losses.get(b).task:
        raise ValueError(
            f"{a} ({losses.get(a).task}) and {b} ({losses.get(b).task}) train models with different output "
            "layers; pick two losses of the same kind"
        )
    X, y = _split(settings, split)
    return landscape.interpolate(
        model(settings, a, pa),
        model(settings, b, pb),
        make(m, **dict(pm)),
        X,
        y,
        np.linspace(-0.5, 1.5, 81),
        device="cpu",
        context=loss_context(settings, m),
    )


# ----------------------------------------------------------------------------------------------- curvature


@st.cache_data(max_entries=32, show_spinner=False)
def curvature_of(
    settings: ui.TrainSettings, loss: str, params: ParamsKey, k: int = 3, seed: int = 0
) -> Curvature:
    """Top-k eigenvalues, Hutchinson trace and SLQ density at the trained weights (training set), and the
    top eigenvalue at every training snapshot against 2/lr."""
    history = ui.train_run(settings.run_key(), loss, params)
    data = ui.dataset(settings.data)
    net, bound = model(settings, loss, params), make(loss, **dict(params))
    X, y = data.X_train, data.y_train
    ctx = loss_context(settings, loss)  # class counts for VS / LDAM, else None
    values = curvature.top_eigenvalues(net, bound, X, y, k=k, seed=seed, device="cpu", context=ctx)
    trace = curvature.hessian_trace(net, bound, X, y, n_samples=32, seed=seed, device="cpu", context=ctx)
    spectrum = curvature.spectral_density(
        net, bound, X, y, n_iter=30, n_runs=4, seed=seed, device="cpu", context=ctx
    )
    sharpness = curvature.sharpness_along(
        net, bound, X, y, history.snapshots, lr=settings.lr, steps=history.snapshot_epochs,
        n_iter=20, tol=1e-3, seed=seed, device="cpu", context=ctx,
    )  # fmt: skip
    return Curvature(
        eigenvalues=np.asarray(values),
        trace=float(trace),
        spectrum=spectrum,
        sharpness=sharpness,
        n_params=int(spectrum.n_params),
    )
