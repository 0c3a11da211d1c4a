"""Cached grokking runs (lossviz.grokking.train_grokking) keyed by their primitive arguments."""

from __future__ import annotations

import streamlit as st

from lossviz.grokking import Progress, Recorded, train_grokking
from lossviz.results import GrokkingRun


@st.cache_data(max_entries=32, show_spinner=False)
def run(
    p: int,
    train_fraction: float,
    loss: str,
    dtype: str,
    optimizer: str,
    lr: float,
    weight_decay: float,
    epochs: int,
    seed: int,
    _progress: Progress | None = None,
    _on_record: Recorded | None = None,
) -> GrokkingRun:
    """One full-batch modular-addition run. _progress and _on_record (not part of the key) must not touch
    Streamlit elements: they run inside the cached call, whose element calls would be recorded for replay."""
    return train_grokking(
        p, train_fraction, loss, dtype, optimizer, lr, weight_decay, epochs, seed, progress=_progress,
        on_record=_on_record,
    )  # fmt: skip
