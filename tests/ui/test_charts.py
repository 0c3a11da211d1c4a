"""lossviz.ui.charts: a cached figure reaches the browser exactly as the freshly built one would, and a
builder runs once per distinct inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz.ui import charts

SCRIPT = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from lossviz.ui import charts

CALLS = st.session_state.setdefault("calls", [])

def two_panels(*, x, k, title, counted=False):
    if counted:
        CALLS.append(k)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["sin", "cos"], shared_yaxes=True)
    fig.add_trace(go.Scatter(x=x, y=np.sin(k * x), name="sin"), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=np.cos(k * x), name="cos"), row=1, col=2)
    fig.add_vline(x=0.5, row=1, col=2)
    fig.update_layout(title=title, height=300)
    return fig

k = st.slider("k", 1, 5, 2)
x = np.linspace(0.0, 1.0, 50)
charts.plot(st, two_panels(x=x, k=k, title="direct"), key="direct")
charts.show(st, two_panels, key="cached", x=x, k=k, title="direct", counted=True)
"""


@pytest.fixture(autouse=True)
def _empty_cache():
    charts.figure_cache_clear()  # the cache outlives a test: every test starts without cached figures


def test_a_cached_figure_sends_the_same_spec_as_the_built_one():
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.run()
    assert not at.exception
    direct, cached = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    assert cached["data"] == direct["data"] and cached["layout"] == direct["layout"]
    assert len(cached["data"]) == 2 and cached["layout"]["shapes"]  # traces, subplots and shapes survive


def test_the_builder_runs_once_per_distinct_inputs():
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.run()
    at.run()  # the same inputs
    at.slider[0].set_value(3).run()
    at.slider[0].set_value(2).run()  # back to inputs already drawn
    assert at.session_state["calls"] == [2, 3]
    direct, cached = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    assert cached["data"] == direct["data"]  # the cached k=2 figure, not the k=3 one


def test_different_inputs_give_different_figures():
    def line(*, y):
        import plotly.graph_objects as go

        return go.Figure(go.Scatter(y=y))

    a = json.loads(charts.figure_json(line, y=np.arange(3.0)))
    b = json.loads(charts.figure_json(line, y=np.arange(4.0)))
    assert a != b
