"""A page's settings, kept where Streamlit does not drop them, and mirrored to the URL.

Streamlit forgets a widget's value when its page is not drawn, so the canonical value of every control lives
in st.session_state under a key no widget owns (`_lv.<scope>`); widgets are seeded from it on each run and
write back to it when the user moves them. Scope "experiment" is shared by every page that trains (data,
model, optimiser); the rest is per page. On a session's first visit to a page the URL's query parameters
win; garbage in them gets one warning, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import streamlit as st

from lossviz.ui.fields import Field, encode

EXPERIMENT = "experiment"  # the scope shared by the training pages


class PageState:
    """The canonical values of one page's fields (and of the shared experiment) and their URL mirror."""

    def __init__(self, page: str, warnings: Any | None = None) -> None:
        self.page = page
        self._warnings = warnings if warnings is not None else st.container()
        self._visited_key = f"_lv.visited.{page}"
        self.first_visit = self._visited_key not in st.session_state
        self.url: dict[str, str] = {}  # what this run writes to the query string
        self._read: set[str] = set()
        self._seeded: set[str] = set()  # fields already read from the URL in this run
        # Controls of views not shown in a run (tabs build only the open one) are not drawn, but their
        # parameters belong in the URL: `pending` keeps a first visit's URL text until the control is drawn,
        # `written` what this page last wrote for each parameter (see carry).
        self._pending: dict[str, str] = st.session_state.setdefault(f"_lv.pending.{page}", {})
        self._written: dict[str, str] = st.session_state.setdefault(f"_lv.written.{page}", {})

    # ------------------------------------------------------------------ values

    def store(self, scope: str | None = None) -> dict[str, Any]:
        """The dict holding a scope's canonical values (this page's own by default)."""
        return st.session_state.setdefault(f"_lv.{scope or self.page}", {})

    def widget_key(self, field: Field, scope: str | None = None) -> str:
        """The widget's own key: `page.key` (shared fields get one widget per page, one value)."""
        return f"{self.page}.{field.key}"

    def get(self, field: Field, scope: str | None = None) -> Any:
        """The field's value: from the URL on the first visit, else the stored value, else its default."""
        store = self.store(scope)
        self._read.add(field.url_name)
        if field.key not in self._seeded and (self.first_visit or field.url_name in self._pending):
            self._seeded.add(field.key)
            raw = self._pending.pop(field.url_name, None) or self._raw(field.url_name)
            if raw is not None:
                try:
                    store[field.key] = field.parse(raw)
                except ValueError as err:
                    self.warn(f"Ignored URL parameter `{field.url_name}={raw}`: it {err}.")
        if field.key not in store:
            store[field.key] = field.default
        return store[field.key]

    def set(self, field: Field, value: Any, scope: str | None = None) -> None:
        """Change a field's canonical value (e.g. from a preset button's on_click); its widget follows."""
        self.store(scope)[field.key] = value

    def reset(self, key: str, url_name: str | None = None) -> None:
        """Forget a control's value (e.g. when a preset loads): it returns to its default, and the URL no
        longer carries it while its view is closed."""
        self.store().pop(key, None)
        for kept in (self._pending, self._written):
            kept.pop(url_name or key, None)

    def commit(self, field: Field, scope: str | None = None) -> None:
        """on_change of a widget: its new value becomes the canonical one."""
        key = self.widget_key(field, scope)
        if key in st.session_state:
            value = st.session_state[key]
            self.store(scope)[field.key] = tuple(value) if isinstance(value, list) else value

    def record(self, field: Field, value: Any) -> None:
        """Put a field's value in the URL written at the end of the run (defaults are left out)."""
        self._read.add(field.url_name)
        if value != field.default:
            self.url[field.url_name] = self._written[field.url_name] = encode(value)
        else:
            self.url.pop(field.url_name, None)
            self._written.pop(field.url_name, None)

    def carry(self, names: Iterable[str]) -> None:
        """Keep in the URL the parameters of controls this run does not draw (those of closed view tabs).

        On a first visit their URL text waits, unparsed, until the control is drawn (then it is read and
        checked like any other); later, the value the control last had stays in the URL.
        """
        for name in names:
            if name in self._read:
                continue
            self._read.add(name)
            raw = self._raw(name) if self.first_visit else None
            if raw is not None:
                self._pending[name] = raw
            if name in self._pending or name in self._written:
                self.url[name] = self._pending.get(name, self._written.get(name, ""))

    # ------------------------------------------------------------------ URL

    def _raw(self, name: str) -> str | None:
        try:
            values = st.query_params.get_all(name)
        except Exception:  # a malformed query string must never break the page
            return None
        return values[-1] if values else None

    def warn(self, message: str) -> None:
        """A warning in the box at the top of the page."""
        self._warnings.warning(message, icon="⚠️")

    def sync(self) -> None:
        """Write the recorded values to the query string (when changed); on a first visit, warn once about
        parameters that no field of this page reads."""
        if self.first_visit:
            try:
                unknown = [name for name in st.query_params.keys() if name not in self._read]
            except Exception:
                unknown = []
            if unknown:
                self.warn(f"Ignored unknown URL parameters: {', '.join(sorted(unknown))}.")
            st.session_state[self._visited_key] = True
        try:
            current = {k: st.query_params.get_all(k)[-1] for k in st.query_params.keys()}
        except Exception:
            current = {}
        if current != self.url:
            st.query_params.from_dict(self.url)
