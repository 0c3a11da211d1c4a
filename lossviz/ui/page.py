"""The skeleton every page shares: title and caption, a warnings box, per-loss compute with errors shown once
per loss and a progress bar, and the URL written at the end.

    page = Page("calibration", "Calibration", "What the page shows.")
    value = page.control(SOME_FIELD)              # a Field from the page's table
    found = page.per_loss(labels, compute)        # {loss: result}; a ValueError becomes an st.error
    trained = page.train_button()                 # pages whose training takes seconds wait for Train
    page.finish()                                 # URL sync (page.stop(...) does it too)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lossviz.ui import widgets
from lossviz.ui.fields import Field
from lossviz.ui.state import PageState

T = TypeVar("T")

# Whether a page that waits for Train shows trained results: set by Train or a preset, kept until the user
# leaves it, and in the URL, so a shared link trains and shows what its sender saw.
TRAINED = Field("trained", "", "toggle", False)


class Page:
    """One page's run: its state, its controls, and the messages it shows."""

    def __init__(self, name: str, title: str, caption: str) -> None:
        _leave_folder_navigation()
        st.title(title)
        st.caption(caption)
        self.warnings = st.container()
        self.state = PageState(name, self.warnings)

    def control(self, field: Field, *, container: Any = st, scope: str | None = None) -> Any:
        """Draw a field's widget (value kept across page switches and in the URL) and return its value."""
        return widgets.draw(field, self.state, container=container, scope=scope)

    def train_button(self, *, disabled: bool = False, on_press: Callable[[], None] | None = None) -> bool:
        """The primary Train button; True once it (or a preset, via will_train) was pressed, or the URL says
        trained=1. Once trained, the page retrains (from the cache where it can) as its settings change.
        on_press: also called when the button is pressed (e.g. to open the first trained view).

        Pages whose training takes seconds wait for it, as TensorFlow Playground waits for its play button:
        until then a slider step redraws a preview instead of training several models.
        """
        if st.button("Train", type="primary", disabled=disabled, key=f"{self.state.page}.train"):
            self.will_train()
            if on_press is not None:
                on_press()
        trained = bool(self.state.get(TRAINED))
        self.state.record(TRAINED, trained)
        return trained

    def will_train(self) -> None:
        """Make the next run train (a preset's on_click calls this)."""
        self.state.set(TRAINED, True)

    def per_loss(
        self,
        labels: Mapping[str, str],
        compute: Callable[[str], T],
        *,
        progress: str | None = None,
    ) -> dict[str, T]:
        """compute(loss) for every loss in labels; a loss whose compute raises ValueError gets one st.error
        with its label and is left out. With progress text, a bar advances over the losses."""
        bar = st.progress(0.0, text=progress) if progress else None
        found: dict[str, T] = {}
        for i, (name, label) in enumerate(labels.items()):
            if bar is not None:
                bar.progress(i / max(len(labels), 1), text=f"{progress} {label} ({i + 1}/{len(labels)})")
            try:
                found[name] = compute(name)
            except ValueError as err:
                st.error(f"**{label}**: {err}")
        if bar is not None:
            bar.empty()
        return found

    def stop(self, message: str = "", level: str = "info") -> NoReturn:
        """Show a message (info, warning or error), write the URL and end the run."""
        if message:
            getattr(st, level)(message)
        self.finish()
        st.stop()
        raise AssertionError("unreachable")  # st.stop raises; this line keeps type checkers honest

    def finish_fragment(self) -> None:
        """End of a fragment: write the URL when only the fragment reran (it skips the page's finish()).

        A full run writes the URL once, in finish(), after every field has read it: a sync before then would
        drop the parameters of the fields drawn later and call them unknown.
        """
        ctx = get_script_run_ctx()
        if ctx is not None and ctx.fragment_ids_this_run:
            self.state.sync()

    def finish(self) -> None:
        """Write the page's state to the URL (call once, at the end of the page)."""
        self.state.sync()


def _leave_folder_navigation() -> None:
    """Rerun through app.py when Streamlit ran this page under the navigation it builds from pages/.

    Streamlit (1.67) starts in its old folder mode when a pages/ folder sits beside the main script, and
    stays in it until the public st.navigation is called. A fresh server asked for /train_compare therefore
    runs the page file directly, with a page list "app, calibration, landscape, ..." instead of app.py's
    sections. Leaving the mode is what app.py's st.navigation does; the rerun then goes through app.py.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
