"""Offline jobs: a pure, seeded, JSON spec (one loss trained within an Experiment, or the landscape or
curvature of that run) with a content hash, sweeps of them over a product of axes, and `run_job`.

The landscape job follows "Visualizing the Loss Landscape of Neural Nets" (Li et al. 2018): the loss over a
filter-normalized random plane through the trained weights; the curvature job the Hessian's top
eigenvalues (Lanczos) and trace (exact or Hutch++) from lossviz.curvature.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch

from lossviz import context, curvature, landscape, losses, planes
from lossviz import experiment as ex
from lossviz.experiment import Experiment, LossChoice
from lossviz.metrics import per_sample_gradient_weight
from lossviz.train import predict_proba, with_state

SCHEMA = 1  # bump when a job's meaning or its result arrays change: it is part of every digest
Kind = Literal["train", "landscape", "curvature"]
KINDS: tuple[str, ...] = ("train", "landscape", "curvature")
Options = tuple[tuple[str, Any], ...]
TIMING_KEYS: tuple[str, ...] = ("seconds", "train_seconds")  # summary keys that time the job, not its result
SECTIONS = {"data": ex.DataSpec, "model": ex.ModelSpec, "optim": ex.OptimSpec}
HISTORY_ARRAYS = ("epochs", "train_loss", "train_acc", "noisy_acc", "test_acc", "test_nll", "ece")


@dataclass(frozen=True)
class _Option:
    """One setting of a landscape or curvature job: its default and its valid range (inclusive)."""

    default: int | float
    low: float
    high: float
    help: str

    def check(self, name: str, value: Any) -> int | float:
        integer = isinstance(self.default, int)
        if isinstance(value, float) and integer and value.is_integer():
            value = int(value)
        valid_type = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, valid_type):
            kind = "an integer" if integer else "a number"
            raise ValueError(f"{name} must be {kind} in [{self.low:g}, {self.high:g}], got {value!r}")
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise ValueError(f"{name} must be in [{self.low:g}, {self.high:g}], got {value!r}")
        return int(value) if integer else float(value)


OPTIONS: dict[str, dict[str, _Option]] = {
    "train": {},
    "landscape": {
        # 21 x 21 resolves the basin of the toy models in well under a second; odd puts 0 on the grid
        "grid": _Option(21, 3, 201, "points per axis of the square grid"),
        "span": _Option(1.0, 1e-3, 100.0, "the grid covers [-span, span] along both filter-normalized axes"),
        "directions_seed": _Option(0, 0, 2**31 - 1, "seed of the two random directions (seed, seed + 1)"),
    },
    "curvature": {
        "k": _Option(3, 1, 20, "top Hessian eigenvalues to find (Lanczos)"),
        "trace_samples": _Option(64, 1, 10_000, "Hessian-vector products of the trace estimate"),
        "probe_seed": _Option(0, 0, 2**31 - 1, "seed of the Lanczos start vector and the trace probes"),
    },
}


def _check_kind(kind: Any, where: str = "kind") -> None:
    if kind not in KINDS:
        raise ValueError(f"{where} must be one of {list(KINDS)}, got {kind!r}")


def _options(
    kind: str, raw: Mapping[str, Any] | Iterable[tuple[str, Any]], where: str = "options"
) -> Options:
    """Every option of the kind, defaults made explicit, checked, as a sorted tuple (one form, one digest)."""
    given = dict(raw.items() if isinstance(raw, Mapping) else raw)
    valid = OPTIONS[kind]
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {unknown} for a {kind} job; valid: {sorted(valid)}")
    return tuple(
        sorted(
            (name, opt.check(f"{where}.{name}", given.get(name, opt.default))) for name, opt in valid.items()
        )
    )


# ----------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    """One unit of offline work: train experiment's single loss, then (landscape/curvature) measure it."""

    kind: Kind
    experiment: Experiment  # with exactly one LossChoice
    options: Options = ()  # landscape / curvature settings (see OPTIONS); empty for train

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if not isinstance(self.experiment, Experiment):
            raise ValueError(f"experiment must be an Experiment, got {type(self.experiment).__name__}")
        if len(self.experiment.losses) != 1:
            got = [c.name for c in self.experiment.losses]
            raise ValueError(f"experiment.losses: a job trains exactly one loss, got {len(got)} {got}")
        object.__setattr__(self, "options", _options(self.kind, self.options))

    @property
    def loss(self) -> LossChoice:
        """The job's one loss."""
        return self.experiment.losses[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: {"schema", "kind", "experiment", "options"}."""
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "experiment": self.experiment.to_dict(),
            "options": dict(self.options),
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Job:
        """Validate and build; ValueError naming the field on bad input."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"a job must be a JSON object, got {type(raw).__name__}")
        _check_keys("job", raw, ["schema", "kind", "experiment", "options"])
        if raw.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"schema: this lossviz reads job schema {SCHEMA}, got {raw['schema']!r}")
        kind = raw.get("kind", "train")
        _check_kind(kind)
        options = raw.get("options", {})
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be an object, got {options!r}")
        return cls(kind, Experiment.from_dict(raw.get("experiment", {})), _options(kind, options))

    @classmethod
    def from_json(cls, text: str) -> Job:
        """Job.from_dict of a JSON string (ValueError on malformed JSON too)."""
        return cls.from_dict(_parse_json(text))

    @property
    def digest(self) -> str:
        """16 hex digits, stable across processes and machines: the store's key."""
        body = json.dumps(
            {"kind": self.kind, "experiment": self.experiment.to_dict(), "options": dict(self.options)},
            sort_keys=True,
            separators=(",", ":"),
        )
        # the experiment's own schema too: a field that changes meaning there changes what a job computes
        salt = f"lossviz-job-v{SCHEMA}-experiment-v{ex.SCHEMA}:"
        return hashlib.sha256((salt + body).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobResult:
    """What a job computes: scalar metrics (JSON) and arrays (npz in the store)."""

    summary: dict[str, float]
    arrays: dict[str, np.ndarray]


def flat_fields(job: Job) -> dict[str, Any]:
    """The job as flat values: kind, loss, loss.<param>, data.<field>, model.*, optim.*, options.*."""
    flat: dict[str, Any] = {"kind": job.kind, "loss": job.loss.name}
    flat.update({f"loss.{k}": v for k, v in job.loss.params})
    for section in SECTIONS:
        spec = getattr(job.experiment, section)
        flat.update({f"{section}.{f.name}": getattr(spec, f.name) for f in fields(spec)})
    flat.update({f"options.{k}": v for k, v in job.options})
    return flat


def varying_fields(jobs: Sequence[Job]) -> list[str]:
    """The flat fields whose value differs between jobs, in flat_fields order; "seed" stands for data.seed
    and optim.seed when both vary together (as a "seed" axis makes them)."""
    flats = [flat_fields(j) for j in jobs]
    keys = list(dict.fromkeys(k for f in flats for k in f))

    # a loss parameter varies when it takes two values, not when some of the losses lack it
    varying = [k for k in keys if len({repr(f[k]) for f in flats if k in f}) > 1]
    seeds = {"data.seed", "optim.seed"}
    if seeds <= set(varying) and all(f["data.seed"] == f["optim.seed"] for f in flats):
        at = varying.index("data.seed")
        varying = [k for k in varying if k not in seeds]
        varying.insert(at, "seed")
    return varying


def describe(job: Job, keys: Sequence[str]) -> dict[str, Any]:
    """The job's values of keys (from varying_fields); "seed" is data.seed; a parameter it lacks is None."""
    flat = flat_fields(job)
    return {k: flat["data.seed"] if k == "seed" else flat.get(k) for k in keys}


# ----------------------------------------------------------------------------------------------- sweeps

AxisValues = tuple[Any, ...]
Axes = tuple[tuple[str, AxisValues], ...]


@dataclass(frozen=True)
class Sweep:
    """A product of axes over a base experiment, expanded to jobs in axis order (the first axis outermost).

    Axis names: "seed" (sets data.seed and optim.seed: new label flips and new initial weights), "loss"
    (loss names or {"name", "params"}; replaces base.losses), "loss.<param>" (applied to every loss that has
    the parameter; the others keep their default and are not duplicated), "options.<option>" of the kind,
    or any experiment field as "data.label_noise", "model.width", "optim.lr". Without a "loss" axis the base
    experiment's losses are an implicit outermost axis.
    """

    base: Experiment
    axes: Axes
    kind: Kind = "train"
    options: Options = ()

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if not isinstance(self.base, Experiment):
            raise ValueError(f"base must be an Experiment, got {type(self.base).__name__}")
        object.__setattr__(self, "options", _options(self.kind, self.options))
        raw_axes = self.axes.items() if isinstance(self.axes, Mapping) else self.axes
        axes: list[tuple[str, AxisValues]] = []
        for item in raw_axes:
            if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
                raise ValueError(f"axes: each axis must be [name, values], got {item!r}")
            name, values = item
            if not isinstance(name, str):
                raise ValueError(f"axes: an axis name must be a string, got {name!r}")
            if any(name == seen for seen, _ in axes):
                raise ValueError(f"axes.{name}: the axis appears more than once")
            axes.append((name, self._canonical_axis(name, values)))
        object.__setattr__(self, "axes", tuple(axes))
        if not self._losses():
            raise ValueError("base.losses: give at least one loss, or a 'loss' axis")
        for name, values in self.axes:
            if name.startswith("loss."):
                self._check_loss_param(name, values)

    # ------------------------------------------------------------------ validation

    def _losses(self) -> tuple[LossChoice, ...]:
        """The losses the sweep trains: the "loss" axis, else the base experiment's."""
        for name, values in self.axes:
            if name == "loss":
                return values
        return self.base.losses

    def _canonical_axis(self, name: str, values: Any) -> AxisValues:
        """The axis's values checked one by one against the base and written in canonical form."""
        where = f"axes.{name}"
        if isinstance(values, (str, Mapping)) or not isinstance(values, Iterable):
            raise ValueError(f"{where} must be a list of values, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"{where}: an axis needs at least one value")
        _check_axis_name(name, self.kind)
        canonical = []
        for i, value in enumerate(values):
            try:
                canonical.append(_canonical_value(self.base, self.kind, name, value))
            except ValueError as err:
                raise ValueError(f"{where}[{i}]: {err}") from None
        return tuple(dict.fromkeys(canonical))  # a repeated value adds no jobs

    def _check_loss_param(self, name: str, values: AxisValues) -> None:
        param = name.split(".", 1)[1]
        having = [c for c in self._losses() if param in {p.name for p in losses.get(c.name).params}]
        if not having:
            offered = sorted({p.name for c in self._losses() for p in losses.get(c.name).params})
            raise ValueError(
                f"axes.{name}: no loss of the sweep has a parameter {param!r}; their parameters: {offered}"
            )
        for i, value in enumerate(values):
            for choice in having:
                try:
                    losses.get(choice.name).bind(**{param: value})
                except ValueError as err:
                    raise ValueError(f"axes.{name}[{i}]: {err}") from None

    # ------------------------------------------------------------------ expansion

    def jobs(self) -> list[Job]:
        """Every job of the product, in axis order, duplicates removed (first occurrence kept)."""
        axes = list(self.axes)
        if not any(name == "loss" for name, _ in axes):
            axes.insert(0, ("loss", self.base.losses))
        found: dict[str, Job] = {}
        for combo in itertools.product(*(values for _, values in axes)):
            settings = list(zip((name for name, _ in axes), combo, strict=True))
            try:
                job = _build(self.base, self.kind, self.options, settings)
            except ValueError as err:
                shown = ", ".join(f"{n}={_show(v)}" for n, v in settings)
                raise ValueError(f"axes: the combination {shown} is invalid: {err}") from None
            found.setdefault(job.digest, job)
        return list(found.values())

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """{"base": Experiment.to_dict(), "axes": {name: [values]}, "kind", "options"}."""
        return {
            "base": self.base.to_dict(),
            "axes": {name: [_json_value(v) for v in values] for name, values in self.axes},
            "kind": self.kind,
            "options": dict(self.options),
        }

    def to_json(self) -> str:
        """Indented JSON in axis order (the order is the meaning: the first axis is outermost)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Sweep:
        """Validate and build; axes an object (kept in order) or a list of [name, values]."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"a sweep must be a JSON object, got {type(raw).__name__}")
        _check_keys("sweep", raw, ["base", "axes", "kind", "options"])
        kind = raw.get("kind", "train")
        _check_kind(kind)
        try:
            base = Experiment.from_dict(raw.get("base", {}))
        except ValueError as err:
            raise ValueError(f"base.{err}") from None
        axes = raw.get("axes", {})
        if not isinstance(axes, (Mapping, list)):
            raise ValueError(
                f"axes must be an object {{name: [values]}} or a list of [name, values], got {axes!r}"
            )
        options = raw.get("options", {})
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be an object, got {options!r}")
        return cls(base, axes, kind, _options(kind, options))  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> Sweep:
        """Sweep.from_dict of a JSON string (ValueError on malformed JSON too)."""
        return cls.from_dict(_parse_json(text))


def _check_keys(where: str, raw: Mapping[str, Any], valid: Sequence[str]) -> None:
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid fields: {list(valid)}")


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON: {err}") from None


def _check_axis_name(name: str, kind: str) -> None:
    """ValueError naming the axis unless it is one a sweep can vary."""
    where = f"axes.{name}"
    if name in ("seed", "loss"):
        return
    section, _, rest = name.partition(".")
    if section == "loss" and rest:
        return  # checked against the sweep's losses once they are known
    if section == "options" and rest:
        if rest not in OPTIONS[kind]:
            raise ValueError(
                f"{where}: unknown option {rest!r} of a {kind} job; valid: {sorted(OPTIONS[kind])}"
            )
        return
    if section in SECTIONS and rest:
        valid = [f.name for f in fields(SECTIONS[section])]
        if rest not in valid:
            close = difflib.get_close_matches(rest, valid, n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            raise ValueError(f"{where}: unknown field {rest!r} of {section}{hint}; valid fields: {valid}")
        return
    raise ValueError(
        f"{where}: unknown axis; valid: 'seed', 'loss', 'loss.<param>', 'options.<option>', or "
        f"'<section>.<field>' for section in {list(SECTIONS)}"
    )


def _canonical_value(base: Experiment, kind: str, name: str, value: Any) -> Any:
    """value as the sweep stores it: coerced through the field it sets (so 0 and 0.0 are one value)."""
    if name == "loss":
        if isinstance(value, str):
            return LossChoice(value)
        if isinstance(value, LossChoice):
            return value
        if not isinstance(value, Mapping) or "name" not in value:
            raise ValueError(f"a loss is a name or an object with a 'name', got {value!r}")
        _check_keys("loss", value, ["name", "params"])
        params = value.get("params", {})
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be an object, got {params!r}")
        return LossChoice(str(value["name"]), ex.params_key(params))
    if name.startswith("loss."):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)
    if name.startswith("options."):
        option = name.split(".", 1)[1]
        return OPTIONS[kind][option].check(name, value)
    if name == "seed":
        experiment = _with_fields(base, {"data.seed": value, "optim.seed": value})
        return experiment.data.seed
    section, key = name.split(".", 1)
    return getattr(getattr(_with_fields(base, {name: value}), section), key)


def _full_dict(experiment: Experiment) -> dict[str, Any]:
    """Experiment.to_dict with every field written out (defaults too): fields can be set in place."""
    out: dict[str, Any] = {
        s: {f.name: getattr(getattr(experiment, s), f.name) for f in fields(SECTIONS[s])} for s in SECTIONS
    }
    out["losses"] = [{"name": c.name, "params": dict(c.params)} for c in experiment.losses]
    return out


def _with_fields(experiment: Experiment, values: Mapping[str, Any]) -> Experiment:
    """The experiment with "section.field" values set, validated as Experiment.from_dict validates JSON."""
    raw = _full_dict(experiment)
    for name, value in values.items():
        section, key = name.split(".", 1)
        raw[section][key] = value
    return Experiment.from_dict(raw)


def _build(base: Experiment, kind: str, options: Options, settings: Sequence[tuple[str, Any]]) -> Job:
    """The job of one combination of axis values."""
    values: dict[str, Any] = {}
    choice: LossChoice | None = None
    params: dict[str, float] = {}
    opts = dict(options)
    for name, value in settings:
        if name == "loss":
            choice = value
        elif name == "seed":
            values["data.seed"] = values["optim.seed"] = value
        elif name.startswith("loss."):
            params[name.split(".", 1)[1]] = value
        elif name.startswith("options."):
            opts[name.split(".", 1)[1]] = value
        else:
            values[name] = value
    assert choice is not None  # jobs() always has a loss axis
    accepted = {p.name for p in losses.get(choice.name).params}
    mine = {k: v for k, v in params.items() if k in accepted}  # the others keep their default
    loss = LossChoice(choice.name, ex.params_key({**dict(choice.params), **mine}))
    experiment = _with_fields(base, values).with_losses([loss])
    return Job(kind, experiment, tuple(opts.items()))  # type: ignore[arg-type]


def _json_value(value: Any) -> Any:
    if isinstance(value, LossChoice):
        defaults = losses.get(value.name).defaults
        if dict(value.params) == {k: float(v) for k, v in defaults.items()}:
            return value.name
        return {"name": value.name, "params": dict(value.params)}
    return value


def _show(value: Any) -> str:
    shown = _json_value(value)
    return shown if isinstance(shown, str) else json.dumps(shown)


# ----------------------------------------------------------------------------------------------- running


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch on one thread for the job, restored after.

    Why: torch splits reductions (sums over the batch, matmuls) into per-thread chunks whose partial sums are
    added in an order set by the thread count, so the same job on 2 threads and on 1 can differ in the last
    bits (moons, 4,000 points, width 64, 100 epochs: 25 of the 101 recorded training losses differ). Every
    backend runs each job on one thread (the process pool's and Ray's workers too, so the pool does not
    oversubscribe the cores): summaries are identical on all of them. The count is process-wide, so serial
    runs in a threaded server briefly slow its other threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_job(job: Job, device: str | torch.device | None = None) -> JobResult:
    """Compute one job (ValueError when it cannot run: a loss that does not fit the data, ...)."""
    start = time.perf_counter()
    with _one_torch_thread():
        run = ex.run(job.experiment, job.loss, device=device)
        summary = _train_summary(run)
        # a landscape or curvature job keeps only its own arrays: the train job of the same experiment
        # holds the per-epoch and per-sample ones
        if job.kind == "landscape":
            more, arrays = _landscape_outputs(run, dict(job.options), device)
        elif job.kind == "curvature":
            more, arrays = _curvature_outputs(run, dict(job.options), device)
        else:
            more, arrays = {}, _train_arrays(run)
    summary.update(more)
    summary["seconds"] = time.perf_counter() - start
    return JobResult(summary=summary, arrays=arrays)


def _train_summary(run: ex.Run) -> dict[str, float]:
    """The final metrics of the run."""
    h = run.history
    final = h.final
    return {
        "test_acc": final["test_acc"],
        "train_acc": final["train_acc"],
        "noisy_acc": final["noisy_acc"],
        "test_nll": final["test_nll"],
        "ece": final["ece"],
        "final_train_loss": final["train_loss"],
        "diverged": float(h.diverged),
        "epochs_run": float(h.epochs[-1]),
        "train_seconds": float(h.seconds),
    }


def _train_arrays(run: ex.Run) -> dict[str, np.ndarray]:
    """The per-epoch metrics and what a page needs without the model (memorisation, gradient weights)."""
    h, data, task = run.history, run.dataset, run.loss.task
    arrays: dict[str, np.ndarray] = {name: np.asarray(getattr(h, name)) for name in HISTORY_ARRAYS}
    if h.alignment is not None and task == "embedding":
        arrays["alignment"], arrays["uniformity"] = np.asarray(h.alignment), np.asarray(h.uniformity)
    arrays["snapshot_epochs"] = np.asarray(h.snapshot_epochs, dtype=np.int64)
    arrays["noisy_mask"] = np.asarray(data.noisy_mask, dtype=bool)  # (N,)
    arrays["y_train"] = np.asarray(data.y_train)  # (N,) as trained on (noisy)
    arrays["y_train_clean"] = np.asarray(data.y_train_clean)  # (N,)
    if task == "embedding":
        return arrays  # no class outputs: predictions and output gradients do not apply
    predictions, weights = [], []
    for snapshot in h.snapshots:
        # the snapshot's parameters on the trained model (its buffers are the final ones, as the pages show)
        if task != "regression":
            probs = predict_proba(run.model, data.X_train, task, state=snapshot)  # (N, K)
            predictions.append(probs.argmax(1).astype(np.int16))
        at = with_state(run.model, snapshot)
        weight = per_sample_gradient_weight(at, run.loss, data.X_train, data.y_train)  # (N,)
        weights.append(weight.astype(np.float32))
    n = len(data.X_train)
    if task != "regression":
        arrays["train_predictions"] = np.stack(predictions) if predictions else np.zeros((0, n), np.int16)
    arrays["train_gradient_weights"] = np.stack(weights) if weights else np.zeros((0, n), np.float32)
    return arrays


def _static_context(run: ex.Run) -> dict[str, torch.Tensor] | None:
    """What the loss can have at any point of weight space (class counts), as the Landscape page uses."""
    spec = losses.get(run.loss.name)
    found = context.static_context(spec, torch.as_tensor(run.dataset.y_train), run.dataset.n_classes)
    return found or None


def _landscape_outputs(
    run: ex.Run, options: dict[str, Any], device: str | torch.device | None
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Train and test loss (and accuracy) on a grid x grid filter-normalized random plane, ±span."""
    plane = planes.view_plane(run.model, run.history, "random", options["directions_seed"], options["span"])
    xs = planes.grid(plane.xlim, options["grid"])
    ys = planes.grid(plane.ylim, options["grid"])
    data, ctx = run.dataset, _static_context(run)
    arrays: dict[str, np.ndarray] = {"xcoordinates": xs, "ycoordinates": ys}
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
        surface = landscape.loss_surface(
            run.model, run.loss, X, y, plane.d1, plane.d2, xs, ys, device=device, context=ctx
        )
        # (ny, nx): z[i, j] at (xs[j], ys[i]), the Surface convention
        arrays[f"{split}_loss"] = surface.z
        if surface.accuracy is not None:
            arrays[f"{split}_acc"] = surface.accuracy
    arrays["trajectory_x"], arrays["trajectory_y"] = plane.trajectory.x, plane.trajectory.y
    train = arrays["train_loss"]
    centre = train[len(ys) // 2, len(xs) // 2] if len(xs) % 2 else math.nan  # the trained weights
    summary = {
        "train_loss_centre": float(centre),
        "train_loss_mean": float(np.nanmean(train)),
        "train_loss_max": float(np.nanmax(train)),
        "test_loss_mean": float(np.nanmean(arrays["test_loss"])),
    }
    return summary, arrays


def _curvature_outputs(
    run: ex.Run, options: dict[str, Any], device: str | torch.device | None
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Top-k Hessian eigenvalues and the trace of the mean training loss at the trained weights."""
    data, ctx = run.dataset, _static_context(run)
    common = dict(seed=options["probe_seed"], device=device, context=ctx)
    X, y = data.X_train, data.y_train
    k = options["k"]
    n_params = sum(p.numel() for p in run.model.parameters())
    if k > n_params:
        raise ValueError(f"options.k must be at most the model's {n_params} parameters, got {k}")
    eigenvalues = np.asarray(curvature.top_eigenvalues(run.model, run.loss, X, y, k=k, **common))
    trace = curvature.hessian_trace(run.model, run.loss, X, y, n_samples=options["trace_samples"], **common)
    lr = run.experiment.optim.lr
    summary = {
        "lambda_max": float(eigenvalues[0]),
        # gradient descent is stable on a quadratic while lambda_max < 2 / lr: above 1, the edge of stability
        "lambda_max_vs_2_over_lr": float(eigenvalues[0]) * lr / 2.0,
        "trace": float(trace.value),
        "trace_stderr": float(trace.stderr),
        "n_params": float(n_params),
    }
    return summary, {"eigenvalues": eigenvalues}


def deterministic(summary: Mapping[str, float]) -> dict[str, float]:
    """The summary without its timings: what must be identical wherever the job ran."""
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}
