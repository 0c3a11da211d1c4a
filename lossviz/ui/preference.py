"""Cached preference runs (lossviz.preference.train_preference) keyed by their primitive arguments."""

from __future__ import annotations

import streamlit as st

from lossviz.preference import PreferenceRun, train_preference


@st.cache_data(max_entries=128, show_spinner=False)
def run(
    loss: str,
    params: tuple[tuple[str, float], ...],
    prompts: int,
    answers: int,
    epochs: int,
    lr: float,
    seed: int,
) -> PreferenceRun:
    """One loss's training of the toy policy from the shared initial policy (its reference)."""
    return train_preference(loss, dict(params), prompts, answers, epochs, lr, seed)
