"""Controls and their state: the Field parsers (lossviz.ui.fields), the registry widgets' grids and Fields
(lossviz.ui.widgets), and PageState in a small AppTest script (URL seeding, garbage, canonical values,
sync)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from lossviz.losses.registry import Param, register, unregister
from lossviz.ui import widgets
from lossviz.ui.fields import Field, encode, nearest, parse_choice, parse_list, parse_number
from tests.pages.views import open_view

TEST_LOSS = "_ui_state_test_loss"

# --------------------------------------------------------------------------------------------- parsers


def test_parse_choice_returns_the_matching_value():
    assert parse_choice(["a", "b"])("b") == "b"
    assert parse_choice(["1", "2"], [1, 2])("2") == 2
    with pytest.raises(ValueError, match="one of"):
        parse_choice(["a", "b"])("c")


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-inf", "", "1e999", "11", "-0.5"])
def test_parse_number_rejects_garbage_and_out_of_range(raw):
    with pytest.raises(ValueError):
        parse_number(0.0, 10.0)(raw)


def test_parse_number_accepts_the_range_and_whole_numbers():
    assert parse_number(0.0, 10.0)("2.5") == 2.5
    assert parse_number(0.0, 10.0)("10") == 10.0
    assert parse_number(0.0, 1.0)("1.0000000001") == 1.0  # round-off past the end is clamped, not refused
    seven = parse_number(1, 20, integer=True)("7")
    assert seven == 7 and isinstance(seven, int)
    with pytest.raises(ValueError, match="whole"):
        parse_number(1, 20, integer=True)("7.5")
    assert parse_number(-math.inf, math.inf)("-1e300") == -1e300  # an unbounded field takes any finite number


def test_parse_list_keeps_known_in_order_and_reports_unknown():
    known, unknown = parse_list(["a", "b", "c"])("c, a,,zz,a,b")
    assert known == ["c", "a", "b"] and unknown == ["zz"]


def test_encode_round_trips_through_the_parsers():
    assert encode(["a", "b"]) == "a,b" and encode(("a",)) == "a"
    assert encode(0.1) == "0.1" and encode(2.0) == "2" and encode(3) == "3"
    assert encode(True) == "1" and encode(False) == "0"
    assert parse_number(0, 1)(encode(1 / 3)) == pytest.approx(1 / 3, rel=1e-5)


def test_nearest():
    assert nearest([0.1, 1.0, 10.0], 2.0) == 1.0
    assert nearest([1, 2, 4], 3.4) == 4


# ------------------------------------------------------------------------------------ Field.parse/valid

COLOUR = Field("colour", "Colour", "radio", "red", options=("red", "green", "blue"))
SIZE = Field("size", "Size", "select", 2, options=(1, 2, 3))
GRID = Field("grid", "Grid", "select_slider", 1.0, options=(0.1, 0.5, 1.0, 5.0))
WORDS = Field("word", "Word", "select_slider", "low", options=("low", "mid", "high"))
N = Field("n", "N", "int", 3, low=1, high=10)
SHIFT = Field("shift", "Shift", "slider", 0.0, low=-1.0, high=1.0)
FLAG = Field("flag", "Flag", "toggle", False)
PICKED = Field("picked", "Picked", "multiselect", ("a",), options=("a", "b", "c"))


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        (COLOUR, "blue", "blue"),
        (SIZE, "3", 3),  # the option itself, not its text
        (GRID, "0.5", 0.5),
        (GRID, "0.47", 0.5),  # off-grid numbers snap to the nearest option
        (WORDS, "mid", "mid"),
        (N, "7", 7),
        (SHIFT, "-0.25", -0.25),
        (FLAG, "1", True),
        (FLAG, "0", False),
        (PICKED, "c,a,c", ("c", "a")),
    ],
    ids=lambda v: v.key if isinstance(v, Field) else repr(v),
)
def test_field_parse_reads_url_text(field, raw, value):
    parsed = field.parse(raw)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        (COLOUR, "purple", "one of"),
        (SIZE, "4", "one of"),
        (GRID, "50", "in \\[0.1, 5\\]"),
        (WORDS, "top", "one of"),
        (N, "abc", "not a number"),
        (N, "2.5", "whole"),
        (N, "11", "in \\[1, 10\\]"),
        (SHIFT, "nan", "in \\[-1, 1\\]"),
        (FLAG, "yes", "0 or 1"),
        (PICKED, "a,zz", "unknown entries \\['zz'\\]"),
    ],
    ids=lambda v: v.key if isinstance(v, Field) else repr(v),
)
def test_field_parse_refuses_garbage_saying_what_it_expected(field, raw, message):
    with pytest.raises(ValueError, match=message):
        field.parse(raw)


def test_field_valid_makes_a_value_acceptable_to_the_widget():
    assert COLOUR.valid("green") == "green" and COLOUR.valid("purple") == "red"
    assert GRID.valid(5.0) == 5.0 and GRID.valid(3.9) == 5.0 and WORDS.valid(2.0) == "low"
    assert N.valid(42) == 10 and N.valid(2.6) == 3 and isinstance(N.valid(2.6), int) and N.valid("x") == 3
    assert SHIFT.valid(-7) == -1.0 and SHIFT.valid(None) == 0.0
    assert FLAG.valid(1) is True
    assert PICKED.valid(("c", "zz", "a")) == ("c", "a") and PICKED.valid(None) == ()


def test_field_fallback_label_and_url_name():
    orphan = Field("pick", "Pick", "select", "gone", options=("x", "y"))
    assert orphan.fallback == "x" and orphan.valid("gone") == "x"  # a default the options lost
    assert COLOUR.fallback == "red"
    named = Field("k", "K", "select", "x", options=("x",), format=str.upper, url="plain")
    assert named.label_of("x") == "X" and COLOUR.label_of("red") == "red"
    assert named.url_name == "plain" and COLOUR.url_name == "colour"


# ---------------------------------------------------------------------------------------- slider grids


def test_log_slider_options_are_round_and_contain_range_and_default():
    p = Param("scale", 0.05, 10.0, log=True, default=0.7)
    options = widgets.slider_options(p)
    assert options[0] == 0.05 and options[-1] == 10.0 and 0.7 in options
    assert {0.1, 0.25, 0.5, 1.0, 2.5, 5.0} <= set(options)
    assert options == sorted(options) and all(p.contains(v) for v in options)


def test_integer_log_slider_options_are_whole_numbers():
    options = widgets.slider_options(Param("n", 1, 256, log=True, integer=True, default=4))
    assert options[0] == 1 and options[-1] == 256 and 4 in options
    assert all(float(v).is_integer() for v in options)


@pytest.mark.parametrize(
    ("low", "high", "step"), [(0, 5, 0.05), (0, 2, 0.02), (-1, 10, 0.2), (0, 0.5, 0.005)]
)
def test_nice_step(low, high, step):
    assert widgets.nice_step(Param("p", low, high, default=low)) == pytest.approx(step)
    assert widgets.nice_step(Param("k", low, high, integer=True, default=low)) == 1.0


def test_param_field_picks_the_widget_from_the_param():
    spec = SimpleNamespace(name="demo")  # param_field only needs the loss's name
    log = widgets.param_field(spec, Param("scale", 0.01, 10.0, log=True, help="how wide", default=1.0))
    assert (log.key, log.widget, log.default, log.help) == ("demo.scale", "select_slider", 1.0, "how wide")
    assert log.options == tuple(widgets.slider_options(Param("scale", 0.01, 10.0, log=True, default=1.0)))
    assert log.label_of(2.5) == "2.5" and log.label_of(10.0) == "10"
    whole = widgets.param_field(spec, Param("bins", 2, 64, integer=True, default=8))
    assert (whole.widget, whole.default, whole.low, whole.high, whole.help) == ("int", 8, 2, 64, None)
    flat = widgets.param_field(spec, Param("shift", -1.0, 1.0, default=0.0))
    assert (flat.widget, flat.low, flat.high) == ("slider", -1.0, 1.0)
    assert flat.step == pytest.approx(0.02)
    assert log.parse("2.47") == 2.5 and whole.parse("33") == 33 and flat.parse("-0.4") == -0.4


# ------------------------------------------------------------------------------------------- AppTest


@pytest.fixture(scope="module")
def test_loss():
    @register(
        title="UI state test loss",
        latex="x",
        task="regression",
        paper="test",
        params=[
            Param("scale", 0.01, 10.0, log=True),
            Param("bins", 2, 64, integer=True),
            Param("shift", -1.0, 1.0),
        ],
    )
    def _ui_state_test_loss(pred, target, scale=1.0, bins=8, shift=0.0):
        return scale * (pred - target + shift) ** 2 + 0 * bins

    yield TEST_LOSS
    unregister(TEST_LOSS)


def _script():
    import streamlit as st

    from lossviz import losses
    from lossviz.ui import widgets
    from lossviz.ui.fields import Field
    from lossviz.ui.state import PageState

    state = PageState("demo")
    colour = widgets.draw(Field("colour", "Colour", "radio", "red", options=("red", "green", "blue")), state)
    show_n = widgets.draw(Field("show_n", "Show N", "toggle", True), state)
    n = widgets.draw(Field("n", "N", "int", 3, low=1, high=10), state) if show_n else None
    task = widgets.draw(Field("task", "Task", "radio", "regression", options=("regression", "binary")), state)
    chosen = widgets.loss_picker(task, state, ("squared",) if task == "regression" else ("logistic",))
    params = widgets.param_inputs(losses.get("_ui_state_test_loss"), state) if task == "regression" else {}
    st.session_state["_seen"] = {"colour": colour, "n": n, "task": task, "losses": chosen, **params}
    state.sync()


def _app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=30)
    at.query_params.update(query or {})
    return at.run()


def test_defaults_leave_the_url_empty_and_keys_are_namespaced(test_loss):
    at = _app()
    assert not at.exception and not at.warning
    assert dict(at.query_params) == {}  # sync writes non-default values only
    seen = at.session_state["_seen"]
    assert (seen["colour"], seen["n"], seen["losses"], seen["bins"], seen["scale"]) == (
        "red",
        3,
        ["squared"],
        8,
        1,
    )
    assert at.session_state[f"demo.{test_loss}.scale"] == 1.0  # widget keys are page.loss.param
    assert at.select_slider(key=f"demo.{test_loss}.scale").value == 1.0
    assert at.session_state["_lv.demo"]["colour"] == "red"  # the canonical copy, under a key no widget owns


def test_the_url_seeds_every_widget_on_the_first_visit(test_loss):
    query = {"colour": "blue", "n": "7", "losses": f"squared,{test_loss}", f"{test_loss}.scale": "2.5",
             f"{test_loss}.bins": "33", f"{test_loss}.shift": "-0.4"}  # fmt: skip
    at = _app(query)
    assert not at.exception and not at.warning
    seen = at.session_state["_seen"]
    assert (seen["colour"], seen["n"], seen["scale"], seen["bins"], seen["shift"]) == (
        "blue",
        7,
        2.5,
        33,
        -0.4,
    )
    assert seen["losses"] == ["squared", test_loss]
    assert at.radio(key="demo.colour").value == "blue" and at.slider(key=f"demo.{test_loss}.bins").value == 33
    assert dict(at.query_params) == query  # every value differs from its default, so all of it stays


def test_the_url_is_read_only_on_the_first_visit(test_loss):
    at = _app({"n": "7"})
    at.slider(key="demo.n").set_value(9).run()
    at.radio(key="demo.colour").set_value("green").run()
    assert not at.exception and not at.warning
    assert at.session_state["_seen"]["n"] == 9  # the URL's 7 does not override the user
    assert dict(at.query_params) == {"n": "9", "colour": "green"}
    at.radio(key="demo.colour").set_value("red").run()
    assert "colour" not in at.query_params  # back to the default, out of the URL


def test_garbage_in_the_url_warns_and_falls_back(test_loss):
    at = _app(
        {
            "colour": "purple",
            "n": "abc",
            "losses": "squared,not_a_loss",
            f"{test_loss}.scale": "1e9",
            f"{test_loss}.shift": "nan",
            "mystery": "1",
        }
    )
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for fragment in ("colour=purple", "n=abc", "not_a_loss", ".scale=1e9", ".shift=nan", "mystery"):
        assert fragment in warnings
    seen = at.session_state["_seen"]
    assert (seen["colour"], seen["n"], seen["scale"], seen["shift"]) == ("red", 3, 1.0, 0.0)
    assert seen["losses"] == ["squared"]
    assert dict(at.query_params) == {}  # the URL is cleaned
    at.radio(key="demo.colour").set_value("green").run()
    assert not at.warning  # warned once, on the first visit only


def test_off_grid_log_value_snaps_and_a_repeated_parameter_uses_the_last(test_loss):
    at = _app({f"{test_loss}.scale": "2.47"})
    assert not at.warning and at.session_state["_seen"]["scale"] == 2.5
    at = AppTest.from_function(_script, default_timeout=30)
    at.query_params["n"] = ["2", "5"]
    assert at.run().session_state["_seen"]["n"] == 5


def test_the_canonical_value_survives_its_widget_key_being_dropped(test_loss):
    at = _app()
    at.slider(key="demo.n").set_value(8).run()
    at.toggle(key="demo.show_n").set_value(False).run()  # the N slider is not drawn: Streamlit drops its key
    assert "demo.n" not in at.session_state and dict(at.query_params) == {"show_n": "0"}
    at.toggle(key="demo.show_n").set_value(True).run()
    assert not at.exception
    assert at.slider(key="demo.n").value == 8 and at.session_state["_seen"]["n"] == 8


def test_each_task_keeps_its_own_loss_list_shown_as_plain_losses(test_loss):
    at = _app({"losses": f"{test_loss}"})
    at.radio(key="demo.task").set_value("binary").run()
    assert not at.exception and not at.warning  # the regression list in the URL is not re-read as binary
    assert at.multiselect(key="demo.losses.binary").value == ["logistic"] and "losses" not in at.query_params
    at.multiselect(key="demo.losses.binary").set_value(["logistic", "hinge"]).run()
    assert at.query_params["losses"] == "logistic,hinge"
    at.radio(key="demo.task").set_value("regression").run()
    assert at.multiselect(key="demo.losses.regression").value == [test_loss]
    assert at.query_params["losses"] == test_loss and not at.warning


# ------------------------------------------------------------------------------- view tabs and carry


def _views_script():
    import streamlit as st

    from lossviz.ui import widgets
    from lossviz.ui.fields import Field
    from lossviz.ui.state import PageState

    state = PageState("tabs")
    view_field = Field("view", "View", "tabs", "a", options=("a", "b"), format={"a": "A", "b": "B"}.get)
    view, tab = widgets.views(view_field, state, controls={"a": ("k",), "b": ("m",)})
    with tab:
        if view == "a":
            st.session_state["_seen"] = widgets.draw(Field("k", "K", "int", 3, low=1, high=10), state)
        else:
            st.session_state["_seen"] = widgets.draw(Field("m", "M", "radio", "x", options=("x", "y")), state)
    state.sync()


def _views_app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(_views_script, default_timeout=30)
    at.query_params.update(query or {})
    return at.run()


def _open_tab(at: AppTest, view: str) -> AppTest:
    return open_view(at, "tabs", view)


def test_view_tabs_build_only_the_open_view_and_name_it_in_the_url():
    at = _views_app()
    assert not at.exception and [t.label for t in at.tabs] == ["A", "B"]
    assert at.session_state["_seen"] == 3 and len(at.slider) == 1 and not at.radio  # only view A is built
    assert dict(at.query_params) == {}
    _open_tab(at, "b")
    assert at.session_state["_seen"] == "x" and not at.slider and at.query_params["view"] == "b"
    assert _views_app({"view": "nowhere"}).warning  # an unknown view warns, the first one opens


def test_a_closed_views_controls_stay_in_the_url_and_are_read_when_it_opens():
    at = _views_app({"k": "7", "m": "y"})  # m belongs to the closed view B: kept unparsed, no warning
    assert not at.exception and not at.warning
    assert at.session_state["_seen"] == 7 and dict(at.query_params) == {"k": "7", "m": "y"}
    _open_tab(at, "b")
    assert at.session_state["_seen"] == "y"  # read when its control is first drawn
    assert dict(at.query_params) == {"k": "7", "m": "y", "view": "b"}  # k, now closed, keeps its last value
    at.radio(key="tabs.m").set_value("x").run()
    assert dict(at.query_params) == {"k": "7", "view": "b"}  # back to its default: out of the URL
    _open_tab(at, "a")
    assert dict(at.query_params) == {"k": "7"}


def test_a_closed_views_garbage_warns_when_the_view_opens():
    at = _views_app({"m": "purple"})
    assert not at.warning and at.query_params["m"] == "purple"
    _open_tab(at, "b")
    assert any("m=purple" in w.value for w in at.warning)
    assert at.session_state["_seen"] == "x" and "m" not in at.query_params
