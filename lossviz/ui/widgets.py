"""Widgets drawn from Fields and from the loss registry (a slider per Param, a loss multiselect).

Every widget is seeded from and writes back to a PageState, so its value survives page switches and lives
in the URL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import streamlit as st

from lossviz import losses, presets
from lossviz.experiment import LossChoice
from lossviz.figures import palette
from lossviz.losses.registry import LossSpec, Param
from lossviz.results import Dataset
from lossviz.ui.fields import Field
from lossviz.ui.state import PageState

NICE_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)  # round values, ~10 per decade

# one colour per registered loss on every page, none shared (figures may not import the registry itself)
# the sets shown together by default first: they get the most distinct hues (see presets.shown_together)
palette.assign_order([*presets.shown_together(), *(losses.names(task) for task in losses.TASKS)])


def draw(field: Field, state: PageState, *, container: Any = st, scope: str | None = None) -> Any:
    """Draw one field's widget with its canonical value and return the value."""
    value = field.valid(state.get(field, scope))
    state.set(field, value, scope)
    key = state.widget_key(field, scope)
    shown = list(value) if field.widget == "multiselect" else value
    if key not in st.session_state or st.session_state[key] != shown:
        st.session_state[key] = shown
    common: dict[str, Any] = dict(key=key, help=field.help, on_change=state.commit, args=(field, scope))
    label, fmt = field.label, field.label_of
    if field.widget == "radio":
        container.radio(label, field.options, format_func=fmt, horizontal=True, **common)
    elif field.widget == "select":
        container.selectbox(label, field.options, format_func=fmt, **common)
    elif field.widget == "select_slider":
        container.select_slider(label, options=list(field.options), format_func=fmt, **common)
    elif field.widget == "multiselect":
        container.multiselect(label, field.options, format_func=fmt, placeholder="Pick losses", **common)
    elif field.widget == "toggle":
        container.toggle(label, **common)
    elif field.widget == "int":
        container.slider(label, int(field.low), int(field.high), step=int(field.step or 1), **common)
    elif field.widget == "slider":
        step = field.step or (field.high - field.low) / 100
        decimals = max(0, -math.floor(math.log10(step)))
        container.slider(
            label, float(field.low), float(field.high), step=step, format=f"%.{decimals}f", **common
        )
    else:
        container.number_input(label, min_value=field.low, max_value=field.high, step=field.step, **common)
    state.commit(field, scope)
    value = state.get(field, scope)
    state.record(field, value)
    return value


def views(
    field: Field,
    state: PageState,
    *,
    controls: Mapping[Any, Sequence[str]] | None = None,
    container: Any = st,
) -> tuple[Any, Any]:
    """Tabs for a page's views, of which only the open one is built: returns (open option, its tab).

    The browser's cost of a step is redrawing every chart that changed, about 0.1 s a chart here, so a page
    whose controls feed four views answers a slider in the time of one only when the other three are not on
    the page. Streamlit's tabs build every tab unless they track the open one (on_change); then a switch
    reruns the page, which draws that tab's view. The open tab is a field like any other: kept across page
    switches and written to the URL. `controls` names, by view, the URL parameters of the controls drawn
    inside a view: those of the closed views stay in the URL (PageState.carry).
    """
    value = field.valid(state.get(field))
    state.set(field, value)
    labels = {field.label_of(option): option for option in field.options}
    key = state.widget_key(field)
    if st.session_state.get(key) != field.label_of(value):
        st.session_state[key] = field.label_of(value)
    tabs = container.tabs(list(labels), key=key, on_change=_commit_view, args=(field, state, labels))
    state.record(field, value)
    state.carry(name for view, names in (controls or {}).items() if view != value for name in names)
    return value, tabs[field.options.index(value)]


def _commit_view(field: Field, state: PageState, labels: Mapping[str, Any]) -> None:
    """on_change of view tabs: the open tab's label names the new view."""
    label = st.session_state.get(state.widget_key(field))
    if label in labels:
        state.set(field, labels[label])


# ----------------------------------------------------------------------------------------------- registry


def slider_options(param: Param) -> list[float]:
    """Options of a log-scale Param: round values (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per decade) in range,
    plus its low, high and default, so typical values in a URL are exact."""
    values = {float(param.low), float(param.high), float(param.default)}
    for exponent in range(math.floor(math.log10(param.low)), math.ceil(math.log10(param.high)) + 1):
        for mantissa in NICE_MANTISSAS:
            value = float(f"{mantissa}e{exponent}")  # exact decimal, no 2.5 * 10**-3 round-off
            if param.contains(value):
                values.add(value)
    if param.integer:
        values = {float(round(v)) for v in values if param.contains(round(v))}
    return sorted(values)


def nice_step(param: Param, steps: int = 100) -> float:
    """A round slider step (1, 2 or 5 times a power of ten) giving about `steps` steps over the range."""
    if param.integer:
        return 1.0
    raw = (param.high - param.low) / steps
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def format_value(value: float) -> str:
    """A slider label: whole numbers without decimals, others with four significant digits."""
    return f"{int(value)}" if float(value).is_integer() and abs(value) < 1e6 else f"{value:.4g}"


def param_field(spec: LossSpec, param: Param) -> Field:
    """The Field of one hyperparameter (URL name `loss.param`): a log grid, an integer or a float slider."""
    key = f"{spec.name}.{param.name}"
    if param.log:
        options = tuple(slider_options(param))
        return Field(
            key,
            param.name,
            "select_slider",
            param.default,
            options=options,
            help=param.help or None,
            format=format_value,
        )
    if param.integer:
        return Field(
            key,
            param.name,
            "int",
            round(param.default),
            low=param.low,
            high=param.high,
            help=param.help or None,
        )
    return Field(
        key,
        param.name,
        "slider",
        float(param.default),
        low=param.low,
        high=param.high,
        step=nice_step(param),
        help=param.help or None,
    )


def param_inputs(spec: LossSpec, state: PageState, container: Any = st) -> dict[str, float]:
    """Widgets for every hyperparameter of a loss: {param: value}."""
    return {p.name: float(draw(param_field(spec, p), state, container=container)) for p in spec.params}


def loss_label(name: str) -> str:
    """The text of a loss in pickers: its title, marked when it is batch-level."""
    spec = losses.get(name)
    return f"{spec.title} (batch-level)" if spec.batch else spec.title


def losses_field(task: str, default: tuple[str, ...], *, key: str = "losses", label: str = "Losses") -> Field:
    """A multiselect Field over the registered losses of a task (the registry is the list)."""
    options = tuple(losses.names(task))  # type: ignore[arg-type]
    return Field(
        key,
        label,
        "multiselect",
        tuple(n for n in default if n in options),
        options=options,
        format=loss_label,
    )


def loss_picker(
    task: str,
    state: PageState,
    default: tuple[str, ...],
    *,
    label: str = "Losses",
    key: str = "losses",
    container: Any = st,
) -> list[str]:
    """The losses chosen for a task; each task keeps its own choice (stored as `key.task`), shown as `key`."""
    field = replace(losses_field(task, default, key=key, label=label), key=f"{key}.{task}", url=key)
    return list(draw(field, state, container=container))


def loss_tasks(data: Dataset) -> tuple[str, ...]:
    """The loss tasks that fit a dataset: regression; multiclass; or, with K = 2, multiclass and binary."""
    if data.task == "regression":
        return ("regression",)
    return ("multiclass", "binary") if data.n_classes == 2 else ("multiclass",)


PICKER_KEYS = {"binary": "margin_losses", "embedding": "embedding_losses"}  # URL names besides `losses`
PICKER_LABELS = {
    "multiclass": "Multiclass losses (K logits)",
    "binary": "Binary margin losses (one logit)",
    "regression": "Regression losses",
    "embedding": "Embedding losses (an encoder onto the sphere)",
}


def task_loss_pickers(
    state: PageState, data: Dataset, defaults: dict[str, tuple[str, ...]], extra: tuple[str, ...] = ()
) -> list[str]:
    """A loss picker per task that fits the dataset, then one per task of `extra` (e.g. "embedding" where a
    page measures encoders too); the chosen losses of all of them, in order."""
    chosen: list[str] = []
    for task in (*loss_tasks(data), *extra):
        label = (
            PICKER_LABELS[task]
            if task != "multiclass"
            else f"Multiclass losses (K = {data.n_classes} logits)"
        )
        chosen += loss_picker(
            task, state, defaults.get(task, ()), label=label, key=PICKER_KEYS.get(task, "losses")
        )
    return chosen


def load_losses(state: PageState, choices: Sequence[LossChoice]) -> None:
    """Make these losses (with their hyperparameters) the page's selection, e.g. from a preset's on_click."""
    store = state.store()
    by_task: dict[str, list[str]] = {}
    for choice in choices:
        task = losses.get(choice.name).task
        by_task.setdefault(task, []).append(choice.name)
        for param, value in choice.params:
            store[f"{choice.name}.{param}"] = value
    for task in ("multiclass", "binary", "regression", "embedding"):
        store[f"{PICKER_KEYS.get(task, 'losses')}.{task}"] = tuple(by_task.get(task, ()))


def static_table(rows: Sequence[Mapping[str, Any]], *, decimals: int | None = None) -> None:
    """Rows (one dict each, the same keys) as a static table, numbers to `decimals` places when given; a
    NaN (a measure that is not defined there, e.g. NC3 without a classifier) reads "—".

    st.table, not st.dataframe: a few rows need no sorting or scrolling, and the interactive grid's redraw
    cost about 0.1 s of every slider step in Chromium (measured by removing it from a page).
    """
    import pandas as pd  # streamlit's own dependency

    frame = pd.DataFrame(list(rows))
    numbers = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    styled = frame.style.format(precision=decimals, subset=numbers, na_rep="—")
    st.table(styled, hide_index=True)


def metrics_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """A metrics table, the best value of each column highlighted (a static table, as static_table)."""
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
    st.table(styled, hide_index=True)
    lower = [c for c in frame.columns if c in HIGHER_IS_BETTER and not HIGHER_IS_BETTER[c]]
    st.caption(f"Best value per column highlighted; lower is better for {', '.join(lower)}.")


def loss_settings(
    names: list[str], state: PageState, *, expanded: bool = False, container: Any = st
) -> dict[str, dict[str, float]]:
    """{loss: its hyperparameters} with an expander of sliders for each loss that has any."""
    selection: dict[str, dict[str, float]] = {}
    for name in names:
        spec = losses.get(name)
        if not spec.params:
            selection[name] = {}
            continue
        with container.expander(loss_label(name), expanded=expanded):
            st.caption(spec.notes or spec.paper)
            selection[name] = param_inputs(spec, state)
    return selection


def color_dot(name: str) -> str:
    """An HTML dot in the loss's palette colour, for markdown headers next to its widgets."""
    return f'<span style="color:{palette.color_for(name)};font-size:1.2em">&#9679;</span>'
