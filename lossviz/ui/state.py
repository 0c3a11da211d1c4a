"""A page's state mirrored to the URL query parameters, so a copied URL reopens the same view.

Widget keys are namespaced `page.name`; the URL carries `name=value`. Values read back from a URL are
validated: garbage is ignored with one st.warning, never an exception (playground-style shareable state).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")


# ----------------------------------------------------------------------------------- parsers (pure)


def parse_choice(choices: Sequence[str]) -> Callable[[str], str]:
    """A parser accepting exactly one of choices."""

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {list(choices)}")
        return raw

    return parse


def parse_number(low: float, high: float, integer: bool = False) -> Callable[[str], float]:
    """A parser accepting a finite number in [low, high] (a whole number when integer)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError("is not a number") from None
        if not math.isfinite(value) or not low - 1e-9 * max(1.0, abs(low)) <= value <= high + 1e-9 * max(
            1.0, abs(high)
        ):
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
    """The URL text of a widget value: lists comma-joined, floats in short exact-enough form."""
    if isinstance(value, (list, tuple)):
        return ",".join(encode(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# ------------------------------------------------------------------------------------------ page state


class PageState:
    """Seeds a page's widget keys from the URL (once per key) and writes the page's values back to it.

    Use: `state = PageState("shapes")`; before each widget `state.restore(key, parse, default)`; after it
    `state.record(key, value)`; at the end of the page `state.sync()`.
    """

    def __init__(self, page: str, warnings: Any | None = None) -> None:
        self.page = page
        self.values: dict[str, str] = {}
        self.consumed: set[str] = set()
        self._warnings = warnings if warnings is not None else st.container()
        self._first_visit = f"_url_seen.{page}" not in st.session_state

    def key(self, *parts: str) -> str:
        """The widget key `page.part1.part2`."""
        return ".".join((self.page, *parts))

    def url_name(self, key: str) -> str:
        """The query parameter of a widget key: the key without its page prefix."""
        prefix = f"{self.page}."
        return key[len(prefix) :] if key.startswith(prefix) else key

    def _raw(self, name: str) -> str | None:
        self.consumed.add(name)
        try:
            values = st.query_params.get_all(name)
        except Exception:  # a malformed query string must never break the page
            return None
        return values[-1] if values else None

    def warn(self, message: str) -> None:
        """Show a warning in the box at the top of the page."""
        self._warnings.warning(message, icon="⚠️")

    def restore(self, key: str, parse: Callable[[str], Any], default: Any, url: str | None = None) -> Any:
        """Seed st.session_state[key] (if the widget has no value yet) from the URL, else from default."""
        name = url or self.url_name(key)
        if key in st.session_state:
            self.consumed.add(name)
            return st.session_state[key]
        value, raw = default, self._raw(name)
        if raw is not None:
            try:
                value = parse(raw)
            except ValueError as err:
                self.warn(f"Ignored URL parameter `{name}={raw}`: it {err}; using {encode(default)!r}.")
        st.session_state[key] = value
        return value

    def restore_list(
        self, key: str, choices: Sequence[str], default: Sequence[str], url: str | None = None
    ) -> list[str]:
        """Like restore for a multiselect: unknown entries are dropped with a warning, known ones kept."""
        name = url or self.url_name(key)
        if key in st.session_state:
            self.consumed.add(name)
            return list(st.session_state[key])
        value, raw = list(default), self._raw(name)
        if raw is not None:
            known, unknown = parse_list(choices)(raw)
            if unknown:
                self.warn(f"Ignored unknown entries {unknown} in URL parameter `{name}`.")
            if known or not unknown:
                value = known
        st.session_state[key] = value
        return value

    def record(self, key: str, value: Any, url: str | None = None) -> None:
        """Mirror a widget's current value into the URL at the end of the run."""
        self.values[url or self.url_name(key)] = encode(value)

    def unknown_parameters(self, known: Iterable[str] = ()) -> list[str]:
        """Query parameters in the URL that this page neither read nor wrote."""
        expected = set(self.values) | self.consumed | set(known)
        try:
            present = list(st.query_params.keys())
        except Exception:
            return []
        return [name for name in present if name not in expected]

    def sync(self) -> None:
        """Write the recorded values to st.query_params (when changed); warn about unknown ones once."""
        if self._first_visit:
            unknown = self.unknown_parameters()
            if unknown:
                self.warn(f"Ignored unknown URL parameters: {', '.join(unknown)}.")
            st.session_state[f"_url_seen.{self.page}"] = True
        try:
            current = {k: st.query_params.get_all(k)[-1] for k in st.query_params.keys()}
        except Exception:
            current = {}
        if current != self.values:
            st.query_params.from_dict(self.values)


def nearest(options: Sequence[T], value: float) -> T:
    """The option closest to value (for select sliders whose options are a grid)."""
    return min(options, key=lambda option: abs(float(option) - float(value)))  # type: ignore[arg-type]
