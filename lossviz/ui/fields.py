"""Declarative controls: one `Field` says a control's widget, its URL name, its default and how its value is
read back from URL text. Pages list Fields; lossviz.ui.widgets draws them and lossviz.ui.state keeps their
values (as tensorflow/playground's state.ts does for its controls).

Pure Python: no Streamlit here, so the table and its parsers are tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Widget = Literal[
    "radio", "select", "select_slider", "slider", "int", "toggle", "multiselect", "number", "tabs"
]


@dataclass(frozen=True)
class Field:
    """One control. `key` names it in the page's state and, unless `url` says otherwise, in the URL."""

    key: str
    label: str
    widget: Widget
    default: Any
    options: tuple[Any, ...] = ()  # radio, select, select_slider, multiselect, tabs
    low: float = -math.inf  # slider, int, number
    high: float = math.inf
    step: float | None = None
    help: str | None = None
    format: Callable[[Any], str] | None = None  # option labels (radio, select, multiselect, select_slider)
    url: str | None = None  # its query parameter when not the key (one per task's loss list, for example)

    @property
    def url_name(self) -> str:
        """The query parameter that carries this field."""
        return self.url or self.key

    def parse(self, raw: str) -> Any:
        """The value of URL text; ValueError saying what was expected."""
        if self.widget == "toggle":
            if raw not in ("0", "1"):
                raise ValueError("must be 0 or 1")
            return raw == "1"
        if self.widget == "multiselect":
            known, unknown = parse_list(self.options)(raw)
            if unknown:
                raise ValueError(f"has unknown entries {unknown}; valid: {list(self.options)}")
            return tuple(known)
        if self.widget in ("radio", "select", "tabs"):
            return parse_choice([str(o) for o in self.options], self.options)(raw)
        if self.widget == "select_slider":
            numeric = all(isinstance(o, (int, float)) for o in self.options)
            if not numeric:
                return parse_choice([str(o) for o in self.options], self.options)(raw)
            return nearest(self.options, parse_number(min(self.options), max(self.options))(raw))
        return parse_number(self.low, self.high, integer=self.widget == "int")(raw)

    def valid(self, value: Any) -> Any:
        """value made acceptable to the widget (options or range changed): clamped, snapped or the default."""
        if self.widget == "multiselect":
            return tuple(v for v in (value or ()) if v in self.options)
        if self.widget in ("radio", "select", "tabs"):
            return value if value in self.options else self.fallback
        if self.widget == "select_slider":
            if value in self.options:
                return value
            if all(isinstance(o, (int, float)) for o in self.options) and isinstance(value, (int, float)):
                return nearest(self.options, value)
            return self.fallback
        if self.widget == "toggle":
            return bool(value)
        try:
            number = min(max(float(value), self.low), self.high)
        except (TypeError, ValueError):
            return self.default
        return round(number) if self.widget == "int" else number

    @property
    def fallback(self) -> Any:
        """The default, or the first option when the default is not among the options."""
        return self.default if self.default in self.options or not self.options else self.options[0]

    def label_of(self, option: Any) -> str:
        """The text shown for an option."""
        return self.format(option) if self.format is not None else str(option)


# ----------------------------------------------------------------------------------------------- parsers


def parse_choice(texts: Sequence[str], values: Sequence[Any] | None = None) -> Callable[[str], Any]:
    """A parser accepting exactly one of texts, returning the matching value (the text itself by default)."""
    values = list(values) if values is not None else list(texts)

    def parse(raw: str) -> Any:
        if raw not in texts:
            raise ValueError(f"must be one of {list(texts)}")
        return values[list(texts).index(raw)]

    return parse


def parse_number(low: float, high: float, integer: bool = False) -> Callable[[str], float]:
    """A parser accepting a finite number in [low, high] (a whole number when integer)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError("is not a number") from None
        tolerance = 1e-9 * max(
            1.0, abs(low) if math.isfinite(low) else 1.0, abs(high) if math.isfinite(high) else 1.0
        )
        if not math.isfinite(value) or not low - tolerance <= value <= high + tolerance:
            raise ValueError(f"must be a number in [{low:g}, {high:g}]")
        if integer:
            if value != round(value):
                raise ValueError("must be a whole number")
            return round(value)
        return min(max(value, low), high)

    return parse


def parse_list(choices: Sequence[str]) -> Callable[[str], tuple[list[str], list[str]]]:
    """A parser of a comma list: (known entries in order without duplicates, unknown entries)."""

    def parse(raw: str) -> tuple[list[str], list[str]]:
        known, unknown = [], []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            if item in choices:
                if item not in known:
                    known.append(item)
            else:
                unknown.append(item)
        return known, unknown

    return parse


def encode(value: Any) -> str:
    """The URL text of a value: lists comma-joined, booleans 0/1, floats in a short exact-enough form."""
    if isinstance(value, (list, tuple)):
        return ",".join(encode(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def nearest(options: Sequence[Any], value: float) -> Any:
    """The option closest to value (for select sliders whose options are a grid)."""
    return min(options, key=lambda option: abs(float(option) - float(value)))
