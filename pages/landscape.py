"""Landscape: loss surfaces of models trained with several losses on one colour scale, the training
trajectory, 1-D slices, interpolation, curvature, and the decision boundary at any point of a surface.

Follows "Visualizing the Loss Landscape of Neural Nets" (Li et al., 2018) and "Gradient Descent on Neural
Networks Typically Occurs at the Edge of Stability" (Cohen et al., 2021). The view lives in the URL.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

from lossviz import losses
from lossviz.figures import landscape as figures
from lossviz.figures.train import boundary_figure
from lossviz.ui import landscape as lv
from lossviz.ui import train as ui
from lossviz.ui import widgets
from lossviz.ui.state import PageState, parse_choice, parse_number

FIGURE = "landscape.fig.surfaces"  # the clickable surfaces chart (its selection drives the chosen point)
PANELS = "landscape._panels"  # session_state: the loss of each panel of the surfaces chart, in order
CURVATURE = "landscape._curvature"  # session_state: the run set whose curvature the user asked for
AXES_TITLES = {"random": "Random directions (filter-normalized)", "pca": "PCA of the trajectory"}
SPLIT_TITLES = {"train": "Training set", "test": "Test set"}
SOURCE_TITLES = {"train": "Last Train & Compare run", "own": "Settings below"}

st.title("Loss landscape")
st.caption(
    "The loss around each trained model on a 2-D plane through its weights, the same directions and one "
    "colour scale for every loss. Click a point of a surface to see the model's decision boundary there."
)
state = PageState(lv.PAGE)


def toggle(label: str, name: str, default: bool, container: Any = st, help: str | None = None) -> bool:  # noqa: A002
    """A toggle keyed `landscape.name`, mirrored to the URL as 0/1."""
    key = state.key(name)
    state.restore(key, lambda raw: parse_choice(["0", "1"])(raw) == "1", default)
    value = container.toggle(label, key=key, help=help)
    state.record(key, value)
    return bool(value)


def coordinate(label: str, name: str, lim: tuple[float, float], container: Any = st) -> float:
    """A number input for one coordinate of the chosen point, clamped to the plotted range."""
    key = state.key("point", name)
    state.restore(key, parse_number(-1e6, 1e6), 0.0)
    st.session_state[key] = float(min(max(float(st.session_state[key]), lim[0]), lim[1]))
    step = float(f"{(lim[1] - lim[0]) / 40:.1g}")
    value = container.number_input(
        label, min_value=float(lim[0]), max_value=float(lim[1]), step=step, format="%.3f", key=key
    )
    state.record(key, value)
    return float(value)


def choose_clicked_point() -> None:
    """on_select of the surfaces chart: a clicked grid node, snapshot or centre becomes the chosen point."""
    clicked = lv.clicked_point(st.session_state.get(FIGURE), st.session_state.get(PANELS, []))
    if clicked is not None:
        loss, x, y = clicked
        st.session_state[state.key("point", "loss")] = loss
        st.session_state[state.key("point", "x")] = x
        st.session_state[state.key("point", "y")] = y


# ----------------------------------------------------------------------------------------------- settings

result: ui.TrainResult | None = st.session_state.get(ui.LAST_RESULT)
settings: ui.TrainSettings | None = None
with st.sidebar:
    st.header("Landscape")
    source = "own"
    if result is not None and result.names:
        source = widgets.choice(
            "Models", tuple(SOURCE_TITLES), state, "source", "train", format_func=SOURCE_TITLES.get,
            help="Reuse the models trained on the Train & Compare page, or train here with the settings "
            "below (the same cache: identical settings are never trained twice).",
        )  # fmt: skip
    if source == "train" and result is not None:
        settings = result.settings
        st.caption(f"Train & Compare run: {ui.describe(settings)}")
    else:
        lv.seed_defaults(state)
        with st.expander("Data", expanded=False):
            data_settings = ui.data_controls(state)
            data = None
            if data_settings is not None:
                try:
                    data = ui.dataset(data_settings)
                except ValueError as err:
                    st.error(f"Cannot use this data: {err}")
                else:
                    st.caption(ui.data_summary(data))
        if data is not None:
            with st.expander("Model and optimiser", expanded=False):
                model_settings = ui.model_controls(state, data)
                optim = ui.optimizer_controls(state)
            st.subheader("Losses")
            selection = ui.loss_controls(state, data)
            settings = ui.settings_from(data_settings, model_settings, optim, selection)

if settings is None:
    st.info("Fix the data settings in the sidebar.")
    state.sync()
    st.stop()
if not settings.losses:
    st.info("Pick at least one loss in the sidebar.")
    state.sync()
    st.stop()
st.session_state[lv.SETTINGS] = settings

# ------------------------------------------------------------------------------------------- view controls

row = st.columns([2.4, 1.6, 1.2, 1.2, 1.1])
axes = widgets.choice("Axes", lv.AXES, state, "axes", "random", format_func=AXES_TITLES.get, container=row[0])
split = widgets.choice(
    "Loss on", lv.SPLITS, state, "split", "train", format_func=SPLIT_TITLES.get, container=row[1]
)
resolution = int(
    ui.select_number("Grid", lv.RESOLUTIONS, state, "grid", 41, container=row[2], fmt=lambda v: f"{v:g}²",
                     help=f"Points per axis of the refined grid (a {lv.COARSE}² grid is drawn first).")
)  # fmt: skip
span = ui.select_number(
    "Span", lv.SPANS, state, "span", 1.0, container=row[3],
    help="Random axes: the grid covers ±span along each filter-normalized direction. PCA axes: the "
    "trajectory's extent (plus a margin) times span.",
)  # fmt: skip
with row[4]:
    three_d = toggle("3-D", "3d", False, help="Surfaces in 3-D (drag to turn; clicking works in 2-D only).")
    log = toggle("Log scale", "log", False)
seed = int(
    widgets.integer(
        "Direction seed", 0, 99, state, "dir_seed", 0, container=st.sidebar,
        help="Seeds of the two Gaussian directions (seed, seed + 1), the same for every loss.",
    )
)  # fmt: skip

# ----------------------------------------------------------------------------------------------- training

bar = st.progress(0.0, text="Training (or loading the cached models)…")
trained = ui.train_all(settings, bar)
for name, message in trained.errors.items():
    st.error(f"**{ui.run_label(name)}** could not train: {message}")
for history in trained.histories.values():
    if history.diverged:
        st.warning(f"**{ui.run_label(history.loss_name)}** diverged: {history.message}.", icon="⚠️")
params = dict(settings.losses)
names = []
for name in trained.names:
    try:
        lv.loss_context(settings, name)
    except ValueError as err:
        st.info(str(err))
    else:
        names.append(name)
if not names:
    bar.empty()
    st.info("No trained loss to draw: pick others in the sidebar.")
    state.sync()
    st.stop()
data = ui.dataset(settings.data)
labels = {name: ui.run_label(name, params[name]) for name in names}
st.caption(f"Models: {ui.describe(settings)}")

# ----------------------------------------------------------------------------------------------- surfaces

st.subheader("Loss surfaces")
view = (axes, seed, float(span), split)
refined: set = st.session_state.setdefault(lv.REFINED, set())
view_key = (settings.run_key(), tuple((n, params[n]) for n in names), *view, resolution)
planes: dict[str, lv.Plane] = {}
errors: dict[str, str] = {}
for name in names:
    try:
        planes[name] = lv.plane(settings.run_key(), name, params[name], axes, seed, float(span))
    except ValueError as err:
        errors[name] = str(err)
shown = [n for n in names if n in planes]
for name, message in errors.items():
    st.error(f"**{labels[name]}**: {message}")
if not shown:
    bar.empty()
    state.sync()
    st.stop()
first_plane = planes[shown[0]]
axis_titles = ("δ", "η") if axes == "random" else ("PC1", "PC2")
st.session_state[PANELS] = shown

point_loss_key = state.key("point", "loss")
chosen = st.session_state.get(point_loss_key)
chosen_panel = shown.index(chosen) if chosen in shown else 0
point_xy = (
    float(st.session_state.get(state.key("point", "x"), 0.0)),
    float(st.session_state.get(state.key("point", "y"), 0.0)),
)


def compute_surfaces(size: int, stage: str, start: float, end: float) -> dict[str, Any]:
    """One cached surface per loss at size² points, advancing the bar from start to end."""
    out = {}
    for i, name in enumerate(shown):
        bar.progress(
            start + (end - start) * i / len(shown), text=f"{stage} {size}×{size} grid: {labels[name]}"
        )
        try:
            out[name] = lv.surface(settings.run_key(), name, params[name], *view, size)
        except ValueError as err:
            st.error(f"**{labels[name]}**: {err}")
    return out


def surfaces_chart(found: dict[str, Any], clickable: bool) -> Any:
    """The small multiples of the surfaces found, on one colour scale."""
    order = [n for n in shown if n in found]
    titles = [labels[n] for n in order]
    point = (chosen_panel, *point_xy) if not three_d and chosen in order else None
    return figures.surfaces_figure(
        [found[n] for n in order], order, titles, [planes[n].trajectory for n in order],
        three_d=three_d, log=log, axis_titles=axis_titles, point=point, clickable=clickable,
    )  # fmt: skip


placeholder = st.empty()
if view_key not in refined:
    coarse = compute_surfaces(lv.COARSE, "Coarse", 0.0, 0.3)
    if coarse:
        placeholder.plotly_chart(surfaces_chart(coarse, clickable=False), key="landscape.fig.coarse")
fine = compute_surfaces(resolution, "Refining:", 0.3, 1.0)
bar.empty()
if not fine:
    state.sync()
    st.stop()
refined.add(view_key)
placeholder.plotly_chart(
    surfaces_chart(fine, clickable=True), key=FIGURE, on_select=choose_clicked_point, selection_mode="points"
)
trail, star = ("red", "◆") if three_d else ("white", "★")
if axes == "random":
    captured = ", ".join(f"{labels[n].split(' · ')[0]} {1 - planes[n].residual:.0%}" for n in shown)
    st.caption(
        f"Axes δ, η: two Gaussian random directions (seeds {seed}, {seed + 1}), **filter-normalized** to "
        "each model's own weights (every output filter of a direction gets the norm of the same filter of "
        "the weights; biases stay put), so the same seeds give like-for-like planes for every loss. The "
        f"{star} is the trained model; the {trail} line is the training trajectory projected by least "
        "squares (a random plane holds little of it; the share of its squared length in the plane is "
        f"{captured}). "
        f"One colour scale for all panels{' (log)' if log else ''}; loss on the {split} set."
    )
else:
    variance = ", ".join(
        f"{labels[n].split(' · ')[0]} {planes[n].explained[0]:.0%} + {planes[n].explained[1]:.0%}"
        for n in shown
        if planes[n].explained is not None
    )
    st.caption(
        "Axes: the two leading principal components of each model's own training trajectory "
        "(θ_t − θ_final, biases left out), so the directions differ between panels; coordinates are "
        f"distances in parameter space and the {star} at the origin is the trained model. Variance "
        f"explained: {variance}. One colour scale for all panels{' (log)' if log else ''}; loss on the "
        f"{split} set."
    )

# ----------------------------------------------------------------------------------------------- slices

st.subheader("1-D slices through the trained weights")
with st.spinner("Evaluating the slices…"):
    lines = {}
    for name in shown:
        try:
            lines[name] = lv.slices(settings.run_key(), name, params[name], *view)
        except ValueError as err:
            st.error(f"**{labels[name]}**: {err}")
if lines:
    order = list(lines)
    st.plotly_chart(
        figures.slices_figure(
            [lines[n][0] for n in order],
            [lines[n][1] for n in order],
            order,
            log=log,
            axis_titles=axis_titles,
        ),
        key="landscape.fig.slices",
    )

# ----------------------------------------------------------------------------------------------- point

st.subheader("Decision boundary at a point of the landscape")
st.caption(
    "Click a point of a 2-D surface (or a snapshot of the trajectory), or type its coordinates: the model's "
    "weights there are θ + x·d₁ + y·d₂, evaluated on a copy (the trained model is not touched)."
)
columns = st.columns([2, 1, 1])
point_loss = widgets.choice(
    "Loss", shown, state, "point.loss", shown[0], format_func=lambda n: labels[n], kind="select",
    container=columns[0],
)  # fmt: skip
point_plane = planes[point_loss]
x = coordinate(f"x ({axis_titles[0]})", "x", point_plane.xlim, columns[1])
y = coordinate(f"y ({axis_titles[1]})", "y", point_plane.ylim, columns[2])
try:
    at_point = lv.point_value(settings.run_key(), point_loss, params[point_loss], *view, x, y)
    at_centre = lv.point_value(settings.run_key(), point_loss, params[point_loss], *view, 0.0, 0.0)
except ValueError as err:
    st.error(str(err))
else:
    metrics = st.columns(4)
    metrics[0].metric(
        f"Loss at ({x:.3g}, {y:.3g})", f"{at_point[0]:.4g}", f"{at_point[0] - at_centre[0]:+.3g} vs centre",
        delta_color="inverse",
    )  # fmt: skip
    metrics[1].metric("Loss at the centre", f"{at_centre[0]:.4g}")
    if not math.isnan(at_point[1]):
        metrics[2].metric(
            "Accuracy at the point", f"{at_point[1]:.1%}", f"{(at_point[1] - at_centre[1]) * 100:+.1f} pts"
        )
        metrics[3].metric("Accuracy at the centre", f"{at_centre[1]:.1%}")
if data.task == "regression":
    st.info("Decision boundaries need a classification dataset; this one is regression.")
else:
    try:
        with st.spinner("Evaluating the two models on the map grid…"):
            centre_map = lv.boundary_at(
                settings.run_key(), point_loss, params[point_loss], axes, seed, float(span), 0.0, 0.0
            )
            point_map = lv.boundary_at(
                settings.run_key(), point_loss, params[point_loss], axes, seed, float(span), x, y
            )
    except ValueError as err:
        st.error(str(err))
    else:
        st.plotly_chart(
            boundary_figure(
                data, [[centre_map, point_map]],
                [f"{labels[point_loss]} · trained weights", f"at ({x:.3g}, {y:.3g})"],
                [point_loss, point_loss], height_per_row=340,
            ),
            key="landscape.fig.boundary",
        )  # fmt: skip

# ------------------------------------------------------------------------------------------- interpolation

st.subheader("Interpolation between two solutions")
tasks = {n: losses.get(n).task for n in shown}
pairable = [n for n in shown if sum(tasks[m] == tasks[n] for m in shown) >= 2]
if not pairable:
    st.info("Interpolation needs two trained losses of the same kind (both multiclass or both binary).")
else:
    columns = st.columns(3)
    first = widgets.choice(
        "From (α = 0)", pairable, state, "interp.a", pairable[0], format_func=lambda n: labels[n],
        kind="select", container=columns[0],
    )  # fmt: skip
    partners = [n for n in pairable if n != first and tasks[n] == tasks[first]]
    second = widgets.choice(
        "To (α = 1)", partners, state, "interp.b", partners[0], format_func=lambda n: labels[n],
        kind="select", container=columns[1],
    )  # fmt: skip
    measures = [n for n in shown if tasks[n] == tasks[first]]
    measure = widgets.choice(
        "Measured with", measures, state, "interp.measure", first, format_func=lambda n: labels[n],
        kind="select", container=columns[2],
    )  # fmt: skip
    try:
        with st.spinner("Interpolating…"):
            path = lv.interpolation(
                settings.run_key(), (first, params[first]), (second, params[second]),
                (measure, params[measure]), split,
            )  # fmt: skip
    except ValueError as err:
        st.error(str(err))
    else:
        left, right = st.columns([3, 1])
        left.plotly_chart(
            figures.interpolation_figure(
                path, first, second, labels=(labels[first], labels[second]),
                title=f"Measured with {labels[measure]} on the {SPLIT_TITLES[split].lower()}",
            ),
            key="landscape.fig.interp",
        )  # fmt: skip
        right.metric(
            "Loss barrier", f"{path.barrier:.4g}", help="max over α in [0, 1] of L(α) minus the chord"
        )
        right.metric("at α", f"{path.barrier_alpha:.2f}")
        right.caption(
            "Both models start from the same initial weights and differ only in the loss. A barrier near 0 "
            "means the straight segment between them stays in low loss (linearly connected solutions)."
        )

# ----------------------------------------------------------------------------------------------- curvature

st.subheader("Curvature")
run_set = (settings.run_key(), tuple((n, params[n]) for n in shown))
if st.session_state.get(CURVATURE) != run_set:
    st.caption(
        "Top Hessian eigenvalues (Lanczos), the trace (Hutchinson), the eigenvalue density (stochastic "
        "Lanczos quadrature) and the sharpness at every snapshot against 2/lr. A few seconds per loss."
    )
    if st.button("Compute curvature", key="landscape.curvature.button"):
        st.session_state[CURVATURE] = run_set
        st.rerun()
else:
    progress = st.progress(0.0, text="Curvature…")
    found: dict[str, lv.Curvature] = {}
    for i, name in enumerate(shown):
        progress.progress(i / len(shown), text=f"Curvature of {labels[name]} ({i + 1}/{len(shown)})")
        try:
            found[name] = lv.curvature_of(settings.run_key(), name, params[name])
        except ValueError as err:
            st.error(f"**{labels[name]}**: {err}")
    progress.empty()
    if found:
        order = list(found)
        threshold = 2.0 / settings.lr
        st.dataframe(
            [
                {
                    "loss": labels[n],
                    "λ₁": float(found[n].eigenvalues[0]),
                    "λ₂": float(found[n].eigenvalues[1]) if len(found[n].eigenvalues) > 1 else np.nan,
                    "λ₃": float(found[n].eigenvalues[2]) if len(found[n].eigenvalues) > 2 else np.nan,
                    "trace (Hutchinson)": found[n].trace,
                    "λ₁ · lr / 2": float(found[n].eigenvalues[0]) / threshold,
                    "parameters": found[n].n_params,
                }
                for n in order
            ],
            hide_index=True,
            key="landscape.curvature.table",
        )
        left, right = st.columns(2)
        left.plotly_chart(
            figures.spectrum_figure([found[n].spectrum for n in order], order, [labels[n] for n in order]),
            key="landscape.fig.spectrum",
        )
        right.plotly_chart(
            figures.sharpness_figure([found[n].sharpness for n in order], order, [labels[n] for n in order]),
            key="landscape.fig.sharpness",
        )
        optimizer = ui.OPTIMIZER_TITLES.get(settings.optimizer, settings.optimizer)
        st.caption(
            "Hessian of the mean training loss at the trained weights. λ₁ · lr / 2 > 1 means plain gradient "
            "descent with this learning rate would be unstable there (edge of stability at "
            f"2/lr = {threshold:.3g}). "
            + (
                f"These models were trained with {optimizer}, whose effective step differs, so 2/lr is a "
                "reference line only."
                if settings.optimizer not in ("sgd",) or settings.batch_size is not None
                else "These models were trained with full-batch gradient descent: the threshold applies."
            )
        )

state.sync()
