"""Distillation: a bigger teacher trained with cross-entropy hands its logits to a smaller student through
forward KL, reverse KL or temperature-scaled KD; the students' boundaries, test accuracy and calibration
against the same student trained on the labels alone, and what the temperature T does.

"Distilling the Knowledge in a Neural Network" (Hinton, Vinyals & Dean, 2015); forward vs reverse KL as in
MiniLLM (Gu et al., 2024) and GKD (Agarwal et al., 2024). Reliability as on the Calibration page.
"""

from __future__ import annotations

import streamlit as st

from lossviz.figures import calibration as calibration_figures
from lossviz.figures import distillation as figures
from lossviz.figures import train as train_figures
from lossviz.presets import DISTILLATION_PRESETS
from lossviz.ui import charts, runs, widgets
from lossviz.ui import distillation as cached
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

POINTS = Field("points", "Show training points", "toggle", True)
BINS = Field("bins", "Bins", "int", cached.N_BINS, low=5, high=30, help="Bins of the reliability diagrams.")
OVERLAY = Field("overlay", "Overlay the models", "toggle", False)
VIEWS = {
    "boundaries": "Decision boundaries",
    "calibration": "Calibration",
    "targets": "Soft targets",
    "temperature": "Temperature sweep",
}
VIEW = Field("view", "View", "tabs", "boundaries", options=tuple(VIEWS), format=VIEWS.get)

page = Page(
    "distillation",
    "Distillation",
    "A bigger teacher is trained with cross-entropy on the data; a smaller student then learns from the "
    "teacher's logits (its soft targets) instead of, or besides, the labels. Compare each student with the "
    "same student trained on the labels alone: same data, same initial weights.",
)
cached.preset_buttons(page, DISTILLATION_PRESETS)
with st.sidebar:
    st.header("Distillation")
experiment, data = cached.sidebar(page)
trained = page.train_button()
bar, live = st.empty(), st.empty()
if not trained:
    bar.info("Press **Train** to train the teacher and then the students, or click a preset above.")
    runs.show_initial_boundaries(live, experiment, data)  # where the students start
    page.stop()
bar = bar.progress(0.0, text="Training the teacher (or loading it)…")
try:
    teacher = cached.train_teacher(experiment, bar)
except Exception as err:  # shown as an error, never a traceback
    page.stop(f"The teacher could not train: {err if isinstance(err, ValueError) else repr(err)}", "error")
result = runs.train_all(experiment, bar, runs.live_boundaries(live, experiment, data))  # students, live
bar.empty()
live.empty()
runs.show_problems(result)
if teacher.history.diverged:
    st.warning(f"The teacher diverged: {teacher.history.message}. Its last finite weights teach.", icon="⚠️")
names = result.names
st.caption(f"Students: {runs.describe(experiment)} · {cached.teacher_label(experiment)}, the same optimiser.")

sweep = cached.sweep_choices(experiment)
base = experiment.base()
trained = page.per_loss({k: k for k in sweep}, lambda k: runs.history(base, sweep[k]), progress="KD at")


@st.fragment
def boundaries() -> None:
    """The teacher's and the students' final boundaries; the points toggle reruns only this view."""
    show = page.control(POINTS)
    panels = cached.boundary_panels(experiment, names)
    charts.show(
        st,
        train_figures.boundary_figure,
        key="distill.fig.boundaries",
        data=data,
        panels=panels,
        show_points=show,
    )
    page.finish_fragment()


@st.fragment
def reliability() -> None:
    """Reliability diagrams of the teacher and the students; bins and overlay rerun only this view."""
    left, right = st.columns(2)
    n_bins, overlay = page.control(BINS, container=left), page.control(OVERLAY, container=right)
    panels = [cached.panel(base, None, n_bins)]
    panels += [cached.panel(base, result.choice(n), n_bins) for n in names]
    charts.show(
        st, calibration_figures.reliability_figure, key="distill.fig.reliability",
        panels=panels, overlay=overlay, show_band=False,
    )  # fmt: skip
    page.finish_fragment()


# One view at a time: a step then redraws one chart, not five (see widgets.views).
in_views = {"boundaries": (POINTS.url_name,), "calibration": (BINS.url_name, OVERLAY.url_name)}
view, tab = widgets.views(VIEW, page.state, controls=in_views)  # a closed view's controls stay in the URL
with tab:
    if view == "boundaries":
        boundaries()
        st.caption(cached.MAP_CAPTION)
        widgets.metrics_table(cached.metrics_rows(experiment, names, teacher))
    elif view == "calibration":
        reliability()
        st.caption(
            "On the clean test set, accuracy against confidence per bin (solid: equal-width bins, circles "
            "sized by count; dashed: equal-mass bins; dotted: smoothed). On the diagonal confidence is "
            "accuracy; below it a model is overconfident, above it underconfident. A student trained on "
            "flipped labels is often underconfident on clean data; a confident teacher lends it confidence, "
            "along with some of its mistakes."
        )
    elif view == "targets":
        charts.show(
            st, train_figures.boundary_figure, key="distill.fig.targets",
            data=data, panels=cached.soft_target_panels(experiment), show_points=False,
        )  # fmt: skip
        st.caption(
            "What a student is asked to match: the teacher's softmax(t / T). At T = 1 a confident teacher's "
            "targets are nearly its hard labels; a larger T flattens them towards uniform and shows how the "
            "teacher ranks the wrong classes (Hinton et al.'s 'dark knowledge'), while the boundary (argmax) "
            "stays put."
        )
    elif trained:
        students = {k: sweep[k] for k in trained}
        panels, curve = cached.sweep_panels(experiment, students)
        charts.show(st, train_figures.boundary_figure, key="distill.fig.sweep", data=data, panels=panels)
        charts.show(st, figures.temperature_figure, key="distill.fig.temperature", **curve)
        st.caption(
            "The same student distilled with KD at each T (α from the KD sliders), against the teacher and "
            "the labels alone. T² keeps the soft term's gradient the same size at every T, so only the shape "
            "of the targets changes."
        )
page.finish()
