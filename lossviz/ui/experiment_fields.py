"""The shared experiment's controls: one table of Fields (URL name, widget, default) for data, model and
optimiser, and the two functions that turn their values into an Experiment and back.

Defaults are read from lossviz.experiment's dataclasses, so each default is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from lossviz import data as datasets
from lossviz.experiment import (
    CSV,
    DataSpec,
    Experiment,
    LossChoice,
    ModelSpec,
    OptimSpec,
    params_key,
    register_csv,
)
from lossviz.models import ACTIVATIONS
from lossviz.presets import Preset
from lossviz.results import Dataset
from lossviz.train import OPTIMIZERS
from lossviz.ui import runs, widgets
from lossviz.ui.fields import Field
from lossviz.ui.page import Page
from lossviz.ui.state import EXPERIMENT, PageState

D, M, O = DataSpec(), ModelSpec(), OptimSpec()
REAL_SETS = tuple(name for name in datasets.DATASETS if not datasets.is_toy(name))
VARIABLE_K = ("blobs", "spirals", "gaussian_quantiles")  # toy sets whose class count is a choice
TITLES = {CSV: "Upload a CSV…", **{k: k.replace("_", " ") for k in datasets.DATASETS}}
MODEL_TITLES = {"linear": "Linear", "mlp": "MLP", "cnn": "Small CNN (8×8 digits)"}
OPTIMIZER_TITLES = {
    "sgd": "SGD",
    "momentum": "SGD + momentum",
    "adam": "Adam",
    "adamw": "AdamW",
    "sam": "SAM",
}
NOISE_TITLES = {"symmetric": "symmetric", "asymmetric": "asymmetric (class k → k−1)", "pair": "pair flip"}

SOURCE = Field(
    "dataset",
    "Dataset",
    "select",
    D.source,
    options=(*datasets.DATASETS, CSV),
    format=TITLES.get,
    help="Toy 2-D generators, scikit-learn's bundled real sets (shown on their first two principal "
    "components), or your own CSV.",
)
N = Field("n", "Samples n", "int", D.n, low=40, high=3000, help="Points drawn before the train/test split.")
NOISE = Field(
    "noise",
    "Input noise",
    "slider",
    0.2,
    low=0.0,
    high=3.0,
    step=0.01,
    help="The generator's jitter (cluster spread for blobs; the noise scale for regression).",
)
K = Field("K", "Classes K", "int", 3, low=2, high=10)
LABEL_NOISE = Field(
    "label_noise",
    "Label noise rate",
    "slider",
    D.label_noise,
    low=0.0,
    high=0.8,
    step=0.05,
    help="Fraction of training labels flipped to another class (test labels stay clean).",
)
OUTLIERS = Field(
    "label_noise",
    "Outlier fraction",
    "slider",
    D.label_noise,
    low=0.0,
    high=0.5,
    step=0.05,
    help="Training targets shifted up by 2.5–5.",
)
NOISE_KIND = Field(
    "noise_kind",
    "Label noise kind",
    "select",
    D.noise_kind,
    options=datasets.NOISE_KINDS,
    format=NOISE_TITLES.get,
)
IMBALANCE = Field(
    "imbalance",
    "Imbalance (majority : minority)",
    "select_slider",
    D.imbalance,
    options=(1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0),
    format=lambda v: f"{v:g}:1",
    help="Training split subsampled to a long tail, class 0 : class K−1 = r; the test set stays balanced.",
)
DATA_SEED = Field("data_seed", "Data seed", "int", D.seed, low=0, high=99)
MODEL = Field("model", "Model", "select", M.kind, options=("linear", "mlp", "cnn"), format=MODEL_TITLES.get)
WIDTH = Field("width", "Width", "select_slider", M.width, options=(4, 8, 16, 32, 64, 128, 256))
DEPTH = Field("depth", "Hidden layers", "int", M.depth, low=1, high=4)
ACTIVATION = Field("activation", "Activation", "radio", M.activation, options=ACTIVATIONS)
OPTIMIZER = Field(
    "optimizer", "Optimiser", "select", O.optimizer, options=OPTIMIZERS, format=OPTIMIZER_TITLES.get
)
LR = Field(
    "lr",
    "Learning rate",
    "select_slider",
    O.lr,
    options=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0),
    format=lambda v: f"{v:g}",
)
WEIGHT_DECAY = Field(
    "weight_decay",
    "Weight decay",
    "select_slider",
    O.weight_decay,
    options=(0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    format=lambda v: f"{v:g}",
)
EPOCHS = Field(
    "epochs",
    "Epochs",
    "select_slider",
    O.epochs,
    options=(5, 10, 20, 30, 50, 100, 150, 200, 300, 400, 500, 1000, 2000),
)
BATCH = Field(
    "batch",
    "Batch size",
    "select",
    "full",
    options=("full", "16", "32", "64", "128", "256"),
    help="'full' = full-batch gradient descent.",
)
SEED = Field("seed", "Seed (initialisation, batch order)", "int", O.seed, low=0, high=99)
CSV_TARGET = Field("csv_target", "Target column", "select", "")
CSV_TASK = Field(
    "csv_task", "Target is", "radio", D.csv_task, options=("auto", "classification", "regression")
)
CSV_BYTES = "_lv.csv"  # session_state: the uploaded file's bytes (kept across reruns and page switches)


def _draw(field: Field, state: PageState, **kwargs: Any) -> Any:
    return widgets.draw(field, state, scope=EXPERIMENT, **kwargs)


def data_controls(state: PageState) -> DataSpec | None:
    """Dataset, size, input noise, label noise, imbalance and seed (None while a CSV is awaited)."""
    source = _draw(SOURCE, state)
    csv_digest, target, task = "", "", D.csv_task
    n, noise, k = None, None, None
    if source == CSV:
        upload = st.file_uploader(
            "CSV file (header row, numeric features)", type=["csv", "txt"], key=f"{state.page}.upload"
        )
        if upload is not None:
            st.session_state[CSV_BYTES] = upload.getvalue()
        content = st.session_state.get(CSV_BYTES)
        if not content:
            st.info(
                "Upload a CSV with a header row; then choose the target column. (A CSV cannot travel in "
                "a URL: a shared link asks for the file again.)"
            )
            return None
        columns = tuple(datasets.csv_header(content))
        if not columns:
            st.error("Could not read a header row from the file: is it a CSV?")
            return None
        target = _draw(Field(CSV_TARGET.key, CSV_TARGET.label, "select", columns[-1], options=columns), state)
        task = _draw(CSV_TASK, state)
        csv_digest = register_csv(content)
    elif source in REAL_SETS:
        size = datasets.size_of(source)
        n = _draw(
            Field(N.key, N.label, "int", size, low=50, high=size, help="A stratified subsample."), state
        )
        n = None if n >= size else n
    else:
        n = _draw(N, state)
        per_source = Field(
            f"noise.{source}",
            NOISE.label,
            "slider",
            datasets.default_noise(source),
            low=NOISE.low,
            high=NOISE.high,
            step=NOISE.step,
            help=NOISE.help,
            url=NOISE.key,
        )
        noise = _draw(per_source, state)  # one value per toy set, shown in the URL as plain `noise`
        if source in VARIABLE_K:
            k = _draw(K, state)
    regression = source in datasets.REGRESSION_DATASETS or (source == CSV and task == "regression")
    label_noise, kind, imbalance = 0.0, D.noise_kind, D.imbalance
    if regression and source != CSV:
        label_noise = _draw(OUTLIERS, state)
    elif not regression:
        label_noise = _draw(LABEL_NOISE, state)
        kind = _draw(NOISE_KIND, state)
        imbalance = _draw(IMBALANCE, state)
    seed = _draw(DATA_SEED, state)
    return DataSpec(
        source=source,
        n=n,
        noise=noise,
        n_classes=k,
        label_noise=label_noise,
        noise_kind=kind,
        imbalance=imbalance,
        seed=seed,
        csv=csv_digest,
        csv_target=target,
        csv_task=task,
    )


def model_controls(state: PageState, n_features: int, source: str) -> ModelSpec:
    """Model kind (the CNN only for 8×8 digits), width, depth, activation."""
    kinds = ("linear", "mlp", "cnn") if source == "digits" and n_features == 64 else ("linear", "mlp")
    kind = _draw(
        Field(MODEL.key, MODEL.label, "select", MODEL.default, options=kinds, format=MODEL_TITLES.get), state
    )
    width = _draw(WIDTH, state) if kind != "linear" else M.width
    depth, activation = M.depth, M.activation
    if kind == "mlp":
        depth = _draw(DEPTH, state)
        activation = _draw(ACTIVATION, state)
    return ModelSpec(kind=kind, width=int(width), depth=int(depth), activation=activation)


def optim_controls(state: PageState) -> OptimSpec:
    """Optimiser, learning rate, weight decay, epochs, batch size, seed."""
    batch = None
    values = {f.key: _draw(f, state) for f in (OPTIMIZER, LR, WEIGHT_DECAY, EPOCHS, BATCH, SEED)}
    if values["batch"] != "full":
        batch = int(values["batch"])
    return OptimSpec(
        optimizer=values["optimizer"],
        lr=float(values["lr"]),
        weight_decay=float(values["weight_decay"]),
        epochs=int(values["epochs"]),
        batch_size=batch,
        seed=int(values["seed"]),
    )


def load(state: PageState, experiment: Experiment) -> None:
    """Put an experiment's data, model and optimiser into the shared controls (a preset, a stored run)."""
    d, m, o = experiment.data, experiment.model, experiment.optim
    store = state.store(EXPERIMENT)
    store.update(
        {
            SOURCE.key: d.source,
            DATA_SEED.key: d.seed,
            LABEL_NOISE.key: d.label_noise,
            NOISE_KIND.key: d.noise_kind,
            IMBALANCE.key: d.imbalance,
        }
    )
    if d.source in REAL_SETS:
        store[N.key] = d.n if d.n is not None else datasets.size_of(d.source)
    elif d.source != CSV:
        store[N.key] = d.n if d.n is not None else N.default
        store[f"noise.{d.source}"] = d.noise if d.noise is not None else datasets.default_noise(d.source)
    if d.n_classes is not None:
        store[K.key] = d.n_classes
    store.update(
        {
            MODEL.key: m.kind,
            WIDTH.key: m.width,
            DEPTH.key: m.depth,
            ACTIVATION.key: m.activation,
            OPTIMIZER.key: o.optimizer,
            LR.key: o.lr,
            WEIGHT_DECAY.key: o.weight_decay,
            EPOCHS.key: o.epochs,
            BATCH.key: "full" if o.batch_size is None else str(o.batch_size),
            SEED.key: o.seed,
        }
    )


def with_losses(spec: Experiment, selection: dict[str, dict[str, float]]) -> Experiment:
    """The experiment with the selected losses and their hyperparameters (in selection order)."""
    return spec.with_losses(LossChoice(name, params_key(params)) for name, params in selection.items())


def data_section(page: Page) -> tuple[DataSpec, Dataset]:
    """The sidebar's data controls and a summary of the data (call inside `with st.sidebar`); stops the page
    with a message while the data cannot be built."""
    st.subheader("Data")
    data_spec = data_controls(page.state)
    if data_spec is None:
        page.stop()
    try:
        data = runs.dataset(data_spec)
    except ValueError as err:
        page.stop(f"Cannot use this data: {err}", "error")
    st.caption(runs.data_summary(data))
    return data_spec, data


def sidebar(
    page: Page, defaults: dict[str, tuple[str, ...]], extra_tasks: tuple[str, ...] = ()
) -> tuple[Experiment, Dataset]:
    """The shared experiment's controls and this page's loss pickers in the sidebar (with pickers for
    extra_tasks too): (experiment, dataset). Stops the page with a message while the data cannot be built."""
    state = page.state
    with st.sidebar:
        data_spec, data = data_section(page)
        st.subheader("Model")
        model_spec = model_controls(state, data.n_features, data.name)
        st.subheader("Optimiser")
        optim_spec = optim_controls(state)
        st.subheader("Losses")
        names = widgets.task_loss_pickers(state, data, defaults, extra_tasks)
        selection = widgets.loss_settings(names[: runs.MAX_LOSSES], state)
    if len(names) > runs.MAX_LOSSES:
        st.warning(f"{len(names)} losses picked; only the first {runs.MAX_LOSSES} are trained: remove some.")
    return with_losses(Experiment(data_spec, model_spec, optim_spec), selection), data


def preset_buttons(page: Page, presets: Mapping[str, Preset], on_load: Callable[[], None]) -> None:
    """A button per preset, two columns; a click loads the preset's experiment and losses, then on_load()."""

    def on_click(key: str) -> None:
        experiment = presets[key].experiment
        load(page.state, experiment)
        widgets.load_losses(page.state, experiment.losses)
        on_load()

    st.markdown("**Presets** reproduce claims from the papers: one click loads every setting and trains.")
    columns = st.columns(2)
    for i, (key, preset) in enumerate(presets.items()):
        columns[i % 2].button(
            preset.title,
            key=f"{page.state.page}.preset.{key}",
            help=preset.claim,
            on_click=on_click,
            args=(key,),
            width="stretch",
        )
