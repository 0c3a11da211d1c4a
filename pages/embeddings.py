"""Embeddings: contrastive, metric-learning and margin losses on the circle S¹ or the sphere S². The trained
test embeddings over training, per-class angle densities, the (L_uniform, L_align) path, pair-cosine
histograms and held-out retrieval; and, with no training, InfoNCE's weights over negatives as τ moves, loss
contours over the (s_n, s_p) plane, and the wedges CosFace / ArcFace / MadaCos margins leave each class.

Wang & Isola (2020), Wang & Liu (2021), Khosla et al. (2020), Sun et al. (2020), CosFace (Wang et al., 2018),
ArcFace (Deng et al., 2019). Training waits for the Train button (or a preset); `trained=1` in the URL trains.
"""

from __future__ import annotations

import streamlit as st

from lossviz import contrastive
from lossviz.figures import embeddings as figures
from lossviz.presets import EMBEDDING_PRESETS
from lossviz.ui import charts, runs
from lossviz.ui import embeddings as cached
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEFAULT_LOSSES = ("info_nce", "supcon", "align_uniform")
TAUS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
TRAINED = Field("trained", "", "toggle", False)  # in the URL: a shared link trains and shows the results
TAU = Field("tau", "τ of this view", "select_slider", 0.5, options=TAUS, format=lambda v: f"{v:g}")
PLANE_MARGIN = Field(
    "plane_margin", "Margin m (circle, triplet)", "slider", 0.25, low=0.0, high=0.5, step=0.05
)
PLANE_TAU = Field("plane_tau", "τ (InfoNCE)", "select_slider", 0.1, options=TAUS, format=lambda v: f"{v:g}")
WEDGE_MARGIN = Field(
    "wedge_margin", "Margin m (CosFace, ArcFace)", "slider", 0.35, low=0.0, high=0.8, step=0.05
)
WEDGE_K = Field("wedge_K", "Class weight vectors K", "int", 4, low=2, high=8)

page = Page(
    "embeddings",
    "Embeddings",
    "Contrastive and metric-learning losses train an encoder whose outputs lie on the circle (or sphere): "
    "views of the same class (or instance) are pulled together, the rest pushed apart. Pick data and "
    "losses in the sidebar and press **Train**, or load a preset; the views further down need no training.",
)
cached.preset_buttons(page, EMBEDDING_PRESETS, on_load=lambda: page.state.set(TRAINED, True))
with st.sidebar:
    st.header("Embeddings")
experiment, data = cached.sidebar(page, DEFAULT_LOSSES)
family = {c.name: c for c in experiment.losses if c.name in contrastive.SOFTMAX_FAMILY}
trained_area = st.container()

st.subheader("What the temperature τ does")
cached.temperature_view(page, TAU, family)
st.caption(
    "InfoNCE pushes an anchor away from each negative in proportion to softmax(s_n/τ) (Wang & Liu, 2021; "
    "autograd through the registered loss). Left: the anchor ★ and 23 negatives around the circle, one ring "
    "per τ (outer: this view's slider; inner, dashed in the middle: the τ of each InfoNCE-family loss in the "
    "sidebar). **Small τ** (try 0.05) gives nearly all of the push to the two or three negatives closest to "
    "the anchor: every close neighbour is repelled, which spreads the embeddings **uniformly**, but when "
    "only an instance's own views are positives those closest negatives are mostly samples of its own "
    "class, so **semantically similar samples are pushed apart** (intolerance). **Large τ** (1) gives every "
    "negative a near-equal share: gentle, tolerant of similar samples, less uniform. On trained runs the "
    "table's 'own-class push' measures that share; the first preset compares τ = 0.05 with τ = 0.5."
)

st.subheader("What each loss asks of one anchor: the (s_n, s_p) plane")
cached.plane_view(page, PLANE_MARGIN, PLANE_TAU)
st.caption(
    "The loss of one anchor with one positive at cosine s_p and one negative at s_n (Sun et al., 2020): "
    "it pushes across the contour lines, towards the top left. Triplet stops at s_p − s_n ≈ the margin "
    "(a hard edge, zero beyond); circle loss weighs each similarity by how far it is from its optimum "
    "(s_p = 1 − m, s_n = m), so its lines curve; InfoNCE depends only on (s_n − s_p)/τ: straight lines, "
    "closer together as τ falls. Dotted: s_p = s_n."
)

st.subheader("Angular margins on the circle: CosFace, ArcFace and MadaCos")
cached.wedge_view(page, WEDGE_MARGIN, WEDGE_K)
st.caption(
    "K class weight vectors spread evenly on the circle (arrows). Strong colour: the feature directions "
    "where a class's margin-adjusted logit, s(cos θ − m) or s cos(θ + m), still beats every other class's "
    "plain s cos θ; pale: the rest of its nearest-class wedge, where a correctly classified feature keeps "
    "paying loss until it moves towards its weight vector. CosFace's margin is in cosine, so the angle it "
    "costs grows as the wedges narrow (more classes); ArcFace's is the same angle m at every boundary. "
    "MadaCos (CFCD) has CosFace's geometry but no margin slider: it sets s and m itself every batch, so that "
    "the batch's median sample keeps true-class probability ρ; drawn here at the m it sets for a batch "
    "spread evenly over the circle (each point labelled with its nearest class). As training tightens the "
    "classes, its batches raise m. These losses train a classifier with a cosine head: try them on Train & "
    "compare."
)

with trained_area:
    st.subheader("Trained embeddings (test split)")
    if st.button("Train", type="primary", disabled=not experiment.losses, key="embeddings.train"):
        page.state.set(TRAINED, True)
    trained = bool(page.state.get(TRAINED))
    page.state.record(TRAINED, trained)
    if not experiment.losses:
        page.stop("Pick at least one embedding loss in the sidebar.")
    if not trained:
        page.stop("Press **Train** to train the selected losses, or click a preset above.")
    bar = st.progress(0.0, text="Training…")
    result = runs.train_all(experiment, bar)
    bar.empty()
    views = experiment.data
    st.caption(
        f"Run: {runs.describe(experiment)} · {views.views} views, positives = {views.positives}, "
        f"augmentation {views.augment:g}."
    )
    runs.show_problems(result)
    if not result.names:
        page.stop()
    base = experiment.base()
    choices = [result.choice(n) for n in result.names]
    cached.sphere_view(page, result)
    st.caption(
        "Held-out points embedded by the model at the chosen epoch, coloured by class; below, the density "
        "of each class's angle on the circle (on the sphere: its longitude), as in Wang & Isola's figures."
    )
    charts.show(st, figures.align_uniform_figure, key="emb.fig.path", panels=cached.path_panels(result))
    st.caption(
        "Each run's path over training in Wang & Isola's plane; the star is the last epoch. Lower-left is "
        "better on both: positives close together (alignment), the whole set spread out (uniformity)."
    )
    histograms = [cached.similarity_panel(base, c) for c in choices]
    charts.show(st, figures.similarity_histogram_figure, key="emb.fig.cosines", panels=histograms)
    st.caption("Cosines of held-out pairs: same class (positive pairs) and different classes (negative).")
    st.markdown("**Retrieval on the held-out split** (final weights)")
    cached.metrics_table([cached.retrieval_row(base, c) for c in choices])
    st.caption(
        "recall@k: share of queries with a same-class sample among their k nearest (cosine); mAP@R: mean "
        "average precision over the R same-class samples (Musgrave et al., 2020); NCM: nearest class mean "
        "(means from the training split). Tolerance: mean same-class cosine. Own-class push: for "
        "InfoNCE-family losses, the share of softmax(s/τ) over the other samples that falls on the anchor's "
        "own class at the loss's τ (near 1 = similar samples repelled)."
    )
page.finish()
