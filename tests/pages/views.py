"""Opening a page's view tabs under AppTest, which cannot click a tab (tests/test_browser.py clicks one).

A click's on_change makes the clicked tab the page's stored value of its tabs field; setting that value in
the page's store and rerunning is the same run.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def open_view(at: AppTest, page: str, view: str, field: str = "view") -> AppTest:
    """Open `view` of the tabs field `field` on the page named `page` (the first argument of its Page)."""
    store = f"_lv.{page}"
    at.session_state[store] = {**dict(at.session_state[store]), field: view}
    return at.run()


def tab_labels(at: AppTest) -> list[str]:
    """The labels of every tab on the page, in order."""
    return [tab.label for tab in at.tabs]
