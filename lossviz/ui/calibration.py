"""Cached calibration views of the shared experiment's runs: reliability (both binnings, bootstrap band,
smooth ECE), temperature scaling fitted on half of the test split, and margin losses' calibration maps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from lossviz import calibration, evaluate, losses, metrics
from lossviz.experiment import Experiment, LossChoice
from lossviz.results import CalibrationPanel, MarginCalibrationPanel, SmoothCalibration, TemperatureScaling
from lossviz.ui import runs


def _halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Alternate test rows: temperature is fitted on one half and judged on the other (held out)."""
    index = np.arange(n)
    return index[index % 2 == 0], index[index % 2 == 1]


@st.cache_data(max_entries=128, show_spinner=False)
def panel(base: Experiment, choice: LossChoice, n_bins: int, n_boot: int) -> CalibrationPanel:
    """Reliability, band, smooth ECE, histogram, NLL and Brier of one loss's test predictions."""
    data = runs.dataset(base.data)
    probs = runs.predictions(base, choice)
    binned = calibration.calibration_panel(
        probs, data.y_test, name=choice.name, label=runs.run_label(choice), n_bins=n_bins, n_boot=n_boot,
        smooth=False,
    )  # fmt: skip
    return replace(binned, smooth=smooth_ece(base, choice))


@st.cache_data(max_entries=128, show_spinner=False)
def smooth_ece(base: Experiment, choice: LossChoice) -> SmoothCalibration:
    """Smooth ECE of one loss's test predictions: it has no bins, so moving the bins slider keeps it."""
    return metrics.smooth_ece(runs.predictions(base, choice), runs.dataset(base.data).y_test)


@st.cache_data(max_entries=128, show_spinner=False)
def temperature(base: Experiment, choice: LossChoice, n_bins: int) -> TemperatureScaling:
    """Temperature scaling of one loss's test logits: fitted on one half, before/after on the other."""
    data = runs.dataset(base.data)
    logits = evaluate.test_outputs(runs.initial_model(base, choice.name), data, runs.history(base, choice))
    fit, judge = _halves(len(data.y_test))
    return calibration.temperature_scaling(
        logits[fit],
        data.y_test[fit],
        logits[judge],
        data.y_test[judge],
        n_bins=n_bins,
        name=choice.name,
        label=runs.run_label(choice),
    )


@st.cache_data(max_entries=128, show_spinner=False)
def margin_panel(base: Experiment, choice: LossChoice, n_bins: int) -> MarginCalibrationPanel:
    """A binary loss's calibration map sigmoid(f*(eta)) over the positive-class reliability of its model."""
    if losses.get(choice.name).task != "binary":
        raise ValueError(f"{choice.name} is not a binary margin loss")
    data = runs.dataset(base.data)
    probs = runs.predictions(base, choice)
    empirical = metrics.reliability(probs, data.y_test, n_bins, "width", mode="positive")
    found = calibration.calibration_map(choice.name, dict(choice.params), label=runs.run_label(choice))
    return MarginCalibrationPanel(calibration_map=found, empirical=empirical, label=runs.run_label(choice))
