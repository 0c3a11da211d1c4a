"""The Distillation page's controls and cached compute: the teacher (trained once by lossviz.experiment, with
cross-entropy, and kept there for every student), each model's decision map and calibration panel, the
teacher's softened targets, and the preset buttons. "Distilling the Knowledge in a Neural Network" (Hinton,
Vinyals & Dean, 2015); reverse KL as in MiniLLM (Gu et al., 2024).
"""

from __future__ import annotations

import queue
from collections.abc import Mapping
from typing import Any

import numpy as np
import streamlit as st
import torch
from torch import nn

from lossviz import calibration, evaluate, losses, metrics
from lossviz import experiment as ex
from lossviz.experiment import DEFAULT_TEACHER, TEACHER_LOSS, Experiment, LossChoice, ModelSpec
from lossviz.figures import distillation as figures
from lossviz.figures.train import BoundaryPanel, MetricsRow, metrics_table
from lossviz.presets import Preset
from lossviz.results import CalibrationPanel, Dataset, DecisionMap
from lossviz.ui import experiment_fields as xf
from lossviz.ui import runs, widgets
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEVICE = "cpu"  # the device lossviz.ui.runs trains on: the students' runs then find the teacher kept for it
TEACHER = "teacher"  # the teacher's panel name (its colour comes from no loss)
BASELINE = LossChoice(TEACHER_LOSS)  # "labels alone": the student trained with cross-entropy
SWEEP_LOSS = "kd"  # the loss the temperature sweep trains: Hinton et al.'s KD, its alpha from the page
SWEEP = (1.0, 4.0, 16.0)  # the temperatures of the sweep: T = 1 (the teacher's own softmax) up to very soft
N_BINS = metrics.N_BINS  # the ECE of the titles, the table and the presets' claims: one binning, one number
MAP_CAPTION = (
    "Final weights of each model. Two classes: colour = P(class 1), the black line is the boundary; more "
    "classes: the predicted class, paler where the model is unsure. Points: the training data with the "
    "labels every model was given (X = a flipped label). Titles: test accuracy and ECE (clean test set)."
)


def distillation_losses() -> tuple[str, ...]:
    """The registered losses that learn from a teacher (context teacher_logits), in registry order."""
    return tuple(n for n in losses.names("multiclass") if "teacher_logits" in losses.get(n).context)


TEACHER_WIDTH = Field(
    "teacher_width",
    "Teacher width",
    "select_slider",
    DEFAULT_TEACHER.width,
    options=(8, 16, 32, 64, 128, 256),
)
TEACHER_DEPTH = Field("teacher_depth", "Teacher hidden layers", "int", DEFAULT_TEACHER.depth, low=1, high=4)
LOSSES = Field(
    "losses.multiclass",  # the key lossviz.ui.widgets.load_losses fills (presets)
    "Distillation losses",
    "multiselect",
    distillation_losses(),
    options=distillation_losses(),
    format=widgets.loss_label,
    url="losses",
)


def sidebar(page: Page) -> tuple[Experiment, Dataset]:
    """The shared data, student-model and optimiser controls, the teacher's size and the distillation losses:
    (the experiment with the labels-alone baseline first, then the chosen losses; the dataset)."""
    state = page.state
    with st.sidebar:
        data_spec, data = xf.data_section(page)
        st.subheader("Teacher")
        width, depth = page.control(TEACHER_WIDTH), page.control(TEACHER_DEPTH)
        st.caption("A ReLU MLP trained with cross-entropy on the same data and optimiser settings.")
        st.subheader("Student")
        model_spec = xf.model_controls(state, data.n_features, data.name)
        st.subheader("Optimiser")
        optim_spec = xf.optim_controls(state)
        st.subheader("Distillation losses")
        names = list(page.control(LOSSES))
        selection = widgets.loss_settings(names, state)
    if data.task == "regression":
        page.stop("Distillation needs a classification dataset (the teacher's logits are class scores).")
    teacher = ModelSpec(kind="mlp", width=int(width), depth=int(depth))
    base = Experiment(data_spec, model_spec, optim_spec, teacher=teacher)
    return xf.with_losses(base, {BASELINE.name: {}, **selection}), data


def preset_buttons(page: Page, presets: Mapping[str, Preset]) -> None:
    """A button per preset; a click loads its data, student, optimiser, teacher and losses, then trains."""

    def on_click(key: str) -> None:
        experiment = presets[key].experiment
        xf.load(page.state, experiment)
        widgets.load_losses(page.state, experiment.losses)
        teacher = experiment.teacher or DEFAULT_TEACHER
        page.state.set(TEACHER_WIDTH, teacher.width)
        page.state.set(TEACHER_DEPTH, teacher.depth)
        page.will_train()

    st.markdown("**Presets** show what distillation does on these toys (measured over five seeds):")
    columns = st.columns(len(presets))
    for column, (key, preset) in zip(columns, presets.items(), strict=True):
        column.button(
            preset.title,
            key=f"{page.state.page}.preset.{key}",
            help=preset.claim,
            on_click=on_click,
            args=(key,),
            width="stretch",
        )


def teacher_label(experiment: Experiment) -> str:
    """'Teacher · MLP 3×128': what the teacher is."""
    t = ex.teacher_experiment(experiment).model
    return f"Teacher · MLP {t.depth}×{t.width}"


def student_label(choice: LossChoice) -> str:
    """A student's label: 'Labels alone · cross-entropy' for the baseline, else the loss with its settings."""
    return "Labels alone · cross-entropy" if choice == BASELINE else runs.run_label(choice)


def sweep_choices(experiment: Experiment) -> dict[str, LossChoice]:
    """KD at each temperature of SWEEP, with the page's alpha for KD (its default when KD is not picked)."""
    chosen = {c.name: dict(c.params) for c in experiment.losses}
    alpha = chosen.get(SWEEP_LOSS, losses.get(SWEEP_LOSS).defaults)["alpha"]
    return {f"T = {t:g}": LossChoice(SWEEP_LOSS, (("T", t), ("alpha", alpha))) for t in SWEEP}


# ----------------------------------------------------------------------------------------------- the teacher


@st.cache_resource(max_entries=16)
def teacher_run(base: Experiment, _progress: Any = None) -> ex.Run:
    """The teacher of base's students (shared by all sessions: never mutate it). lossviz.experiment keeps it
    too, under the teacher's own digest, so the students' runs do not train it again."""
    return ex.teacher_run(base, runs.dataset(base.data), device=DEVICE, progress=_progress)


def train_teacher(experiment: Experiment, bar: Any) -> ex.Run:
    """The teacher (cached), driving a progress bar while it trains; ValueError with the library's message."""
    base, label = experiment.base(), teacher_label(experiment)
    updates: queue.SimpleQueue[tuple[float, str]] = queue.SimpleQueue()
    latest = [(0.0, "starting")]

    def show() -> None:
        while not updates.empty():
            latest[0] = updates.get()
        fraction, message = latest[0]
        bar.progress(min(fraction, 1.0), text=f"{label}: {message}")

    return runs.in_thread(lambda: teacher_run(base, lambda f, m: updates.put((f, m))), show)


class _Softened(nn.Module):
    """A model whose logits are divided by T: its softmax is the soft targets at temperature T."""

    def __init__(self, model: nn.Module, T: float) -> None:
        super().__init__()
        self.model, self.T = model, T
        # evaluated as it is (lossviz.train._evaluate copies a module in training mode): the shared model it
        # wraps is already in eval mode and is never touched
        self.training = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.T


@st.cache_data(max_entries=64, show_spinner=False)
def teacher_map(base: Experiment, T: float = 1.0) -> DecisionMap:
    """The teacher's class probabilities softmax(t / T) on the map grid (T = 1: its own predictions)."""
    softened = _Softened(teacher_run(base).model, float(T))
    return evaluate.decision_map(softened, "multiclass", runs.dataset(base.data), None)


@st.cache_data(max_entries=32, show_spinner=False)
def teacher_predictions(base: Experiment) -> np.ndarray:
    """(M, K) test probabilities of the trained teacher."""
    run = teacher_run(base)
    return evaluate.test_predictions(run.initial_model, "multiclass", runs.dataset(base.data), run.history)


# ----------------------------------------------------------------------------------------------- the students


@st.cache_data(max_entries=128, show_spinner=False)
def student_map(base: Experiment, choice: LossChoice) -> DecisionMap:
    """A student's class probabilities on the map grid, from its final weights."""
    return evaluate.decision_map(runs.model(base, choice), "multiclass", runs.dataset(base.data), None)


@st.cache_data(max_entries=128, show_spinner=False)
def panel(base: Experiment, choice: LossChoice | None, n_bins: int) -> CalibrationPanel:
    """Reliability (both binnings, no bootstrap), smooth ECE, NLL and Brier of the teacher (choice None) or
    of one student, on the clean test split."""
    data = runs.dataset(base.data)
    probs = teacher_predictions(base) if choice is None else runs.predictions(base, choice)
    name, label = (TEACHER, teacher_label(base)) if choice is None else (choice.name, student_label(choice))
    return calibration.calibration_panel(probs, data.y_test, name=name, label=label, n_bins=n_bins, n_boot=0)


def boundary_panels(experiment: Experiment, names: list[str]) -> list[BoundaryPanel]:
    """The teacher's map, then every trained student's (labels alone first), titled with their test scores."""
    base = experiment.base()
    teacher = panel(base, None, N_BINS)
    found = [BoundaryPanel(TEACHER, _title(teacher), [teacher_map(base)])]
    for choice in (c for c in experiment.losses if c.name in names):
        scores = panel(base, choice, N_BINS)
        found.append(BoundaryPanel(choice.name, _title(scores), [student_map(base, choice)]))
    return found


def soft_target_panels(experiment: Experiment) -> list[BoundaryPanel]:
    """The teacher's soft targets softmax(t / T) at each temperature of the sweep."""
    base = experiment.base()
    return [BoundaryPanel(TEACHER, f"Teacher's targets at T = {t:g}", [teacher_map(base, t)]) for t in SWEEP]


def sweep_panels(
    experiment: Experiment, students: Mapping[str, LossChoice]
) -> tuple[list[BoundaryPanel], dict[str, Any]]:
    """(a boundary panel per KD student of the sweep, the temperature_figure arguments of their scores
    against the teacher and the labels-alone student)."""
    base = experiment.base()
    scores = {k: panel(base, c, N_BINS) for k, c in students.items()}
    alpha = dict(next(iter(students.values())).params)["alpha"]
    titles = {
        k: figures.score_title(f"KD at {k}, α = {alpha:g}", s.accuracy, s.equal_width.ece)
        for k, s in scores.items()
    }
    panels = [BoundaryPanel(SWEEP_LOSS, titles[k], [student_map(base, c)]) for k, c in students.items()]
    references = [
        figures.Reference(p.label, p.accuracy, p.equal_width.ece, name)
        for p, name in ((panel(base, None, N_BINS), TEACHER), (panel(base, BASELINE, N_BINS), BASELINE.name))
    ]
    curve = dict(
        name=SWEEP_LOSS,
        label=f"KD student (α = {alpha:g})",
        temperatures=[dict(c.params)["T"] for c in students.values()],
        accuracy=[s.accuracy for s in scores.values()],
        ece=[s.equal_width.ece for s in scores.values()],
        references=references,
    )
    return panels, curve


def metrics_rows(experiment: Experiment, names: list[str], teacher: ex.Run) -> list[dict[str, Any]]:
    """The metrics table: the teacher, then each trained student (final weights, clean test set)."""
    base, data = experiment.base(), runs.dataset(experiment.data)
    scores = evaluate.test_scores(data, teacher_predictions(base))
    rows = [MetricsRow(teacher_label(base), scores, teacher.history.seconds)]
    for choice in (c for c in experiment.losses if c.name in names):
        scores = evaluate.test_scores(data, runs.predictions(base, choice))
        rows.append(MetricsRow(student_label(choice), scores, runs.history(base, choice).seconds))
    return metrics_table(runs=rows, task="multiclass")


def _title(p: CalibrationPanel) -> str:
    return figures.score_title(p.label, p.accuracy, p.equal_width.ece)
