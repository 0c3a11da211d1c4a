"""Widgets generated from the loss registry: a slider per Param, a loss multiselect, small choices.

Keys are namespaced `page.loss.param`; every widget is seeded from and mirrored to the URL by a PageState.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from lossviz import losses
from lossviz.figures import palette
from lossviz.losses.registry import LossSpec, Param
from lossviz.ui.state import PageState, nearest, parse_choice, parse_number

NICE_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)  # round values, ~10 per decade


def sync_palette() -> None:
    """Give every registered loss its colour slot (registry order within each task); cheap, idempotent."""
    palette.assign_order(losses.names(task) for task in losses.TASKS)


sync_palette()


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


def _format_value(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() and abs(value) < 1e6 else f"{value:.4g}"


def _clamp(key: str, low: float, high: float, kind: Callable[[float], Any]) -> None:
    """Keep a seeded widget value inside the widget's range and of its type (only writes on a change)."""
    current = st.session_state[key]
    fixed = kind(min(max(current, low), high))
    if fixed != current or type(fixed) is not type(current):
        st.session_state[key] = fixed


def param_input(spec: LossSpec, param: Param, state: PageState, container: Any = st) -> float:
    """One hyperparameter's widget: select slider over a log grid, integer slider, or float slider."""
    key = state.key(spec.name, param.name)
    label = f"{param.name}"
    help_text = param.help or None
    parse = parse_number(param.low, param.high, integer=param.integer and not param.log)
    if param.log:
        options = slider_options(param)
        value = state.restore(key, lambda raw: nearest(options, parse(raw)), nearest(options, param.default))
        if value not in options:  # a value from elsewhere (another page, an old session): snap to the grid
            st.session_state[key] = nearest(options, value)
        value = container.select_slider(
            label, options=options, format_func=_format_value, key=key, help=help_text
        )
    elif param.integer:
        state.restore(key, parse, round(param.default))
        _clamp(key, param.low, param.high, int)
        value = container.slider(label, int(param.low), int(param.high), step=1, key=key, help=help_text)
    else:
        step = nice_step(param)
        state.restore(key, parse, float(param.default))
        _clamp(key, param.low, param.high, float)
        decimals = max(0, -math.floor(math.log10(step)))
        value = container.slider(
            label,
            float(param.low),
            float(param.high),
            step=step,
            format=f"%.{decimals}f",
            key=key,
            help=help_text,
        )
    state.record(key, value)
    return float(value)


def param_inputs(
    spec: LossSpec, state: PageState, container: Any = st, skip: Sequence[str] = ()
) -> dict[str, float]:
    """Widgets for every hyperparameter of a loss (except those in skip): {param: value}."""
    return {p.name: param_input(spec, p, state, container) for p in spec.params if p.name not in skip}


def loss_label(name: str) -> str:
    """The text of a loss in pickers: its title, marked when it is batch-level."""
    spec = losses.get(name)
    return f"{spec.title} (batch-level)" if spec.batch else spec.title


def loss_multiselect(
    task: str,
    state: PageState,
    default: Sequence[str],
    *,
    label: str = "Losses",
    url: str = "losses",
    container: Any = st,
) -> list[str]:
    """A multiselect of the registered losses of a task (titles shown), keyed per task."""
    options = losses.names(task)
    key = state.key("losses", task)
    state.restore_list(key, options, [n for n in default if n in options], url=url)
    st.session_state[key] = [n for n in st.session_state[key] if n in options]  # losses can be unregistered
    chosen = container.multiselect(label, options, format_func=loss_label, key=key, placeholder="Pick losses")
    state.record(key, chosen, url=url)
    return list(chosen)


def choice(
    label: str,
    options: Sequence[str],
    state: PageState,
    name: str,
    default: str | None = None,
    *,
    format_func: Callable[[str], str] = str,
    kind: str = "radio",
    container: Any = st,
    help: str | None = None,  # noqa: A002  (streamlit's own argument name)
) -> str:
    """A single choice (radio or selectbox) keyed `page.name`, mirrored to the URL as `name`."""
    key = state.key(name)
    options = list(options)
    state.restore(key, parse_choice(options), default if default in options else options[0])
    if st.session_state[key] not in options:  # the options changed (e.g. another task)
        st.session_state[key] = default if default in options else options[0]
    if kind == "radio":
        value = container.radio(label, options, format_func=format_func, key=key, horizontal=True, help=help)
    else:
        value = container.selectbox(label, options, format_func=format_func, key=key, help=help)
    state.record(key, value)
    return value


def integer(
    label: str,
    low: int,
    high: int,
    state: PageState,
    name: str,
    default: int,
    *,
    container: Any = st,
    help: str | None = None,  # noqa: A002
) -> int:
    """An integer slider keyed `page.name`, mirrored to the URL as `name`."""
    key = state.key(name)
    state.restore(key, parse_number(low, high, integer=True), default)
    _clamp(key, low, high, int)
    value = container.slider(label, low, high, step=1, key=key, help=help)
    state.record(key, value)
    return int(value)


def color_dot(name: str) -> str:
    """An HTML dot in the loss's palette colour, for markdown headers next to its widgets."""
    return f'<span style="color:{palette.color_for(name)};font-size:1.2em">&#9679;</span>'
