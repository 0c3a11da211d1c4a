"""Cached neural-collapse views of the shared experiment's runs: NC1-NC4 at every snapshot of a loss's run,
and the last epoch's class means with the simplex-ETF reference (lossviz.evaluate)."""

from __future__ import annotations

import streamlit as st

from lossviz import evaluate
from lossviz.experiment import Experiment, LossChoice
from lossviz.metrics import NCCentre
from lossviz.ui import runs


@st.cache_data(max_entries=128, show_spinner=False)
def trajectory(base: Experiment, choice: LossChoice, centre: NCCentre) -> evaluate.CollapseTrajectory:
    """NC1-NC4 of one loss's training features at every snapshot."""
    model = runs.initial_model(base, choice.name)
    data = runs.dataset(base.data)
    return evaluate.collapse_over_training(model, data, runs.history(base, choice), centre=centre)


@st.cache_data(max_entries=128, show_spinner=False)
def geometry(base: Experiment, choice: LossChoice, centre: NCCentre) -> evaluate.MeanGeometry:
    """The last snapshot's centred class means in 2-D / 3-D, the fitted simplex ETF, the classifier rows."""
    found = trajectory(base, choice, centre)
    return evaluate.class_mean_geometry(found.final, found.classifier)
