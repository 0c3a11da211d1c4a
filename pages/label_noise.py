"""Label-noise study: design the noise (symmetric, pair flip, class map, a row-stochastic T, instance-
dependent), sweep noise rate x loss x seed in the background into the result store, and compare clean test
accuracy and ECE with seed bands, memorisation curves and clean against mislabelled gradient weight.

"Normalized Loss Functions for Deep Learning with Noisy Labels" (Ma et al., 2020); "Early-Learning
Regularization Prevents Memorization of Noisy Labels" (Liu et al., 2020); "Making Deep Neural Networks Robust
to Label Noise: a Loss Correction Approach" (Patrini et al., 2017).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import streamlit as st

from lossviz import data as datasets
from lossviz import losses, noise, presets
from lossviz.experiment import DataSpec
from lossviz.figures import noise as figures
from lossviz.store import default_path
from lossviz.ui import charts, runs, widgets
from lossviz.ui import noise as study_ui
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

SOURCES = tuple(name for name in datasets.DATASETS if name not in datasets.REGRESSION_DATASETS)
VARIABLE_K = ("blobs", "spirals", "gaussian_quantiles")
DEFAULT_LOSSES = presets.NOISE_STUDY_LOSSES
RATE_OPTIONS = tuple(f"{r / 10:g}" for r in range(10))  # "0" .. "0.9" (the URL carries them as text)
KIND_TITLES = {
    "symmetric": "symmetric (any other class)",
    "pair": "pair flip (k → k+1)",
    "asymmetric": "class map (k → k−1; digits: MNIST confusions)",
    "transition": "transition matrix T (edit below)",
    "instance": "instance-dependent (near the boundary)",
}
KIND_NOTES = {
    "symmetric": "Exactly round(r·N) labels move to a uniformly random other class.",
    "pair": "Exactly round(r·N) labels of class k become k + 1 (mod K).",
    "asymmetric": "Exactly round(r·N) labels follow the one-way map k → k − 1 (class 0 never flips), drawn "
    "from the source classes only; on digits the MNIST confusions 7→1, 2→7, 5↔6, 3→8.",
    "transition": "Each class's labels realise the row of (1 − r)·I + r·T exactly (counts rounded by "
    "largest remainder). With T's diagonal at 0, r is the flip rate.",
    "instance": "Exactly round(r·N) samples flip, drawn with chance ∝ exp(−3·d/median d), d = distance to "
    "the nearest sample of another class; each takes that neighbour's class, as an annotator confuses "
    "look-alikes.",
}
BACKEND_TITLES = {"processes": "worker processes (all cores)", "serial": "this server process"}

DATASET = Field(
    "dataset", "Dataset", "select", "blobs", options=SOURCES, format=lambda s: s.replace("_", " ")
)
N = Field("n", "Samples n", "int", 400, low=100, high=2000, step=50, help="Drawn before the 70/30 split.")
K = Field("K", "Classes K", "int", 3, low=2, high=10)
WIDTH = Field("width", "Width", "select_slider", 64, options=(16, 32, 64, 128, 256))
DEPTH = Field("depth", "Hidden layers", "int", 2, low=1, high=4)
EPOCHS = Field(
    "epochs", "Epochs (full batch)", "select_slider", 400, options=(50, 100, 200, 300, 400, 600, 800, 1000),
    help="Cross-entropy fits the clean labels first and memorises the flipped ones later: give it time.",
)  # fmt: skip
LR = Field("lr", "Learning rate (Adam)", "select_slider", 1e-2, options=(1e-3, 3e-3, 1e-2, 3e-2, 0.1))
KIND = Field("kind", "Noise kind", "select", "symmetric", options=noise.NOISE_KINDS, format=KIND_TITLES.get)
T = study_ui.MatrixField("T", "Transition matrix T", "number", study_ui.default_transition(3))
PREVIEW = Field("rate", "Preview at noise rate", "slider", 0.4, low=0.0, high=0.9, step=0.05)
RATES = Field(
    "rates", "Noise rates", "multiselect", ("0", "0.2", "0.4", "0.6"), options=RATE_OPTIONS,
    format=lambda r: f"{float(r):.0%}",
)  # fmt: skip
LOSSES = widgets.losses_field("multiclass", DEFAULT_LOSSES)
SEEDS = Field(
    "seeds", "Seeds", "int", 4, low=1, high=10,
    help="Seeds 0 … S−1: each draws new points, new flips and new initial weights, shared by every loss.",
)  # fmt: skip
BACKEND = Field(
    "backend", "Run on", "radio", "processes", options=tuple(BACKEND_TITLES), format=BACKEND_TITLES.get
)
# Each section shows one view at a time, so a step redraws one chart (see widgets.views).
PREVIEWS = {"transition": "Realised transition", "points": "Training labels"}
PREVIEW_VIEW = Field("preview", "Preview", "tabs", "transition", options=tuple(PREVIEWS), format=PREVIEWS.get)
VIEWS = {
    "accuracy": "Accuracy",
    "gain": "Gain over cross-entropy",  # offered when cross-entropy is swept with another loss
    "ece": "Calibration (ECE)",
    "heatmaps": "Heat maps",
}
VIEW = Field("view", "View", "tabs", "accuracy", options=tuple(VIEWS), format=VIEWS.get)
FLIPS = {"memorisation": "Memorisation", "weights": "Gradient weight"}
FLIPS_VIEW = Field("flips", "Flipped labels", "tabs", "memorisation", options=tuple(FLIPS), format=FLIPS.get)

page = Page(
    "noise",
    "Label-noise study",
    "How each loss copes with wrong training labels. Design the noise, sweep noise rate × loss × seed in the "
    "background (results go to the result store: a widened sweep or a restarted server reuses every finished "
    "run, and runs computed offline with `python -m lossviz sweep` show up too), then compare clean test "
    "accuracy and calibration with seed bands, and watch what the models do with the flipped samples: fit "
    "their true class, memorise the wrong label, or pull on the weights.",
)

# ----------------------------------------------------------------------------------------------- controls
with st.sidebar:
    st.header("Label-noise study")
    source = page.control(DATASET)
    toy = datasets.is_toy(source)
    n = int(page.control(N)) if toy else None
    k_chosen = int(page.control(K)) if source in VARIABLE_K else None
    width, depth = int(page.control(WIDTH)), int(page.control(DEPTH))
    epochs, lr = int(page.control(EPOCHS)), float(page.control(LR))
    st.subheader("Sweep")
    rates = tuple(sorted(float(r) for r in page.control(RATES)))
    names = list(page.control(LOSSES))
    selection = widgets.loss_settings(names, page.state)
    seeds = int(page.control(SEEDS))
    backend = page.control(BACKEND)

try:
    clean = runs.dataset(DataSpec(source=source, n=n, n_classes=k_chosen))
except ValueError as err:
    page.stop(f"Cannot use this data: {err}", "error")
k = clean.n_classes

st.subheader("1 · The noise")
left, right = st.columns([1.1, 2.2])
with left:
    kind = page.control(KIND)
    st.caption(KIND_NOTES[kind])
    transition: noise.Transition = ()
    if kind == "transition":
        transition = study_ui.matrix_input(page.state, T, k)
        st.caption("Fill T with:")
        templates = {
            "uniform": noise.symmetric_transition(k, 1.0),
            "cyclic": noise.pair_transition(k, 1.0),
            "k → k−1": noise.class_map_transition(k, noise.asymmetric_map(source, k)),
        }
        for column, (label, matrix) in zip(st.columns(len(templates)), templates.items(), strict=True):
            column.button(
                label, key=f"noise.fill.{label}", on_click=study_ui.fill_matrix, args=(page.state, T, matrix)
            )
        try:
            noise.check_transition(transition, k)
        except ValueError as err:
            page.stop(f"T cannot be used: {err}", "error")
    preview_rate = float(page.control(PREVIEW))
try:
    base = study_ui.study_experiment(
        source=source, n=n, n_classes=k_chosen, kind=kind, transition=transition, width=width, depth=depth,
        epochs=epochs, lr=lr,
    )  # fmt: skip
except ValueError as err:
    page.stop(f"This study cannot be set up: {err}", "error")
preview_view, preview_tab = widgets.views(PREVIEW_VIEW, page.state, container=right)
with preview_tab:
    try:
        preview = runs.dataset(replace(base.data, label_noise=preview_rate))
    except ValueError as err:  # e.g. a class map asked for more flips than its source classes hold
        st.error(f"This noise cannot be applied at {preview_rate:.0%}: {err}")
    else:
        if preview_view == "transition":
            realised = noise.realised_transition(preview.y_train_clean, preview.y_train, k)
            charts.show(
                st, figures.transition_figure, key="noise.fig.transition",
                matrix=realised, class_names=preview.class_names, title="Realised transition",
                subtitle=f"{preview.noisy_mask.sum()} of {len(preview.y_train)} training labels flipped "
                f"({preview.noisy_mask.mean():.0%}), seed 0",
            )  # fmt: skip
        else:
            charts.show(
                st,
                figures.noisy_points_figure,
                key="noise.fig.points",
                data=preview,
                xy=preview.view_2d(preview.X_train),
                title=f"Training labels at {preview_rate:.0%} noise",
            )

# ----------------------------------------------------------------------------------------------- the sweep
st.subheader("2 · The sweep")
if not names:
    page.stop("Pick at least one loss in the sidebar.")
if not rates:
    page.stop("Pick at least one noise rate in the sidebar.")
study = study_ui.Study(base, study_ui.loss_choices(selection), rates, tuple(range(seeds)))
try:
    jobs = study.jobs()
except ValueError as err:
    page.stop(f"This sweep cannot be built: {err}", "error")
key = study_ui.sweep_key(jobs)
store_path = str(default_path())
status = study_ui.statuses(store_path, jobs)
counts = Counter(status.values())
done = tuple(sorted(d for d, s in status.items() if s == "done"))
run = study_ui.find(key)
other = study_ui.active()
missing = len(jobs) - len(done)
st.markdown(
    f"**{len(jobs)} jobs**: {len(rates)} rates × {len(names)} losses × {seeds} seeds; "
    f"**{len(done)} in the store**" + (f", {counts['failed']} failed" if counts["failed"] else "") + "."
)
estimate = study_ui.estimate_seconds(missing, len(clean.y_train), epochs, backend)
timing = (
    f"The {missing} missing jobs take roughly {estimate:.0f} s on a free machine ({BACKEND_TITLES[backend]}; "
    "measured: 0.9 CPU-seconds per job at the defaults, so their 80 jobs need about 40 s of two free cores). "
    if missing
    else ""
)
st.caption(
    f"Store: `{store_path}` (LOSSVIZ_STORE moves it). {timing}Close the tab or switch pages: the sweep goes "
    "on, and this page finds it again."
)
if run is not None and run.running:
    study_ui.progress_view(key)
    st.caption("The results below are redrawn when the sweep ends.")
else:
    if other is not None:
        st.info("Another sweep (other settings) is running on this server; it is shown here until it ends.")
        study_ui.progress_view(other.key)
    if run is not None and run.state == "error":
        st.error(f"The last sweep stopped: {run.message}")
    elif run is not None and run.state == "cancelled":
        st.info(f"Cancelled: {run.done} of {run.total} jobs are in the store; Resume computes the rest.")
    if missing:
        label = "Run sweep" if not done else f"Resume ({missing} to compute)"
        if st.button(label, type="primary", key="noise.run", disabled=other is not None):
            try:
                study_ui.start(jobs, store_path, backend)
            except ValueError as err:
                st.error(str(err))
            else:
                st.rerun()
    else:
        st.success("Every job of this sweep is in the store.")
if counts["failed"]:
    with st.expander(f"{counts['failed']} jobs failed"):
        by_digest = {j.digest: j for j in jobs}
        for digest, message in study_ui.failures(store_path, jobs).items():
            name, rate, seed = study_ui.job_axes(by_digest[digest])
            st.markdown(f"- **{losses.get(name).title}**, rate {rate:.0%}, seed {seed}: {message}")
with st.expander("Run this sweep offline (command line or Ray)"):
    st.caption(
        "Save each spec as a file and run `python -m lossviz sweep SPEC.json` (add `--backend ray` for a "
        "cluster) with the same store; the page shows the results as they arrive (press R to refresh)."
    )
    for sweep in study.sweeps():
        st.code(json.dumps(sweep.to_dict(), indent=1), language="json")

if not done:
    running = run is not None and run.running
    page.stop(
        "No results yet: they are drawn when the sweep ends." if running else "No results yet: run the sweep."
    )

# ----------------------------------------------------------------------------------------------- results
st.subheader("3 · Clean test accuracy and calibration against the noise rate")
found = study_ui.summaries(store_path, done, tuple(jobs))
labels = {c.name: runs.run_label(c) for c in study.losses}  # legends: the loss with its hyperparameters
titles = {c.name: study_ui.panel_title(c) for c in study.losses}  # small multiples: two lines
short = {c.name: losses.get(c.name).title for c in study.losses}  # heat-map rows
accuracy = noise.rate_bands(study_ui.metric_records(jobs, found, "test_acc"))
swept = sorted({r for b in accuracy.values() for r in b.rates})
band_note = "mean over seeds; band: its 95% t interval, mean ± t·s/√n (none with one seed)"
reference = "cross_entropy"
paired = reference in labels and len(labels) > 1
view, tab = widgets.views(replace(VIEW, options=tuple(v for v in VIEWS if v != "gain" or paired)), page.state)
with tab:
    if view == "accuracy":
        charts.show(
            st, figures.rate_curves_figure, key="noise.fig.accuracy",
            panels=study_ui.band_panels(accuracy, labels), title="Clean test accuracy",
            y_title="test accuracy", subtitle=band_note, bounds=(0.0, 1.0),
        )  # fmt: skip
    elif view == "gain":
        gains = noise.rate_bands(study_ui.gain_records(jobs, found, "test_acc", reference))
        others = {n: label for n, label in labels.items() if n != reference}
        if not gains:
            st.info(f"No seed has finished runs of both {labels[reference]} and another loss to pair.")
        else:
            charts.show(
                st, figures.rate_curves_figure, key="noise.fig.gain",
                panels=study_ui.band_panels(gains, others),
                title=f"Test accuracy gain over {labels[reference]}, paired by seed",
                y_title="accuracy − cross-entropy's", subtitle="same seed = same points, flips and initial "
                "weights; 95% t interval of the paired differences",
            )  # fmt: skip
            ahead = study_ui.ahead_of(gains, others)
            if ahead:
                st.success("Ahead of cross-entropy (paired 95% interval above 0): " + "; ".join(ahead) + ".")
            else:
                st.info("No loss is ahead of cross-entropy with a paired 95% interval above 0 at any rate.")
            st.caption(
                "Measured on the defaults (80 jobs): MAE and ELR lead cross-entropy at 40% and 60% noise, "
                "GCE at 20–40%, all with paired intervals above 0. The unpaired bands of the accuracy view "
                "overlap more because each seed draws new blob centres (seed 0's clusters overlap: clean "
                "accuracy 0.81 against 0.97–0.98); with 3 seeds (t = 4.3 instead of 3.2) fewer of the paired "
                "intervals clear 0."
            )
    elif view == "ece":
        calibration = noise.rate_bands(study_ui.metric_records(jobs, found, "ece"))
        charts.show(
            st, figures.rate_curves_figure, key="noise.fig.ece",
            panels=study_ui.band_panels(calibration, labels), title="Expected calibration error (15 bins)",
            y_title="test ECE (lower is better)", subtitle=band_note, bounds=(0.0, 1.0),
        )  # fmt: skip
    else:
        calibration = noise.rate_bands(study_ui.metric_records(jobs, found, "ece"))
        order = [name for name in labels if name in accuracy]
        left, right = st.columns(2)
        charts.show(
            left, figures.rate_heatmap_figure, key="noise.fig.heat_accuracy",
            labels=[short[n] for n in order], rates=np.asarray(swept),
            values=study_ui.heatmap_values(accuracy, order, swept), title="Mean clean test accuracy",
            colorbar_title="accuracy",
        )  # fmt: skip
        charts.show(
            right, figures.rate_heatmap_figure, key="noise.fig.heat_ece",
            labels=[short[n] for n in order], rates=np.asarray(swept),
            values=study_ui.heatmap_values(calibration, order, swept), title="Mean test ECE",
            colorbar_title="ECE", higher_is_better=False,
        )  # fmt: skip

st.subheader("4 · What the models do with the flipped labels")
noisy_rates = tuple(f"{r:g}" for r in swept if r > 0)
if not noisy_rates:
    page.stop("Add a noise rate above 0 to see memorisation and gradient weights.")
at_default = "0.4" if "0.4" in noisy_rates else noisy_rates[-1]
at = float(page.control(Field("at", "At noise rate", "select", at_default, options=noisy_rates,
                              format=lambda r: f"{float(r):.0%}")))  # fmt: skip
by_loss: dict[str, list[str]] = {}
for job in jobs:
    name, rate, _ = study_ui.job_axes(job)
    if np.isclose(rate, at) and job.digest in done:
        by_loss.setdefault(name, []).append(job.digest)
views = {name: study_ui.training_views(store_path, tuple(d)) for name, d in by_loss.items()}
views = {name: v for name, v in views.items() if v is not None}
if not views:
    page.stop("No finished run at this rate holds per-sample arrays.")
shown = [name for name in labels if name in views]
seed_counts = {views[n][2] for n in shown}
pooled = f"samples of {'/'.join(map(str, sorted(seed_counts)))} seeds pooled"
flips_view, flips_tab = widgets.views(FLIPS_VIEW, page.state)
with flips_tab:
    if flips_view == "memorisation":
        charts.show(
            st, figures.memorisation_figure, key="noise.fig.memorisation",
            panels=[figures.MemorisationPanel(n, titles[n], views[n][0]) for n in shown],
            title=f"Memorisation at {at:.0%} noise (Liu et al. 2020, Fig. 1)",
            subtitle=f"predictions on the training set at {study_ui.SNAPSHOTS} snapshots; {pooled}",
        )  # fmt: skip
        st.caption(
            "Cross-entropy first fits the clean structure (mislabelled samples predicted as their true "
            "class: early learning), then memorises the wrong labels; robust losses keep predicting the true "
            "class longer."
        )
    else:
        charts.show(
            st, figures.gradient_weight_figure, key="noise.fig.weights",
            panels=[figures.WeightPanel(n, titles[n], views[n][1]) for n in shown],
            title=f"Per-sample gradient weight |∂L/∂z|, clean against mislabelled, at {at:.0%} noise",
            subtitle=f"median and quartiles over the training samples; {pooled}; each panel on its own scale",
        )  # fmt: skip
        st.caption(
            "How hard each sample pulls on the model, against the label it was given. Cross-entropy's pull "
            "grows with the loss, so mislabelled samples pull hardest until they are memorised; bounded "
            "losses (MAE, GCE) give confidently wrong samples little weight."
            + (
                " ELR's weight is measured with its running target replaced by the current prediction (the "
                "store keeps no training-time target), so its panel shows the regulariser at that target, "
                "not training."
                if "elr" in shown
                else ""
            )
        )
page.finish()
