"""Train & Compare: train up to six losses on identical data from identical initial weights and compare their
decision boundaries over training, curves, calibration metrics and per-sample gradient weights.

Presets reproduce claims of "Normalized Loss Functions for Deep Learning with Noisy Labels", LDAM/VS-loss and
robust regression. The settings live in the URL; results stay in the session until the next Train.
"""

from __future__ import annotations

import streamlit as st

from lossviz.figures import train as figures
from lossviz.ui import train as ui
from lossviz.ui.state import PageState

st.title("Train & compare")
st.caption(
    "Pick data, a model and up to six losses, then press **Train**: every loss trains on the same data from "
    "the same initial weights. Or load a preset: one click sets everything up and trains."
)
state = PageState(ui.PAGE)

st.markdown("**Presets** reproduce claims from the papers: one click loads every setting and trains.")
preset_columns = st.columns(2)
for i, (key, preset) in enumerate(ui.presets().items()):
    preset_columns[i % 2].button(
        preset.name, key=f"train.preset.{key}", help=preset.description, on_click=ui.load_preset, args=(key,),
        width="stretch",
    )  # fmt: skip

with st.sidebar:
    st.header("Train & compare")
    st.subheader("Data")
    data_settings = ui.data_controls(state)
    data = None
    if data_settings is not None:
        try:
            data = ui.dataset(data_settings)
        except ValueError as err:
            st.error(f"Cannot use this data: {err}")
        else:
            st.caption(ui.data_summary(data))
    if data is not None:
        st.subheader("Model")
        model = ui.model_controls(state, data)
        st.subheader("Optimiser")
        optim = ui.optimizer_controls(state)
        st.subheader("Losses")
        selection = ui.loss_controls(state, data)

if data is None:
    result = st.session_state.get(ui.LAST_RESULT)
    st.info("Fix the data settings in the sidebar to train." if result is None else "Showing the last run.")
    settings = None
else:
    settings = ui.settings_from(data_settings, model, optim, selection)
    st.session_state[ui.CURRENT] = settings
    pending = st.session_state.pop(ui.PENDING, None)
    pressed = st.button("Train", type="primary", disabled=not selection, key="train.button")
    if not selection:
        st.info("Pick at least one loss in the sidebar.")
    elif pressed or pending:
        bar = st.progress(0.0, text="Starting…")
        st.session_state[ui.LAST_RESULT] = ui.train_all(settings, bar)
        bar.empty()

result: ui.TrainResult | None = st.session_state.get(ui.LAST_RESULT)
if result is None:
    if settings is not None and selection:
        st.info("Press **Train** to train the selected losses, or click a preset above.")
    state.sync()
    st.stop()

if settings is not None and result.settings != settings:
    st.info("Settings changed — press **Train** to retrain. Below: the results of the last run.", icon="ℹ️")
run = result.settings
st.caption(f"Last run: {ui.describe(run)}")
for name, message in result.errors.items():
    st.error(f"**{ui.run_label(name)}** could not train: {message}")
histories = [result.histories[name] for name in result.names]
for history in histories:
    if history.diverged:
        st.warning(
            f"**{ui.run_label(history.loss_name)}** diverged: {history.message}. "
            "Its views show the last finite weights.",
            icon="⚠️",
        )
if not histories:
    state.sync()
    st.stop()

trained = ui.dataset(run.data)
params = dict(run.losses)
names = result.names
labels = [ui.run_label(name, params[name]) for name in names]
runs = list(zip(names, histories, strict=True))  # (loss, History): derived views reuse the stored run
if trained.notes:
    st.caption("Data: " + "; ".join(trained.notes) + ".")

if trained.task == "regression" and trained.n_features == 1:
    st.subheader("Fitted curves over training")
    with st.spinner("Evaluating the snapshots…"):
        curves = [ui.snapshot_curves(run, n, params[n], _history=h) for n, h in runs]
    epochs, frames = ui.frames_by_epoch([h.snapshot_epochs for h in histories], curves)
    st.plotly_chart(
        figures.regression_figure(trained, frames, [f"epoch {e}" for e in epochs]), key="train.fig.fit"
    )
    st.caption("Press ▶ Play or drag the epoch slider to watch the fits move; outliers are marked with an X.")
elif trained.task == "regression":
    st.subheader("Predicted vs true (test set)")
    predictions = [ui.final_predictions(run, n, params[n], _history=h) for n, h in runs]
    st.plotly_chart(
        figures.prediction_figure(trained.y_test, predictions, labels, names), key="train.fig.pred"
    )
else:
    st.subheader("Decision boundaries over training")
    with st.spinner("Evaluating the snapshots on the map grid…"):
        surfaces = [ui.snapshot_surfaces(run, n, params[n], _history=h) for n, h in runs]
    epochs, frames = ui.frames_by_epoch([h.snapshot_epochs for h in histories], surfaces)
    titles = [ui.panel_title(n, params[n], f"test acc {h.final['test_acc']:.0%}") for n, h in runs]
    points = st.toggle("Show training points", value=True, key="train.points")
    st.plotly_chart(
        figures.boundary_figure(
            trained, frames, titles, names, [f"epoch {e}" for e in epochs], show_points=points
        ),
        key="train.fig.boundaries",
    )
    st.caption(ui.map_caption(trained))

st.subheader("Training curves")
st.plotly_chart(figures.training_curves_figure(histories, labels, trained.task), key="train.fig.curves")
if trained.noisy_mask.any() and trained.task != "regression":
    st.caption(
        "Memorisation: accuracy on the flipped training samples against their wrong labels. It rises when a "
        "loss fits the noise, usually after the clean test accuracy has peaked (early learning, then "
        "memorisation)."
    )

st.subheader("Metrics (final weights, clean test set)")
with st.spinner("Scoring…"):
    scores = [ui.test_metrics(trained, ui.final_predictions(run, n, params[n], _history=h)) for n, h in runs]
rows = figures.metrics_table(labels, scores, [h.seconds for h in histories], trained.task)
ui.show_metrics(rows)

mask, first, second, groups = ui.weight_groups(trained, run)
st.subheader(f"Per-sample gradient weight: {groups}")
with st.spinner("Computing per-sample gradients…"):
    weights = [ui.gradient_weights(run, n, params[n], _history=h) for n, h in runs]
st.plotly_chart(
    figures.gradient_weight_figure(
        weights,
        mask,
        [ui.panel_title(n, params[n]) for n in names],
        names,
        clean_name=first,
        noisy_name=second,
    ),
    key="train.fig.weights",
)
st.caption(
    "|∂L/∂z| per training sample at the final weights, against the label the model was given: how hard each "
    "sample pulls on the model. Compare the mean weights in each panel's subtitle: an unbounded loss "
    "(squared error, cross-entropy) lets noisy samples pull hardest; bounded or redescending losses cap "
    "their pull. With imbalance, the ratio says how much harder a loss pulls on the minority class."
    + ("" if mask.any() else " Add label noise or imbalance to compare two groups of samples.")
)

state.sync()
