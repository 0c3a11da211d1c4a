"""Train & Compare: settings, cached training (one run per loss, same data and initialisation), the derived
views (decision surfaces per snapshot, metrics, gradient weights) and the page's widget groups.

Presets reproduce the founding claims (e.g. "Normalized Loss Functions for Deep Learning with Noisy Labels").

Reuse from another page (e.g. Landscape): after a Train, `st.session_state[LAST_RESULT]` holds a TrainResult;
its `.settings` (a frozen, hashable TrainSettings) is the cache key:

    settings = st.session_state[LAST_RESULT].settings
    runs = trained_runs(settings)               # {loss name: History}, st.cache_data (trains on a miss)
    data = dataset(settings.data)               # the identical Dataset every loss was trained on
    model = trained_model(settings, "gce")      # nn.Module carrying History.final_state; st.cache_resource:
                                                # shared by all sessions, never mutate it (functional_call)
    init = initial_model(settings, "gce")       # the shared initialisation, same weights for every loss
"""

from __future__ import annotations

import csv
import hashlib
import io
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import streamlit as st
import torch
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
from torch import nn

from lossviz import boundary, losses, metrics
from lossviz import data as datasets
from lossviz.losses import make, n_outputs
from lossviz.models import make_model
from lossviz.presets import PRESETS, Preset
from lossviz.results import Curve, Dataset, History, Surface
from lossviz.train import OPTIMIZERS, fit, predict_proba, with_state
from lossviz.ui import widgets
from lossviz.ui.cache import ParamsKey, params_key
from lossviz.ui.state import PageState, nearest, parse_number

PAGE = "train"
LAST_RESULT = "train.result"  # session_state key of the last TrainResult (kept until the next Train)
CURRENT = "train.settings"  # session_state key of the TrainSettings the widgets show now
PENDING = "train.pending"  # set by a preset button: train on the next run
CSV_BYTES = "train.csv.bytes"  # the uploaded CSV's bytes (kept across reruns)
MAX_LOSSES = 6
SNAPSHOTS = 20  # parameter snapshots per run = animation frames
MAP_RESOLUTION = 64  # grid points per axis of the animated decision maps
CSV = "csv"

LR_OPTIONS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0)
WEIGHT_DECAY_OPTIONS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
EPOCH_OPTIONS = (5, 10, 20, 30, 50, 100, 150, 200, 300, 400, 500, 1000, 2000)
BATCH_OPTIONS = ("full", "16", "32", "64", "128", "256")
IMBALANCE_OPTIONS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
WIDTH_OPTIONS = (4, 8, 16, 32, 64, 128, 256)
VARIABLE_K = ("blobs", "spirals", "gaussian_quantiles")  # toy sets whose class count is a choice
MODEL_TITLES = {"linear": "Linear", "mlp": "MLP", "cnn": "Small CNN (8×8 digits)"}
OPTIMIZER_TITLES = {
    "sgd": "SGD",
    "momentum": "SGD + momentum",
    "adam": "Adam",
    "adamw": "AdamW",
    "sam": "SAM",
}
NOISE_KIND_TITLES = {
    "symmetric": "symmetric",
    "asymmetric": "asymmetric (class k → k−1)",
    "pair": "pair flip",
}
TASK_TITLES = {"multiclass": "Multiclass losses (K logits)", "binary": "Binary margin losses (one logit)"}


# ----------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class DataSettings:
    """Everything that determines the Dataset (primitive, hashable)."""

    source: str = "moons"  # a lossviz.data.DATASETS key, or "csv"
    n: int | None = 400  # None: all rows of a real set
    noise: float | None = None  # generator noise; None = the generator's default
    n_classes: int | None = None  # for blobs, spirals, gaussian_quantiles
    label_noise: float = 0.0
    noise_kind: str = "symmetric"
    imbalance: float = 1.0
    seed: int = 0
    csv_digest: str = ""  # sha1 of the uploaded bytes (see register_csv)
    csv_target: str = ""
    csv_task: str = "auto"


@dataclass(frozen=True)
class TrainSettings:
    """One Train press: data, model, optimiser, and the losses with their hyperparameters (display order)."""

    data: DataSettings = field(default_factory=DataSettings)
    model: str = "mlp"
    width: int = 32
    depth: int = 2
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 1e-2
    weight_decay: float = 0.0
    epochs: int = 200
    batch_size: int | None = None
    seed: int = 0  # initialisation and minibatch order, shared by every loss
    losses: tuple[tuple[str, ParamsKey], ...] = ()

    def run_key(self) -> TrainSettings:
        """The settings without the loss list: what one loss's run depends on besides its own params."""
        return replace(self, losses=())


@dataclass(frozen=True)
class TrainResult:
    """What one Train press produced: a History per successful loss, a message per failed one."""

    settings: TrainSettings
    histories: dict[str, History]
    errors: dict[str, str]

    @property
    def names(self) -> list[str]:
        """The successfully trained losses, in selection order."""
        return [name for name, _ in self.settings.losses if name in self.histories]


def run_label(name: str, params: Mapping[str, float] | ParamsKey = ()) -> str:
    """A loss's display label with its hyperparameters: 'Generalized cross-entropy · q=0.7'."""
    items = params.items() if isinstance(params, Mapping) else params
    shown = ", ".join(f"{k}={v:.3g}" for k, v in items)
    title = losses.get(name).title
    return f"{title} · {shown}" if shown else title


def panel_title(name: str, params: Mapping[str, float] | ParamsKey = (), note: str = "") -> str:
    """A small-multiple title: the loss's title, then its hyperparameters and a note on a smaller line."""
    items = params.items() if isinstance(params, Mapping) else params
    second = " · ".join(part for part in (", ".join(f"{k}={v:.3g}" for k, v in items), note) if part)
    title = losses.get(name).title
    return f"{title}<br><span style='font-size:11px'>{second}</span>" if second else title


# ----------------------------------------------------------------------------------------------- data


@st.cache_resource(max_entries=1)
def _csv_store() -> dict[str, bytes]:
    """digest -> CSV bytes, shared by every session so cached datasets can be rebuilt from their digest."""
    return {}


def register_csv(content: bytes) -> str:
    """Keep uploaded CSV bytes under their sha1 digest (the cache key); returns the digest."""
    digest = hashlib.sha1(content).hexdigest()
    store = _csv_store()
    if digest not in store:
        if len(store) >= 16:  # bounded: forget the oldest upload
            store.pop(next(iter(store)))
        store[digest] = bytes(content)
    return digest


def csv_columns(content: bytes) -> list[str]:
    """The header row of a CSV (for the target picker); [] when it cannot be read."""
    try:
        text = content[:65536].decode("utf-8-sig")
        first = next(csv.reader(io.StringIO(text), csv.Sniffer().sniff(text[:4096], delimiters=",;\t")))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        try:
            first = next(csv.reader(io.StringIO(content[:65536].decode("utf-8-sig", "replace"))))
        except StopIteration:
            return []
    return [c.strip() for c in first if c.strip()]


@st.cache_data(max_entries=64, show_spinner=False)
def dataset(settings: DataSettings) -> Dataset:
    """The Dataset of these settings (ValueError with the library's message for a bad combination)."""
    if settings.source == CSV:
        content = _csv_store().get(settings.csv_digest)
        if content is None:
            raise ValueError("the uploaded CSV is no longer in memory; upload it again")
        return datasets.load_csv(
            content,
            settings.csv_target,
            settings.csv_task,  # type: ignore[arg-type]
            seed=settings.seed,
            label_noise=settings.label_noise,
            noise_kind=settings.noise_kind,  # type: ignore[arg-type]
            imbalance=settings.imbalance,
        )
    return datasets.make_dataset(
        settings.source,
        n=settings.n,
        noise=settings.noise,
        seed=settings.seed,
        label_noise=settings.label_noise,
        noise_kind=settings.noise_kind,  # type: ignore[arg-type]
        imbalance=settings.imbalance,
        n_classes=settings.n_classes,
    )


@st.cache_data(max_entries=16, show_spinner=False)
def real_size(name: str) -> int:
    """Number of rows of a bundled real dataset (the n slider's maximum)."""
    full = datasets.make_dataset(name)
    return len(full.X_train) + len(full.X_test)


def toy_default_noise(name: str) -> float:
    """The generator's default noise for a toy set; 0.1 for real sets and CSVs (their slider's start)."""
    try:
        return datasets.default_noise(name)
    except ValueError:
        return 0.1


# ----------------------------------------------------------------------------------------------- training


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the previous count.

    The page's models are tiny (a 64-wide MLP on a few hundred points): splitting each op over threads
    costs more than it gains, and on a shared 2-core machine the spinning threads made a 50-epoch run
    take 3-15 s instead of 0.1 s (measured here).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def initial_model(settings: TrainSettings, loss: str) -> nn.Module:
    """The freshly initialised model for one loss: same weights for every loss with the same output count."""
    data = dataset(settings.data)
    spec = losses.get(loss)
    return make_model(
        settings.model,  # type: ignore[arg-type]
        data.n_features,
        n_outputs(spec.task, data.n_classes),
        width=settings.width,
        depth=settings.depth,
        activation=settings.activation,  # type: ignore[arg-type]
        seed=settings.seed,
    )


@st.cache_data(max_entries=96, show_spinner=False)
def train_run(
    settings: TrainSettings,
    loss: str,
    params: ParamsKey,
    _progress: Callable[[float, str], None] | None = None,
) -> History:
    """One loss trained with settings (cached on settings.run_key(), loss, params; _progress unhashed)."""
    data = dataset(settings.data)
    with single_threaded():
        return fit(
            initial_model(settings, loss),
            make(loss, **dict(params)),
            data,
            optimizer=settings.optimizer,  # type: ignore[arg-type]
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            seed=settings.seed,
            snapshots=SNAPSHOTS,
            device="cpu",  # small models: the CPU beats a GPU's launch overhead and keeps runs reproducible
            progress=_progress,
        )


def _run_in_thread(target: Callable[[], Any], on_progress: Callable[[], None]) -> Any:
    """Run target in a worker thread while the script thread calls on_progress; re-raise its error.

    A cached function records the st elements it touches for replay; updating a progress bar created
    outside it would break that replay, so the bar is driven from the script thread instead.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = target()
        except Exception as err:  # any failure is handed to the script thread, which reports it per loss
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


def train_all(settings: TrainSettings, bar: Any) -> TrainResult:
    """Train every selected loss (cached per loss) on identical data and initialisation, driving one
    st.progress bar over all of them; a loss that cannot train is reported in TrainResult.errors."""
    histories: dict[str, History] = {}
    errors: dict[str, str] = {}
    base = settings.run_key()
    count = max(len(settings.losses), 1)
    for i, (name, params) in enumerate(settings.losses):
        label = run_label(name, params)
        updates: queue.SimpleQueue[tuple[float, str]] = queue.SimpleQueue()
        latest = [(0.0, "starting")]

        def show(
            i: int = i, label: str = label, updates: queue.SimpleQueue = updates, latest: list = latest
        ) -> None:
            while not updates.empty():
                latest[0] = updates.get()
            fraction, message = latest[0]
            bar.progress(min((i + fraction) / count, 1.0), text=f"{label} ({i + 1}/{count}): {message}")

        try:
            histories[name] = _run_in_thread(
                lambda name=name, params=params, updates=updates: train_run(
                    base, name, params, _progress=lambda f, m: updates.put((f, m))
                ),
                show,
            )
        except Exception as err:  # shown per loss as st.error, never a traceback
            errors[name] = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
    bar.progress(1.0, text=f"Trained {len(histories)} of {count} losses")
    return TrainResult(settings=settings, histories=histories, errors=errors)


def trained_runs(settings: TrainSettings) -> dict[str, History]:
    """{loss name: History} for every loss of settings (cached; trains a missing one without progress)."""
    base = settings.run_key()
    return {name: train_run(base, name, params) for name, params in settings.losses}


@st.cache_resource(max_entries=32)
def trained_model(settings: TrainSettings, loss: str) -> nn.Module:
    """The model trained with one loss of settings, in eval mode (shared across sessions: never mutate it)."""
    params = dict(settings.losses)[loss]
    history = train_run(settings.run_key(), loss, params)
    return with_state(initial_model(settings, loss), history.final_state)


# ------------------------------------------------------------------------------------------- derived views


def _resolve_history(
    settings: TrainSettings, loss: str, params: ParamsKey, history: History | None
) -> History:
    return history if history is not None else train_run(settings.run_key(), loss, params)


def plane_to_inputs(data: Dataset) -> Callable[[np.ndarray], np.ndarray]:
    """Maps (M, 2) points of the plotted plane to model inputs (M, D): inverse PCA for D > 2, the first
    coordinate for D = 1, themselves for D = 2."""
    if data.projection is not None:
        return data.projection.inverse_transform
    if data.n_features == 1:
        return lambda plane: np.asarray(plane)[:, :1]
    return np.asarray


@st.cache_data(max_entries=96, show_spinner=False)
def snapshot_surfaces(
    settings: TrainSettings, loss: str, params: ParamsKey, _history: History | None = None
) -> list[Surface]:
    """Class probabilities z (ny, nx, K) on the map grid at every snapshot of one run (animation frames)."""
    history = _resolve_history(settings, loss, params, _history)
    data = dataset(settings.data)
    model = initial_model(settings, loss)
    task = losses.get(loss).task
    xy = data.view_2d(np.concatenate([data.X_train, data.X_test]))  # (N, 2) the plotted plane
    margin = 0.08 * float(np.ptp(xy, axis=0).max())
    to_inputs = plane_to_inputs(data)
    surfaces = []
    for epoch, state in zip(history.snapshot_epochs, history.snapshots, strict=True):

        def proba(plane: np.ndarray, state: dict[str, np.ndarray] = state) -> np.ndarray:
            return predict_proba(model, np.asarray(to_inputs(plane), np.float32), task, state)  # (M, K)

        with single_threaded():
            surface = boundary.decision_surface(proba, xy, MAP_RESOLUTION, margin)
        # keep only the (ny, nx, K) probabilities, in float32: these are cached for every snapshot
        probs = surface.extra["proba"].astype(np.float32)
        surfaces.append(Surface(surface.xs, surface.ys, probs, label=f"epoch {int(epoch)}"))
    return surfaces


@st.cache_data(max_entries=96, show_spinner=False)
def snapshot_curves(
    settings: TrainSettings, loss: str, params: ParamsKey, _history: History | None = None
) -> list[Curve]:
    """A 1-D regression's fitted curve at every snapshot of one run."""
    history = _resolve_history(settings, loss, params, _history)
    data = dataset(settings.data)
    model = initial_model(settings, loss)
    margin = 0.03 * float(np.ptp(data.X_train[:, 0]) or 1.0)
    label = run_label(loss, params)
    curves = []
    for state in history.snapshots:
        with single_threaded():
            curve = boundary.prediction_curve(
                lambda x, state=state: predict_proba(model, x, "regression", state), data.X_train, 200, margin
            )
        curves.append(Curve(name=loss, x=curve.x, y=curve.y, label=label))
    return curves


@st.cache_data(max_entries=96, show_spinner=False)
def final_predictions(
    settings: TrainSettings, loss: str, params: ParamsKey, _history: History | None = None
) -> np.ndarray:
    """Test predictions of the final (last finite) weights: (M, K) probabilities, (M,) for regression."""
    history = _resolve_history(settings, loss, params, _history)
    data = dataset(settings.data)
    with single_threaded():
        model = initial_model(settings, loss)
        return predict_proba(model, data.X_test, losses.get(loss).task, history.final_state)


def test_metrics(data: Dataset, predictions: np.ndarray) -> dict[str, float]:
    """Final test metrics: accuracy, NLL, ECE, Brier, macro F1 (classification); R², MSE, MAE (regression)."""
    if data.task == "regression":
        residual = np.asarray(predictions, np.float64) - data.y_test
        total = float(np.sum((data.y_test - data.y_test.mean()) ** 2)) or 1e-12
        return {
            "test R²": 1.0 - float(np.sum(residual**2)) / total,
            "test MSE": float(np.mean(residual**2)),
            "test MAE": float(np.mean(np.abs(residual))),
        }
    probs = np.asarray(predictions, np.float64)
    if not np.isfinite(probs).all():
        return {}
    return {
        "test accuracy": metrics.accuracy(probs, data.y_test),
        "NLL": metrics.nll(probs, data.y_test),
        "ECE": metrics.ece(probs, data.y_test),
        "Brier": metrics.brier(probs, data.y_test),
        "macro F1": metrics.macro_f1(probs.argmax(1), data.y_test),
    }


@st.cache_data(max_entries=96, show_spinner=False)
def gradient_weights(
    settings: TrainSettings, loss: str, params: ParamsKey, _history: History | None = None
) -> np.ndarray:
    """(N,) per-sample gradient weight |dL_i/dz_i| of the final weights on the training set (given labels)."""
    history = _resolve_history(settings, loss, params, _history)
    data = dataset(settings.data)
    model = with_state(initial_model(settings, loss), history.final_state)
    with single_threaded():
        return metrics.per_sample_gradient_weight(
            model, make(loss, **dict(params)), data.X_train, data.y_train
        )


def frames_by_epoch(
    epochs: Sequence[np.ndarray], items: Sequence[Sequence[Any]]
) -> tuple[list[int], list[list[Any]]]:
    """Align per-loss snapshot lists on the union of their epochs: a loss that stopped early (diverged) keeps
    showing its last snapshot. Returns (epochs, frames[f][i])."""
    union = sorted({int(e) for es in epochs for e in es})
    frames = []
    for epoch in union:
        frame = []
        for es, its in zip(epochs, items, strict=True):
            idx = int(np.searchsorted(np.asarray(es), epoch, side="right")) - 1
            frame.append(its[max(idx, 0)])
        frames.append(frame)
    return union, frames


# ----------------------------------------------------------------------------------------------- presets


_DATA_KEYS = ("n", "noise", "n_classes", "label_noise", "noise_kind", "imbalance")
_MODEL_KEYS = {"kind": "model", "width": "width", "depth": "depth", "activation": "activation"}
_TRAINING_KEYS = ("optimizer", "lr", "weight_decay", "epochs", "batch_size")


def presets() -> dict[str, Preset]:
    """lossviz.presets.PRESETS: the one-click experiments (title = .name, claim = .description)."""
    return dict(PRESETS)


def preset_settings(key: str) -> TrainSettings:
    """The TrainSettings of a library preset, as the page's widgets express them.

    Toy-data noise left at the generator's default is made explicit (the page shows it on a slider); the
    number of snapshots is the page's own (SNAPSHOTS), and the seed is 0, as run_preset's default.
    """
    if key not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {key!r}")
    preset = PRESETS[key]
    source = preset.dataset["name"]
    data = {k: preset.dataset[k] for k in _DATA_KEYS if k in preset.dataset}
    if source not in _real_sets() and data.get("noise") is None:
        data["noise"] = toy_default_noise(source)
    if source in VARIABLE_K and data.get("n_classes") is None:
        data["n_classes"] = 3  # make_dataset's default class count
    if data.get("n") is None:  # make_dataset's default: 500 points for toy sets, every row of a real set
        data["n"] = None if source in _real_sets() else 500
    model = {_MODEL_KEYS[k]: v for k, v in preset.model.items() if k in _MODEL_KEYS}
    training = {k: preset.training[k] for k in _TRAINING_KEYS if k in preset.training}
    bound = tuple((name, params_key(losses.get(name).bind(**params))) for name, params in preset.losses)
    return TrainSettings(data=DataSettings(source=source, **data), **model, **training, losses=bound)


def widget_values(settings: TrainSettings) -> dict[str, Any]:
    """The page's widget keys and values that reproduce settings (a preset, or a run to restore)."""
    d = settings.data
    values: dict[str, Any] = {f"{PAGE}.dataset": d.source}
    if d.source != CSV:
        if d.n is not None:
            values[f"{PAGE}.n"] = int(d.n)
        elif d.source in _real_sets():
            values[f"{PAGE}.n"] = real_size(d.source)
        if d.source not in _real_sets():
            noise = d.noise if d.noise is not None else toy_default_noise(d.source)
            values[f"{PAGE}.noise.{d.source}"] = float(noise)
    if d.n_classes is not None:
        values[f"{PAGE}.K"] = int(d.n_classes)
    values.update(
        {
            f"{PAGE}.label_noise": float(d.label_noise),
            f"{PAGE}.noise_kind": d.noise_kind,
            f"{PAGE}.imbalance": float(d.imbalance),
            f"{PAGE}.data_seed": int(d.seed),
            f"{PAGE}.model": settings.model,
            f"{PAGE}.width": int(settings.width),
            f"{PAGE}.depth": int(settings.depth),
            f"{PAGE}.activation": settings.activation,
            f"{PAGE}.optimizer": settings.optimizer,
            f"{PAGE}.lr": float(settings.lr),
            f"{PAGE}.weight_decay": float(settings.weight_decay),
            f"{PAGE}.epochs": int(settings.epochs),
            f"{PAGE}.batch": "full" if settings.batch_size is None else str(settings.batch_size),
            f"{PAGE}.seed": int(settings.seed),
        }
    )
    for task in ("multiclass", "binary", "regression"):
        values[f"{PAGE}.losses.{task}"] = [n for n, _ in settings.losses if losses.get(n).task == task]
    for name, params in settings.losses:
        for param, value in params:
            values[f"{PAGE}.{name}.{param}"] = value
    return values


def apply_settings(settings: TrainSettings) -> None:
    """Write settings into the page's widget keys (call before the widgets exist, e.g. in on_click)."""
    for key, value in widget_values(settings).items():
        st.session_state[key] = value


def load_preset(key: str) -> None:
    """on_click of a preset button: fill every widget with the preset and ask the page to train."""
    apply_settings(preset_settings(key))
    st.session_state[PENDING] = key


# ----------------------------------------------------------------------------------------------- widgets


def _real_sets() -> tuple[str, ...]:
    toy = getattr(datasets, "_TOY", {})
    return tuple(name for name in datasets.DATASETS if name not in toy)


def select_number(
    label: str,
    options: Sequence[float],
    state: PageState,
    name: str,
    default: float,
    *,
    container: Any = st,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    help: str | None = None,  # noqa: A002 (streamlit's argument name)
) -> float:
    """A select slider over fixed numeric options keyed `train.name`, mirrored to the URL as `name`."""
    key = state.key(name)
    parse = parse_number(min(options), max(options))
    state.restore(key, lambda raw: nearest(options, parse(raw)), default)
    if st.session_state[key] not in options:
        st.session_state[key] = nearest(options, st.session_state[key])
    value = container.select_slider(label, options=list(options), format_func=fmt, key=key, help=help)
    state.record(key, value)
    return float(value)


def float_slider(
    label: str,
    low: float,
    high: float,
    step: float,
    state: PageState,
    name: str,
    default: float,
    *,
    url: str | None = None,
    container: Any = st,
    help: str | None = None,  # noqa: A002
) -> float:
    """A float slider keyed `train.name`, mirrored to the URL (as url, or name)."""
    key = state.key(name)
    state.restore(key, parse_number(low, high), default, url=url)
    st.session_state[key] = float(min(max(float(st.session_state[key]), low), high))
    value = container.slider(label, low, high, step=step, key=key, help=help)
    state.record(key, value, url=url)
    return float(value)


def _store_upload() -> None:
    """on_change of the uploader: keep the new file's bytes, or forget them when the file is removed."""
    file = st.session_state.get(f"{PAGE}.upload")
    st.session_state[CSV_BYTES] = file.getvalue() if file is not None else None


def data_controls(state: PageState) -> DataSettings | None:
    """Dataset, size, input noise, label noise (rate, kind), imbalance and data seed (None: no CSV yet)."""
    sources = [*datasets.DATASETS, CSV]
    titles = {CSV: "Upload a CSV…", **{k: k.replace("_", " ") for k in datasets.DATASETS}}
    source = widgets.choice(
        "Dataset", sources, state, "dataset", "moons", format_func=titles.get, kind="select",
        help="Toy 2-D generators, scikit-learn's bundled real sets (shown on their first two principal "
        "components), or your own CSV.",
    )  # fmt: skip
    if source in datasets.DATASETS:
        st.caption(datasets.DATASETS[source])
    regression = source in datasets.REGRESSION_DATASETS
    n: int | None = None
    noise: float | None = None
    n_classes: int | None = None
    digest, target, csv_task = "", "", "auto"
    if source == CSV:
        uploaded = st.file_uploader(
            "CSV file (header row, numeric features)",
            type=["csv", "txt"],
            key=f"{PAGE}.upload",
            on_change=_store_upload,
        )
        if uploaded is not None:
            st.session_state[CSV_BYTES] = uploaded.getvalue()
        content = st.session_state.get(CSV_BYTES)
        if not content:
            st.info("Upload a CSV with a header row; then choose the target column.")
            return None
        columns = csv_columns(content)
        if not columns:
            st.error("Could not read a header row from the file.")
            return None
        target_key = f"{PAGE}.csv.target"
        if st.session_state.get(target_key) not in columns:  # a new file: default to its last column
            st.session_state[target_key] = columns[-1]
        target = st.selectbox("Target column", columns, key=target_key)
        csv_task = st.radio(
            "Target is", ["auto", "classification", "regression"], horizontal=True, key=f"{PAGE}.csv.task"
        )
        digest = register_csv(content)
        try:  # what "auto" decided decides which noise controls apply
            probe = dataset(DataSettings(source=CSV, csv_digest=digest, csv_target=target, csv_task=csv_task))
            csv_task = probe.task if probe.task == "regression" else csv_task
        except ValueError:
            pass  # the page shows the library's message when it builds the dataset
    elif source in _real_sets():
        size = real_size(source)
        n = widgets.integer(
            "Samples n", 50, size, state, "n", size, help="A stratified subsample of the rows."
        )
        n = None if n >= size else n
    else:
        n = widgets.integer("Samples n", 40, 3000, state, "n", 400)
        noise = float_slider(
            "Input noise", 0.0, 3.0, 0.01, state, f"noise.{source}", toy_default_noise(source), url="noise",
            help="The generator's jitter (cluster spread for blobs; the noise scale for regression).",
        )  # fmt: skip
        if source in VARIABLE_K:
            n_classes = widgets.integer("Classes K", 2, 10, state, "K", 3)
    csv_regression = source == CSV and csv_task == "regression"
    if regression or csv_regression:
        label_noise = float_slider(
            "Outlier fraction", 0.0, 0.5, 0.05, state, "label_noise", 0.0,
            help="Training targets shifted up by 2.5–5.",
        ) if not csv_regression else 0.0  # fmt: skip
        kind, imbalance = "symmetric", 1.0
    else:
        label_noise = float_slider(
            "Label noise rate", 0.0, 0.8, 0.05, state, "label_noise", 0.0,
            help="Fraction of training labels flipped to another class (test labels stay clean).",
        )  # fmt: skip
        kind = widgets.choice(
            "Label noise kind", datasets.NOISE_KINDS, state, "noise_kind", "symmetric",
            format_func=NOISE_KIND_TITLES.get, kind="select",
        )  # fmt: skip
        imbalance = select_number(
            "Imbalance (majority : minority)", IMBALANCE_OPTIONS, state, "imbalance", 1.0,
            fmt=lambda v: f"{v:g}:1",
            help="Training split subsampled to a long tail, class 0 : class K−1 = r; the test set stays "
            "balanced.",
        )  # fmt: skip
    seed = widgets.integer("Data seed", 0, 99, state, "data_seed", 0)
    return DataSettings(
        source=source, n=n, noise=noise, n_classes=n_classes, label_noise=label_noise, noise_kind=kind,
        imbalance=imbalance, seed=seed, csv_digest=digest, csv_target=target, csv_task=csv_task,
    )  # fmt: skip


def model_controls(state: PageState, data: Dataset) -> dict[str, Any]:
    """Model kind, width, depth, activation."""
    kinds = ["linear", "mlp"] + (["cnn"] if data.n_features == 64 and data.name == "digits" else [])
    model = widgets.choice("Model", kinds, state, "model", "mlp", format_func=MODEL_TITLES.get, kind="select")
    width, depth, activation = 32, 2, "relu"
    if model != "linear":
        width = int(select_number("Width", WIDTH_OPTIONS, state, "width", 32, fmt=lambda v: f"{v:g}"))
    if model == "mlp":
        depth = widgets.integer("Hidden layers", 1, 4, state, "depth", 2)
        activation = widgets.choice(
            "Activation", ("relu", "tanh", "gelu", "silu"), state, "activation", "relu"
        )
    return dict(model=model, width=width, depth=depth, activation=activation)


def optimizer_controls(state: PageState) -> dict[str, Any]:
    """Optimiser, learning rate, weight decay, epochs, batch size, seed."""
    optimizer = widgets.choice(
        "Optimiser", OPTIMIZERS, state, "optimizer", "adam", format_func=OPTIMIZER_TITLES.get, kind="select"
    )
    lr = select_number("Learning rate", LR_OPTIONS, state, "lr", 1e-2)
    weight_decay = select_number("Weight decay", WEIGHT_DECAY_OPTIONS, state, "weight_decay", 0.0)
    epochs = int(select_number("Epochs", EPOCH_OPTIONS, state, "epochs", 200, fmt=lambda v: f"{v:g}"))
    batch = widgets.choice(
        "Batch size",
        BATCH_OPTIONS,
        state,
        "batch",
        "full",
        kind="select",
        help="'full' = full-batch gradient descent.",
    )
    seed = widgets.integer("Seed (initialisation, batch order)", 0, 99, state, "seed", 0)
    return dict(
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, epochs=epochs,
        batch_size=None if batch == "full" else int(batch), seed=seed,
    )  # fmt: skip


DEFAULT_LOSSES = {
    "multiclass": ("cross_entropy", "gce", "apl_nce_rce"),
    "binary": (),
    "regression": ("squared", "huber", "cauchy"),
}


def loss_tasks(data: Dataset) -> tuple[str, ...]:
    """The loss tasks that fit a dataset: regression; multiclass; or, with K = 2, multiclass and binary."""
    if data.task == "regression":
        return ("regression",)
    return ("multiclass", "binary") if data.n_classes == 2 else ("multiclass",)


def loss_controls(state: PageState, data: Dataset) -> dict[str, dict[str, float]]:
    """Loss pickers for the dataset's task(s) (at most MAX_LOSSES in all) and each loss's registry sliders."""
    chosen: list[str] = []
    for task in loss_tasks(data):
        label = TASK_TITLES.get(task, "Losses") if data.task != "regression" else "Regression losses"
        if data.n_classes > 2 and task == "multiclass":
            label = f"Multiclass losses (K = {data.n_classes} logits)"
        url = "losses" if task != "binary" else "margin_losses"
        chosen += widgets.loss_multiselect(task, state, DEFAULT_LOSSES[task], label=label, url=url)
    if len(chosen) > MAX_LOSSES:
        st.warning(f"{len(chosen)} losses picked; only the first {MAX_LOSSES} are trained: remove some.")
        chosen = chosen[:MAX_LOSSES]
    selection: dict[str, dict[str, float]] = {}
    for name in chosen:
        spec = losses.get(name)
        if spec.params:
            with st.expander(run_label(name), expanded=False):
                st.caption(spec.notes or spec.paper)
                selection[name] = widgets.param_inputs(spec, state)
        else:
            selection[name] = {}
    return selection


def settings_from(
    data: DataSettings,
    model: Mapping[str, Any],
    optim: Mapping[str, Any],
    selection: Mapping[str, Mapping[str, float]],
) -> TrainSettings:
    """The TrainSettings of the current widget values (bound by the registry: defaults made explicit)."""
    bound = tuple((name, params_key(losses.get(name).bind(**params))) for name, params in selection.items())
    return TrainSettings(data=data, **model, **optim, losses=bound)


# ----------------------------------------------------------------------------------------------- summaries


def describe(settings: TrainSettings) -> str:
    """One line summarising a run's data, model and optimiser (shown above the results)."""
    d = settings.data
    parts = [d.source if d.source != CSV else f"CSV (target {d.csv_target})"]
    if d.n:
        parts.append(f"n={d.n}")
    if d.label_noise:
        parts.append(
            f"{d.label_noise:.0%} "
            + ("outliers" if d.source in datasets.REGRESSION_DATASETS else f"{d.noise_kind} label noise")
        )
    if d.imbalance > 1:
        parts.append(f"imbalance {d.imbalance:g}:1")
    model = MODEL_TITLES.get(settings.model, settings.model)
    if settings.model == "mlp":
        model += f" {settings.depth}×{settings.width} {settings.activation}"
    batch = "full batch" if settings.batch_size is None else f"batch {settings.batch_size}"
    optimizer = OPTIMIZER_TITLES.get(settings.optimizer, settings.optimizer)
    return (
        f"{', '.join(parts)} · {model} · {optimizer} lr={settings.lr:g}, wd={settings.weight_decay:g}, "
        f"{settings.epochs} epochs, {batch}, seed {settings.seed}"
    )


def show_metrics(rows: Sequence[Mapping[str, Any]]) -> None:
    """The metrics table as st.dataframe, the best value of each column highlighted."""
    import pandas as pd  # streamlit's own dependency

    from lossviz.figures.train import HIGHER_IS_BETTER, best_rows

    frame = pd.DataFrame(list(rows))
    best = best_rows(rows)
    percent = {"test accuracy", "macro F1"}

    def highlight(column: pd.Series) -> list[str]:
        index = best.get(str(column.name))
        return [
            "background-color: #d8f3dc; font-weight: 600" if i == index else "" for i in range(len(column))
        ]

    formats = {
        c: ("{:.1%}" if c in percent else "{:.2f}" if c == "time (s)" else "{:.4f}")
        for c in frame.columns[1:]
    }
    styled = frame.style.apply(highlight, axis=0, subset=list(frame.columns[1:])).format(formats, na_rep="—")
    st.dataframe(styled, hide_index=True, key="train.metrics")
    lower = [c for c in frame.columns if c in HIGHER_IS_BETTER and not HIGHER_IS_BETTER[c]]
    st.caption(f"Best value per column highlighted; lower is better for {', '.join(lower)}.")


def data_summary(data: Dataset) -> str:
    """One line on the loaded data: sizes, classes or target, and what was done to it."""
    kind = f"{data.n_classes} classes" if data.n_classes else "regression target"
    text = f"{len(data.X_train)} training / {len(data.X_test)} test rows, {data.n_features} features, {kind}."
    notes = "; ".join(data.notes)
    return text + (f" {notes[:1].upper()}{notes[1:]}." if notes else "")


def weight_groups(data: Dataset, settings: TrainSettings) -> tuple[np.ndarray, str, str, str]:
    """How to split the gradient-weight histograms: (mask of the second group, the two names, a title).

    Flipped labels (or outliers) when there are any; else the minority class of an imbalanced set; else one
    group of all samples.
    """
    if data.noisy_mask.any():
        if data.task == "regression":
            return data.noisy_mask, "inliers", "outliers", "inliers vs outliers"
        return data.noisy_mask, "clean labels", "flipped labels", "clean vs noisy labels"
    if data.n_classes and settings.data.imbalance > 1:
        title = f"majority vs minority class ({data.class_names[-1]})"
        others = "majority" if data.n_classes == 2 else "other classes"
        return data.y_train == data.n_classes - 1, others, "minority", title
    return np.zeros(len(data.y_train), bool), "all samples", "", "all training samples"


def map_caption(data: Dataset) -> str:
    """How to read the decision maps (colours, points, and the PCA plane for more than two features)."""
    if data.n_classes == 2:
        colour = "Colour: P(class) (white = 0.5, black line = the boundary). "
    else:
        colour = "Colour: the predicted class, paler where the model is less confident. "
    text = (
        f"Press ▶ Play or drag the epoch slider to replay training. {colour}Points: training data coloured "
        "by the label the model was given; X = a flipped (noisy) label."
    )
    if data.projection is not None:
        text += (
            f" The model was trained on all {data.n_features} features; the map shows its predictions on the "
            "plane of the first two principal components of the training data (grid points mapped back with "
            "the inverse projection), so projected points can sit on the 'wrong' side."
        )
    return text
