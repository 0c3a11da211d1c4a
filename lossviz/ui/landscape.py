"""Cached compute of the Landscape page: planes, surfaces, slices, points, decision maps, interpolation and
curvature of the models the shared experiment trains, keyed on (experiment.base(), LossChoice) like
lossviz.ui.runs, so a model trained on Train & compare is reused here. Thin wrappers over lossviz.planes,
lossviz.landscape ("Visualizing the Loss Landscape of Neural Nets", Li et al. 2018), lossviz.curvature and
lossviz.evaluate; the context a loss needs comes from lossviz.context. Also the button that borrows
Train & compare's losses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import streamlit as st
import torch

from lossviz import context, curvature, evaluate, landscape, losses, planes
from lossviz.experiment import Experiment, LossChoice
from lossviz.results import Curvature, Curve, DecisionMap, Interpolation, Plane, Surface
from lossviz.ui import runs

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")
COARSE = 11  # the first, fast grid (121 points per loss), drawn while the refined one computes
SLOW_REFINE_S = 1.0  # a refined grid expected to take longer than this is preceded by the coarse one


def refine_is_slow(coarse_seconds: float, resolution: int) -> bool:
    """Whether the resolution² grid, extrapolated from the coarse grid's time by the number of points, would
    take longer than SLOW_REFINE_S (the coarse grid's fixed costs make this an overestimate)."""
    return coarse_seconds * (resolution / COARSE) ** 2 > SLOW_REFINE_S


MAX_GRID = 101  # refined grids are capped at 101² points per loss
SLICE_POINTS = 101
ALPHAS = np.linspace(-0.5, 1.5, 81)  # interpolation: both solutions and half a segment beyond each
DEVICE = "cpu"  # the app's models are tiny: the CPU answers faster than a round trip to an accelerator
TRAIN = "_lv.train"  # session_state: Train & compare's canonical settings


def train_losses() -> dict[str, Any] | None:
    """Train & compare's loss lists (`losses.<task>`) and hyperparameters (`<loss>.<param>`), or None before
    that page has run in this session. Copied into this page's state, they reuse the models it trained."""
    if (train := st.session_state.get(TRAIN)) is None:
        return None
    names = losses.names()
    return {
        k: v for k, v in train.items() if k.rsplit(".", 1)[-1] in losses.TASKS or k.split(".", 1)[0] in names
    }


def use_train_button(store: Callable[[], dict[str, Any]]) -> None:
    """A sidebar button copying Train & compare's losses into store() (the page's canonical state)."""
    st.sidebar.button(
        "Use Train & compare's losses",
        key="landscape.use_train",
        on_click=lambda: store().update(train_losses() or {}),
        disabled=train_losses() is None,
        help="Copy the losses and hyperparameters picked there (the models it trained are reused).",
    )


def _split(base: Experiment, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    data = runs.dataset(base.data)
    return (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)


def _context(base: Experiment, choice: LossChoice) -> dict[str, torch.Tensor] | None:
    """The context the loss can have at any point of weight space (class counts), or None."""
    data = runs.dataset(base.data)
    found = context.static_context(losses.get(choice.name), torch.as_tensor(data.y_train), data.n_classes)
    return found or None


@st.cache_data(max_entries=64, show_spinner=False)
def plane(base: Experiment, choice: LossChoice, axes: planes.Axes, seed: int, span: float) -> Plane:
    """The plane of one loss's model: random filter-normalized directions or its trajectory's PCA axes."""
    return planes.view_plane(runs.model(base, choice), runs.history(base, choice), axes, seed, span)


@st.cache_data(max_entries=256, show_spinner=False)
def surface(
    base: Experiment,
    choice: LossChoice,
    axes: planes.Axes,
    seed: int,
    span: float,
    split: Split,
    resolution: int,
) -> Surface:
    """The mean loss (and accuracy) of one model, with its own loss, at resolution² points of its plane."""
    if not (isinstance(resolution, int) and 2 <= resolution <= MAX_GRID):
        raise ValueError(f"resolution must be an integer in [2, {MAX_GRID}], got {resolution!r}")
    p = plane(base, choice, axes, seed, span)
    X, y = _split(base, split)
    xs, ys = planes.grid(p.xlim, resolution), planes.grid(p.ylim, resolution)
    model, ctx = runs.model(base, choice), _context(base, choice)
    return landscape.loss_surface(model, choice.bound, X, y, p.d1, p.d2, xs, ys, device=DEVICE, context=ctx)


@st.cache_data(max_entries=128, show_spinner=False)
def slices(
    base: Experiment, choice: LossChoice, axes: planes.Axes, seed: int, span: float, split: Split
) -> tuple[Curve, Curve]:
    """1-D slices through the trained weights along each axis of the plane (the other coordinate 0)."""
    p = plane(base, choice, axes, seed, span)
    X, y = _split(base, split)
    model, ctx, label = runs.model(base, choice), _context(base, choice), runs.run_label(choice)
    found = []
    for d, lim in ((p.d1, p.xlim), (p.d2, p.ylim)):
        alphas = planes.grid(lim, SLICE_POINTS)
        line = landscape.loss_line(model, choice.bound, X, y, d, alphas, device=DEVICE, context=ctx)
        found.append(Curve(name=choice.name, x=line.x, y=line.y, accuracy=line.accuracy, label=label))
    return found[0], found[1]


@st.cache_data(max_entries=256, show_spinner=False)
def point_value(
    base: Experiment,
    choice: LossChoice,
    axes: planes.Axes,
    seed: int,
    span: float,
    split: Split,
    x: float,
    y: float,
) -> tuple[float, float]:
    """(mean loss, accuracy) of one model at theta + x·d1 + y·d2 (accuracy NaN for regression)."""
    p = plane(base, choice, axes, seed, span)
    X, Y = _split(base, split)
    model, ctx = runs.model(base, choice), _context(base, choice)
    s = landscape.loss_surface(model, choice.bound, X, Y, p.d1, p.d2, [x], [y], device=DEVICE, context=ctx)
    return float(s.z[0, 0]), float(s.accuracy[0, 0]) if s.accuracy is not None else float("nan")


@st.cache_data(max_entries=128, show_spinner=False)
def boundary_at(
    base: Experiment, choice: LossChoice, axes: planes.Axes, seed: int, span: float, x: float, y: float
) -> DecisionMap:
    """The decision map of one model at theta + x·d1 + y·d2, evaluated on shifted copies of its weights."""
    model = runs.model(base, choice)
    state = planes.shifted_state(model, plane(base, choice, axes, seed, span), x, y)
    return evaluate.decision_map(model, losses.get(choice.name).task, runs.dataset(base.data), state)


@st.cache_data(max_entries=64, show_spinner=False)
def interpolation(
    base: Experiment, first: LossChoice, second: LossChoice, measure: LossChoice, split: Split
) -> Interpolation:
    """Loss (measured with `measure`) and accuracy on the segment between two losses' trained weights."""
    X, y = _split(base, split)
    a, b, ctx = runs.model(base, first), runs.model(base, second), _context(base, measure)
    return landscape.interpolate(a, b, measure.bound, X, y, ALPHAS, device=DEVICE, context=ctx)


@st.cache_data(max_entries=32, show_spinner=False)
def curvature_of(base: Experiment, choice: LossChoice, k: int = 3, seed: int = 0) -> Curvature:
    """Top-k Hessian eigenvalues, trace (exact for small models, else Hutch++) and SLQ density of the mean
    training loss at the trained weights, and the top eigenvalue at every snapshot against 2/lr."""
    model, bound, ctx = runs.model(base, choice), choice.bound, _context(base, choice)
    history, data = runs.history(base, choice), runs.dataset(base.data)
    common = dict(seed=seed, device=DEVICE, context=ctx)
    X, y = data.X_train, data.y_train
    spectrum = curvature.spectral_density(model, bound, X, y, n_iter=30, n_runs=4, **common)
    sharpness = curvature.sharpness_along(
        model, bound, X, y, history.snapshots, lr=base.optim.lr, steps=history.snapshot_epochs, n_iter=20,
        tol=1e-3, **common,
    )  # fmt: skip
    return Curvature(
        eigenvalues=np.asarray(curvature.top_eigenvalues(model, bound, X, y, k=k, **common)),
        trace=curvature.hessian_trace(model, bound, X, y, n_samples=64, **common),
        spectrum=spectrum,
        sharpness=sharpness,
        n_params=int(spectrum.n_params),
    )
