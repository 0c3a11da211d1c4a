"""Loss Shapes: each loss on its natural axis, its autograd derivative, relative sample weight and properties.

Margin view of Bartlett, Jordan & McAuliffe (2006); EnsLoss's calibration check; Mao et al.'s comp-sum (2023).
"""

from __future__ import annotations

import streamlit as st

from lossviz import losses, shapes
from lossviz.figures import shapes as figures
from lossviz.ui import cache, charts, widgets
from lossviz.ui import shapes as view
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

# Teaching defaults, kept only if registered: the losses compared, and the loss and hyperparameter swept.
TEACHING = {
    "multiclass": (("cross_entropy", "focal", "label_smoothing", "gce"), "comp_sum", "tau"),
    "binary": (("logistic", "hinge", "exponential", "sigmoid"), "bce_focal", "gamma"),
    "regression": (("squared", "absolute", "huber", "cauchy"), "barron", "alpha"),
}
MODES = {"compare": "Compare losses", "sweep": "Sweep a hyperparameter"}
CAPTION = (
    "Compare losses' shapes, autograd gradients and the samples they emphasise; properties are measured, "
    "not typed in. Copy the URL to share this exact view."
)
# Controls: the key is the URL name unless `url` differs. Options that depend on other controls are filled in
# by `view.offer`, whose per-task (or per-loss) key lets each task keep its own choice.
TASK = Field("task", "Task", "radio", "multiclass", options=shapes.SHAPE_TASKS, format=str.capitalize)
MODE = Field("mode", "View", "radio", "compare", options=tuple(MODES), format=MODES.get)
AXIS = Field("axis", "Axis", "radio", None, format=lambda axis: shapes.AXES[axis].title)
K = Field("K", "Classes K", "int", 3, low=2, high=20, help="The other K−1 classes share 1 − p_y equally.")
SWEEP_LOSS = Field("sweep.loss", "Loss", "select", None, format=widgets.loss_label)
SWEEP_PARAM = Field("sweep.param", "Swept hyperparameter", "select", None)
N_CURVES = Field("sweep.n", "Curves", "int", 5, low=3, high=11)
SIMPLEX = Field("simplex", "Loss on the simplex", "select", None, format=widgets.loss_label)

page = Page("shapes", "Loss shapes", CAPTION)
view.formula_style()
with st.sidebar:
    st.header("Loss shapes")
    task, mode = page.control(TASK), page.control(MODE)
    compared, swept_loss, swept_param = TEACHING[task]
    axis = page.control(view.offer(AXIS, list(shapes.axes_for(task)), within=task))
    n_classes = page.control(K) if task == "multiclass" else 3
    if mode == "compare":
        default = tuple(n for n in compared if n in losses.names(task)) or tuple(losses.names(task)[:4])
        names = widgets.loss_picker(task, page.state, default)
        selection = widgets.loss_settings(names, page.state, expanded=True)
    else:
        sweepable = [n for n in losses.names(task) if losses.get(n).params]
        if not sweepable:
            page.stop(f"No {task} loss has a hyperparameter to sweep yet.")
        spec = losses.get(name := page.control(view.offer(SWEEP_LOSS, sweepable, swept_loss, task)))
        param = page.control(view.offer(SWEEP_PARAM, [p.name for p in spec.params], swept_param, name))
        n_curves = page.control(N_CURVES)
        others = [p for p in spec.params if p.name != param]
        fixed = {p.name: float(page.control(widgets.param_field(spec, p))) for p in others}

info, reference = shapes.AXES[axis], shapes.reference_name(task)
if mode == "compare":
    if not names:
        page.stop("Pick at least one loss in the sidebar.")
    keys = {n: cache.params_key(p) for n, p in selection.items()}
    labels = {n: widgets.loss_label(n) for n in names}
    found = page.per_loss(labels, lambda n: cache.loss_curve(n, keys[n], axis, n_classes))
    curves = list(found.values())
    rows = {labels[n]: cache.loss_properties(n, keys[n], axis, n_classes) for n in found}
    make, value_title = figures.curves_figure, "Loss"
    if any(c.batch for c in curves):
        st.info(view.BATCH_NOTE)
else:
    key = cache.params_key(fixed)
    found = page.per_loss(
        {name: spec.title}, lambda n: cache.sweep_curves(n, param, n_curves, key, axis, n_classes)
    )
    curves = found.get(name, [])
    swept = {c.label: cache.params_key({**fixed, param: c.param_value}) for c in curves}
    rows = {label: cache.loss_properties(name, k, axis, n_classes) for label, k in swept.items()}
    make, value_title = figures.sweep_figure, f"{spec.title}, {param} swept"
if not curves:
    page.stop()

cells = [*st.columns(2), *st.columns(2)]
panels = figures.panel_titles(value_title, info.derivative, reference)
for cell, (series, titles) in zip(cells, panels.items(), strict=False):
    charts.show(
        cell, make, key=f"shapes.fig.{mode}.{series}",
        curves=curves, series=series, x_title=info.title, symbol=info.symbol, **titles,
    )  # fmt: skip
if reference:
    cells[2].caption(view.weight_note(reference))

if mode == "compare":
    if task == "multiclass" and n_classes == 3:
        with cells[3]:
            shown = page.control(view.offer(SIMPLEX, list(found), next(iter(found))))
            with st.spinner("Computing the simplex…"):
                surface = cache.simplex_surface(shown, keys[shown])
            title = f"{losses.get(shown).title} over the simplex (K = 3)"
            charts.show(st, figures.simplex_figure, key="shapes.fig.simplex", surface=surface, title=title)
    st.subheader("Properties (computed numerically)")
    view.properties_table(rows, "loss", task=task, derivative=info.derivative)
    st.subheader("Formulas and papers")
    columns = st.columns(min(2, len(found)))
    for i, name in enumerate(found):
        with columns[i % len(columns)]:
            view.formula_card(name)
else:
    with cells[3 if reference else 2]:
        view.formula_card(name)
    st.subheader("Properties along the sweep (computed numerically)")
    view.properties_table(rows, param, task=task, derivative=info.derivative)
page.finish()
