"""The Loss Shapes page's Streamlit pieces: per-task controls, formula cards, the properties table, notes.

The text itself (formula line breaks, table rows, help) is pure and lives in lossviz.figures.shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from lossviz import losses, shapes
from lossviz.figures import shapes as figures
from lossviz.ui import widgets
from lossviz.ui.fields import Field

# What does not fit its column scrolls, the thumb always shown (Streamlit hides scrollbars until hover).
SCROLL = "<style>.katex-display{overflow-x:auto;overflow-y:hidden;scrollbar-color:#bbb transparent}</style>"
BATCH_NOTE = (
    "Dashed curves are batch-level losses: each point scores a balanced batch whose samples all have "
    "that margin, and the derivative is taken along the shared margin."
)


def offer(field: Field, options: list[str], preferred: str = "", within: str = "") -> Field:
    """The field over these options, stored per `within` (a task or a loss) under the same URL name; its
    default is the preferred option when offered, else the first."""
    default = preferred if preferred in options else options[0]
    key = f"{field.key}.{within}" if within else field.key
    return replace(field, key=key, url=field.key, default=default, options=tuple(options))


def weight_note(reference: str) -> str:
    """How to read the relative sample weight panel."""
    return (
        f"Above 1 the loss pushes harder on such samples than {reference}; near 0 it ignores them (robust "
        "losses ignore badly misclassified samples, focal ignores easy ones)."
    )


def formula_style() -> None:
    """Let formulas too wide for their column scroll instead of being clipped."""
    st.markdown(SCROLL, unsafe_allow_html=True)


def formula_card(name: str) -> None:
    """A loss's colour dot, title and key, its formula (broken into lines when long), notes and paper."""
    spec = losses.get(name)
    st.markdown(f"{widgets.color_dot(name)} **{spec.title}** `{name}`", unsafe_allow_html=True)
    st.latex(figures.break_latex(spec.latex))
    batch = f"{shapes.BATCH_LABEL.capitalize()} (dashed)." if spec.batch else ""
    st.caption("\n\n".join(filter(None, (batch, spec.notes, f"Paper: *{spec.paper}*"))))


def properties_table(
    rows: Mapping[str, Mapping[str, Any]], first: str, *, task: str, derivative: str
) -> None:
    """loss_properties results by label as a table; below it, what each check means and where convexity was
    read.

    A static st.table, not st.dataframe: a few rows need no sorting or scrolling, and the interactive grid's
    redraw cost about 0.1 s of every slider step in Chromium (measured by removing it from the page).
    """
    table = figures.property_rows(rows, first, binary=task == "binary", derivative=derivative)
    if not table:
        return
    frame = pd.DataFrame(table).set_index(first)
    values = list(frame.columns[-2:])  # L and its slope at the origin
    st.table(frame.style.format(precision=3, subset=values))
    meaning = " · ".join(f"**{k}**: {v}" for k, v in figures.CHECKS.items() if k in frame.columns)
    st.caption(f"{meaning} Convexity checked on {next(iter(rows.values()))['convex_on']}.")
