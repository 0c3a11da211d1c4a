"""Neural collapse: NC1-NC4 of the penultimate features over training for the losses of the shared experiment,
the last epoch's class means against a simplex ETF, and minority collapse under class imbalance.

"Prevalence of neural collapse during the terminal phase of deep learning training" (Papyan, Han & Donoho,
2020); with MSE, Han, Papyan & Donoho (2022); minority collapse, Fang et al. (2021).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from lossviz.experiment import DataSpec, Experiment, OptimSpec
from lossviz.figures import collapse as figures
from lossviz.ui import charts, runs, widgets
from lossviz.ui import collapse as cached
from lossviz.ui import experiment_fields as xf
from lossviz.ui.fields import Field
from lossviz.ui.page import Page
from lossviz.ui.state import EXPERIMENT

DEFAULT_LOSSES = {
    "multiclass": ("cross_entropy", "squared_onehot", "label_smoothing", "focal"),
    "embedding": ("supcon",),  # an encoder: measured on its unit embeddings, with no classifier (no NC3, NC4)
}
CENTRES = {"samples": "mean of the samples (Papyan et al.)", "classes": "mean of the class means"}
CENTRE = Field(
    "centre",
    "Global mean μ_G",
    "radio",
    "samples",
    options=tuple(CENTRES),
    format=CENTRES.get,
    help="The same on balanced data. With imbalance, only the mean of the class means reads a simplex ETF of "
    "class means as an ETF.",
)
VIEWS = {
    "trajectories": "NC1–NC4 over training",
    "geometry": "Class means and the simplex ETF",
    "balance": "Minority collapse",
    "final": "Final values",
}
VIEW = Field("view", "View", "tabs", "trajectories", options=tuple(VIEWS), format=VIEWS.get)
CLASSIFIER = Field("classifier", "Draw the classifier rows", "toggle", True, help="NC3: w_k ∝ μ_k − μ_G.")


MINORITY_IMBALANCE = 10.0  # the minority-collapse preset's class 0 : class K-1 ratio


def load_demo(page: Page, imbalance: float | None = None) -> None:
    """A preset, trained: four well-separated blobs (every loss fits them), 400 epochs; the imbalance kept,
    or set (then the view opens on minority collapse)."""
    kept = float(page.state.store(EXPERIMENT).get(xf.IMBALANCE.key, 1.0))
    data = DataSpec("blobs", n=400, noise=0.5, n_classes=4, seed=1, imbalance=imbalance or kept)
    xf.load(page.state, Experiment(data, optim=OptimSpec(epochs=400)))
    if imbalance is not None:
        page.state.set(VIEW, "balance")
    page.will_train()


page = Page(
    "neural_collapse",
    "Neural collapse",
    "Late in training, the last-layer features of each class shrink onto their class mean (NC1), the centred "
    "means spread into a simplex equiangular tight frame (NC2), the classifier aligns with them (NC3) and "
    "predicts the nearest class mean (NC4). Trains on the shared experiment (same data and initial weights "
    "as Train & compare); try blobs with K = 4 (the sidebar's button), then raise the imbalance slider "
    "(sidebar, Data) to watch minority collapse. SupCon trains an encoder onto the sphere, not a classifier: "
    "its collapse is measured on the embeddings (Graf et al., 2021), with no classifier for NC3 and NC4.",
)
with st.sidebar:
    st.header("Neural collapse")
    st.button(
        "Blobs, K = 4, 400 epochs",
        key="neural_collapse.demo",
        on_click=load_demo,
        args=(page,),
        help="Four well-separated blobs (noise 0.5, data seed 1), 2 × 32 MLP, Adam, 400 epochs: every loss "
        "fits the training set, the terminal phase where collapse happens. Keeps the imbalance.",
        width="stretch",
    )
    st.button(
        f"The same, imbalanced {MINORITY_IMBALANCE:g}:1",
        key="neural_collapse.minority",
        on_click=load_demo,
        args=(page, MINORITY_IMBALANCE),
        help="Fang et al. (2021): with imbalance the rare classes collapse towards each other (minority "
        "collapse), breaking the simplex ETF's symmetry. Measured here: the rare classes' means move "
        "together (cosines far above −1/3); their classifier rows do not shrink at this ratio. Opens that "
        "view.",
        width="stretch",
    )
    centre, show_classifier = page.control(CENTRE), page.control(CLASSIFIER)
experiment, data = xf.sidebar(page, DEFAULT_LOSSES, extra_tasks=("embedding",))
if data.task == "regression":
    page.stop("Neural collapse needs a classification dataset; pick one in the sidebar.")
counts = np.bincount(data.y_train, minlength=data.n_classes)
if counts.min() < 2:
    page.stop(f"NC1 needs two training samples per class; class {int(counts.argmin())} has "
              f"{int(counts.min())}. Lower the imbalance or raise n.", "warning")  # fmt: skip
if not experiment.losses:
    page.stop("Pick at least one loss in the sidebar.")
trained = page.train_button()
bar, live = st.empty(), st.empty()
if not trained:
    bar.info("Press **Train** to train the selected losses, or the sidebar's blobs button.")
    runs.show_initial_boundaries(live, experiment, data)
    page.stop()
bar = bar.progress(0.0, text="Training (or loading the cached models)…")
result = runs.train_all(experiment, bar, runs.live_boundaries(live, experiment, data))
bar.empty()
live.empty()
runs.show_problems(result)
base, choices = experiment.base(), [result.choice(n) for n in result.names]
labels = {c.name: runs.run_label(c) for c in choices}
by_name = {c.name: c for c in choices}
st.caption(f"Models: {runs.describe(experiment)} · features of the {len(data.y_train)} training samples.")

found = page.per_loss(labels, lambda n: cached.trajectory(base, by_name[n], centre))
if not found:
    page.stop()
panels = [figures.CollapsePanel(n, labels[n], t.epochs, t.collapse) for n, t in found.items()]
k = data.n_classes


# One view at a time: a control's step redraws one figure, not three (see widgets.views).
view, tab = widgets.views(VIEW, page.state)
with tab:
    if view == "trajectories":
        charts.show(st, figures.trajectories_figure, key="nc.fig.trajectories", panels=panels)
        st.caption(
            "Measured at the run's parameter snapshots on the training split, with the labels the model was "
            "given. Σ_W: within-class covariance, Σ_B: between-class covariance, M: the centred class means, "
            "W: the classifier's rows. NC3 and NC4 from W need a linear head; other heads use their own "
            "argmax for NC4."
        )
    elif view in ("geometry", "balance"):
        geometries = {n: cached.geometry(base, by_name[n], centre) for n in found}
        shapes = [
            figures.GeometryPanel(
                n, labels[n], g.means, found[n].final.class_counts, g.etf, g.classifier, g.classifier_norms
            )
            for n, g in geometries.items()
        ]
    if view == "geometry":
        charts.show(
            st, figures.geometry_figure, key="nc.fig.geometry", panels=shapes, show_classifier=show_classifier
        )
        spread = min(g.explained for g in geometries.values())
        where = {2: "on their line", 3: "in their plane", 4: "in their 3-D span"}.get(
            k, f"on their first 3 principal axes ({spread:.0%} of their spread)"
        )
        st.caption(
            f"Centred class means μ_k − μ_G at the last snapshot, {where}, global mean at the origin. "
            "Grey: the simplex ETF (K unit vectors with pairwise cosine −1/(K−1)) rotated and scaled onto "
            "the means by orthogonal Procrustes: the gap from a coloured point to its grey vertex is what "
            "is left to collapse. Dotted: the classifier rows w_k on the same axes, scaled to the means' "
            "overall size (NC3 compares their directions)."
        )
    elif view == "balance":
        charts.show(st, figures.class_balance_figure, key="nc.fig.balance", panels=shapes)
        st.caption(
            f"Imbalance class 0 : class {k - 1} = {experiment.data.imbalance:g}:1 (the sidebar's slider; "
            "training counts under each class). On a simplex ETF every ratio is 1 and every cosine −1/(K−1). "
            "Minority collapse (Fang et al., 2021): with imbalance the rare classes' means move together "
            "(their cosines rise), and their classifier rows are reported to shrink, which the 10:1 preset "
            "does not show on this toy. Norms are measured from the chosen global mean; the mean of the "
            "samples sits near the majority class and shortens its vector, the mean of the class means "
            "weighs every class once."
        )
    elif view == "final":
        accuracy = [result.histories[n].final["train_acc"] for n in found]
        widgets.static_table(figures.final_table(panels=panels, accuracy=accuracy), decimals=4)
page.finish()
