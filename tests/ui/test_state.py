"""URL state: parsers, and PageState + registry widgets in a small AppTest script (restore, garbage, sync)."""

from __future__ import annotations

import math

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lossviz import losses
from lossviz.losses.registry import Param, register, unregister
from lossviz.ui import widgets
from lossviz.ui.state import encode, nearest, parse_choice, parse_list, parse_number

TEST_LOSS = "_ui_state_test_loss"


# --------------------------------------------------------------------------------------------- parsers


def test_parse_choice():
    parse = parse_choice(["a", "b"])
    assert parse("b") == "b"
    with pytest.raises(ValueError, match="one of"):
        parse("c")


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-inf", "", "1e999", "11", "-0.5"])
def test_parse_number_rejects_garbage_and_out_of_range(raw):
    with pytest.raises(ValueError):
        parse_number(0.0, 10.0)(raw)


def test_parse_number_accepts_range_and_integers():
    assert parse_number(0.0, 10.0)("2.5") == 2.5
    assert parse_number(0.0, 10.0)("10") == 10.0
    assert parse_number(1, 20, integer=True)("7") == 7 and isinstance(
        parse_number(1, 20, integer=True)("7"), int
    )
    with pytest.raises(ValueError, match="whole"):
        parse_number(1, 20, integer=True)("7.5")


def test_parse_list_keeps_known_in_order_and_reports_unknown():
    known, unknown = parse_list(["a", "b", "c"])("c, a,,zz,a,b")
    assert known == ["c", "a", "b"] and unknown == ["zz"]


def test_encode_round_trips_through_the_parsers():
    assert encode(["a", "b"]) == "a,b"
    assert encode(0.1) == "0.1" and encode(2.0) == "2" and encode(3) == "3" and encode(True) == "1"
    assert parse_number(0, 1)(encode(1 / 3)) == pytest.approx(1 / 3, rel=1e-5)


def test_nearest():
    assert nearest([0.1, 1.0, 10.0], 2.0) == 1.0


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

    assert _ui_state_test_loss.__name__ == TEST_LOSS
    yield TEST_LOSS
    unregister(TEST_LOSS)


def _script():
    import streamlit as st

    from lossviz import losses
    from lossviz.ui import widgets
    from lossviz.ui.state import PageState

    state = PageState("demo")
    colour = widgets.choice("Colour", ["red", "green", "blue"], state, "colour", "red")
    n = widgets.integer("N", 1, 10, state, "n", 3)
    chosen = widgets.loss_multiselect("regression", state, ["squared"])
    params = widgets.param_inputs(losses.get("_ui_state_test_loss"), state)
    st.session_state["_seen"] = {"colour": colour, "n": n, "losses": chosen, **params}
    state.sync()


def _app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=30)
    at.query_params.update(query or {})
    return at.run()


def test_defaults_are_written_to_the_url(test_loss):
    at = _app()
    assert not at.exception and not at.warning
    assert at.query_params == {
        "colour": "red",
        "n": "3",
        "losses": "squared",
        f"{test_loss}.scale": "1",
        f"{test_loss}.bins": "8",
        f"{test_loss}.shift": "0",
    }
    assert at.session_state["_seen"]["bins"] == 8
    # keys are namespaced page.loss.param
    assert at.session_state[f"demo.{test_loss}.scale"] == 1.0
    assert at.select_slider(key=f"demo.{test_loss}.scale").value == 1.0


def test_a_url_restores_every_widget(test_loss):
    at = _app(
        {
            "colour": "blue",
            "n": "7",
            f"{test_loss}.scale": "2.5",
            f"{test_loss}.bins": "33",
            f"{test_loss}.shift": "-0.4",
        }
    )
    assert not at.exception and not at.warning
    seen = at.session_state["_seen"]
    assert (seen["colour"], seen["n"], seen["scale"], seen["bins"], seen["shift"]) == (
        "blue",
        7,
        2.5,
        33,
        -0.4,
    )
    assert at.radio(key="demo.colour").value == "blue"
    assert at.slider(key=f"demo.{test_loss}.bins").value == 33
    assert at.query_params["n"] == "7" and at.query_params[f"{test_loss}.scale"] == "2.5"


def test_garbage_in_the_url_is_ignored_with_warnings(test_loss):
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
    assert "mystery" not in at.query_params and at.query_params["colour"] == "red"  # the URL is cleaned


def test_off_grid_log_value_snaps_to_the_nearest_option(test_loss):
    at = _app({f"{test_loss}.scale": "2.47"})
    assert not at.warning and at.session_state["_seen"]["scale"] == 2.5


def test_repeated_parameter_uses_the_last_value(test_loss):
    at = AppTest.from_function(_script, default_timeout=30)
    at.query_params["n"] = ["2", "5"]
    at.run()
    assert at.session_state["_seen"]["n"] == 5


def test_widget_changes_update_the_url_and_the_url_does_not_override_them(test_loss):
    at = _app({"n": "7"})
    at.slider(key="demo.n").set_value(9).run()
    at.radio(key="demo.colour").set_value("green").run()
    assert not at.exception and not at.warning
    assert at.query_params["n"] == "9" and at.query_params["colour"] == "green"
    assert at.session_state["_seen"]["n"] == 9
    at.multiselect(key="demo.losses.regression").set_value(["squared", test_loss]).run()
    assert at.query_params["losses"] == f"squared,{test_loss}"


def test_slider_values_stay_inside_the_param_range(test_loss):
    at = _app({f"{test_loss}.bins": "64", f"{test_loss}.shift": "1"})
    seen = at.session_state["_seen"]
    assert seen["bins"] == 64 and seen["shift"] == 1.0
    assert math.isfinite(seen["scale"])
    zero = torch.zeros(1)
    out = losses.get(test_loss)(
        zero, zero, **{k: seen[k] for k in ("scale", "bins", "shift")}
    )  # binds cleanly
    assert out.shape == (1,)
