"""Loss Shapes: each loss on its natural axis, its autograd derivative, relative sample weight and properties.

Margin view of Bartlett, Jordan & McAuliffe (2006); EnsLoss's calibration check; Mao et al.'s comp-sum (2023).
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import losses, shapes
from lossviz.figures import shapes as figures
from lossviz.ui import cache, charts, widgets
from lossviz.ui import shapes as view_notes
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
# by `view_notes.offer`, whose per-task (or per-loss) key lets each task keep its own choice.
TASK = Field("task", "Task", "radio", "multiclass", options=shapes.SHAPE_TASKS, format=str.capitalize)
MODE = Field("mode", "Show", "radio", "compare", options=tuple(MODES), format=MODES.get)
AXIS = Field("axis", "Axis", "radio", None, format=lambda axis: shapes.AXES[axis].title)
K = Field("K", "Classes K", "int", 3, low=2, high=20, help="The other K−1 classes share 1 − p_y equally.")
SWEEP_LOSS = Field("sweep.loss", "Loss", "select", None, format=widgets.loss_label)
SWEEP_PARAM = Field("sweep.param", "Swept hyperparameter", "select", None)
N_CURVES = Field("sweep.n", "Curves", "int", 5, low=3, high=11)
VIEWS = {
    "value": "Loss",
    "derivative": "Derivative",
    "weight": "Relative weight",
    "simplex": "Simplex",
    "properties": "Properties",
    "formulas": "Formulas",
}
VIEW = Field("view", "View", "tabs", "value", options=tuple(VIEWS), format=VIEWS.get)
SIMPLEX = Field("simplex", "Loss on the simplex", "select", None, format=widgets.loss_label)

page = Page("shapes", "Loss shapes", CAPTION)
view_notes.formula_style()
with st.sidebar:
    st.header("Loss shapes")
    task, mode = page.control(TASK), page.control(MODE)
    compared, swept_loss, swept_param = TEACHING[task]
    axis = page.control(view_notes.offer(AXIS, list(shapes.axes_for(task)), within=task))
    n_classes = page.control(K) if task == "multiclass" else 3
    if mode == "compare":
        default = tuple(n for n in compared if n in losses.names(task)) or tuple(losses.names(task)[:4])
        names = widgets.loss_picker(task, page.state, default)
        selection = widgets.loss_settings(names, page.state, expanded=True)
    else:
        sweepable = [n for n in losses.names(task) if losses.get(n).params]
        if not sweepable:
            page.stop(f"No {task} loss has a hyperparameter to sweep yet.")
        spec = losses.get(name := page.control(view_notes.offer(SWEEP_LOSS, sweepable, swept_loss, task)))
        param = page.control(view_notes.offer(SWEEP_PARAM, [p.name for p in spec.params], swept_param, name))
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
    measured = {labels[n]: (n, keys[n]) for n in found}  # the properties table's rows: (loss, its params)
    make, value_title = figures.curves_figure, "Loss"
    if any(c.batch for c in curves):
        st.info(view_notes.BATCH_NOTE)
else:
    key = cache.params_key(fixed)
    found = page.per_loss(
        {name: spec.title}, lambda n: cache.sweep_curves(n, param, n_curves, key, axis, n_classes)
    )
    curves = found.get(name, [])
    swept = {c.label: cache.params_key({**fixed, param: c.param_value}) for c in curves}
    measured = {label: (name, k) for label, k in swept.items()}
    make, value_title = figures.sweep_figure, f"{spec.title}, {param} swept"
if not curves:
    page.stop()

panels = figures.panel_titles(value_title, info.derivative, reference)
simplex = mode == "compare" and task == "multiclass" and n_classes == 3
shown_views = [*panels, *(["simplex"] if simplex else []), "properties", "formulas"]
# One view at a time: a slider step then redraws one chart, not four (see widgets.views).
view, tab = widgets.views(
    replace(VIEW, options=tuple(shown_views)), page.state, controls={"simplex": (SIMPLEX.url_name,)}
)
with tab:
    if view in panels:
        charts.show(
            st, make, key=f"shapes.fig.{mode}.{view}",
            curves=curves, series=view, x_title=info.title, symbol=info.symbol, **panels[view],
        )  # fmt: skip
        if view == "weight":
            st.caption(view_notes.weight_note(reference))
    elif view == "simplex":
        shown = page.control(view_notes.offer(SIMPLEX, list(found), next(iter(found))))
        with st.spinner("Computing the simplex…"):
            surface = cache.simplex_surface(shown, keys[shown])
        title = f"{losses.get(shown).title} over the simplex (K = 3)"
        charts.show(st, figures.simplex_figure, key="shapes.fig.simplex", surface=surface, title=title)
    elif view == "properties":
        column = "loss" if mode == "compare" else param
        # measured only when shown: a step with another view open does not wait for it
        rows = {label: cache.loss_properties(n, k, axis, n_classes) for label, (n, k) in measured.items()}
        view_notes.properties_table(rows, column, task=task, derivative=info.derivative)
    else:
        shown = list(found) if mode == "compare" else [name]
        columns = st.columns(min(2, len(shown)))
        for i, loss in enumerate(shown):
            with columns[i % len(columns)]:
                view_notes.formula_card(loss)
page.finish()
