"""Loss landscape: filter-normalized surfaces of the shared experiment's models on one colour scale, with the
trajectory, 1-D slices, the decision boundary at any point, interpolation and curvature. Li et al. 2018
("Visualizing the Loss Landscape of Neural Nets"); sharpness against 2/lr as in Cohen et al. 2021.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import context, losses
from lossviz.figures import landscape as fig
from lossviz.figures.train import BoundaryPanel, boundary_figure
from lossviz.ui import experiment_fields as xf
from lossviz.ui import landscape as lv
from lossviz.ui import runs
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

TRAIN, CHART, CURVATURE = "_lv.train", "landscape.fig.surfaces", "landscape._curvature"  # session_state keys
DEFAULTS = {"multiclass": ("cross_entropy", "focal", "gce"), "regression": ("squared", "huber", "cauchy")}
AXIS_TITLES = {"random": "Random directions (filter-normalized)", "pca": "PCA of the trajectory"}
# fmt: off
AXES = Field("axes", "Axes", "radio", "random", options=tuple(AXIS_TITLES), format=AXIS_TITLES.get)
SPLIT = Field("split", "Loss on", "radio", "train", options=lv.SPLITS, format=lambda s: f"{s.title()} set")
GRID = Field("grid", "Grid", "select_slider", 41, options=(21, 31, 41, 51, 61, 81, 101), format="{}²".format,
             help=f"Points per axis of the refined grid (a {lv.COARSE}² grid is drawn first).")
SPAN = Field("span", "Span", "select_slider", 1.0, options=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0),
             help="Random axes: ±span along each direction. PCA axes: the trajectory's extent × span.")
THREE_D = Field("3d", "3-D", "toggle", False, help="Surfaces in 3-D (drag to turn; clicks work in 2-D only).")
LOG = Field("log", "Log scale", "toggle", False)
SEED = Field("dir_seed", "Direction seed", "int", 0, low=0, high=99, help="Seeds the directions (s, s + 1).")
POINT = Field("point.loss", "Loss", "select", "")  # options (the losses drawn) and ranges are set when drawn
X, Y = Field("point.x", "x", "number", 0.0), Field("point.y", "y", "number", 0.0)
FROM, TO = Field("interp.a", "From (α = 0)", "select", ""), Field("interp.b", "To (α = 1)", "select", "")
MEASURE = Field("interp.measure", "Measured with", "select", "")
page = Page("landscape", "Loss landscape", "The loss around each trained model on a 2-D plane through its "
            "weights, one colour scale for all. Click a point of a surface to see its decision boundary.")
# fmt: on


def among(field: Field, names: list[str], default: str = "") -> Field:
    """A select field over some of the trained losses (default: the first of them)."""
    return replace(field, options=tuple(names), default=default or names[0], format=labels.get)


def use_train_losses() -> None:
    """on_click: Train & compare's loss lists and hyperparameters become this page's."""
    train = st.session_state.get(TRAIN, {})
    keep = [k for k in train if k.rsplit(".", 1)[-1] in losses.TASKS or k.split(".", 1)[0] in losses.names()]
    page.state.store().update({k: train[k] for k in keep})


def choose_clicked(panels: list[str]) -> None:
    """on_select of the surfaces chart: a clicked grid node, snapshot or centre becomes the chosen point."""
    for p in ((st.session_state.get(CHART) or {}).get("selection") or {}).get("points") or []:
        c = p.get("customdata")  # [loss, accuracy, panel]; typed arrays arrive as {"0": .., "1": .., ..}
        c = [c.get(str(i)) for i in range(len(c))] if isinstance(c, dict) else c
        if isinstance(c, list) and len(c) == 3 and c[2] is not None and 0 <= int(c[2]) < len(panels):
            xy = {X.key: round(float(p["x"]), 4), Y.key: round(float(p["y"]), 4)}
            page.state.store().update({POINT.key: panels[int(c[2])], **xy})
            return


experiment, data = xf.sidebar(page, DEFAULTS)
st.sidebar.button(
    "Use Train & compare's losses",
    key="landscape.use_train",
    on_click=use_train_losses,
    disabled=TRAIN not in st.session_state,
    help="Copy the losses and hyperparameters picked there (the models it trained are reused).",
)
seed = page.control(SEED, container=st.sidebar)
row = st.columns([2.2, 1.4, 1.2, 1.2, 1.2])
axes, split, grid, span = (
    page.control(f, container=c) for f, c in zip((AXES, SPLIT, GRID, SPAN), row[:4], strict=True)
)
three_d, log = page.control(THREE_D, container=row[4]), page.control(LOG, container=row[4])
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
view = (axes, seed, float(span), split)
if not (planes := page.per_loss(labels, lambda n: lv.plane(base, choices[n], *view[:3]))):
    page.stop("No trained loss to draw: pick others in the sidebar.")
st.caption(f"Models: {runs.describe(experiment)}")

st.subheader("Loss surfaces")
titles = ("δ", "η") if axes == "random" else ("PC1", "PC2")


def coordinates(loss: str) -> tuple[Field, Field]:
    """The x and y fields of the chosen point, over the range of that loss's plane."""
    limits = (planes[loss].xlim, planes[loss].ylim)
    return tuple(replace(f, label=f"{f.label} ({t})", low=lo, high=hi, step=float(f"{(hi - lo) / 40:.1g}"))
                 for f, t, (lo, hi) in zip((X, Y), titles, limits, strict=True))  # fmt: skip


drawn = among(POINT, list(planes))
point_loss = drawn.valid(page.state.get(drawn))  # read now for the chart's mark
x, y = (f.valid(page.state.get(f)) for f in coordinates(point_loss))  # the widgets come below


def surfaces(size: int, names: list[str], text: str) -> dict:
    """One cached surface per loss at size² points, with a progress bar."""
    return page.per_loss(
        {n: labels[n] for n in names}, lambda n: lv.surface(base, choices[n], *view, size), progress=text
    )


def chart(found: dict, clickable: bool):
    """The surfaces as small multiples on one colour scale; the chosen point marked in 2-D."""
    mark = (list(found).index(point_loss), x, y) if point_loss in found and not three_d else None
    panels = [fig.SurfacePanel(n, labels[n], s, planes[n].trajectory) for n, s in found.items()]
    return fig.surfaces_figure(
        panels=panels, three_d=three_d, log=log, axis_titles=titles, point=mark, clickable=clickable
    )


holder, refined = st.empty(), st.session_state.setdefault("landscape._refined", set())
key, todo = (base, *choices.values(), *view, grid), list(planes)
if key not in refined and (coarse := surfaces(lv.COARSE, todo, f"Coarse {lv.COARSE}² grid:")):  # first, fast
    todo = list(coarse)
    holder.plotly_chart(chart(coarse, clickable=False), key="landscape.fig.coarse")
if not (fine := surfaces(grid, todo, f"Refining to {grid}²:")):
    page.stop()
refined.add(key)
holder.plotly_chart(
    chart(fine, True), key=CHART, on_select=lambda: choose_clicked(list(fine)), selection_mode="points"
)
if axes == "random":
    kept = ", ".join(f"{labels[n]} {1 - planes[n].residual:.0%}" for n in fine)
    st.caption(
        f"Axes δ, η: Gaussian directions (seeds {seed}, {seed + 1}), **filter-normalized** to each model's "
        "weights (each filter gets the norm of that filter of the weights; biases stay put): like-for-like "
        "planes for every loss. ★ trained weights; line: the training trajectory projected by least squares "
        f"(share of its length in the plane: {kept}). One colour scale; loss on the {split} set."
    )
else:
    kept = ", ".join(f"{labels[n]} {planes[n].explained[0]:.0%} + {planes[n].explained[1]:.0%}" for n in fine)
    st.caption(
        "Axes: the leading principal components of each model's own trajectory (θ_t − θ_final), so they "
        f"differ between panels. Variance explained: {kept}. One colour scale; loss on the {split} set."
    )

st.subheader("1-D slices through the trained weights")
if lines := page.per_loss({n: labels[n] for n in fine}, lambda n: lv.slices(base, choices[n], *view)):
    panels = [fig.SlicePanel(n, labels[n], *c) for n, c in lines.items()]
    st.plotly_chart(fig.slices_figure(panels=panels, log=log, axis_titles=titles), key="landscape.fig.slices")

st.subheader("Decision boundary at a point of the landscape")
st.caption(
    "Click a point of a 2-D surface (or a snapshot), or type its coordinates: the weights there are "
    "θ + x·d₁ + y·d₂, evaluated on a copy (the trained model is not touched)."
)
cols = st.columns([2, 1, 1])
point_loss = page.control(among(POINT, list(fine)), container=cols[0])
x, y = (page.control(f, container=c) for f, c in zip(coordinates(point_loss), cols[1:], strict=True))
one, spots = {point_loss: labels[point_loss]}, ((0.0, 0.0), (x, y))  # the trained weights, the chosen point
if values := page.per_loss(one, lambda n: [lv.point_value(base, choices[n], *view, *at) for at in spots]):
    ((loss0, acc0), (loss, acc)), m, moved = values[point_loss], st.columns(4), (x, y) != (0.0, 0.0)
    delta = f"{loss - loss0:+.3g} vs centre" if moved else None
    m[0].metric(f"Loss at ({x:.3g}, {y:.3g})", f"{loss:.4g}", delta, delta_color="inverse")
    m[1].metric("Loss at the centre", f"{loss0:.4g}")
    if acc == acc:  # NaN for regression
        m[2].metric(
            "Accuracy at the point", f"{acc:.1%}", f"{(acc - acc0) * 100:+.1f} pts" if moved else None
        )
        m[3].metric("Accuracy at the centre", f"{acc0:.1%}")
if data.task == "regression":
    st.info("Decision boundaries need a classification dataset; this one is regression.")
elif maps := page.per_loss(one, lambda n: [lv.boundary_at(base, choices[n], *view[:3], *at) for at in spots]):
    names = [f"{labels[point_loss]} · trained weights", f"at ({x:.3g}, {y:.3g})"]
    panels = [BoundaryPanel(point_loss, t, [m]) for t, m in zip(names, maps[point_loss], strict=True)]
    st.plotly_chart(
        boundary_figure(data=data, panels=panels, height_per_row=340), key="landscape.fig.boundary"
    )

st.subheader("Interpolation between two solutions")
kind = {n: (losses.get(n).task, losses.get(n).head) for n in fine}  # the same task and output layer
if not (pairable := [n for n in fine if sum(kind[o] == kind[n] for o in fine) >= 2]):
    st.info("Interpolation needs two trained losses of the same kind (task and output layer).")
else:
    cols = st.columns(3)
    a = page.control(among(FROM, pairable), container=cols[0])
    b = page.control(among(TO, [n for n in pairable if n != a and kind[n] == kind[a]]), container=cols[1])
    m = page.control(among(MEASURE, [n for n in fine if kind[n] == kind[a]], a), container=cols[2])
    pair = {a: f"{labels[a]} → {labels[b]}"}
    if path := page.per_loss(pair, lambda _: lv.interpolation(base, *(choices[n] for n in (a, b, m)), split)):
        path = path[a]
        left, right = st.columns([3, 1])
        figure = fig.interpolation_figure(
            interpolation=path,
            name_a=a,
            name_b=b,
            labels=(labels[a], labels[b]),
            title=f"Measured with {labels[m]} on the {split} set",
        )
        left.plotly_chart(figure, key="landscape.fig.interp")
        right.metric(
            "Loss barrier", f"{path.barrier:.4g}", help="max over α in [0, 1] of L(α) minus the chord"
        )
        right.metric("at α", f"{path.barrier_alpha:.2f}")
        right.caption(
            "Both models start from the same weights and differ only in the loss; a barrier near 0: "
            "the segment between them stays in low loss (linearly connected solutions)."
        )

st.subheader("Curvature")
if st.session_state.get(CURVATURE) != (run_set := (base, *(choices[n] for n in fine))):
    st.caption(
        "Top Hessian eigenvalues (Lanczos), the trace (exact for small models, else Hutch++), the "
        "eigenvalue density (stochastic Lanczos quadrature), and sharpness along training vs 2/lr."
    )
    st.button(
        "Compute curvature",
        key="landscape.curvature.button",
        on_click=st.session_state.__setitem__,
        args=(CURVATURE, run_set),
    )
    page.stop()
found = page.per_loss(
    {n: labels[n] for n in fine}, lambda n: lv.curvature_of(base, choices[n]), progress="Curvature:"
)
if not found:
    page.stop()
lr, pairs = experiment.optim.lr, [(n, labels[n], c) for n, c in found.items()]
rows = [
    {
        "loss": t,
        **{f"λ{'₁₂₃'[k]}": float(v) for k, v in enumerate(c.eigenvalues[:3])},
        "tr(H)": c.trace.value,
        "± s.e.": c.trace.stderr,
        "trace by": f"{c.trace.method}, {c.trace.n_matvecs} HVPs",
        "λ₁ · lr / 2": float(c.eigenvalues[0]) * lr / 2,
        "parameters": c.n_params,
    }
    for _, t, c in pairs
]
st.dataframe(rows, hide_index=True, key="landscape.curvature.table")
left, right = st.columns(2)
spectra = fig.spectrum_figure(panels=[fig.SpectrumPanel(n, t, c.spectrum) for n, t, c in pairs])
left.plotly_chart(spectra, key="landscape.fig.spectrum")
sharpness = fig.sharpness_figure(panels=[fig.SharpnessPanel(n, t, c.sharpness) for n, t, c in pairs])
right.plotly_chart(sharpness, key="landscape.fig.sharpness")
o = experiment.optim
how = (
    f"{xf.OPTIMIZER_TITLES.get(o.optimizer, o.optimizer)}, whose effective step differs: 2/lr is a reference"
)
how = (
    "full-batch gradient descent: the threshold applies" if o.optimizer == "sgd" and not o.batch_size else how
)
st.caption(
    "Hessian of the mean training loss at the trained weights. λ₁ · lr / 2 > 1: gradient descent at this lr "
    f"would be unstable there (edge of stability, 2/lr = {2 / lr:.3g}). Trained with {how}."
)
page.finish()
