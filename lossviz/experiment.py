"""The one description of an experiment (data, model, optimiser, losses) and the one way to run it.

Pages, presets, tests, the command line and offline jobs build an `Experiment` and call `run` / `run_all`.
Every loss of an experiment trains on the same data from the same initial weights; the registry says which
output head a loss needs and lossviz.context supplies the data it takes beyond (pred, target). A distillation
loss learns from a teacher that `run` trains first, with cross-entropy on the same data (Experiment.teacher).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import types
import typing
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args, get_origin

import numpy as np
import torch
from torch import nn

from lossviz import data as datasets
from lossviz import losses
from lossviz.data import CsvTask, NoiseKind, Transition
from lossviz.device import resolve_device
from lossviz.losses import BoundLoss, make, n_outputs
from lossviz.models import Activation, ModelKind, make_model
from lossviz.noise import check_transition
from lossviz.results import Dataset, History
from lossviz.train import OptimizerName, Positives, Progress, Views, check_compatible, fit, with_state

CSV = "csv"  # DataSpec.source of an uploaded file (its bytes are kept by register_csv)
SCHEMA = 1  # bump when a field changes meaning: it is part of every digest
# Fields added after digests were first handed out: written to JSON only when they differ from their default,
# so every experiment that leaves them alone keeps its digest (and the results and links keyed by it).
_ADDED = {"omit_at_default": True}
ParamsKey = tuple[tuple[str, float], ...]


# ----------------------------------------------------------------------------------------------- the specs


@dataclass(frozen=True)
class DataSpec:
    """What determines the Dataset. Defaults: a two-class toy problem that trains in well under a second."""

    source: str = "moons"  # a lossviz.data.DATASETS key, or "csv" for an uploaded file
    n: int | None = 400  # samples before the split; 400 draws a clear boundary. None: all rows of a real set
    noise: float | None = None  # the generator's jitter; None: its own default (moons 0.2, ...)
    n_classes: int | None = None  # for blobs, spirals, gaussian_quantiles; None: their default of 3
    label_noise: float = 0.0  # fraction of training labels flipped (regression: outliers); test stays clean
    noise_kind: NoiseKind = "symmetric"  # how flipped labels are chosen
    imbalance: float = 1.0  # majority : minority ratio of the training split; 1 = as generated
    seed: int = 0  # draws the points, the split, the flips
    csv: str = ""  # sha1 of the uploaded bytes (see register_csv) when source == "csv"
    csv_target: str = ""  # the CSV's label column
    csv_task: CsvTask = "auto"  # classification, regression, or decided from the target column
    # the views embedding losses train on (the other tasks ignore them; see lossviz.data.augment).
    # augmented views of each instance per step: 2, as SimCLR and SupCon use
    views: int = field(default=2, metadata=_ADDED)
    # view strength: 1 = up to ±15° rotation, ±10 % scale, noise σ 0.1 on points, ±1 pixel shifts on digits
    augment: float = field(default=1.0, metadata=_ADDED)
    # which views are positives of each other: "class" = every view of the same label (supervised, SupCon;
    # the default, since every dataset here has labels); "instance" = only the views of one instance
    # (self-supervised, SimCLR)
    positives: Positives = field(default="class", metadata=_ADDED)
    # noise_kind "transition"'s row-stochastic K x K matrix, T[i][j] = P(label j | true class i), applied at
    # label_noise as (1 - rate) I + rate T (lossviz.noise); () for the other kinds, which ignore it
    transition: Transition = field(default=(), metadata=_ADDED)

    def __post_init__(self) -> None:
        _check_literals("data", self)
        _check_transition(self)
        sources = [*datasets.DATASETS, CSV]
        _check_choice("data.source", self.source, sources)
        _check_int("data.n", self.n, 2, allow_none=True)
        _check_int("data.n_classes", self.n_classes, 2, allow_none=True)
        _check_int("data.seed", self.seed, 0)
        if self.noise is not None:
            _check_number("data.noise", self.noise, 0.0, 10.0)
        _check_number("data.label_noise", self.label_noise, 0.0, 0.95)
        _check_number("data.imbalance", self.imbalance, 1.0, 1000.0)
        _check_int("data.views", self.views, 1, high=8)
        _check_number("data.augment", self.augment, 0.0, datasets.MAX_AUGMENT)
        object.__setattr__(self, "augment", float(self.augment))  # 1 and 1.0: one JSON form, one digest
        if self.positives == "instance" and self.views < 2:
            raise ValueError(
                f"data.views must be >= 2 when data.positives is 'instance' (an instance's only positives "
                f"are its other views), got {self.views}"
            )
        if self.source == CSV and not self.csv_target:
            raise ValueError("data.csv_target must name the CSV's label column when data.source is 'csv'")
        if datasets.is_toy(self.source) and self.noise is None:  # explicit, so equal data has one digest
            object.__setattr__(self, "noise", datasets.default_noise(self.source))


@dataclass(frozen=True)
class ModelSpec:
    """The network. Defaults: a 2 x 32 ReLU MLP, big enough for every toy set, small enough to train live."""

    kind: ModelKind = "mlp"
    width: int = 32  # hidden units (the CNN uses width // 4 channels)
    depth: int = 2  # hidden layers of the MLP
    activation: Activation = "relu"
    residual: bool = False  # skip connections around hidden layers (flatter landscapes, Li et al. 2018)
    batch_norm: bool = False
    # output width for embedding losses (their sphere head): 2 puts the embeddings on the circle S¹, drawn as
    # they are; 3 on the sphere S²; more trains on a higher sphere (pages then project it)
    embedding_dim: int = field(default=2, metadata=_ADDED)

    def __post_init__(self) -> None:
        _check_literals("model", self)
        _check_int("model.width", self.width, 1)
        _check_int("model.depth", self.depth, 1)
        _check_int("model.embedding_dim", self.embedding_dim, 2, high=64)


TEACHER_LOSS = "cross_entropy"  # what the distillation losses' teacher trains with (see DEFAULT_TEACHER)


@dataclass(frozen=True)
class OptimSpec:
    """The training recipe. Defaults: full-batch Adam at 1e-2 for 200 epochs, which converges on the toys."""

    optimizer: OptimizerName = "adam"
    lr: float = 1e-2
    weight_decay: float = 0.0
    epochs: int = 200
    batch_size: int | None = None  # None: full batch (deterministic, and fastest for a few hundred points)
    seed: int = 0  # initial weights and minibatch order, shared by every loss
    snapshots: int = 20  # parameter snapshots per run: animation frames and trajectory points
    momentum: float = 0.9  # of "momentum" and SAM's base optimiser
    rho: float = 0.05  # SAM's neighbourhood radius (Foret et al. 2021 use 0.05)

    def __post_init__(self) -> None:
        _check_literals("optim", self)
        _check_number("optim.lr", self.lr, 1e-8, 1e4)
        _check_number("optim.weight_decay", self.weight_decay, 0.0, 10.0)
        _check_int("optim.epochs", self.epochs, 1)
        _check_int("optim.batch_size", self.batch_size, 1, allow_none=True)
        _check_int("optim.seed", self.seed, 0)
        _check_int("optim.snapshots", self.snapshots, 0)
        _check_number("optim.momentum", self.momentum, 0.0, 0.999)
        _check_number("optim.rho", self.rho, 1e-6, 10.0)


@dataclass(frozen=True)
class LossChoice:
    """One registered loss with its hyperparameters, bound by the registry (defaults made explicit)."""

    name: str
    params: ParamsKey = ()

    def __post_init__(self) -> None:
        try:
            spec = losses.get(self.name)
        except KeyError as err:
            raise ValueError(f"losses: {err.args[0]}") from None
        object.__setattr__(self, "params", params_key(spec.bind(**dict(self.params))))

    @property
    def bound(self) -> BoundLoss:
        """The loss ready to call on model outputs."""
        return make(self.name, **dict(self.params))


@dataclass(frozen=True)
class Experiment:
    """Data, model, optimiser and the losses to compare (in display order). Frozen, hashable, JSON."""

    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    losses: tuple[LossChoice, ...] = ()
    # the model distillation losses learn from (their context teacher_logits), trained with TEACHER_LOSS on
    # the same data and recipe; None: DEFAULT_TEACHER. Other losses ignore it.
    teacher: ModelSpec | None = field(default=None, metadata=_ADDED)

    def __post_init__(self) -> None:
        names = [choice.name for choice in self.losses]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"losses: each loss may appear once, got {repeated} more than once")
        if self.teacher == DEFAULT_TEACHER:  # the default teacher has one form, None, so one digest
            object.__setattr__(self, "teacher", None)

    # ------------------------------------------------------------------ derived forms

    def with_losses(self, choices: Iterable[LossChoice | str]) -> Experiment:
        """The same data, model and optimiser with other losses."""
        return replace(self, losses=tuple(c if isinstance(c, LossChoice) else LossChoice(c) for c in choices))

    def base(self) -> Experiment:
        """Without the losses: what one loss's run depends on besides its own hyperparameters."""
        return replace(self, losses=())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: {"data": {...}, "model": {...}, "optim": {...}, "losses": [...]}."""
        return {
            "data": _fields_dict(self.data),
            "model": _fields_dict(self.model),
            "optim": _fields_dict(self.optim),
            "losses": [{"name": c.name, "params": dict(c.params)} for c in self.losses],
            **({} if self.teacher is None else {"teacher": _fields_dict(self.teacher)}),  # see _ADDED
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the digest is computed from it."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Experiment:
        """Validate and build; ValueError naming the field and the valid choices on bad input."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"an experiment must be a JSON object, got {type(raw).__name__}")
        _check_keys("experiment", raw, ["data", "model", "optim", "losses", "teacher"])
        loss_list = raw.get("losses", [])
        if not isinstance(loss_list, list):
            raise ValueError(f"losses must be a list of {{'name', 'params'}} objects, got {loss_list!r}")
        choices = []
        for i, item in enumerate(loss_list):
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, Mapping) or "name" not in item:
                raise ValueError(f"losses[{i}] must be an object with a 'name', got {item!r}")
            _check_keys(f"losses[{i}]", item, ["name", "params"])
            params = item.get("params", {})
            if not isinstance(params, Mapping):
                raise ValueError(f"losses[{i}].params must be an object, got {params!r}")
            choices.append(LossChoice(str(item["name"]), params_key(params)))
        return cls(
            data=_spec_from("data", DataSpec, raw.get("data", {})),
            model=_spec_from("model", ModelSpec, raw.get("model", {})),
            optim=_spec_from("optim", OptimSpec, raw.get("optim", {})),
            losses=tuple(choices),
            teacher=_teacher_from(raw.get("teacher")),
        )

    @classmethod
    def from_json(cls, text: str) -> Experiment:
        """Experiment.from_dict of a JSON string (ValueError on malformed JSON too)."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON: {err}") from None
        return cls.from_dict(raw)

    @property
    def digest(self) -> str:
        """A stable content hash: equal experiments (defaults made explicit) share it across processes."""
        return hashlib.sha256(f"lossviz-experiment-v{SCHEMA}:{self.to_json()}".encode()).hexdigest()[:16]


def params_key(params: Mapping[str, float]) -> ParamsKey:
    """A hashable, order-independent form of a params dict."""
    return tuple(sorted((str(k), float(v)) for k, v in params.items()))


# ----------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Run:
    """One loss trained within an experiment."""

    experiment: Experiment  # with this loss alone
    loss: BoundLoss
    dataset: Dataset
    initial_model: nn.Module  # shared initialisation (never mutated)
    history: History
    model: nn.Module  # the trained model in eval mode (the last finite weights if the run diverged)


@dataclass(frozen=True)
class RunSet:
    """Every loss of an experiment: the runs that trained, and a message for each loss that could not."""

    runs: dict[str, Run]
    errors: dict[str, str]


# Uploaded CSVs by sha1, so that a DataSpec (which holds only the digest) can be rebuilt. Bounded: the oldest
# upload is forgotten first.
_CSV_BYTES: OrderedDict[str, bytes] = OrderedDict()
_CSV_KEEP = 16


def register_csv(content: bytes) -> str:
    """Keep an uploaded CSV's bytes under their sha1 digest (DataSpec.csv); returns the digest."""
    digest = hashlib.sha1(bytes(content)).hexdigest()
    _CSV_BYTES[digest] = bytes(content)
    _CSV_BYTES.move_to_end(digest)
    while len(_CSV_BYTES) > _CSV_KEEP:
        _CSV_BYTES.popitem(last=False)
    return digest


def dataset(spec: DataSpec) -> Dataset:
    """The Dataset a DataSpec describes (ValueError with the data module's message when it cannot be made)."""
    common = dict(
        seed=spec.seed,
        label_noise=spec.label_noise,
        noise_kind=spec.noise_kind,
        imbalance=spec.imbalance,
        transition=spec.transition,
    )
    if spec.source == CSV:
        content = _CSV_BYTES.get(spec.csv)
        if content is None:
            raise ValueError("the uploaded CSV is no longer in memory; upload it again")
        return datasets.load_csv(content, spec.csv_target, spec.csv_task, **common)  # type: ignore[arg-type]
    return datasets.make_dataset(spec.source, n=spec.n, noise=spec.noise, n_classes=spec.n_classes, **common)


def view_settings(spec: DataSpec) -> Views:
    """The view settings of a DataSpec, as train.fit takes them (used by embedding losses only)."""
    return Views(count=spec.views, strength=spec.augment, positives=spec.positives)


def initial_model(experiment: Experiment, loss: str, data: Dataset | None = None) -> nn.Module:
    """The freshly initialised model for one loss, with the head the registry asks for.

    Same seed, same weights: two losses with the same task and head start from identical parameters (every
    embedding loss trains the same encoder with its sphere head, model.embedding_dim outputs wide).
    """
    data = data if data is not None else dataset(experiment.data)
    spec = losses.get(loss)
    m = experiment.model
    return make_model(
        m.kind,
        data.n_features,
        n_outputs(spec.task, data.n_classes, embedding_dim=m.embedding_dim),
        width=m.width,
        depth=m.depth,
        activation=m.activation,
        residual=m.residual,
        batch_norm=m.batch_norm,
        head=spec.head,
        seed=experiment.optim.seed,
    )


def shared_starts(experiment: Experiment) -> list[tuple[str, ...]]:
    """The experiment's losses grouped by the initial weights they share (in selection order).

    initial_model gives every loss with the same task and head the same parameters, so each group's losses
    start training from one model.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for choice in experiment.losses:
        spec = losses.get(choice.name)
        groups.setdefault((spec.task, spec.head), []).append(choice.name)
    return [tuple(names) for names in groups.values()]


def trained_model(
    experiment: Experiment, loss: str, history: History, data: Dataset | None = None
) -> nn.Module:
    """The model of a finished run, rebuilt from its History (for caches that keep only histories)."""
    return with_state(initial_model(experiment, loss, data), history.final_state)


def run(
    experiment: Experiment,
    loss: str | LossChoice,
    *,
    progress: Progress | None = None,
    device: str | torch.device | None = None,
    data: Dataset | None = None,
    on_snapshot: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    **params: float,
) -> Run:
    """Train one loss (hyperparameters from params, else from the experiment's choice, else defaults)."""
    choice = _choice(experiment, loss, params)
    data = data if data is not None else dataset(experiment.data)
    check_compatible(choice.bound, data)  # before building a model with the wrong number of outputs
    supplied = {}
    if "teacher_logits" in choice.bound.spec.context:  # the teacher trains first (once: teacher_run keeps it)
        report = None if progress is None else (lambda f, m: progress(0.0, f"teacher: {m}"))
        supplied["teacher_logits"] = teacher_logits(experiment, data, device=device, progress=report)
    init = initial_model(experiment, choice.name, data)
    o = experiment.optim
    history = fit(
        init,
        choice.bound,
        data,
        optimizer=o.optimizer,
        lr=o.lr,
        weight_decay=o.weight_decay,
        epochs=o.epochs,
        batch_size=o.batch_size,
        seed=o.seed,
        snapshots=o.snapshots,
        device=device,
        progress=progress,
        rho=o.rho,
        momentum=o.momentum,
        on_snapshot=on_snapshot,
        views=view_settings(experiment.data),
        supplied=supplied,
    )
    return Run(
        experiment=replace(experiment, losses=(choice,)),
        loss=choice.bound,
        dataset=data,
        initial_model=init,
        history=history,
        model=with_state(init, history.final_state),
    )


def teacher_experiment(experiment: Experiment) -> Experiment:
    """The experiment that trains the teacher: the same data and recipe, the teacher's model, TEACHER_LOSS."""
    model = experiment.teacher if experiment.teacher is not None else DEFAULT_TEACHER
    return Experiment(experiment.data, model, experiment.optim, (LossChoice(TEACHER_LOSS),))


# Trained teachers by (teacher experiment digest, device): every distillation loss of an experiment, and every
# hyperparameter setting of one, learns from one teacher trained once. Bounded: the oldest is forgotten first.
_TEACHERS: OrderedDict[tuple[str, str], Run] = OrderedDict()
_TEACHERS_KEEP = 8
_TEACHERS_LOCK = threading.Lock()  # the app trains in several threads; held for the dict, not for training


def teacher_run(
    experiment: Experiment,
    data: Dataset | None = None,
    *,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> Run:
    """The experiment's teacher trained with run (on teacher_experiment), remembered for later calls."""
    teaching = teacher_experiment(experiment)
    key = (teaching.digest, str(resolve_device(device)))
    with _TEACHERS_LOCK:
        kept = _TEACHERS.get(key)
        if kept is not None:
            _TEACHERS.move_to_end(key)
            return kept
    trained = run(teaching, TEACHER_LOSS, progress=progress, device=device, data=data)
    with _TEACHERS_LOCK:
        _TEACHERS[key] = trained
        while len(_TEACHERS) > _TEACHERS_KEEP:
            _TEACHERS.popitem(last=False)
    return trained


def teacher_logits(
    experiment: Experiment,
    data: Dataset | None = None,
    *,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """(N_train, K) float32 logits of the experiment's teacher on the training inputs (teacher_logits)."""
    teacher = teacher_run(experiment, data, device=device, progress=progress)
    with torch.no_grad():  # the trained model is in eval mode on the CPU (see with_state)
        logits = teacher.model(torch.as_tensor(teacher.dataset.X_train, dtype=torch.float32))
    return logits.numpy().astype(np.float32)


def run_all(
    experiment: Experiment,
    choices: Sequence[LossChoice | str] | None = None,
    *,
    progress: Progress | None = None,
    device: str | torch.device | None = None,
) -> RunSet:
    """Train every loss (the experiment's, or choices) on one dataset; a loss that fails is reported."""
    selected = list(experiment.losses if choices is None else choices)
    data = dataset(experiment.data)
    runs: dict[str, Run] = {}
    errors: dict[str, str] = {}
    for i, loss in enumerate(selected):
        name = loss.name if isinstance(loss, LossChoice) else loss

        def report(fraction: float, message: str, i: int = i, name: str = name) -> None:
            if progress is not None:
                progress((i + fraction) / len(selected), f"{losses.get(name).title}: {message}")

        try:
            runs[name] = run(experiment, loss, progress=report, device=device, data=data)
        except ValueError as err:
            errors[name] = str(err)
    return RunSet(runs=runs, errors=errors)


def _choice(experiment: Experiment, loss: str | LossChoice, params: Mapping[str, float]) -> LossChoice:
    if isinstance(loss, LossChoice):
        return LossChoice(loss.name, params_key({**dict(loss.params), **params}))
    chosen = {c.name: c for c in experiment.losses}
    base = dict(chosen[loss].params) if loss in chosen else {}
    return LossChoice(loss, params_key({**base, **params}))


# ----------------------------------------------------------------------------------------------- checks


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_int(name: str, value: Any, low: int, allow_none: bool = False, high: int | None = None) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(
            f"{name} must be an integer >= {low}{' or null' if allow_none else ''}, got {value!r}"
        )
    if high is not None and value > high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")


def _check_transition(spec: DataSpec) -> None:
    """data.transition: a row-stochastic matrix (as float tuples) for the transition kind, else () so that
    equal data has one digest."""
    if spec.noise_kind != "transition":
        object.__setattr__(spec, "transition", ())
        return
    if not len(spec.transition):
        raise ValueError("data.transition must be a K x K matrix when data.noise_kind is 'transition'")
    try:
        check_transition(spec.transition)
    except ValueError as err:
        raise ValueError(f"data.{err}") from None
    object.__setattr__(spec, "transition", tuple(tuple(float(v) for v in row) for row in spec.transition))


def _check_keys(where: str, raw: Mapping[str, Any], valid: Sequence[str]) -> None:
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid fields: {list(valid)}")


def _check_literals(where: str, spec: Any) -> None:
    """Every Literal-typed field of a spec holds one of its choices."""
    for name, hint in _hints(type(spec)).items():
        if get_origin(hint) is Literal:
            _check_choice(f"{where}.{name}", getattr(spec, name), get_args(hint))


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a spec class (resolved once: they are strings under __future__)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fields_dict(spec: Any) -> dict[str, Any]:
    """Every field's value, except the later-added ones still at their default (see _ADDED)."""
    return {
        f.name: getattr(spec, f.name)
        for f in fields(spec)
        if not (f.metadata.get("omit_at_default") and getattr(spec, f.name) == f.default)
    }


def _spec_from(where: str, cls: type, raw: Any) -> Any:
    """A spec dataclass from a JSON object: unknown keys, wrong types and bad Literal choices named."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object, got {raw!r}")
    hints = _hints(cls)
    _check_keys(where, raw, [f.name for f in fields(cls)])
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(f"{where}.{name}", hints[name], value)
    return cls(**values)


def _teacher_from(raw: Any) -> ModelSpec | None:
    """Experiment.teacher from JSON (null: the default teacher); errors name teacher.*, not model.*."""
    if raw is None:
        return None
    try:
        return _spec_from("teacher", ModelSpec, raw)
    except ValueError as err:  # ModelSpec's own checks say "model.width ..."
        message = str(err)
        raise ValueError("teacher." + message[6:] if message.startswith("model.") else message) from None


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """value checked against a field's type hint (Literal, int, float, bool, str, optional)."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _coerce(name, inner, value)
    if origin is Literal:
        _check_choice(name, value, get_args(hint))
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    return value


# The teacher of the distillation losses when Experiment.teacher is None: four times wider and one layer
# deeper than the default student (2 x 32), so it fits the toy sets' boundaries closely. (Defined last: a
# ModelSpec runs the checks above.)
DEFAULT_TEACHER = ModelSpec(width=128, depth=3)
