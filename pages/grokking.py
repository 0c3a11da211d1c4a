"""Grokking: a small MLP learning addition mod p, full batch, memorises first and generalises much later (or
never); Softmax Collapse, StableMax and ⊥AdamW after "Grokking at the Edge of Numerical Stability" (Prieto,
Barsbey, Mediano & Birdal, 2025). Presets are lossviz.grokking.PRESETS, with the times measured there.
"""

from __future__ import annotations

import time

import streamlit as st

from lossviz import grokking
from lossviz.figures import grokking as figures
from lossviz.ui import charts, runs
from lossviz.ui import grokking as cached
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

LOSS_LABELS = {"cross_entropy": "softmax CE", "stablemax_ce": "StableMax CE"}
OPTIMIZER_LABELS = {"adamw": "AdamW", "perp_adamw": "⊥AdamW"}
P = Field("p", "Modulus p", "int", 31, low=5, high=113, help="p² pairs (a, b), label (a + b) mod p.")
FRACTION = Field(
    "train_fraction", "Train fraction", "slider", 0.6, low=0.1, high=0.9, step=0.05,
    help="Share of the p² pairs used for training; the rest is the test set.",
)  # fmt: skip
LOSS = Field("loss", "Loss", "radio", "cross_entropy", options=grokking.LOSSES, format=LOSS_LABELS.get)
DTYPE = Field("dtype", "Precision", "radio", "float32", options=grokking.DTYPES)
OPTIMIZER = Field(
    "optimizer", "Optimizer", "radio", "adamw", options=grokking.OPTIMIZERS, format=OPTIMIZER_LABELS.get,
    help="⊥AdamW removes the gradient's component along the weights before each AdamW step.",
)  # fmt: skip
LR = Field("lr", "Learning rate", "select_slider", 5e-3, options=(1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2))
WEIGHT_DECAY = Field(
    "weight_decay", "Weight decay", "slider", 1.0, low=0.0, high=5.0, step=0.1,
    help="AdamW's decoupled weight decay (0 = none).",
)  # fmt: skip
EPOCHS = Field(
    "epochs", "Epochs", "select_slider", 4000,
    options=(100, 200, 300, 500, 1000, 1500, 2000, 3000, 4000, 5000, 8000, 10000),
    help="Full-batch steps; recorded at ~100 log-spaced epochs.",
)  # fmt: skip
SEED = Field("seed", "Seed", "int", 0, low=0, high=20, help="Fixes the split and the initial weights.")
FIELDS = (P, FRACTION, LOSS, DTYPE, OPTIMIZER, LR, WEIGHT_DECAY, EPOCHS, SEED)
PRESET_TITLES = {
    "grokking_weight_decay": "Grokking with weight decay (p = 31, ~5 s)",
    "grokking_weight_decay_p59": "Weight decay, 40% of pairs (p = 59, ~7 s)",
    "softmax_collapse": "Softmax Collapse in float32 (~1 s)",
    "softmax_collapse_float64": "The same run in float64 (~2 s)",
    "stablemax": "StableMax, no weight decay (~2 s)",
    "perp_adamw": "⊥AdamW, no weight decay (p = 59, ~3 s)",
    "perp_adamw_p113": "⊥AdamW at the paper's p = 113 (~5 s)",
    "grokking_weight_decay_p113": "Weight decay at p = 113 (offline: ~25 s)",
}

page = Page(
    "grokking",
    "Grokking",
    "A one-hidden-layer MLP learns (a + b) mod p from a fraction of all pairs, full batch. Prieto et al. "
    "(2025, *Grokking at the Edge of Numerical Stability*) claim that without regularisation training "
    "drifts towards **Softmax Collapse** (the loss of fitted samples rounds to exactly 0, so they stop "
    "contributing gradient) instead of generalising, and that **StableMax** or **⊥AdamW** (no gradient "
    "along the weights) lets the model grok without weight decay. Reproduced here: weight decay groks "
    "after a long delay; float32 collapses without it while test accuracy stays at chance; ⊥AdamW groks "
    "fast with no weight decay. Not reproduced here: StableMax without weight decay does not grok (it "
    "only avoids collapse for a while); float64 delays collapse but neither prevents it nor groks; the "
    "embedding's spectrum concentrates on a few frequencies clearly mainly with ⊥AdamW.",
)


def load_preset(name: str) -> None:
    """A preset button's on_click: every control from grokking.PRESETS (seed 0, as measured), then train."""
    settings = {"seed": 0, **grokking.PRESETS[name]}
    for field in FIELDS:
        page.state.set(field, settings[field.key])
    page.will_train()


st.markdown("**Presets** reproduce (or fail to reproduce) the paper's claims: one click sets up and trains.")
columns = st.columns(2)
for i, name in enumerate(PRESET_TITLES):
    if name in grokking.PRESETS:
        columns[i % 2].button(
            PRESET_TITLES[name],
            key=f"grokking.preset.{name}",
            on_click=load_preset,
            args=(name,),
            width="stretch",
        )
with st.sidebar:
    st.header("Grokking")
    values = {field.key: page.control(field) for field in FIELDS}
if not page.train_button():
    page.stop("Press **Train** to train with the settings in the sidebar, or click a preset above.")

arguments = dict(
    p=int(values["p"]), train_fraction=float(values["train_fraction"]), loss=str(values["loss"]),
    dtype=str(values["dtype"]), optimizer=str(values["optimizer"]), lr=float(values["lr"]),
    weight_decay=float(values["weight_decay"]), epochs=int(values["epochs"]), seed=int(values["seed"]),
)  # fmt: skip
bar, live = st.progress(0.0, text="Training (or loading the cached run)…"), st.empty()
reported: dict[str, object] = {"fraction": 0.0, "text": "Training…", "curves": None}
drawn: dict[str, object] = {"curves": None, "at": 0.0}


def note(fraction: float, message: str) -> None:  # runs in the worker thread: no Streamlit calls
    reported.update(fraction=fraction, text=f"Training: {message}")


def curves(epochs, train, test) -> None:  # the worker thread, too: the script thread draws them
    reported["curves"] = (epochs, train, test)


def show_progress() -> None:
    """The bar, and the accuracy so far at most twice a second (a redraw costs the browser a step)."""
    bar.progress(min(float(reported["fraction"]), 1.0), text=str(reported["text"]))
    newest = reported["curves"]
    if newest is not None and newest is not drawn["curves"] and time.monotonic() - float(drawn["at"]) > 0.5:
        epochs, train, test = newest
        figure = figures.live_accuracy_figure(
            epochs=epochs, train_accuracy=train, test_accuracy=test, last_epoch=arguments["epochs"]
        )
        charts.plot(live, figure)
        drawn.update(curves=newest, at=time.monotonic())


try:
    run = runs.in_thread(lambda: cached.run(**arguments, _progress=note, _on_record=curves), show_progress)
except ValueError as err:
    bar.empty()
    page.stop(f"Could not train: {err}", level="error")
bar.empty()
live.empty()

memorised, grokked = run.memorised_epoch, run.grokked_epoch
st.caption(
    f"p = {run.p}: {run.n_train:,} training and {run.n_test:,} test pairs · {LOSS_LABELS[run.loss]}, "
    f"{run.dtype}, {OPTIMIZER_LABELS[run.optimizer]} (lr {run.lr:g}, weight decay {run.weight_decay:g}) · "
    f"memorised (train accuracy 1) at {f'epoch {memorised:,}' if memorised is not None else 'never'}, "
    f"grokked (test accuracy ≥ 0.9) at {f'epoch {grokked:,}' if grokked is not None else 'never'} · "
    f"final test accuracy {run.test_accuracy[-1]:.3f}."
)
charts.show(st, figures.accuracy_figure, key="grokking.fig.accuracy", run=run)
left, right = st.columns(2)
charts.show(left, figures.collapse_figure, key="grokking.fig.collapse", run=run)
charts.show(right, figures.norms_figure, key="grokking.fig.norms", run=run)
st.caption(
    "Softmax Collapse: a sample's loss is exactly 0 when every competitor's exp(z_k − z_max) is absorbed "
    "by rounding (true-class margin above ~19 for p = 11 in float32, ~39 in float64), and its gradient "
    "then has no true-class component; the stricter dashed line counts samples whose whole gradient is 0. "
    "Collapse comes with growing logit norms; weight decay keeps the weight norm down, ⊥AdamW keeps it "
    "from growing along itself."
)
charts.show(st, figures.spectrum_figure, key="grokking.fig.spectrum", run=run)
st.caption(
    "Power of the final token embedding's discrete Fourier transform over tokens a = 0..p−1, folded (k "
    "with p − k). A generalising model tends to use a few frequencies (cos/sin of 2πka/p); here that is "
    "clearest with ⊥AdamW, blurrier with weight decay, and flat for a memorising model."
)
page.finish()
