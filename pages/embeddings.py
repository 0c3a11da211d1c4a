"""Embeddings: contrastive, metric-learning and margin losses on the circle S¹ or the sphere S². The trained
test embeddings over training, per-class angle densities, the (L_uniform, L_align) path, pair-cosine
histograms and held-out retrieval; and, with no training, InfoNCE's weights over negatives as τ moves, loss
contours over the (s_n, s_p) plane, and the wedges CosFace / ArcFace / MadaCos margins leave each class. One
view at a time, in tabs (widgets.views): a slider step redraws one figure, not seven.

Wang & Isola (2020), Wang & Liu (2021), Khosla et al. (2020), Sun et al. (2020), CosFace (Wang et al., 2018),
ArcFace (Deng et al., 2019). Training waits for the Train button (or a preset); `trained=1` in the URL trains.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import contrastive
from lossviz.figures import embeddings as figures
from lossviz.presets import EMBEDDING_PRESETS
from lossviz.ui import charts, runs, widgets
from lossviz.ui import embeddings as cached
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEFAULT_LOSSES = ("info_nce", "supcon", "align_uniform")
TAUS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
TAU = Field("tau", "τ of this view", "select_slider", 0.5, options=TAUS, format=lambda v: f"{v:g}")
PLANE_MARGIN = Field(
    "plane_margin", "Margin m (circle, triplet)", "slider", 0.25, low=0.0, high=0.5, step=0.05
)
PLANE_TAU = Field("plane_tau", "τ (InfoNCE)", "select_slider", 0.1, options=TAUS, format=lambda v: f"{v:g}")
WEDGE_MARGIN = Field(
    "wedge_margin", "Margin m (CosFace, ArcFace)", "slider", 0.35, low=0.0, high=0.8, step=0.05
)
WEDGE_K = Field("wedge_K", "Class weight vectors K", "int", 4, low=2, high=8)
VIEWS = {
    "temperature": "Temperature τ",
    "plane": "(s_n, s_p) plane",
    "wedges": "Angular margins",
    "spheres": "Trained embeddings",
    "path": "Alignment & uniformity",
    "cosines": "Pair cosines",
    "retrieval": "Retrieval",
}
ANALYTIC = ("temperature", "plane", "wedges")  # need no training; the rest are offered once trained
VIEW = Field("view", "View", "tabs", "temperature", options=tuple(VIEWS), format=VIEWS.get)
CONTROLS = {"temperature": (TAU,), "plane": (PLANE_MARGIN, PLANE_TAU), "wedges": (WEDGE_MARGIN, WEDGE_K)}

page = Page(
    "embeddings",
    "Embeddings",
    "Contrastive and metric-learning losses train an encoder whose outputs lie on the circle (or sphere): "
    "views of the same class (or instance) are pulled together, the rest pushed apart. Pick data and "
    "losses in the sidebar and press **Train**, or load a preset; the first three views need no training.",
)


def show_trained() -> None:
    """Train (a preset, the Train button) and open the first trained view."""
    page.will_train()
    page.state.set(VIEW, "spheres")


cached.preset_buttons(page, EMBEDDING_PRESETS, on_load=show_trained)
with st.sidebar:
    st.header("Embeddings")
experiment, data = cached.sidebar(page, DEFAULT_LOSSES)
family = {c.name: c for c in experiment.losses if c.name in contrastive.SOFTMAX_FAMILY}

trained = page.train_button(disabled=not experiment.losses, on_press=show_trained)
if not experiment.losses:
    st.info("Pick at least one embedding loss in the sidebar to train.")
elif not trained:
    st.info("Press **Train** to train the selected losses, or click a preset above.")
shown = tuple(VIEWS) if trained and experiment.losses else ANALYTIC
# One view at a time: a slider step then redraws one figure (see widgets.views). Training waits for a
# trained view to be opened.
in_views = {view: [f.url_name for f in fields] for view, fields in CONTROLS.items()}
in_views["spheres"] = [cached.EPOCH_URL]  # its options come from the trained runs
view, tab = widgets.views(replace(VIEW, options=shown), page.state, controls=in_views)  # closed ones: kept

with tab:
    if view == "temperature":
        st.subheader("What the temperature τ does")
        cached.temperature_view(page, TAU, family)
        st.caption(
            "InfoNCE pushes an anchor away from each negative in proportion to softmax(s_n/τ) (Wang & Liu, "
            "2021; autograd through the registered loss). Left: the anchor ★ and 23 negatives around the "
            "circle, one ring per τ (outer: this view's slider; inner, dashed in the middle: the τ of each "
            "InfoNCE-family loss in the sidebar). **Small τ** (try 0.05) gives nearly all of the push to the "
            "two or three negatives closest to the anchor: every close neighbour is repelled, which spreads "
            "the embeddings **uniformly**, but when only an instance's own views are positives those "
            "closest negatives are mostly samples of its own class, so **semantically similar samples are "
            "pushed apart** (intolerance). **Large τ** (1) gives every negative a near-equal share: gentle, "
            "tolerant of similar samples, less uniform. On trained runs the Retrieval table's 'own-class "
            "push' measures that share; the first preset compares τ = 0.05 with τ = 0.5."
        )
    elif view == "plane":
        st.subheader("What each loss asks of one anchor: the (s_n, s_p) plane")
        cached.plane_view(page, PLANE_MARGIN, PLANE_TAU)
        st.caption(
            "The loss of one anchor with one positive at cosine s_p and one negative at s_n (Sun et al., "
            "2020): it pushes across the contour lines, towards the top left. Triplet stops at s_p − s_n ≈ "
            "the margin (a hard edge, zero beyond); circle loss weighs each similarity by how far it is from "
            "its optimum (s_p = 1 − m, s_n = m), so its lines curve; InfoNCE depends only on (s_n − s_p)/τ: "
            "straight lines, closer together as τ falls. Dotted: s_p = s_n."
        )
    elif view == "wedges":
        st.subheader("Angular margins on the circle: CosFace, ArcFace and MadaCos")
        cached.wedge_view(page, WEDGE_MARGIN, WEDGE_K)
        st.caption(
            "K class weight vectors spread evenly on the circle (arrows). Strong colour: the feature "
            "directions where a class's margin-adjusted logit, s(cos θ − m) or s cos(θ + m), still beats "
            "every other class's plain s cos θ; pale: the rest of its nearest-class wedge, where a correctly "
            "classified feature keeps paying loss until it moves towards its weight vector. CosFace's margin "
            "is in cosine, so the angle it costs grows as the wedges narrow (more classes); ArcFace's is the "
            "same angle m at every boundary. MadaCos (CFCD) has CosFace's geometry but no margin slider: it "
            "sets s and m itself every batch, so that the batch's median sample keeps true-class probability "
            "ρ; drawn here at the m it sets for a batch spread evenly over the circle (each point labelled "
            "with its nearest class). As training tightens the classes, its batches raise m. These losses "
            "train a classifier with a cosine head: try them on Train & compare."
        )
    else:
        bar, live = st.progress(0.0, text="Training…"), st.empty()
        result = runs.train_all(experiment, bar, cached.live_spheres(live, experiment))  # drawn as it trains
        bar.empty()
        live.empty()
        views = experiment.data
        st.caption(
            f"Run: {runs.describe(experiment)} · {views.views} views, positives = {views.positives}, "
            f"augmentation {views.augment:g}. Test split."
        )
        runs.show_problems(result)
        if not result.names:
            page.stop()
        base = experiment.base()
        choices = [result.choice(n) for n in result.names]
        if view == "spheres":
            cached.sphere_view(page, result)
            st.caption(
                "Held-out points embedded by the model at the chosen epoch, coloured by class; below, the "
                "density of each class's angle on the circle (on the sphere: its longitude), as in Wang & "
                "Isola's figures."
            )
        elif view == "path":
            charts.show(
                st, figures.align_uniform_figure, key="emb.fig.path", panels=cached.path_panels(result)
            )
            st.caption(
                "Each run's path over training in Wang & Isola's plane; the star is the last epoch. "
                "Lower-left is better on both: positives close together (alignment), the whole set spread "
                "out (uniformity)."
            )
        elif view == "cosines":
            histograms = [cached.similarity_panel(base, c) for c in choices]
            charts.show(st, figures.similarity_histogram_figure, key="emb.fig.cosines", panels=histograms)
            st.caption(
                "Cosines of held-out pairs: same class (positive pairs) and different classes (negative)."
            )
        else:
            st.markdown("**Retrieval on the held-out split** (final weights)")
            cached.metrics_table([cached.retrieval_row(base, c) for c in choices])
            st.caption(
                "recall@k: share of queries with a same-class sample among their k nearest (cosine); mAP@R: "
                "mean average precision over the R same-class samples (Musgrave et al., 2020); NCM: nearest "
                "class mean (means from the training split). Tolerance: mean same-class cosine. Own-class "
                "push: for InfoNCE-family losses, the share of softmax(s/τ) over the other samples that "
                "falls on the anchor's own class at the loss's τ (near 1 = similar samples repelled)."
            )
page.finish()
