"""The Label-noise study's machinery: its jobs (noise rate x loss x seed), a sweep running in a background
thread, the progress fragment that polls it, the transition-matrix input, and the store reads behind the
figures.

A sweep survives a browser reload because running sweeps live in a module-level registry keyed by the
sweep's digest (the same settings find the same sweep), and a server restart because every finished job is
in the store: reopening the page with the same settings shows what is done, and Resume runs only the rest.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import streamlit as st

from lossviz import backends, losses, noise
from lossviz.experiment import DataSpec, Experiment, LossChoice, ModelSpec, OptimSpec, params_key
from lossviz.figures import noise as figures
from lossviz.jobs import Job, Sweep
from lossviz.noise import Memorisation, WeightSummary
from lossviz.store import Store
from lossviz.ui.fields import Field
from lossviz.ui.state import PageState

SNAPSHOTS = 21  # snapshots per run: a memorisation point every 1/20 of training (each costs ~10 ms)
POLL_SECONDS = 1.0  # how often the progress fragment looks at a running sweep
CANCEL_HELP = (
    "Stops within one job (the jobs in flight are abandoned); finished jobs stay in the store and Resume "
    "continues from them."
)
# Measured on this project's 2-core machine: 0.9 CPU-seconds per job at the page's defaults (280 training
# points, 400 full-batch epochs, a 2 x 64 MLP, 21 snapshots with per-sample arrays), of which ~0.2 s is the
# snapshots' predictions and gradient weights; a process pool takes ~5 s to start its workers.
JOB_SECONDS, JOB_POINTS, JOB_EPOCHS, POOL_START_SECONDS = 0.9, 280, 400, 5.0
KEEP_ENDED = 16  # ended sweeps the registry remembers (their outcome message), oldest dropped first
ROUND = 9  # digits noise rates are compared at (0.1 + 0.2 is 0.3)
State = Literal["running", "finished", "cancelled", "error"]


# ----------------------------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Study:
    """What the page sweeps: base (data with its noise kind and T, model, optimiser) trained with each loss
    at each noise rate and seed."""

    base: Experiment
    losses: tuple[LossChoice, ...]
    rates: tuple[float, ...]
    seeds: tuple[int, ...]

    def sweeps(self) -> list[Sweep]:
        """The study as sweeps the command line runs too (`python -m lossviz sweep SPEC.json`): the clean
        runs, stored as symmetric noise at rate 0 (clean data is the same for every kind, so each kind
        reuses them), and the noisy rates with the study's kind."""
        experiment = self.base.with_losses(self.losses)
        loss_axis = ("loss", tuple(_loss_value(c) for c in self.losses))
        found = []
        if 0.0 in self.rates:
            clean = replace(experiment.data, label_noise=0.0, noise_kind="symmetric", transition=())
            found.append(Sweep(replace(experiment, data=clean), (("seed", self.seeds), loss_axis)))
        noisy = tuple(float(r) for r in self.rates if r > 0)
        if noisy:
            found.append(Sweep(experiment, (("seed", self.seeds), ("data.label_noise", noisy), loss_axis)))
        return found

    def jobs(self) -> list[Job]:
        """Every job, seed-major (a stopped sweep leaves whole curves of the first seeds), then by rate."""
        found = [job for sweep in self.sweeps() for job in sweep.jobs()]
        return sorted(found, key=lambda j: (j.experiment.data.seed, j.experiment.data.label_noise))


def _loss_value(choice: LossChoice) -> Any:
    """A loss as a sweep axis value, {"name", "params"}: its hyperparameters written out in the spec."""
    return {"name": choice.name, "params": dict(choice.params)}


def study_experiment(
    *,
    source: str,
    n: int | None,
    n_classes: int | None,
    kind: str,
    transition: noise.Transition,
    width: int,
    depth: int,
    epochs: int,
    lr: float,
) -> Experiment:
    """The base experiment of a study (no losses; rate and seed come from the sweep): full-batch Adam."""
    return Experiment(
        DataSpec(
            source=source,
            n=n,
            n_classes=n_classes,
            noise_kind=kind,  # type: ignore[arg-type]
            transition=transition if kind == "transition" else (),
        ),
        ModelSpec(width=width, depth=depth),
        OptimSpec(optimizer="adam", lr=lr, epochs=epochs, snapshots=SNAPSHOTS),
    )


def loss_choices(selection: dict[str, dict[str, float]]) -> tuple[LossChoice, ...]:
    """The selected losses with their hyperparameters (lossviz.ui.widgets.loss_settings' output)."""
    return tuple(LossChoice(name, params_key(params)) for name, params in selection.items())


def sweep_key(jobs: Sequence[Job]) -> str:
    """The sweep's digest: the same jobs, whatever their order, give the same key."""
    text = "\n".join(sorted(j.digest for j in jobs))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_axes(job: Job) -> tuple[str, float, int]:
    """(loss, noise rate, seed) of one of the study's jobs."""
    return job.loss.name, round(job.experiment.data.label_noise, ROUND), job.experiment.data.seed


# ----------------------------------------------------------------------------------------------- sweeps


@dataclass
class SweepRun:
    """A sweep running (or run) in a background thread of this server, shared by every session."""

    key: str
    total: int
    backend: str
    done: int  # finished jobs, the ones reused from the store included
    computed: int = 0
    failed: int = 0
    state: State = "running"
    message: str = ""
    last: str = ""  # the job that finished last, for the progress line
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


_RUNS: dict[str, SweepRun] = {}  # by sweep_key: a reloaded page with the same settings reattaches
_LOCK = threading.Lock()


def find(key: str) -> SweepRun | None:
    """The sweep with this key started by this server process (running or ended), if any."""
    return _RUNS.get(key)


def active() -> SweepRun | None:
    """The sweep running now, if any (one at a time: each one already fills the cores)."""
    return next((run for run in list(_RUNS.values()) if run.running), None)


def start(jobs: Sequence[Job], store_path: str, backend: str, workers: int | None = None) -> SweepRun:
    """Start computing the jobs missing from the store in a background thread; the running sweep with the
    same key if there is one. ValueError while a different sweep runs."""
    key = sweep_key(jobs)
    with _LOCK:
        current = active()
        if current is not None:
            if current.key == key:
                return current
            raise ValueError("another sweep is running; cancel it or wait for it to finish")
        done = len(Store(store_path).done(j.digest for j in jobs))
        run = SweepRun(key=key, total=len(jobs), backend=backend, done=done)
        run.thread = threading.Thread(
            target=_work, args=(run, list(jobs), store_path, backend, workers), name=f"lossviz-sweep-{key}"
        )
        run.thread.daemon = True  # a server shutting down does not wait: the store keeps what finished
        _RUNS[key] = run
        for old in [k for k, r in _RUNS.items() if not r.running][:-KEEP_ENDED]:
            del _RUNS[old]  # ended sweeps are kept only to report how they ended
    run.thread.start()
    return run


def _work(run: SweepRun, jobs: list[Job], store_path: str, backend: str, workers: int | None) -> None:
    """The sweep thread: run_sweep with the run's counters as progress (no Streamlit calls here)."""

    def progress(done: int, total: int, job: Job, status: str) -> None:
        run.done = done
        if status == "failed":
            run.failed += 1
        else:
            run.computed += 1
        name, rate, seed = job_axes(job)
        run.last = f"{losses.get(name).title}, rate {rate:.0%}, seed {seed}: {status}"

    try:
        report = backends.run_sweep(
            jobs, Store(store_path), backend, workers=workers, progress=progress, cancel=run.cancel
        )
        run.done = report.total - report.cancelled
        run.state = "cancelled" if report.cancelled else "finished"
    except Exception as err:  # shown on the page; the sweep's finished jobs are in the store
        run.message = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
        run.state = "error"
    finally:
        run.ended = time.monotonic()


def estimate_seconds(jobs: int, n_train: int, epochs: int, backend: str) -> float:
    """A rough wall time for jobs on a free machine: the measured cost scaled by points x epochs, spread over
    the cores when the backend is a process pool."""
    if jobs <= 0:
        return 0.0
    per_job = JOB_SECONDS * (n_train / JOB_POINTS) * (epochs / JOB_EPOCHS)
    if backend == "serial":
        return jobs * per_job
    workers = min(
        jobs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return POOL_START_SECONDS + jobs * per_job / workers


def wait(key: str, timeout: float) -> SweepRun | None:
    """Block until the sweep with this key has ended (for tests and scripts; the page polls instead)."""
    run = find(key)
    if run is not None and run.thread is not None:
        run.thread.join(timeout)
    return run


def progress_text(run: SweepRun) -> str:
    """The progress line: done of total, what failed, the time so far and an estimate of the rest."""
    text = f"{run.done} of {run.total} jobs done"
    if run.failed:
        text += f", {run.failed} failed"
    text += f" · {run.elapsed:.0f} s"
    if run.running and run.computed:
        left = (run.total - run.done) * run.elapsed / (run.computed + run.failed)
        text += f", about {left:.0f} s left"
    elif run.running and run.backend == "processes":
        text += " (starting the worker processes: each imports torch first)"
    return text


@st.fragment(run_every=POLL_SECONDS)
def progress_view(key: str) -> None:
    """The running sweep's progress bar and Cancel button, redrawn every POLL_SECONDS on its own; the whole
    page reruns once the sweep has ended, to show the results."""
    run = find(key)
    if run is None:
        return
    st.progress(min(run.done / max(run.total, 1), 1.0), text=progress_text(run))
    if run.last:
        st.caption(f"Last finished: {run.last}")
    if run.running:
        if st.button("Cancel", key=f"noise.cancel.{key}", help=CANCEL_HELP):
            run.cancel.set()
            st.caption("Cancelling…")
    else:
        st.rerun()


# ----------------------------------------------------------------------------------------------- T input


class MatrixField(Field):
    """A K x K matrix in the URL as its K² numbers, row after row (encode() writes nested tuples that way)."""

    def parse(self, raw: str) -> Any:
        return parse_matrix(raw.replace(",", " "), flat=True)

    def valid(self, value: Any) -> Any:
        return value if _is_square(value) else self.default


def default_transition(k: int) -> noise.Transition:
    """The T the designer starts from: class c is mislabelled c + 1 (70%) or c + 2 (30%), mod K."""
    if k == 2:
        return ((0.0, 1.0), (1.0, 0.0))
    rows = []
    for c in range(k):
        row = [0.0] * k
        row[(c + 1) % k], row[(c + 2) % k] = 0.7, 0.3
        rows.append(tuple(row))
    return tuple(rows)


def format_matrix(matrix: Sequence[Sequence[float]]) -> str:
    """One row per line, numbers separated by spaces (what the text area shows)."""
    return "\n".join("  ".join(f"{v:g}" for v in row) for row in matrix)


def parse_matrix(text: str, flat: bool = False) -> noise.Transition:
    """A square matrix from rows of numbers (one per line; spaces, commas or semicolons between numbers), or
    with flat from K² numbers; ValueError naming the bad row or number."""
    if flat:
        numbers = [_number(t, 0) for t in text.split()]
        k = math.isqrt(len(numbers))
        if k < 2 or k * k != len(numbers):
            raise ValueError(f"must be K x K numbers (4, 9, 16, ...), got {len(numbers)}")
        return tuple(tuple(numbers[i * k : (i + 1) * k]) for i in range(k))
    lines = [line for line in text.replace(";", " ").replace(",", " ").splitlines() if line.strip()]
    rows = [tuple(_number(t, i) for t in line.split()) for i, line in enumerate(lines)]
    for i, row in enumerate(rows):
        if len(row) != len(rows):
            raise ValueError(
                f"row {i} has {len(row)} numbers; a {len(rows)} x {len(rows)} T needs {len(rows)}"
            )
    return tuple(rows)


def _number(text: str, row: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"row {row}: {text!r} is not a number") from None


def _is_square(value: Any) -> bool:
    try:
        return len(value) >= 2 and all(len(row) == len(value) for row in value)
    except TypeError:
        return False


def matrix_input(
    state: PageState, matrix_field: MatrixField, k: int, container: Any = st
) -> noise.Transition:
    """The transition matrix text area (kept in the page's state and the URL); a T of another size than the
    data's K classes is replaced by default_transition(k). Returns T as typed (check it before use)."""
    value = matrix_field.valid(state.get(matrix_field))
    if len(value) != k:
        value = default_transition(k)
    state.set(matrix_field, value)
    key = state.widget_key(matrix_field)
    # seeded from the canonical value when that changed (a template, the URL) or the widget was dropped (a
    # page switch); otherwise the text stays as typed, unreadable text included
    if key not in st.session_state or st.session_state.get(f"{key}.shown") != value:
        st.session_state[key] = format_matrix(value)
        st.session_state[f"{key}.shown"] = value

    def commit() -> None:
        try:
            typed = parse_matrix(st.session_state[key])
        except ValueError as err:
            st.session_state[f"{key}.error"] = str(err)
            return
        st.session_state.pop(f"{key}.error", None)
        state.set(matrix_field, typed)
        st.session_state[f"{key}.shown"] = typed

    container.text_area(
        f"Transition matrix T ({k} x {k})",
        key=key,
        on_change=commit,
        height=40 + 24 * k,
        help="Row i: the probabilities that a sample of true class i is given label 0, 1, …; each row must "
        "sum to 1. Rows on lines, numbers separated by spaces or commas. At noise rate r the labels follow "
        "(1 − r)·I + r·T.",
    )
    if f"{key}.error" in st.session_state:
        container.error(f"T not read: {st.session_state[f'{key}.error']}")
    state.record(matrix_field, value)
    return value


def fill_matrix(state: PageState, matrix_field: MatrixField, matrix: np.ndarray) -> None:
    """A template button's on_click: T becomes matrix (the text area follows on the rerun)."""
    state.set(matrix_field, tuple(tuple(round(float(v), 4) for v in row) for row in matrix))


# ----------------------------------------------------------------------------------------------- results


def statuses(store_path: str, jobs: Sequence[Job]) -> dict[str, str]:
    """Each job's status in the store (done, failed, pending, running, missing); cheap, never cached."""
    return Store(store_path).status(j.digest for j in jobs)


def failures(store_path: str, jobs: Sequence[Job]) -> dict[str, str]:
    """Why each failed job failed."""
    return Store(store_path).failures(j.digest for j in jobs)


@st.cache_data(max_entries=32, show_spinner=False)
def summaries(store_path: str, done: tuple[str, ...], _jobs: tuple[Job, ...]) -> dict[str, dict[str, float]]:
    """{digest: summary metrics} of the done jobs (cached on the done digests: a finished job never
    changes, so new results only add entries)."""
    wanted = set(done)
    rows = Store(store_path).summaries([j for j in _jobs if j.digest in wanted])
    return {row["digest"]: row for row in rows}


def metric_records(
    jobs: Sequence[Job], found: dict[str, dict[str, float]], metric: str
) -> list[tuple[str, float, float]]:
    """(loss, rate, value) of every finished job, for lossviz.noise.rate_bands."""
    return [(*job_axes(j)[:2], float(found[j.digest][metric])) for j in jobs if j.digest in found]


def gain_records(
    jobs: Sequence[Job], found: dict[str, dict[str, float]], metric: str, reference: str
) -> list[tuple[str, float, float]]:
    """(loss, rate, value - reference loss's value at the same rate and seed): seeds paired, since a seed
    fixes the points, the flips and the initial weights every loss shares."""
    by_axes = {job_axes(j): found[j.digest][metric] for j in jobs if j.digest in found}
    records = []
    for (name, rate, seed), value in by_axes.items():
        base = by_axes.get((reference, rate, seed))
        if name != reference and base is not None:
            records.append((name, rate, float(value) - float(base)))
    return records


def panel_title(choice: LossChoice) -> str:
    """A small multiple's title: the loss, its hyperparameters on a smaller second line."""
    title = losses.get(choice.name).title
    shown = ", ".join(f"{k}={v:.3g}" for k, v in choice.params)
    return f"{title}<br><span style='font-size:11px'>{shown}</span>" if shown else title


def band_panels(bands: dict[str, noise.RateBand], labels: dict[str, str]) -> list[figures.RatePanel]:
    """The bands as figure panels, in the order of labels."""
    return [figures.RatePanel(labels[name], bands[name]) for name in labels if name in bands]


def heatmap_values(
    bands: dict[str, noise.RateBand], names: Sequence[str], rates: Sequence[float]
) -> np.ndarray:
    """(L, R) the mean of each loss at each rate (NaN where nothing finished)."""
    values = np.full((len(names), len(rates)), np.nan)
    for i, name in enumerate(names):
        band = bands.get(name)
        if band is None:
            continue
        for j, rate in enumerate(rates):
            hit = np.flatnonzero(np.isclose(band.rates, rate))
            if len(hit):
                values[i, j] = band.mean[hit[0]]
    return values


@st.cache_data(max_entries=32, show_spinner=False)
def training_views(
    store_path: str, digests: tuple[str, ...]
) -> tuple[Memorisation, WeightSummary, int] | None:
    """Memorisation fractions and clean/noisy gradient-weight quartiles of one loss at one rate, the samples
    of every seed pooled; with the number of seeds used (runs that diverged, with fewer snapshots, are left
    out). None when none of the runs has per-sample arrays."""
    store = Store(store_path)
    runs = [r for r in (store.get(d) for d in digests) if r is not None and "train_predictions" in r.arrays]
    if not runs:
        return None
    # a run that diverged stopped early, with fewer snapshots: pool only the runs that took them all
    epochs = np.asarray(max((r.arrays["snapshot_epochs"] for r in runs), key=len))
    same = [r for r in runs if np.array_equal(r.arrays["snapshot_epochs"], epochs)]
    joined = {
        name: np.concatenate([r.arrays[name] for r in same], axis=-1)
        for name in ("train_predictions", "train_gradient_weights", "y_train", "y_train_clean", "noisy_mask")
    }
    memorised = noise.memorisation(
        joined["train_predictions"], joined["y_train_clean"], joined["y_train"], epochs
    )
    weights = noise.weight_summary(joined["train_gradient_weights"], joined["noisy_mask"], epochs)
    return memorised, weights, len(same)


def ahead_of(gains: dict[str, noise.RateBand], labels: dict[str, str]) -> list[str]:
    """A sentence per loss whose paired gain over the reference has its 95% interval above 0 at some noise
    rate: the rates, and the gain at the highest of them (what the page claims, from the results shown)."""
    sentences = []
    for name, band in gains.items():
        ahead = np.isfinite(band.half_width) & (band.mean - band.half_width > 0)
        if not ahead.any():
            continue
        i = int(np.flatnonzero(ahead)[-1])
        at = ", ".join(f"{r:.0%}" for r in band.rates[ahead])
        sentences.append(
            f"**{labels.get(name, name)}** at {at} noise (+{band.mean[i]:.2f} ± {band.half_width[i]:.2f} "
            f"at {band.rates[i]:.0%}, {band.count[i]} seeds)"
        )
    return sentences
