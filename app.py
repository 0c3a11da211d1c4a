"""lossviz: the Streamlit entry point. Page config, navigation (explicit pages in sections), sidebar."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import lossviz.ui  # sets torch's thread count once for the server process

ROOT = Path(__file__).resolve().parent
PAGES = ROOT / "pages"

st.set_page_config(page_title="lossviz: loss functions, seen", page_icon="📉", layout="wide")
lossviz.ui.warm_up()

page = st.navigation(
    {
        "Explore": [
            st.Page(
                PAGES / "loss_shapes.py", title="Loss shapes", icon=":material/show_chart:", default=True
            ),
        ],
        "Train": [
            st.Page(PAGES / "train_compare.py", title="Train & compare", icon=":material/model_training:"),
            st.Page(PAGES / "landscape.py", title="Loss landscape", icon=":material/landscape:"),
            st.Page(PAGES / "calibration.py", title="Calibration", icon=":material/tune:"),
            st.Page(PAGES / "distillation.py", title="Distillation", icon=":material/school:"),
            st.Page(PAGES / "neural_collapse.py", title="Neural collapse", icon=":material/hub:"),
            st.Page(PAGES / "embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
            st.Page(PAGES / "grokking.py", title="Grokking", icon=":material/trending_up:"),
            st.Page(PAGES / "preference.py", title="Preference", icon=":material/thumbs_up_down:"),
            st.Page(PAGES / "rl.py", title="RL with verifiable rewards", icon=":material/casino:"),
            st.Page(PAGES / "label_noise.py", title="Label-noise study", icon=":material/label_off:"),
        ],
    }
)

with st.sidebar:
    with st.expander("About lossviz"):
        st.markdown(
            "An interactive explorer of loss functions: their shapes and gradients, how models trained "
            "with them separate data, what their filter-normalized loss landscapes and curvature look "
            "like, and how well calibrated they are. Every loss, slider and formula comes from one registry "
            "in the `lossviz` library, which also works from a notebook (`import lossviz`)."
        )

page.run()
