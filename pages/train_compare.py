"""Train & compare: up to six losses trained on identical data from identical initial weights; their decision
boundaries over training, curves, calibration metrics and per-sample gradient weights.

Presets reproduce claims of "Normalized Loss Functions for Deep Learning with Noisy Labels", LDAM/VS-loss and
robust regression. Once trained, the page retrains (from the cache) whenever a setting changes, so the view
always matches the controls and the URL.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import evaluate
from lossviz.figures import train as figures
from lossviz.presets import PRESETS
from lossviz.ui import charts, runs, widgets
from lossviz.ui import experiment_fields as xf
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEFAULT_LOSSES = {
    "multiclass": ("cross_entropy", "gce", "apl_nce_rce"),
    "regression": ("squared", "huber", "cauchy"),
}
VIEWS = {"model": "Decision boundaries", "curves": "Training curves", "weights": "Per-sample gradient weight"}
VIEW = Field("view", "View", "tabs", "model", options=tuple(VIEWS), format=VIEWS.get)
POINTS = Field("points", "Show training points", "toggle", True)
SCALE = Field(
    "loss_scale",
    "Loss axis",
    "select",
    "auto",
    options=figures.LOSS_SCALES,
    help="'auto' switches to a per-loss normalised or signed-log axis when one loss would flatten the "
    "others (e.g. LDR-KL going negative).",
)

page = Page(
    "train",
    "Train & compare",
    "Pick data, a model and up to six losses, then press **Train**: every "
    "loss trains on the same data from the same initial weights. Or load a preset: one click sets "
    "everything up and trains.",
)
xf.preset_buttons(page, PRESETS, on_load=page.will_train)
with st.sidebar:
    st.header("Train & compare")
experiment, data = xf.sidebar(page, DEFAULT_LOSSES)

trained = page.train_button(disabled=not experiment.losses)
if not experiment.losses:
    page.stop("Pick at least one loss in the sidebar.")
bar, live = st.empty(), st.empty()
if not trained:
    bar.info("Press **Train** to train the selected losses, or click a preset above.")
    if data.task != "regression":
        runs.show_initial_boundaries(live, experiment, data)
    page.stop()
bar = bar.progress(0.0, text="Training…")
drawing = runs.live_boundaries(live, experiment, data) if data.task != "regression" else None
result = st.session_state[runs.SHOWN] = runs.train_all(experiment, bar, drawing)  # other pages read it
bar.empty()
live.empty()
st.caption(f"Run: {runs.describe(experiment)}" + (f" · Data: {'; '.join(data.notes)}." if data.notes else ""))
runs.show_problems(result)
if not result.names:
    page.stop()

# One view at a time: a control's step redraws the open view, and the weights are computed when asked for.
fit = "Fitted curves" if data.n_features == 1 else "Predicted vs true"
titles = {**VIEWS, "model": fit} if data.task == "regression" else VIEWS  # the model's view: what it predicts
in_views = {"model": (POINTS.url_name, runs.EPOCH_URL), "curves": (SCALE.url_name,)}  # their own controls
view, tab = widgets.views(replace(VIEW, format=titles.get), page.state, controls=in_views)
with tab:
    if view == "model":
        if data.task == "regression" and data.n_features == 1:
            frames, fits = runs.fit_panels(result)
            charts.show(
                st,
                figures.regression_figure,
                key="train.fig.fit",
                data=data,
                panels=fits,
                frame_labels=frames,
            )
        elif data.task == "regression":
            predicted = runs.prediction_panels(result)
            charts.show(
                st, figures.prediction_figure, key="train.fig.pred", y_true=data.y_test, panels=predicted
            )
        else:
            runs.boundary_view(page, result, data, POINTS)
            st.caption(runs.map_caption(data))
        st.markdown("**Metrics** (final weights, clean test set)")
        widgets.metrics_table(runs.metrics_rows(result, data))
    elif view == "curves":
        runs.curves_view(page, result, data, SCALE)
    else:
        groups = evaluate.weight_groups(data, experiment.data.imbalance)
        st.markdown(f"**Per-sample gradient weight: {groups.title}**")
        with st.spinner("Computing per-sample gradients…"):
            weights = runs.weight_panels(result)
        charts.show(
            st, figures.gradient_weight_figure, key="train.fig.weights",
            panels=weights, noisy=groups.second, clean_name=groups.first_name, noisy_name=groups.second_name,
        )  # fmt: skip
        st.caption(
            runs.WEIGHT_CAPTION
            + ("" if groups.second.any() else " Add label noise or imbalance to compare groups.")
        )
page.finish()
