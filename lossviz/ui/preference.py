"""Cached preference runs (lossviz.preference.train_preferences) keyed by their primitive arguments."""

from __future__ import annotations

import streamlit as st

from lossviz.preference import PreferenceRun, train_preferences


@st.cache_data(max_entries=128, show_spinner=False)
def runs(
    selection: tuple[tuple[str, tuple[tuple[str, float], ...]], ...],
    prompts: int,
    answers: int,
    epochs: int,
    lr: float,
    seed: int,
) -> dict[str, PreferenceRun]:
    """The losses of selection ((loss, hyperparameters) pairs) trained together from the shared initial
    policy (their reference): one loop for all of them, each run as if it trained alone."""
    losses = {name: dict(params) for name, params in selection}
    return train_preferences(losses, prompts, answers, epochs, lr, seed)
