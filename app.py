"""lossviz: the Streamlit entry point. Page config, navigation (explicit pages in sections), sidebar."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent

st.set_page_config(page_title="lossviz: loss functions, seen", page_icon="📉", layout="wide")

PAGES = {
    "Explore": [
        st.Page(
            str(ROOT / "pages" / "loss_shapes.py"),
            title="Loss shapes",
            icon=":material/show_chart:",
            default=True,
        ),
    ],
    "Train": [
        st.Page(
            str(ROOT / "pages" / "train_compare.py"),
            title="Train & compare",
            icon=":material/model_training:",
        ),
        st.Page(str(ROOT / "pages" / "landscape.py"), title="Loss landscape", icon=":material/landscape:"),
    ],
}

page = st.navigation(PAGES)

with st.sidebar:
    with st.expander("About lossviz"):
        st.markdown(
            "An interactive explorer of loss functions: their shapes and gradients, how models trained "
            "with them separate data, and what their filter-normalized loss landscapes and curvature look "
            "like. Every loss, slider and formula comes from one registry in the `lossviz` "
            "library, which also works from a notebook (`import lossviz`)."
        )

page.run()
