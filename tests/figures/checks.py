"""Shared assertions for the figure tests."""

from __future__ import annotations

import math

import pytest


def assert_round_log_ticks(axis) -> None:
    """A log axis labelled only at powers of ten or 1-2-5 values, each label the full number."""
    assert axis.type == "log"
    assert axis.tickmode == "array" and axis.tickvals, "a log axis must not use Plotly's minor-digit ticks"
    assert len(axis.tickvals) == len(axis.ticktext) >= 2
    for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
        mantissa = value / 10 ** math.floor(math.log10(value) + 1e-12)
        assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9, value
        assert float(text) == pytest.approx(value, rel=1e-9), (value, text)
