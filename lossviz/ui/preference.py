"""Cached preference training (lossviz.preference.PreferenceTraining) keyed by its primitive arguments."""

from __future__ import annotations

import streamlit as st

from lossviz.preference import PreferenceRun, PreferenceTraining

Selection = tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (loss, hyperparameters) pairs


@st.cache_resource(max_entries=32)
def training(selection: Selection, prompts: int, answers: int, lr: float, seed: int) -> PreferenceTraining:
    """The losses' toy policies, kept across reruns and sessions: more epochs continue them (thread-safe)."""
    return PreferenceTraining({name: dict(params) for name, params in selection}, prompts, answers, lr, seed)


@st.cache_data(max_entries=128, show_spinner=False)
def runs(
    selection: Selection, prompts: int, answers: int, epochs: int, lr: float, seed: int, ahead: int = 0
) -> dict[str, PreferenceRun]:
    """A run per loss for `epochs` steps: an Epochs step up trains only the epochs added, one down slices.
    Then the policies go on training to `ahead` epochs in the background (the Epochs slider's largest
    value), so a step up finds its epochs trained: 500 -> 1000 epochs of four losses took 0.26 s."""
    kept = training(selection, prompts, answers, lr, seed)
    found = kept.runs(epochs)
    if ahead > epochs:
        kept.train_ahead(ahead)
    return found
