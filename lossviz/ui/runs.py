"""Cached training shared by every page that trains: a History per (experiment, loss), the trained models,
and the per-run views (decision maps, fits, predictions, gradient weights) built from them.

Training itself is lossviz.experiment.run; this module only caches it and shows its progress. Models come
from st.cache_resource: shared by every session, never mutated (views use functional_call).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
from torch import nn

from lossviz import evaluate, losses
from lossviz import experiment as ex
from lossviz.experiment import DataSpec, Experiment, LossChoice
from lossviz.figures import train as figures
from lossviz.results import Curve, Dataset, DecisionMap, History
from lossviz.ui import charts
from lossviz.ui.fields import Field

MAX_LOSSES = 6
SHOWN = "_lv.train.result"  # session_state: the TrainResult the Train & compare page shows now


@dataclass(frozen=True)
class TrainResult:
    """What one Train press produced: a History per loss that trained, a message per loss that could not."""

    experiment: Experiment
    histories: dict[str, History]
    errors: dict[str, str]

    @property
    def names(self) -> list[str]:
        """The losses that trained, in selection order."""
        return [c.name for c in self.experiment.losses if c.name in self.histories]

    def choice(self, name: str) -> LossChoice:
        """The loss with its hyperparameters as trained."""
        return next(c for c in self.experiment.losses if c.name == name)


def run_label(choice: LossChoice) -> str:
    """A loss's display label with its hyperparameters: 'Generalized cross-entropy · q=0.7'."""
    shown = ", ".join(f"{k}={v:.3g}" for k, v in choice.params)
    title = losses.get(choice.name).title
    return f"{title} · {shown}" if shown else title


@st.cache_data(max_entries=64, show_spinner=False)
def dataset(spec: DataSpec) -> Dataset:
    """The Dataset of a DataSpec (ValueError with the library's message for a bad combination)."""
    return ex.dataset(spec)


@st.cache_data(max_entries=128, show_spinner=False)
def history(
    base: Experiment,
    choice: LossChoice,
    _progress: Callable[[float, str], None] | None = None,
    _on_snapshot: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> History:
    """One loss trained within base (cached on base and the loss; the callbacks are not part of the key)."""
    data = dataset(base.data)
    return ex.run(base, choice, progress=_progress, device="cpu", data=data, on_snapshot=_on_snapshot).history


@st.cache_resource(max_entries=64)
def initial_model(base: Experiment, loss: str) -> nn.Module:
    """The shared initialisation for one loss (the same weights for every loss with the same head)."""
    return ex.initial_model(base, loss, dataset(base.data))


@st.cache_resource(max_entries=64)
def model(base: Experiment, choice: LossChoice) -> nn.Module:
    """The trained model of one loss, in eval mode (shared by all sessions: never mutate it)."""
    return ex.trained_model(base, choice.name, history(base, choice), dataset(base.data))


@st.cache_data(max_entries=96, show_spinner=False)
def initial_map(base: Experiment, loss: str) -> DecisionMap:
    """The decision map of one loss's initial weights (epoch 0: where its training starts)."""
    return evaluate.decision_map(initial_model(base, loss), losses.get(loss).task, dataset(base.data), None)


def show_initial_boundaries(placeholder: Any, experiment: Experiment, data: Dataset) -> None:
    """The decision maps training starts from, in the placeholder the live boundaries will use: one panel per
    set of losses that share their initial weights (usually one panel for all of them).

    Shown before Train is pressed: the user sees the data and where training starts, and the browser has
    loaded its chart library by the time the first live boundary arrives (loading it then took a second).
    """
    base = experiment.base()
    panels = []
    for names in ex.shared_starts(experiment):
        names = [n for n in names if draws_boundary(n)]
        if not names:
            continue
        who = ", ".join(losses.get(n).title for n in names)
        start = "the same initial weights" if len(names) > 1 else "initial weights"
        title = f"{who}<br><span style='font-size:11px'>epoch 0 · {start}</span>"
        panels.append(figures.BoundaryPanel(names[0], title, [initial_map(base, names[0])]))
    if panels:
        charts.show(placeholder, figures.boundary_figure, data=data, panels=panels)


def draws_boundary(loss: str) -> bool:
    """Whether a loss's model has a decision map: a classifier does, an encoder onto the sphere does not."""
    return losses.get(loss).task in ("binary", "multiclass")


@st.cache_data(max_entries=96, show_spinner=False)
def snapshot_maps(base: Experiment, choice: LossChoice) -> list[DecisionMap]:
    """Decision maps at every snapshot of one loss's run."""
    task = losses.get(choice.name).task
    return evaluate.snapshot_maps(
        initial_model(base, choice.name), task, dataset(base.data), history(base, choice)
    )


@st.cache_data(max_entries=96, show_spinner=False)
def snapshot_fits(base: Experiment, choice: LossChoice) -> list[Curve]:
    """A 1-D regression's fitted curve at every snapshot of one loss's run."""
    init = initial_model(base, choice.name)
    return evaluate.snapshot_fits(init, dataset(base.data), history(base, choice), run_label(choice))


@st.cache_data(max_entries=96, show_spinner=False)
def predictions(base: Experiment, choice: LossChoice) -> np.ndarray:
    """Test predictions of the final weights."""
    task = losses.get(choice.name).task
    init = initial_model(base, choice.name)
    return evaluate.test_predictions(init, task, dataset(base.data), history(base, choice))


@st.cache_data(max_entries=96, show_spinner=False)
def gradient_weights(base: Experiment, choice: LossChoice) -> np.ndarray:
    """Per-sample gradient weights of the final weights on the training set."""
    init, data = initial_model(base, choice.name), dataset(base.data)
    supplied = {}
    if "teacher_logits" in choice.bound.spec.context:  # as trained: against the teacher, not a uniform one
        supplied["teacher_logits"] = ex.teacher_logits(base, data)
    return evaluate.gradient_weights(init, choice.bound, data, history(base, choice), **supplied)


def in_thread(target: Callable[[], Any], on_progress: Callable[[], None]) -> Any:
    """Run target in a worker thread while the script thread calls on_progress; re-raise its error.

    A cached function records the elements it touches for replay; updating a progress bar created outside
    it would break that replay, so the bar is driven from the script thread instead.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = target()
        except Exception as err:  # handed to the script thread, which reports it per loss
            box["error"] = err

    worker = threading.Thread(target=work, daemon=True)
    ctx = get_script_run_ctx()
    if ctx is not None:
        add_script_run_ctx(worker, ctx)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        on_progress()
    on_progress()
    if "error" in box:
        raise box["error"]
    return box["value"]


EPOCH_URL = "epoch"  # the boundary view's epoch slider, by its URL name (pages carry it when it is not drawn)
Live = Callable[[str, int, dict[str, np.ndarray]], None]  # (loss, epoch, parameters) of a fresh snapshot


def train_all(experiment: Experiment, bar: Any, live: Live | None = None) -> TrainResult:
    """Train every loss of the experiment (cached per loss), driving one st.progress bar over all of them.

    live(loss, epoch, parameters) is called from the script thread with each snapshot as training takes it,
    so a page can draw the run while it happens (a cached run calls it with nothing).
    """
    base = experiment.base()
    histories: dict[str, History] = {}
    errors: dict[str, str] = {}
    count = max(len(experiment.losses), 1)
    for i, choice in enumerate(experiment.losses):
        label = run_label(choice)
        updates: queue.SimpleQueue[tuple[float, str]] = queue.SimpleQueue()
        snapshots: queue.SimpleQueue[tuple[int, dict[str, np.ndarray]]] = queue.SimpleQueue()
        latest = [(0.0, "starting")]

        def show(
            i: int = i,
            choice: LossChoice = choice,
            label: str = label,
            updates: queue.SimpleQueue = updates,
            snapshots: queue.SimpleQueue = snapshots,
            latest: list = latest,
        ) -> None:
            while not updates.empty():
                latest[0] = updates.get()
            fraction, message = latest[0]
            bar.progress(min((i + fraction) / count, 1.0), text=f"{label} ({i + 1}/{count}): {message}")
            newest = None
            while not snapshots.empty():
                newest = snapshots.get()
            if newest is not None and live is not None:
                live(choice.name, *newest)

        def work(
            choice: LossChoice = choice,
            updates: queue.SimpleQueue = updates,
            snapshots: queue.SimpleQueue = snapshots,
        ) -> History:
            return history(
                base,
                choice,
                _progress=lambda f, m: updates.put((f, m)),
                _on_snapshot=lambda e, p: snapshots.put((e, p)),
            )

        try:
            histories[choice.name] = in_thread(work, show)
        except Exception as err:  # shown per loss as st.error, never a traceback
            errors[choice.name] = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
    bar.progress(1.0, text=f"Trained {len(histories)} of {count} losses")
    return TrainResult(experiment=experiment, histories=histories, errors=errors)


class LiveView:
    """Draws each loss's newest snapshot into one placeholder while training runs (a train_all live callback).

    panel(loss, epoch, parameters) turns a snapshot into one panel; figure(panels) draws them, one per loss
    in the order the losses first report. Redrawn at most every `every` seconds: each redraw costs the
    browser as much as a step, and a panel is computed only for a snapshot that is drawn (the training
    shares the CPU with it).
    """

    def __init__(
        self,
        placeholder: Any,
        panel: Callable[[str, int, dict[str, np.ndarray]], Any],
        figure: Callable[[list[Any]], Any],
        every: float = 0.25,
        skip: Callable[[str], bool] = lambda loss: False,
    ) -> None:
        self.placeholder, self.panel, self.figure, self.every = placeholder, panel, figure, every
        self.skip = skip  # losses this view draws nothing for
        self.newest: dict[str, tuple[int, dict[str, np.ndarray]]] = {}  # per loss: its newest snapshot
        self.panels: dict[str, tuple[int, Any]] = {}  # per loss: the epoch drawn and its panel
        self.drawn = 0.0

    def __call__(self, name: str, epoch: int, parameters: dict[str, np.ndarray]) -> None:
        if self.skip(name):
            return
        self.newest[name] = (epoch, parameters)
        if time.monotonic() - self.drawn >= self.every:
            self.draw()

    def draw(self) -> None:
        """Show each loss's newest snapshot (panels of snapshots already drawn are reused)."""
        for name, (epoch, parameters) in self.newest.items():
            if self.panels.get(name, (None,))[0] != epoch:
                self.panels[name] = (epoch, self.panel(name, epoch, parameters))
        if self.panels:
            charts.plot(self.placeholder, self.figure([panel for _, panel in self.panels.values()]))
        self.drawn = time.monotonic()


def live_title(name: str, epoch: int) -> str:
    """A live panel's title: the loss, then 'training · epoch e' on a second, smaller line."""
    return f"{losses.get(name).title}<br><span style='font-size:11px'>training · epoch {epoch}</span>"


def live_boundaries(placeholder: Any, experiment: Experiment, data: Dataset) -> LiveView:
    """Each loss's decision map at its newest snapshot, while training runs."""
    base = experiment.base()

    def panel(name: str, epoch: int, parameters: dict[str, np.ndarray]) -> figures.BoundaryPanel:
        task = losses.get(name).task
        decision = evaluate.decision_map(initial_model(base, name), task, data, parameters)
        return figures.BoundaryPanel(name, live_title(name, epoch), [decision])

    return LiveView(
        placeholder,
        panel,
        lambda panels: figures.boundary_figure(data=data, panels=panels),
        skip=lambda loss: not draws_boundary(loss),
    )


def show_problems(result: TrainResult) -> None:
    """One st.error per loss that could not train, one st.warning per loss that diverged."""
    for name, message in result.errors.items():
        st.error(f"**{run_label(result.choice(name))}** could not train: {message}")
    for name in result.names:
        h = result.histories[name]
        if h.diverged:
            st.warning(
                f"**{run_label(result.choice(name))}** diverged: {h.message}. Its views show the last "
                "finite weights.",
                icon="⚠️",
            )


def describe(experiment: Experiment) -> str:
    """One line on an experiment's data, model and optimiser (shown above results)."""
    d, m, o = experiment.data, experiment.model, experiment.optim
    parts = [d.source if d.source != ex.CSV else f"CSV (target {d.csv_target})"]
    if d.n:
        parts.append(f"n={d.n}")
    if d.label_noise:
        kind = "outliers" if d.source in ("sine", "line") else f"{d.noise_kind} label noise"
        parts.append(f"{d.label_noise:.0%} {kind}")
    if d.imbalance > 1:
        parts.append(f"imbalance {d.imbalance:g}:1")
    net = {
        "linear": "Linear",
        "mlp": f"MLP {m.depth}×{m.width} {m.activation}",
        "cnn": f"CNN width {m.width}",
    }
    batch = "full batch" if o.batch_size is None else f"batch {o.batch_size}"
    return (
        f"{', '.join(parts)} · {net[m.kind]} · {o.optimizer} lr={o.lr:g}, wd={o.weight_decay:g}, "
        f"{o.epochs} epochs, {batch}, seed {o.seed}"
    )


def panel_title(choice: LossChoice, history: History) -> str:
    """A small multiple's title: the loss, then its hyperparameters and test accuracy on a smaller line."""
    shown = ", ".join(f"{k}={v:.3g}" for k, v in choice.params)
    second = " · ".join(p for p in (shown, f"test acc {history.final['test_acc']:.0%}") if p)
    return f"{losses.get(choice.name).title}<br><span style='font-size:11px'>{second}</span>"


def data_summary(data: Dataset) -> str:
    """One line on the loaded data: sizes, classes or target, and what was done to it."""
    kind = f"{data.n_classes} classes" if data.n_classes else "regression target"
    text = f"{len(data.X_train)} training / {len(data.X_test)} test rows, {data.n_features} features, {kind}."
    notes = "; ".join(data.notes)
    return text + (f" {notes[:1].upper()}{notes[1:]}." if notes else "")


def map_caption(data: Dataset) -> str:
    """How to read the decision maps (colours, points, and the PCA plane for more than two features)."""
    if data.n_classes == 2:
        colour = "Colour: P(class) (white = 0.5, black line = the boundary). "
    else:
        colour = "Colour: the predicted class, paler where the model is less confident. "
    text = (
        f"Drag the epoch slider or press ▶ Replay to watch training. {colour}Points: training data coloured "
        "by the label the model was given; X = a flipped (noisy) label."
    )
    if data.projection is not None:
        text += (
            f" The model was trained on all {data.n_features} features; the map shows its predictions on "
            "the plane of the first two principal components of the training data (grid points mapped "
            "back with the inverse projection), so projected points can sit on the 'wrong' side."
        )
    return text


WEIGHT_CAPTION = (
    "|∂L/∂z| per training sample at the final weights, against the label the model was given: how hard each "
    "sample pulls on the model. Compare the mean weights in each panel's subtitle: an unbounded loss "
    "(squared error, cross-entropy) lets noisy samples pull hardest; bounded or redescending losses cap "
    "their pull. With imbalance, the ratio says how much harder a loss pulls on the minority class."
)


# ------------------------------------------------------------------ a result's figure panels (cached pieces)


def _frames(result: TrainResult, per_loss: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """Per-loss snapshot items aligned on the union of snapshot epochs, with the frames' labels."""
    epochs = [result.histories[n].snapshot_epochs for n in result.names]
    union, aligned = evaluate.frames_by_epoch(epochs, per_loss)
    return [f"epoch {e}" for e in union], aligned


def boundary_panels(result: TrainResult) -> tuple[list[str], list[figures.BoundaryPanel]]:
    """(frame labels, one panel of decision maps per loss) for the animated boundary figure."""
    base, choices = result.experiment.base(), [result.choice(n) for n in result.names]
    labels, maps = _frames(result, [snapshot_maps(base, c) for c in choices])
    titles = [panel_title(c, result.histories[c.name]) for c in choices]
    return labels, [
        figures.BoundaryPanel(c.name, t, m) for c, t, m in zip(choices, titles, maps, strict=True)
    ]


def fit_panels(result: TrainResult) -> tuple[list[str], list[figures.FitPanel]]:
    """(frame labels, one panel of fitted curves per loss) for a 1-D regression."""
    base, choices = result.experiment.base(), [result.choice(n) for n in result.names]
    labels, fits = _frames(result, [snapshot_fits(base, c) for c in choices])
    return labels, [figures.FitPanel(c.name, run_label(c), f) for c, f in zip(choices, fits, strict=True)]


def prediction_panels(result: TrainResult) -> list[figures.PredictionPanel]:
    """Test predictions of every loss (regression with several features)."""
    base = result.experiment.base()
    return [
        figures.PredictionPanel(n, run_label(result.choice(n)), predictions(base, result.choice(n)))
        for n in result.names
    ]


def curve_panels(result: TrainResult) -> list[figures.RunPanel]:
    """Every loss's History for the training-curve figure."""
    return [figures.RunPanel(result.histories[n], run_label(result.choice(n))) for n in result.names]


def metrics_rows(result: TrainResult, data: Dataset) -> list[dict[str, Any]]:
    """The metrics table: final test scores and training time per loss."""
    base = result.experiment.base()
    rows = [
        figures.MetricsRow(
            run_label(result.choice(n)),
            evaluate.test_scores(data, predictions(base, result.choice(n))),
            result.histories[n].seconds,
        )
        for n in result.names
    ]
    return figures.metrics_table(runs=rows, task=data.task)


def weight_panels(result: TrainResult) -> list[figures.WeightPanel]:
    """Per-sample gradient weights of every loss's final weights."""
    base = result.experiment.base()
    return [
        figures.WeightPanel(n, run_label(result.choice(n)), gradient_weights(base, result.choice(n)))
        for n in result.names
    ]


@st.fragment
def boundary_view(page: Any, result: TrainResult, data: Dataset, points: Field) -> None:
    """The decision boundaries at one epoch, an epoch slider and a replay button, rerun on their own.

    One frame is sent per step (a Plotly animation would send every frame on every load); the slider and
    the replay live in a fragment, so moving them reruns only this view.
    """
    frames, panels = boundary_panels(result)
    show_points = page.control(points)
    epoch = page.control(Field(EPOCH_URL, "Epoch", "select_slider", frames[-1], options=tuple(frames)))
    chart = st.empty()

    def draw(i: int) -> None:
        shown = [replace(p, maps=[p.maps[i]]) for p in panels]
        charts.show(
            chart, figures.boundary_figure, key=None if replaying else "train.fig.boundaries",
            data=data, panels=shown, show_points=show_points,
        )  # fmt: skip

    replaying = st.button("▶ Replay training", key="train.replay", help="Steps through the snapshots.")
    if replaying:
        for i in range(len(frames)):
            draw(i)
            time.sleep(0.15)
    else:
        draw(frames.index(epoch))
    page.finish_fragment()


@st.fragment
def curves_view(page: Any, result: TrainResult, data: Dataset, scale: Field) -> None:
    """The training curves with their loss-axis control, rerun on their own when it changes."""
    chosen = page.control(scale)
    charts.show(
        st, figures.training_curves_figure, key="train.fig.curves",
        panels=curve_panels(result), task=data.task, loss_scale=chosen,
    )  # fmt: skip
    page.finish_fragment()
