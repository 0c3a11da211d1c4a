"""Loss landscape: filter-normalized surfaces of the shared experiment's models on one colour scale, with the
trajectory, 1-D slices, the decision boundary at any point, interpolation and curvature. Li et al. 2018
("Visualizing the Loss Landscape of Neural Nets"); sharpness against 2/lr as in Cohen et al. 2021.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import streamlit as st

from lossviz import context, losses
from lossviz.figures import landscape as fig
from lossviz.ui import charts, runs, widgets
from lossviz.ui import experiment_fields as xf
from lossviz.ui import landscape as lv
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

CHART, CURVATURE = "landscape.fig.surfaces", "landscape._curvature"  # session_state keys
DEFAULTS = {"multiclass": ("cross_entropy", "focal", "gce"), "regression": ("squared", "huber", "cauchy")}
AXIS_TITLES = {"random": "Random directions (filter-normalized)", "pca": "PCA of the trajectory"}
# fmt: off
AXES = Field("axes", "Axes", "radio", "random", options=tuple(AXIS_TITLES), format=AXIS_TITLES.get)
SPLIT = Field("split", "Loss on", "radio", "train", options=lv.SPLITS, format=lambda s: f"{s.title()} set")
GRID = Field("grid", "Grid", "select_slider", 41, options=(21, 31, 41, 51, 61, 81, 101), format="{}²".format,
             help=f"Points per axis (a {lv.COARSE}² grid is drawn first when the refined one takes long).")
SPAN = Field("span", "Span", "select_slider", 1.0, options=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0),
             help="Random axes: ±span along each direction. PCA axes: the trajectory's extent × span.")
THREE_D = Field("3d", "3-D", "toggle", False, help="The chosen point's loss in 3-D (pick it below; drag to "
                "turn). Clicks work in 2-D only.")
LOG = Field("log", "Log scale", "toggle", False)
SEED = Field("dir_seed", "Direction seed", "int", 0, low=0, high=99, help="Seeds the directions (s, s + 1).")
POINT = Field("point.loss", "Loss", "select", "")  # options (the losses drawn) and ranges are set when drawn
X, Y = Field("point.x", "x", "number", 0.0), Field("point.y", "y", "number", 0.0)
FROM, TO = Field("interp.a", "From (α = 0)", "select", ""), Field("interp.b", "To (α = 1)", "select", "")
MEASURE = Field("interp.measure", "Measured with", "select", "")
SECTIONS = {"surfaces": "Surfaces and a point", "slices": "1-D slices", "interpolation": "Interpolation",
            "curvature": "Curvature"}
SECTION = Field("view", "View", "tabs", "surfaces", options=tuple(SECTIONS), format=SECTIONS.get)
page = Page("landscape", "Loss landscape", "The loss around each trained model on a 2-D plane through its "
            "weights, one colour scale for all. Click a point of a surface to see its decision boundary.")
# fmt: on


def among(field: Field, names: list[str], default: str = "") -> Field:
    """A select field over some of the trained losses (default: the first of them)."""
    return replace(field, options=tuple(names), default=default or names[0], format=labels.get)


experiment, data = xf.sidebar(page, DEFAULTS)
lv.use_train_button(page.state.store)  # Train & compare's losses (and so its trained models) for this page
seed, row = page.control(SEED, container=st.sidebar), st.columns([2.2, 1.4, 1.2, 1.2, 1.2])
top = zip((AXES, SPLIT, GRID, SPAN, THREE_D, LOG), (*row, row[4]), strict=True)  # 3-D and log share a column
axes, split, grid, span, three_d, log = (page.control(f, container=c) for f, c in top)
if not experiment.losses:
    page.stop("Pick at least one loss in the sidebar.")
bar = st.progress(0.0, text="Training (or loading the cached models)…")
result, base = runs.train_all(experiment, bar), experiment.base()
bar.empty()
runs.show_problems(result)
choices = {n: result.choice(n) for n in result.names}
labels = {n: runs.run_label(c) for n, c in choices.items()}
for n in labels:
    if notes := context.approximations(losses.get(n)):
        st.caption(f"**{labels[n]}**: {'; '.join(notes)}.")
view, titles = (axes, seed, float(span), split), fig.AXIS_SYMBOLS[axes]
if not (planes := page.per_loss(labels, lambda n: lv.plane(base, choices[n], *view[:3]))):
    page.stop("No trained loss to draw: pick others in the sidebar.")
drawable = {n: labels[n] for n in planes}  # the losses with a plane: the views below draw them
st.caption(f"Models: {runs.describe(experiment)}")


def coordinates(loss: str) -> list[Field]:
    """The x and y fields of the chosen point, over the range of that loss's plane."""
    limits = zip((X, Y), titles, (planes[loss].xlim, planes[loss].ylim), strict=True)
    return [replace(f, label=f"{f.label} ({t})", low=lo, high=hi, step=float(f"{(hi - lo) / 40:.1g}"))
            for f, t, (lo, hi) in limits]  # fmt: skip


def surfaces(size: int, names: list[str], text: str) -> dict:
    """One cached surface per loss at size² points, with a progress bar."""
    some = {n: labels[n] for n in names}
    return page.per_loss(some, lambda n: lv.surface(base, choices[n], *view, size), progress=text)


def chart(holder: Any, found: dict, clickable: bool, **selection: Any) -> None:
    """The surfaces as small multiples on one colour scale; the chosen point marked in 2-D. In 3-D only the
    chosen point's loss: each WebGL scene takes this kind of browser ~0.7 s to draw, so three would miss
    the 1.5 s budget of a view change (measured in benchmarks/browser.py)."""
    if three_d and point_loss in found:
        found = {point_loss: found[point_loss]}
    panels = [fig.SurfacePanel(n, labels[n], s, planes[n].trajectory) for n, s in found.items()]
    charts.show(holder, fig.surfaces_figure, panels=panels, three_d=three_d, log=log, axis_titles=titles,
                point=(point_loss, x, y), clickable=clickable, **selection)  # fmt: skip


def choose_clicked() -> None:
    """on_select of the surfaces chart: a clicked grid node, snapshot or centre becomes the chosen point."""
    if clicked := fig.clicked_point(st.session_state.get(CHART), list(fine)):
        page.state.store().update(zip((POINT.key, X.key, Y.key), clicked, strict=True))


def point_section(shown: dict[str, str]) -> None:
    """The decision boundary and the metrics at the chosen point (a click on a surface chooses it)."""
    st.subheader("Decision boundary at a point of the landscape")
    st.caption(fig.POINT_CAPTION)
    cols = st.columns([2, 1, 1])
    point = page.control(among(POINT, list(shown)), container=cols[0])
    at_x, at_y = (page.control(f, container=c) for f, c in zip(coordinates(point), cols[1:], strict=True))
    one, spots = {point: labels[point]}, ((0.0, 0.0), (at_x, at_y))  # the trained weights, the chosen point
    if values := page.per_loss(one, lambda n: [lv.point_value(base, choices[n], *view, *at) for at in spots]):
        for col, card in zip(st.columns(4), fig.point_metrics(at_x, at_y, *values[point]), strict=False):
            col.metric(**card)
    if data.task == "regression":
        st.info("Decision boundaries need a classification dataset; this one is regression.")
    elif maps := page.per_loss(
        one, lambda n: [lv.boundary_at(base, choices[n], *view[:3], *at) for at in spots]
    ):
        charts.show(st, fig.point_boundary_figure, key="landscape.fig.boundary", data=data, name=point,
                    label=labels[point], maps=maps[point], point=(at_x, at_y))  # fmt: skip


def slices_section(shown: dict[str, str]) -> None:
    """1-D slices of every loss's landscape along each axis through its trained weights."""
    if lines := page.per_loss(shown, lambda n: lv.slices(base, choices[n], *view)):
        panels = [fig.SlicePanel(n, labels[n], *c) for n, c in lines.items()]
        charts.show(
            st, fig.slices_figure, key="landscape.fig.slices", panels=panels, log=log, axis_titles=titles
        )


def interpolation_section(shown: dict[str, str]) -> None:
    """The loss along the straight line between two trained solutions of the same kind, and its barrier."""
    kind = {n: (losses.get(n).task, losses.get(n).head) for n in shown}  # the same task and output layer
    if not (pairable := [n for n in shown if sum(kind[o] == kind[n] for o in shown) >= 2]):
        st.info("Interpolation needs two trained losses of the same kind (task and output layer).")
        return
    cols = st.columns(3)
    a = page.control(among(FROM, pairable), container=cols[0])
    b = page.control(among(TO, [n for n in pairable if n != a and kind[n] == kind[a]]), container=cols[1])
    m = page.control(among(MEASURE, [n for n in shown if kind[n] == kind[a]], a), container=cols[2])
    pair = {a: f"{labels[a]} → {labels[b]}"}
    if path := page.per_loss(pair, lambda _: lv.interpolation(base, *(choices[n] for n in (a, b, m)), split)):
        left, right = st.columns([3, 1])
        charts.show(left, fig.interpolation_figure, key="landscape.fig.interp",
                    interpolation=path[a], name_a=a, name_b=b, labels=(labels[a], labels[b]),
                    title=f"Measured with {labels[m]} on the {split} set")  # fmt: skip
        for card in fig.barrier_metrics(path[a]):
            right.metric(**card)
        right.caption(fig.BARRIER_CAPTION)


def curvature_section(shown: dict[str, str]) -> None:
    """Hessian spectra and sharpness over training, computed on request (it takes seconds)."""
    if st.session_state.get(CURVATURE) != (run_set := (base, *(choices[n] for n in shown))):
        st.caption(fig.CURVATURE_CAPTION)
        remember = st.session_state.__setitem__
        st.button(
            "Compute curvature",
            key="landscape.curvature.button",
            on_click=remember,
            args=(CURVATURE, run_set),
        )
        return
    if not (
        found := page.per_loss(shown, lambda n: lv.curvature_of(base, choices[n]), progress="Curvature:")
    ):
        return
    o = experiment.optim
    table = fig.curvature_table(curvatures=found, labels=labels, lr=o.lr)
    st.dataframe(table, hide_index=True, key="landscape.curvature.table")
    left, right = st.columns(2)
    spectra = [fig.SpectrumPanel(n, labels[n], c.spectrum) for n, c in found.items()]
    charts.show(left, fig.spectrum_figure, key="landscape.fig.spectrum", panels=spectra)
    sharpness = [fig.SharpnessPanel(n, labels[n], c.sharpness) for n, c in found.items()]
    charts.show(right, fig.sharpness_figure, key="landscape.fig.sharpness", panels=sharpness)
    optimizer, gd = (
        xf.OPTIMIZER_TITLES.get(o.optimizer, o.optimizer),
        o.optimizer == "sgd" and not o.batch_size,
    )
    st.caption(fig.sharpness_caption(lr=o.lr, optimizer=optimizer, full_batch_gd=gd))


# One view at a time: a control's step redraws the open view's charts, not the whole page (widgets.views).
# The surfaces and the boundary at a point share a view: a click on a surface chooses the point.
in_views = {"surfaces": (POINT, X, Y), "interpolation": (FROM, TO, MEASURE)}  # their own controls
section, tab = widgets.views(
    SECTION, page.state, controls={v: [f.url_name for f in fields] for v, fields in in_views.items()}
)
with tab:
    if section == "surfaces":
        drawn = among(POINT, list(planes))
        point_loss = drawn.valid(
            page.state.get(drawn)
        )  # read now for the chart's mark; its widget comes below
        x, y = (f.valid(page.state.get(f)) for f in coordinates(point_loss))
        holder, refined = st.empty(), st.session_state.setdefault("landscape._refined", set())
        key, todo = (base, *choices.values(), *view, grid), list(planes)
        if key not in refined:
            started = time.perf_counter()
            if coarse := surfaces(lv.COARSE, todo, f"Coarse {lv.COARSE}² grid:"):
                todo = list(coarse)
                # Drawing costs the browser as much as computing: the coarse grid is drawn first only when
                # the refined one, extrapolated from it by the number of points, would keep the user waiting.
                if lv.refine_is_slow(time.perf_counter() - started, grid):
                    chart(holder, coarse, clickable=False, key="landscape.fig.coarse")
        if not (fine := surfaces(grid, todo, f"Refining to {grid}²:")):
            page.stop()
        refined.add(key)
        chart(holder, fine, clickable=True, key=CHART, on_select=choose_clicked, selection_mode="points")
        shown = {n: labels[n] for n in fine}  # the losses drawn
        st.caption(fig.surfaces_caption(axes, seed, split, {t: planes[n] for n, t in shown.items()}))
        point_section(shown)
    elif section == "slices":
        slices_section(drawable)
    elif section == "interpolation":
        interpolation_section(drawable)
    else:
        curvature_section(drawable)
page.finish()
