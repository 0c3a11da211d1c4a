"""Loss Shapes: each loss on its natural axis, its autograd derivative, relative sample weight and properties.

Margin view of Bartlett, Jordan & McAuliffe (2006); calibration check of EnsLoss; comp-sum family of
Mao, Mohri & Zhong (2023). The whole view lives in the URL query parameters.
"""

from __future__ import annotations

import streamlit as st

from lossviz import losses, shapes
from lossviz.figures import shapes as figures
from lossviz.ui import cache, widgets
from lossviz.ui.state import PageState

# Teaching defaults (kept only if registered); every list shown to the user comes from the registry.
TEACHING = {
    "multiclass": ("cross_entropy", "focal", "label_smoothing", "gce"),
    "binary": ("logistic", "hinge", "exponential", "sigmoid"),
    "regression": ("squared", "absolute", "huber", "cauchy"),
}
SWEEP_TEACHING = {
    "multiclass": ("comp_sum", "tau"),
    "binary": ("bce_focal", "gamma"),
    "regression": ("barron", "alpha"),
}
TASK_TITLES = {"multiclass": "Multiclass", "binary": "Binary", "regression": "Regression"}
AXIS_TITLES = {
    "p_y": "probability p_y",
    "logit_margin": "logit margin",
    "margin": "margin m",
    "residual": "residual r",
}
MODES = {"compare": "Compare losses", "sweep": "Sweep a hyperparameter"}
PROPERTY_HELP = {
    "bounded": "|L| stops growing over 10⁴ × the plotted range (checked numerically).",
    "convex": "Second differences ≥ 0 on the plotted range of the model output (logit margin for p_y).",
    "calibrated": "Binary margin losses: convex with φ'(0) < 0 (Bartlett et al. 2006); n/a when not convex.",
    "symmetric": "Σ_k L(z, k) constant over random logits (classification); L(r) = L(−r) (regression).",
}

st.title("Loss shapes")
st.caption(
    "Pick losses, move their hyperparameters, and compare their shapes, gradients and the samples they "
    "emphasise. Derivatives come from autograd; properties are measured from the functions, not typed in. "
    "Copy the URL to share this exact view."
)
state = PageState("shapes")

with st.sidebar:
    st.header("Loss shapes")
    task = widgets.choice(
        "Task", shapes.SHAPE_TASKS, state, "task", "multiclass", format_func=TASK_TITLES.get
    )
    mode = widgets.choice("View", tuple(MODES), state, "mode", "compare", format_func=MODES.get)
    axes = shapes.axes_for(task)
    axis = widgets.choice("Axis", axes, state, "axis", axes[0], format_func=AXIS_TITLES.get)
    n_classes = 3
    if task == "multiclass":
        n_classes = widgets.integer(
            "Classes K", 2, 20, state, "K", 3, help="The other K−1 classes share 1 − p_y equally."
        )
    if mode == "compare":
        default = [n for n in TEACHING[task] if n in losses.names(task)] or losses.names(task)[:4]
        names = widgets.loss_multiselect(task, state, default)
        selection = {}
        for name in names:
            spec = losses.get(name)
            if spec.params:
                with st.expander(widgets.loss_label(name), expanded=True):
                    selection[name] = widgets.param_inputs(spec, state)
            else:
                selection[name] = {}
    else:
        sweepable = [n for n in losses.names(task) if losses.get(n).params]
        if not sweepable:
            st.info(f"No {task} loss has a hyperparameter to sweep yet.")
            state.sync()
            st.stop()
        loss_default, param_default = SWEEP_TEACHING[task]
        name = widgets.choice(
            "Loss",
            sweepable,
            state,
            "sweep.loss",
            loss_default,
            format_func=widgets.loss_label,
            kind="select",
        )
        spec = losses.get(name)
        param = widgets.choice(
            "Swept hyperparameter",
            [p.name for p in spec.params],
            state,
            "sweep.param",
            param_default,
            kind="select",
        )
        n_curves = widgets.integer("Curves", 3, 11, state, "sweep.n", 5)
        fixed = widgets.param_inputs(spec, state, skip=[param])

info = shapes.AXES[axis]
reference = shapes.reference_name(task)
d_title = f"{info.derivative}"
w_title = f"|∇L| / |∇ {reference}|" if reference else ""
labels = dict(x_title=info.title, symbol=info.symbol)


def formula_card(name: str) -> None:
    """Title in its colour, formula, notes and paper of one loss."""
    spec = losses.get(name)
    st.markdown(f"{widgets.color_dot(name)} **{spec.title}** `{name}`", unsafe_allow_html=True)
    st.latex(spec.latex)
    if spec.batch:
        st.caption(f"Batch-level: drawn as the loss of {shapes.BATCH_LABEL.split(': ')[1]} (dashed).")
    if spec.notes:
        st.caption(spec.notes)
    st.caption(f"Paper: *{spec.paper}*")


def properties_table(rows: list[dict], first: str) -> None:
    """The numerical properties as a table, one row per loss or swept value."""
    mark = {True: "✓", False: "✗", None: "n/a"}
    table = [
        {
            first: row["label"],
            "bounded": mark[row["bounded"]],
            "convex": mark[row["convex"]],
            **({"calibrated": mark[row["calibrated"]]} if task == "binary" else {}),
            "symmetric": mark[row["symmetric"]],
            f"L at {row['origin']}": row["value_at_0"],
            f"slope {info.derivative} at origin": row["slope_at_0"],
        }
        for row in rows
    ]
    config = {k: st.column_config.TextColumn(k, help=v) for k, v in PROPERTY_HELP.items()}
    st.dataframe(table, hide_index=True, column_config=config)
    st.caption(f"Convexity checked on {rows[0]['convex_on']}." if rows else "")


if mode == "compare":
    if not names:
        st.info("Pick at least one loss in the sidebar.")
        state.sync()
        st.stop()
    with st.spinner("Computing curves…"):
        curves = cache.loss_curves(task, cache.losses_key(selection), axis, n_classes)
    batch = [n for n in names if losses.get(n).batch]
    if batch:
        st.info(
            "Dashed curves are batch-level losses (they score a whole batch, not one sample): each point is "
            "the loss of a balanced batch in which every sample has the margin on the x axis; the derivative "
            "is taken along that shared margin."
        )
    left, right = st.columns(2)
    left.plotly_chart(
        figures.curves_figure(curves, title="Loss", y_title="loss L", batch_names=batch, **labels),
        key="shapes.fig.value",
    )
    right.plotly_chart(
        figures.curves_figure(
            curves, series="derivative", title=f"Derivative {d_title} (autograd)", y_title=d_title,
            y_name=d_title, batch_names=batch, **labels,
        ),
        key="shapes.fig.derivative",
    )  # fmt: skip
    if reference or n_classes == 3:
        left, right = st.columns(2)
    if reference:
        left.plotly_chart(
            figures.curves_figure(
                curves, series="weight", title=f"Relative sample weight vs {reference}", y_title=w_title,
                y_name="weight", batch_names=batch, **labels,
            ),
            key="shapes.fig.weight",
        )  # fmt: skip
        left.caption(
            f"Above 1 the loss pushes harder on such samples than {reference}; near 0 it ignores them "
            "(robust losses ignore badly misclassified samples, focal ignores easy ones)."
        )
    if task == "multiclass" and n_classes == 3:
        with right:
            shown = widgets.choice(
                "Loss on the simplex",
                names,
                state,
                "simplex",
                names[0],
                format_func=widgets.loss_label,
                kind="select",
            )
            with st.spinner("Computing the simplex…"):
                surface = cache.simplex_surface(shown, cache.params_key(selection[shown]))
            st.plotly_chart(
                figures.simplex_figure(surface, title=f"{losses.get(shown).title} over the simplex (K = 3)"),
                key="shapes.fig.simplex",
            )
    st.subheader("Properties (computed numerically)")
    rows = [
        {**cache.loss_properties(n, cache.params_key(p), axis, n_classes), "label": widgets.loss_label(n)}
        for n, p in selection.items()
    ]
    properties_table(rows, "loss")
    st.subheader("Formulas and papers")
    columns = st.columns(min(3, len(names)))
    for i, name in enumerate(names):
        with columns[i % len(columns)]:
            formula_card(name)
else:
    with st.spinner("Computing the family…"):
        curves = cache.sweep_curves(name, param, n_curves, cache.params_key(fixed), axis, n_classes)
    family = (
        f"{spec.title}: {param} from {curves[0].label.split('= ')[1]} to {curves[-1].label.split('= ')[1]}"
    )
    left, right = st.columns(2)
    left.plotly_chart(
        figures.sweep_figure(curves, title=family, y_title="loss L", **labels), key="shapes.fig.sweep_value"
    )
    right.plotly_chart(
        figures.sweep_figure(
            curves,
            series="derivative",
            title=f"Derivative {d_title}",
            y_title=d_title,
            y_name=d_title,
            **labels,
        ),
        key="shapes.fig.sweep_derivative",
    )
    if reference:
        left, right = st.columns(2)
        left.plotly_chart(
            figures.sweep_figure(
                curves, series="weight", title=f"Relative sample weight vs {reference}", y_title=w_title,
                y_name="weight", **labels,
            ),
            key="shapes.fig.sweep_weight",
        )  # fmt: skip
        with right:
            formula_card(name)
    else:
        formula_card(name)
    st.subheader("Properties along the sweep (computed numerically)")
    swept = [{**fixed, param: float(c.extra["param_value"][0])} for c in curves]
    rows = [
        {**cache.loss_properties(name, cache.params_key(p), axis, n_classes), "label": c.label}
        for p, c in zip(swept, curves, strict=True)
    ]
    properties_table(rows, param)

state.sync()
