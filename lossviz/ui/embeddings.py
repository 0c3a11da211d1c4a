"""The Embeddings page's pieces: the embedding part of the experiment (dimension, positives, views) joined to
the shared controls, its presets, cached views of the trained runs (test embeddings at every snapshot, pair
cosines, retrieval metrics) and the fragments that redraw one view when its own slider moves. The page shows
one view at a time (widgets.views), which keeps the settings of the closed views in the URL.

The analytic views (InfoNCE's weights over negatives, the (s_n, s_p) plane, margin wedges) need no training:
their math is in lossviz.contrastive, their figures in lossviz.figures.embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import streamlit as st

from lossviz import contrastive, evaluate, losses, metrics, train
from lossviz.data import MAX_AUGMENT
from lossviz.experiment import DataSpec, Experiment, LossChoice, ModelSpec
from lossviz.figures import embeddings as figures
from lossviz.presets import Preset
from lossviz.results import Dataset
from lossviz.ui import charts, runs, widgets
from lossviz.ui import experiment_fields as xf
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

D, M = DataSpec(), ModelSpec()
DIM = Field(
    "dim",
    "Embedding dimension",
    "radio",
    M.embedding_dim,
    options=(2, 3),
    format={2: "2: circle S¹", 3: "3: sphere S²"}.get,
    help="The encoder's output is normalised onto the unit circle (2) or sphere (3).",
)
POSITIVES = Field(
    "positives",
    "Positives",
    "radio",
    D.positives,
    options=("class", "instance"),
    format={"class": "same class (supervised)", "instance": "same instance (self-supervised)"}.get,
    help="Which views are pulled together: every view of the same label (SupCon), or only the views of one "
    "instance (SimCLR); then every other sample, of any class, is a negative.",
)
AUGMENT = Field(
    "augment",
    "Augmentation strength",
    "slider",
    D.augment,
    low=0.0,
    high=MAX_AUGMENT,
    step=0.1,
    help="1 = up to ±15° rotation, ±10% scale and noise σ 0.1 on points (±1 pixel shifts on digits); 0 = "
    "identical views.",
)
VIEWS = Field("views", "Views per instance", "int", D.views, low=1, high=8, help="Augmented views per step.")
EPOCH_URL = "epoch"  # the sphere view's epoch slider, by its URL name (its options come from the runs)
EPOCH_CAPTION = "epoch {epoch} · nearest-class-mean accuracy {acc:.0%}"
SIMILARITIES = np.linspace(-0.975, 0.975, 40)  # the negatives of the temperature view: 40 evenly spread
RING = 2 * np.pi * np.arange(1, 24) / 24  # and 23 negatives around the circle, 15° apart, the anchor at 0
TAU_GRID = np.logspace(-2, 0, 61)


def sidebar(page: Page, defaults: tuple[str, ...]) -> tuple[Experiment, Dataset]:
    """The shared data, model and optimiser controls, the embedding controls and the embedding-loss picker."""
    state = page.state
    with st.sidebar:
        data_spec, data = xf.data_section(page)
        st.subheader("Embedding")
        dim, positives, augment, views = (page.control(f) for f in (DIM, POSITIVES, AUGMENT, VIEWS))
        st.subheader("Model")
        model_spec = replace(xf.model_controls(state, data.n_features, data.name), embedding_dim=int(dim))
        st.subheader("Optimiser")
        optim_spec = xf.optim_controls(state)
        st.subheader("Losses")
        names = widgets.loss_picker("embedding", state, defaults, label="Embedding losses")
        selection = widgets.loss_settings(names[: runs.MAX_LOSSES], state)
    if data.task == "regression":
        page.stop("Embedding losses need class labels: pick a classification dataset in the sidebar.")
    if len(names) > runs.MAX_LOSSES:
        st.warning(f"{len(names)} losses picked; only the first {runs.MAX_LOSSES} are trained: remove some.")
    try:
        data_spec = replace(data_spec, views=int(views), augment=float(augment), positives=positives)
    except ValueError as err:
        page.stop(f"Cannot train on these views: {err}.", "error")
    return xf.with_losses(Experiment(data_spec, model_spec, optim_spec), selection), data


def epoch_field(epochs: Iterable[int]) -> Field:
    """The sphere view's epoch slider over the snapshots' epochs, the last one by default."""
    options = tuple(epochs)
    return Field(EPOCH_URL, "Epoch", "select_slider", options[-1], options=options)


def preset_buttons(page: Page, presets: Mapping[str, Preset], on_load: Callable[[], None]) -> None:
    """A button per preset; a click loads its data, model, optimiser, embedding settings and losses."""

    def on_click(key: str) -> None:
        experiment = presets[key].experiment
        xf.load(page.state, experiment)
        d = experiment.data
        values = (experiment.model.embedding_dim, d.positives, d.augment, d.views)
        for field, value in zip((DIM, POSITIVES, AUGMENT, VIEWS), values, strict=True):
            page.state.set(field, value)
        store = page.state.store()
        store["losses.embedding"] = tuple(c.name for c in experiment.losses)
        for choice in experiment.losses:
            store.update({f"{choice.name}.{param}": value for param, value in choice.params})
        on_load()

    st.markdown("**Presets** test claims from the papers: one click loads every setting and trains.")
    columns = st.columns(len(presets))
    for column, (key, preset) in zip(columns, presets.items(), strict=True):
        column.button(
            preset.title,
            key=f"{page.state.page}.preset.{key}",
            help=preset.claim,
            on_click=on_click,
            args=(key,),
            width="stretch",
        )


def live_spheres(placeholder: Any, experiment: Experiment) -> runs.LiveView:
    """Each loss's held-out embeddings at its newest snapshot, drawn while training runs: once a second, since
    each redraw takes CPU from the training (more often made the default run 7.3 s -> 8.7 s, measured with
    benchmarks/browser.py) and a sphere's WebGL scene takes most of a second to draw."""
    base = experiment.base()
    data = runs.dataset(base.data)

    def panel(name: str, epoch: int, parameters: dict[str, np.ndarray]) -> figures.SpherePanel:
        z = train.embed(runs.initial_model(base, name), data.X_test, parameters).astype(np.float32)
        return figures.SpherePanel(name, runs.live_title(name, epoch), z, data.y_test)

    return runs.LiveView(placeholder, panel, lambda panels: figures.sphere_figure(panels=panels), every=1.0)


# ----------------------------------------------------------------------------- cached views of a trained run


@st.cache_data(max_entries=96, show_spinner=False)
def snapshot_embeddings(base: Experiment, choice: LossChoice) -> list[np.ndarray]:
    """The test split's unit embeddings at every snapshot of one loss's run: (N, D) each."""
    model, data = runs.initial_model(base, choice.name), runs.dataset(base.data)
    h = runs.history(base, choice)
    return [train.embed(model, data.X_test, s).astype(np.float32) for s in h.snapshots]


@st.cache_data(max_entries=96, show_spinner=False)
def final_embeddings(base: Experiment, choice: LossChoice) -> np.ndarray:
    """The test split's unit embeddings under the final (last finite) weights."""
    model, data = runs.initial_model(base, choice.name), runs.dataset(base.data)
    return train.embed(model, data.X_test, runs.history(base, choice).final_state)


def _pair_cosines(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cosines of same-class pairs, of different-class pairs), each pair once."""
    i, j = np.triu_indices(len(y), k=1)
    cos = np.einsum("pd,pd->p", z[i], z[j])
    same = y[i] == y[j]
    return cos[same], cos[~same]


@st.cache_data(max_entries=96, show_spinner=False)
def similarity_panel(base: Experiment, choice: LossChoice) -> figures.SimilarityPanel:
    """Positive-pair (same class) and negative-pair cosines of the test embeddings."""
    positive, negative = _pair_cosines(final_embeddings(base, choice), runs.dataset(base.data).y_test)
    return figures.SimilarityPanel(choice.name, runs.run_label(choice), positive, negative)


@st.cache_data(max_entries=96, show_spinner=False)
def retrieval_row(base: Experiment, choice: LossChoice) -> dict[str, Any]:
    """Held-out retrieval and geometry of one run: recall@1/5, mAP@R, NCM accuracy, uniformity, tolerance."""
    z, y = final_embeddings(base, choice), runs.dataset(base.data).y_test
    h = runs.history(base, choice)
    tau = dict(choice.params).get("temperature") if choice.name in contrastive.SOFTMAX_FAMILY else None
    return {
        "loss": runs.run_label(choice),
        "recall@1": metrics.recall_at_k(z, y, 1),
        "recall@5": metrics.recall_at_k(z, y, 5),
        "mAP@R": metrics.map_at_r(z, y),
        "NCM accuracy": float(h.test_acc[-1]),
        "L_uniform": float(h.uniformity[-1]),
        "L_align": float(h.alignment[-1]),
        "tolerance": float(_pair_cosines(z, y)[0].mean()),
        "own-class push": contrastive.same_class_push(z, y, tau) if tau else None,
    }


def metrics_table(rows: list[dict[str, Any]]) -> None:
    """The retrieval table, numbers to three decimals."""
    widgets.static_table(rows, decimals=3)


def path_panels(result: runs.TrainResult) -> list[figures.PathPanel]:
    """Each run's (uniformity, alignment) per epoch."""
    return [
        figures.PathPanel(n, runs.run_label(result.choice(n)), h.uniformity, h.alignment, h.epochs)
        for n, h in ((n, result.histories[n]) for n in result.names)
    ]


@st.fragment
def sphere_view(page: Page, result: runs.TrainResult) -> None:
    """The test embeddings on the circle or sphere and their per-class angle densities at one epoch, with an
    epoch slider and a replay button, rerun on their own (one frame sent per step)."""
    base, choices = result.experiment.base(), [result.choice(n) for n in result.names]
    y = runs.dataset(base.data).y_test
    per_loss = [snapshot_embeddings(base, c) for c in choices]
    epochs = [result.histories[c.name].snapshot_epochs for c in choices]
    union, aligned = evaluate.frames_by_epoch(epochs, per_loss)
    epoch = page.control(epoch_field(union))
    spheres, densities = st.empty(), st.empty()

    def draw(i: int, keyed: bool) -> None:
        panels = []
        for c, frames in zip(choices, aligned, strict=True):
            h = result.histories[c.name]
            at = min(int(np.searchsorted(h.epochs, union[i])), len(h.epochs) - 1)
            note = EPOCH_CAPTION.format(epoch=int(h.epochs[at]), acc=float(h.test_acc[at]))
            title = f"{runs.run_label(c)}<br><span style='font-size:11px'>{note}</span>"
            panels.append(figures.SpherePanel(c.name, title, frames[i], y))
        charts.show(spheres, figures.sphere_figure, key="emb.fig.sphere" if keyed else None, panels=panels)
        charts.show(
            densities, figures.angle_density_figure, key="emb.fig.angles" if keyed else None, panels=panels
        )

    if st.button("▶ Replay training", key="embeddings.replay", help="Steps through the snapshots."):
        for i in range(len(union)):
            draw(i, False)
            time.sleep(0.15)
    else:
        draw(union.index(epoch), True)
    page.finish_fragment()


# ------------------------------------------------------------------------------- analytic views (no training)


def temperature_curve(name: str, label: str, tau: float) -> figures.TemperatureCurve:
    """InfoNCE's shares over SIMILARITIES at one temperature (autograd through the registered loss)."""
    weights = contrastive.negative_weights(SIMILARITIES, tau).y
    effective = float(contrastive.effective_negatives(SIMILARITIES, np.array([tau])).y[0])
    ring = contrastive.negative_weights(np.cos(RING), tau).y
    return figures.TemperatureCurve(name, label, tau, SIMILARITIES, weights, effective, RING, ring)


@st.fragment
def temperature_view(page: Page, tau_field: Field, selected: Mapping[str, LossChoice]) -> None:
    """The weight softmax(s/τ) per negative for this view's τ and each selected InfoNCE-family loss's τ."""
    tau = float(page.control(tau_field))
    curves = [temperature_curve("", f"τ = {tau:g} (this view's slider)", tau)]
    for name, choice in selected.items():
        t = float(dict(choice.params)["temperature"])
        curves.append(temperature_curve(name, f"{runs.run_label(choice)} (selected)", t))
    effective = contrastive.effective_negatives(SIMILARITIES, TAU_GRID)
    charts.show(st, figures.temperature_figure, key="emb.fig.temperature", curves=curves, effective=effective)
    page.finish_fragment()


@st.cache_data(max_entries=64, show_spinner=False)
def plane(name: str, params: tuple[tuple[str, float], ...], resolution: int = 41) -> figures.PlanePanel:
    """One loss's value over the (s_n, s_p) plane, titled with its hyperparameters."""
    surface = contrastive.pair_loss_surface(name, dict(params), resolution)
    return figures.PlanePanel(name, runs.run_label(LossChoice(name, params)), surface)


@st.fragment
def plane_view(page: Page, margin_field: Field, tau_field: Field) -> None:
    """Circle loss, triplet and InfoNCE over (s_n, s_p), with a margin and a temperature slider."""
    left, right = st.columns(2)
    margin = float(page.control(margin_field, container=left))
    tau = float(page.control(tau_field, container=right))
    gamma = losses.get("circle").bind()["gamma"]
    panels = [
        plane("circle", (("gamma", gamma), ("margin", margin))),
        plane("triplet", (("margin", margin),)),
        plane("info_nce", (("temperature", tau),)),
    ]
    charts.show(st, figures.pair_plane_figure, key="emb.fig.plane", panels=panels)
    page.finish_fragment()


@st.cache_data(max_entries=64, show_spinner=False)
def wedge_panel(
    kind: contrastive.MarginKind, n_classes: int, margin: float, rho: float = 0.0
) -> figures.WedgePanel:
    """Where each class's margin-adjusted logit wins on the circle, for evenly spread class weights.

    rho > 0: the margin is MadaCos's, set by its batch at that rho (the title says so).
    """
    w = contrastive.margin_wedges(kind, n_classes, margin, resolution=360)
    formula = {"cosface": "cos θ − m", "arcface": "cos(θ + m)", "madacos": "cos θ − m, m adaptive"}[kind]
    if rho > 0:  # a narrower line: the panel is a third of the width
        note = f"batch's m = {margin:.2f} (ρ = {rho:g}) · wins on {w.covered:.0%}"
    else:
        note = f"m = {margin:g} · a class wins on {w.covered:.0%} of the circle"
    title = (
        f"{losses.get(kind).title.split(' (')[0]}: {formula}<br><span style='font-size:11px'>{note}</span>"
    )
    return figures.WedgePanel(kind, title, w.weight_angles, w.angles, w.winner, w.nearest)


@st.fragment
def wedge_view(page: Page, margin_field: Field, classes_field: Field) -> None:
    """CosFace and ArcFace wedges for K classes at the slider's margin, and MadaCos's at the margin it sets
    itself for a batch spread evenly over the circle (at its default rho)."""
    left, right = st.columns(2)
    margin = float(page.control(margin_field, container=left))
    k = int(page.control(classes_field, container=right))
    rho = losses.get("madacos").bind()["rho"]
    adaptive = wedge_panel("madacos", k, contrastive.madacos_margin(k, rho), rho)
    panels = [wedge_panel("cosface", k, margin), wedge_panel("arcface", k, margin), adaptive]
    charts.show(st, figures.margin_wedge_figure, key="emb.fig.wedges", panels=panels)
    page.finish_fragment()
