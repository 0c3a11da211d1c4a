"""Train & compare: up to six losses trained on identical data from identical initial weights; their decision
boundaries over training, curves, calibration metrics and per-sample gradient weights.

Presets reproduce claims of "Normalized Loss Functions for Deep Learning with Noisy Labels", LDAM/VS-loss and
robust regression. Once trained, the page retrains (from the cache) whenever a setting changes, so the view
always matches the controls and the URL.
"""

from __future__ import annotations

import streamlit as st

from lossviz import evaluate
from lossviz.figures import train as figures
from lossviz.presets import PRESETS
from lossviz.ui import experiment_fields as xf
from lossviz.ui import runs, widgets
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEFAULT_LOSSES = {
    "multiclass": ("cross_entropy", "gce", "apl_nce_rce"),
    "binary": (),
    "regression": ("squared", "huber", "cauchy"),
}
TRAINED = Field("trained", "", "toggle", False)  # in the URL: a shared link trains and shows the results
POINTS = Field("points", "Show training points", "toggle", True)
SCALE = Field(
    "loss_scale",
    "Loss axis",
    "select",
    "auto",
    options=figures.LOSS_SCALES,
    help="'auto' switches to a per-loss normalised or signed-log axis when one loss would flatten "
    "the others (e.g. LDR-KL going negative).",
)

page = Page(
    "train",
    "Train & compare",
    "Pick data, a model and up to six losses, then press **Train**: every loss "
    "trains on the same data from the same initial weights. Or load a preset: one click sets everything "
    "up and trains.",
)
state = page.state


def load_preset(key: str) -> None:
    """on_click of a preset button: every control takes the preset's value, and the page trains."""
    experiment = PRESETS[key].experiment
    xf.load(state, experiment)
    widgets.load_losses(state, experiment.losses)
    state.set(TRAINED, True)


st.markdown("**Presets** reproduce claims from the papers: one click loads every setting and trains.")
columns = st.columns(2)
for i, (key, preset) in enumerate(PRESETS.items()):
    columns[i % 2].button(
        preset.title,
        key=f"train.preset.{key}",
        help=preset.claim,
        on_click=load_preset,
        args=(key,),
        width="stretch",
    )

with st.sidebar:
    st.header("Train & compare")
experiment, data = xf.sidebar(page, DEFAULT_LOSSES)
selection = experiment.losses

if st.button("Train", type="primary", disabled=not selection, key="train.button"):
    state.set(TRAINED, True)
trained = bool(state.get(TRAINED))
state.record(TRAINED, trained)
if not selection:
    page.stop("Pick at least one loss in the sidebar.")
if not trained:
    page.stop("Press **Train** to train the selected losses, or click a preset above.")
bar = st.progress(0.0, text="Training…")
result = runs.train_all(experiment, bar)
st.session_state[runs.SHOWN] = result  # what this page shows (tests and other pages read it)
bar.empty()
st.caption(f"Run: {runs.describe(experiment)}" + (f" · Data: {'; '.join(data.notes)}." if data.notes else ""))
runs.show_problems(result)
choices = [result.choice(n) for n in result.names]
if not choices:
    page.stop()
base = experiment.base()
epochs = [result.histories[c.name].snapshot_epochs for c in choices]

if data.task == "regression" and data.n_features == 1:
    st.subheader("Fitted curves over training")
    epochs, fits = evaluate.frames_by_epoch(epochs, [runs.snapshot_fits(base, c) for c in choices])
    panels = [figures.FitPanel(c.name, runs.run_label(c), f) for c, f in zip(choices, fits, strict=True)]
    st.plotly_chart(
        figures.regression_figure(data=data, panels=panels, frame_labels=[f"epoch {e}" for e in epochs]),
        key="train.fig.fit",
    )
elif data.task == "regression":
    st.subheader("Predicted vs true (test set)")
    panels = [figures.PredictionPanel(c.name, runs.run_label(c), runs.predictions(base, c)) for c in choices]
    st.plotly_chart(figures.prediction_figure(y_true=data.y_test, panels=panels), key="train.fig.pred")
else:
    st.subheader("Decision boundaries over training")
    with st.spinner("Evaluating the snapshots on the map grid…"):
        epochs, maps = evaluate.frames_by_epoch(epochs, [runs.snapshot_maps(base, c) for c in choices])
    panels = [
        figures.BoundaryPanel(c.name, runs.panel_title(c, result.histories[c.name]), m)
        for c, m in zip(choices, maps, strict=True)
    ]
    show_points = page.control(POINTS)
    st.plotly_chart(
        figures.boundary_figure(
            data=data, panels=panels, frame_labels=[f"epoch {e}" for e in epochs], show_points=show_points
        ),
        key="train.fig.boundaries",
    )
    st.caption(runs.map_caption(data))

st.subheader("Training curves")
scale = page.control(SCALE)
curves = [figures.RunPanel(result.histories[c.name], runs.run_label(c)) for c in choices]
st.plotly_chart(
    figures.training_curves_figure(panels=curves, task=data.task, loss_scale=scale), key="train.fig.curves"
)

st.subheader("Metrics (final weights, clean test set)")
rows = [
    figures.MetricsRow(
        runs.run_label(c),
        evaluate.test_scores(data, runs.predictions(base, c)),
        result.histories[c.name].seconds,
    )
    for c in choices
]
widgets.metrics_dataframe(figures.metrics_table(runs=rows, task=data.task))

groups = evaluate.weight_groups(data, experiment.data.imbalance)
st.subheader(f"Per-sample gradient weight: {groups.title}")
with st.spinner("Computing per-sample gradients…"):
    weights = [
        figures.WeightPanel(c.name, runs.run_label(c), runs.gradient_weights(base, c)) for c in choices
    ]
st.plotly_chart(
    figures.gradient_weight_figure(
        panels=weights, noisy=groups.second, clean_name=groups.first_name, noisy_name=groups.second_name
    ),
    key="train.fig.weights",
)
st.caption(
    runs.WEIGHT_CAPTION + ("" if groups.second.any() else " Add label noise or imbalance to compare groups.")
)
page.finish()
