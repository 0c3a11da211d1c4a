"""Calibration: reliability diagrams (equal-width and equal-mass bins, bootstrap band, smooth ECE), ECE/MCE,
NLL, Brier, confidence histograms and temperature scaling for the losses trained on the shared experiment;
for binary margin losses, the calibration map their minimiser implies.

"On Calibration of Modern Neural Networks" (Guo et al., 2017); "Smooth ECE" (Błasiok & Nakkiran, 2023);
the calibration function of margin losses (Bartlett, Jordan & McAuliffe, 2006).
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import losses
from lossviz.figures import calibration as figures
from lossviz.ui import calibration as cached
from lossviz.ui import charts, runs, widgets
from lossviz.ui import experiment_fields as xf
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEFAULT_LOSSES = {
    "multiclass": ("cross_entropy", "focal", "label_smoothing", "squentropy", "brier"),
    "binary": ("hinge",),
}
BINS = Field("bins", "Bins", "int", 15, low=5, high=30, help="Bins of the reliability diagrams and ECE/MCE.")
BAND = Field("band", "Bootstrap band (90%)", "toggle", True, help="200 resamples of the test set.")
OVERLAY = Field("overlay", "Overlay the losses", "toggle", False)
VIEWS = {
    "reliability": "Reliability",
    "histogram": "Confidence histograms",
    "temperature": "Temperature scaling",
    "margin": "Margin losses",  # offered only for binary data with binary margin losses
}
VIEW = Field("view", "View", "tabs", "reliability", options=tuple(VIEWS), format=VIEWS.get)

page = Page(
    "calibration",
    "Calibration",
    "How far each loss's confidence can be trusted: accuracy against "
    "confidence on the clean test set, with the errors that summarise it, and what temperature scaling "
    "fitted on held-out data repairs. Trains on the shared experiment (same data and initial weights "
    "as Train & compare).",
)
with st.sidebar:
    st.header("Calibration")
experiment, data = xf.sidebar(page, DEFAULT_LOSSES)
if data.task == "regression":
    page.stop("Calibration needs a classification dataset; pick one in the sidebar.")
if not experiment.losses:
    page.stop("Pick at least one loss in the sidebar.")
bar = st.progress(0.0, text="Training (or loading the cached models)…")
result = runs.train_all(experiment, bar)
bar.empty()
runs.show_problems(result)
base, choices = experiment.base(), [result.choice(n) for n in result.names]
labels = {c.name: runs.run_label(c) for c in choices}
by_name = {c.name: c for c in choices}
st.caption(f"Models: {runs.describe(experiment)} · {len(data.y_test)} test samples.")

margin = {
    n: label
    for n, label in labels.items()
    if n in result.histories and data.n_classes == 2 and losses.get(n).task == "binary"
}


def measured(n_bins: int, band: bool) -> list:
    """Every loss's reliability panel, shared by the Reliability and histogram views: built only for them."""
    panels = page.per_loss(labels, lambda n: cached.panel(base, by_name[n], n_bins, 200 if band else 0))
    if not panels:
        page.stop()
    return list(panels.values())


@st.fragment
def views() -> None:
    """The binning controls and the open view. A fragment: a Bins, band or overlay step, or a tab click,
    reruns only this (the models are trained; the sidebar and the rest of the page stay as drawn)."""
    fields = (BINS, BAND, OVERLAY)
    n_bins, band, overlay = (
        page.control(f, container=c) for f, c in zip(fields, st.columns(len(fields)), strict=True)
    )
    # One view at a time: a step then redraws one chart, not four (see widgets.views).
    offered = tuple(v for v in VIEWS if v != "margin" or margin)
    view, tab = widgets.views(replace(VIEW, options=offered), page.state)
    with tab:
        show(view, n_bins, band, overlay)
    page.finish_fragment()


def show(view: str, n_bins: int, band: bool, overlay: bool) -> None:
    """One view's charts, captions and table."""
    if view == "reliability":
        panels = measured(n_bins, band)
        charts.show(st, figures.reliability_figure, key="cal.fig.reliability", panels=panels, overlay=overlay)
        st.caption(
            "Equal-width bins (solid, circles sized by count) and equal-mass bins (dashed), the 90% "
            "bootstrap band of the equal-width accuracy, and the bin-free smooth curve (dotted). On the "
            "diagonal a model's confidence is its accuracy; below it, overconfident."
        )
        widgets.static_table(
            [
                {
                    "loss": p.label,
                    "ECE (width)": p.equal_width.ece,
                    "MCE (width)": p.equal_width.mce,
                    "ECE (mass)": p.equal_mass.ece,
                    "MCE (mass)": p.equal_mass.mce,
                    "smooth ECE": p.smooth.error,
                    "NLL": p.nll,
                    "Brier": p.brier,
                    "accuracy": p.accuracy,
                }
                for p in panels
            ],
            decimals=4,
        )
        if data.n_classes == 2 and not margin:
            st.info(
                "Add binary margin losses (logistic, hinge, …) to see the calibration map each one implies."
            )
    elif view == "histogram":
        charts.show(
            st,
            figures.confidence_histogram_figure,
            key="cal.fig.histogram",
            panels=measured(n_bins, band),
            overlay=overlay,
        )
    elif view == "temperature":
        scaled = list(page.per_loss(labels, lambda n: cached.temperature(base, by_name[n], n_bins)).values())
        if scaled:
            # one above the other: beside the diagrams the bars' loss names overlapped
            charts.show(st, figures.temperature_figure, key="cal.fig.temperature", panels=scaled)
            charts.show(st, figures.temperature_reliability_figure, key="cal.fig.scaled", panels=scaled)
            st.caption(
                "T minimises the NLL of softmax(z / T) on every other test sample; the bars and diagrams are "
                "measured on the other half. T > 1 softens an overconfident loss, T < 1 sharpens a timid one."
            )
    else:
        maps = list(page.per_loss(margin, lambda n: cached.margin_panel(base, by_name[n], n_bins)).values())
        if maps:
            charts.show(st, figures.calibration_map_figure, key="cal.fig.map", panels=maps, overlay=overlay)
            st.caption(
                "Binary margin losses: the calibration their minimiser implies. Curve: σ(f*(η)), where f* "
                "minimises the conditional risk η·φ(f) + (1 − η)·φ(−f), computed from the registered loss; "
                "the diagonal means a proper loss. Markers: the reliability of the model trained with that "
                "loss on this data."
            )


views()
page.finish()
