"""Loss Shapes: each loss on its natural axis, its autograd derivative, relative sample weight and properties.

Margin view of Bartlett, Jordan & McAuliffe (2006); EnsLoss's calibration check; Mao et al.'s comp-sum (2023).
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import losses, shapes
from lossviz.figures import shapes as figures
from lossviz.ui import cache, widgets
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

# Teaching defaults, kept only if registered: the losses compared, and the loss and hyperparameter swept.
TEACHING = {
    "multiclass": (("cross_entropy", "focal", "label_smoothing", "gce"), "comp_sum", "tau"),
    "binary": (("logistic", "hinge", "exponential", "sigmoid"), "bce_focal", "gamma"),
    "regression": (("squared", "absolute", "huber", "cauchy"), "barron", "alpha"),
}
MODES = {"compare": "Compare losses", "sweep": "Sweep a hyperparameter"}
CHECKS = {
    "bounded": "|L| stops growing over 10⁴ × the plotted range (checked numerically).",
    "convex": "Second differences ≥ 0 on the plotted range of the model output (logit margin for p_y).",
    "calibrated": "Binary margin losses: convex with φ'(0) < 0 (Bartlett et al. 2006); n/a when not convex.",
    "symmetric": "Σ_k L(z, k) constant over random logits (classification); L(r) = L(−r) (regression).",
}
CAPTION = (
    "Compare losses' shapes, autograd gradients and the samples they emphasise; properties are measured, "
    "not typed in. Copy the URL to share this exact view."
)
# Long formulas break into lines at (top-level text, end of its line, start of the next); what still does not
# fit its column scrolls, the thumb always shown (Streamlit hides scrollbars until hover).
BREAKS = (
    (r",\ ", ",", ""),
    (r",\quad ", ",", ""),
    (r";\ ", ";", ""),
    (r"\ \text{", "", r"\text{"),
    (" = ", "", "= "),
)
PAIRS = ("{}", "()", "[]", (r"\begin", r"\end"))  # a break inside any of these is not top-level
SCROLL = "<style>.katex-display{overflow-x:auto;overflow-y:hidden;scrollbar-color:#bbb transparent}</style>"

# Controls: the key is the URL name unless `url` differs. Options that depend on other controls are filled in
# by `offer`, whose per-task (or per-loss) key lets each task keep its own choice.
TASK = Field("task", "Task", "radio", "multiclass", options=shapes.SHAPE_TASKS, format=str.capitalize)
MODE = Field("mode", "View", "radio", "compare", options=tuple(MODES), format=MODES.get)
AXIS = Field("axis", "Axis", "radio", None, format=lambda axis: shapes.AXES[axis].title)
K = Field("K", "Classes K", "int", 3, low=2, high=20, help="The other K−1 classes share 1 − p_y equally.")
SWEEP_LOSS = Field("sweep.loss", "Loss", "select", None, format=widgets.loss_label)
SWEEP_PARAM = Field("sweep.param", "Swept hyperparameter", "select", None)
N_CURVES = Field("sweep.n", "Curves", "int", 5, low=3, high=11)
SIMPLEX = Field("simplex", "Loss on the simplex", "select", None, format=widgets.loss_label)


def offer(field: Field, options: list[str], preferred: str = "", within: str = "") -> Field:
    """The field over these options, stored per `within`; its default is the preferred option when offered."""
    default = preferred if preferred in options else options[0]
    key = f"{field.key}.{within}" if within else field.key
    return replace(field, key=key, url=field.key, default=default, options=tuple(options))


def tex(latex: str) -> str:
    """A formula over 50 characters broken into centred lines at its top-level BREAKS (at ` = ` only after a
    long left side, in a line with no text or environment), so a narrow column does not clip it."""
    lines = [latex]
    for at, end, start in BREAKS:
        broken: list[str] = []
        for line in lines:
            parts: list[str] = []
            for part in line.split(at):
                if parts and any(parts[-1].count(a) != parts[-1].count(b) for a, b in PAIRS):
                    parts[-1] += at + part  # that break sits inside a group
                else:
                    parts.append(part)
            keep = at == " = " and (len(parts[0]) < 20 or r"\text" in line or r"\begin" in line)
            if len(line) <= 50 or keep:
                parts = [line]
            broken += [start * (i > 0) + p + end * (i < len(parts) - 1) for i, p in enumerate(parts)]
        lines = broken
    return lines[0] if len(lines) == 1 else r"\begin{gathered}" + r" \\ ".join(lines) + r"\end{gathered}"


def formula_card(name: str) -> None:
    spec = losses.get(name)
    st.markdown(f"{widgets.color_dot(name)} **{spec.title}** `{name}`", unsafe_allow_html=True)
    st.latex(tex(spec.latex))
    batch = f"{shapes.BATCH_LABEL.capitalize()} (dashed)." if spec.batch else ""
    st.caption("\n\n".join(filter(None, (batch, spec.notes, f"Paper: *{spec.paper}*"))))


def properties(name: str, params: dict[str, float]) -> dict:
    return cache.loss_properties(name, cache.params_key(params), axis, n_classes)


def properties_table(rows: dict[str, dict], first: str) -> None:
    mark, some = {True: "✓", False: "✗", None: "n/a"}, next(iter(rows.values()))
    checks = [k for k in CHECKS if k != "calibrated" or task == "binary"]
    origin, slope = f"L at {some['origin']}", f"slope {info.derivative} at origin"
    table = [
        {first: label, **{k: mark[r[k]] for k in checks}, origin: r["value_at_0"], slope: r["slope_at_0"]}
        for label, r in rows.items()
    ]
    config = {k: st.column_config.TextColumn(k, help=v) for k, v in CHECKS.items()}
    st.dataframe(table, hide_index=True, column_config=config)
    st.caption(f"Convexity checked on {some['convex_on']}.")


page = Page("shapes", "Loss shapes", CAPTION)
st.markdown(SCROLL, unsafe_allow_html=True)
with st.sidebar:
    st.header("Loss shapes")
    task, mode = page.control(TASK), page.control(MODE)
    compared, swept_loss, swept_param = TEACHING[task]
    axis = page.control(offer(AXIS, list(shapes.axes_for(task)), within=task))
    n_classes = page.control(K) if task == "multiclass" else 3
    if mode == "compare":
        default = tuple(n for n in compared if n in losses.names(task)) or tuple(losses.names(task)[:4])
        names = widgets.loss_picker(task, page.state, default)
        selection = widgets.loss_settings(names, page.state, expanded=True)
    else:
        sweepable = [n for n in losses.names(task) if losses.get(n).params]
        if not sweepable:
            page.stop(f"No {task} loss has a hyperparameter to sweep yet.")
        spec = losses.get(name := page.control(offer(SWEEP_LOSS, sweepable, swept_loss, task)))
        param = page.control(offer(SWEEP_PARAM, [p.name for p in spec.params], swept_param, name))
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
    curves, rows = list(found.values()), {labels[n]: properties(n, selection[n]) for n in found}
    make, value_title = figures.curves_figure, "Loss"
    if any(c.batch for c in curves):
        st.info(
            "Dashed curves are batch-level losses: each point scores a balanced batch whose samples all have "
            "that margin, and the derivative is taken along the shared margin."
        )
else:
    key = cache.params_key(fixed)
    found = page.per_loss(
        {name: spec.title}, lambda n: cache.sweep_curves(n, param, n_curves, key, axis, n_classes)
    )
    curves = found.get(name, [])
    rows = {c.label: properties(name, {**fixed, param: c.param_value}) for c in curves}
    make, value_title = figures.sweep_figure, f"{spec.title}, {param} swept"
if not curves:
    page.stop()

d, w = info.derivative, f"|∇L| / |∇ {reference}|"
panels = {
    "value": dict(title=value_title, y_title="loss L", y_name="L"),
    "derivative": dict(title=f"Derivative {d} (autograd)", y_title=d, y_name=d),
    "weight": dict(title=f"Relative sample weight vs {reference}", y_title=w, y_name="weight"),
}
cells = [*st.columns(2), *st.columns(2)]
for cell, (series, titles) in zip(cells, list(panels.items())[: 3 if reference else 2], strict=False):
    figure = make(curves=curves, series=series, x_title=info.title, symbol=info.symbol, **titles)
    cell.plotly_chart(figure, key=f"shapes.fig.{mode}.{series}")
if reference:
    cells[2].caption(
        f"Above 1 the loss pushes harder on such samples than {reference}; near 0 it ignores them (robust "
        "losses ignore badly misclassified samples, focal ignores easy ones)."
    )

if mode == "compare":
    if task == "multiclass" and n_classes == 3:
        with cells[3]:
            shown = page.control(offer(SIMPLEX, list(found), next(iter(found))))
            with st.spinner("Computing the simplex…"):
                surface = cache.simplex_surface(shown, keys[shown])
            title = f"{losses.get(shown).title} over the simplex (K = 3)"
            st.plotly_chart(figures.simplex_figure(surface=surface, title=title), key="shapes.fig.simplex")
    st.subheader("Properties (computed numerically)")
    properties_table(rows, "loss")
    st.subheader("Formulas and papers")
    columns = st.columns(min(2, len(found)))
    for i, name in enumerate(found):
        with columns[i % len(columns)]:
            formula_card(name)
else:
    with cells[3 if reference else 2]:
        formula_card(name)
    st.subheader("Properties along the sweep (computed numerically)")
    properties_table(rows, param)
page.finish()
