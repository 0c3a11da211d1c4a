"""The Grokking page under AppTest: message before training, Train shows every chart, presets fill the
controls, URL round trip, bad URL values warn, widget ranges, and the byte budget. Small runs (p <= 23)."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lossviz import grokking

PAGE = Path(__file__).resolve().parents[2] / "pages" / "grokking.py"
TIMEOUT = 240
SMALL = {"p": "13", "train_fraction": "0.5", "epochs": "300", "weight_decay": "1"}
CHARTS = ("accuracy", "collapse", "norms", "spectrum")


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_page_runs_and_asks_to_train() -> None:
    at = _page({})
    assert not at.exception and not at.error and not at.warning
    assert not at.get("plotly_chart")
    assert any("Press **Train**" in i.value for i in at.info)
    assert at.slider(key="grokking.p").value == 31


def test_train_shows_every_chart_and_marks_the_url() -> None:
    at = _page(SMALL)
    at.button(key="grokking.train").click().run()
    assert not at.exception and not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == len(CHARTS)
    assert [c.proto.id for c in charts] and "Accuracy" in _titles(at)[0] and "Fourier" in _titles(at)[-1]
    assert at.query_params["trained"] == "1" and at.query_params["p"] == "13"
    assert any("training and" in c.value for c in at.caption)


def test_a_preset_button_fills_the_controls_and_trains() -> None:
    at = _page({})
    at.button(key="grokking.preset.softmax_collapse").click().run()
    assert not at.exception and not at.error
    preset = grokking.PRESETS["softmax_collapse"]
    assert at.slider(key="grokking.p").value == preset["p"] == 23
    assert at.radio(key="grokking.optimizer").value == preset["optimizer"]
    assert at.slider(key="grokking.weight_decay").value == preset["weight_decay"] == 0
    assert at.select_slider(key="grokking.epochs").value == preset["epochs"]
    assert len(at.get("plotly_chart")) == len(CHARTS)
    assert at.query_params["trained"] == "1" and at.query_params["weight_decay"] == "0"


def test_url_round_trip() -> None:
    query = {**SMALL, "weight_decay": "0.5", "loss": "stablemax_ce", "dtype": "float64",
             "optimizer": "perp_adamw", "lr": "0.01", "seed": "3", "trained": "1"}  # fmt: skip
    at = _page(query)
    assert not at.exception and not at.error and not at.warning
    assert at.radio(key="grokking.loss").value == "stablemax_ce"
    assert at.radio(key="grokking.dtype").value == "float64"
    assert at.slider(key="grokking.seed").value == 3
    assert len(at.get("plotly_chart")) == len(CHARTS)
    assert {k: at.query_params[k] for k in query} == query
    assert "float64" in _titles(at)[1]


def test_bad_url_values_warn_and_fall_back() -> None:
    at = _page({"p": "two", "weight_decay": "-1", "loss": "mse", "epochs": "300", "bogus": "1"})
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    for part in ("p=two", "weight_decay=-1", "loss=mse", "bogus"):
        assert part in text
    assert at.slider(key="grokking.p").value == 31
    assert at.slider(key="grokking.weight_decay").value == 1.0
    assert at.radio(key="grokking.loss").value == "cross_entropy"


def test_widget_ranges_keep_inputs_valid() -> None:
    at = _page({})
    decay, p, fraction = (at.slider(key=f"grokking.{k}") for k in ("weight_decay", "p", "train_fraction"))
    assert decay.min == 0 and decay.max == 5
    assert p.min >= 3 and 0 < fraction.min and fraction.max < 1
    assert all(float(v) > 0 for v in at.select_slider(key="grokking.lr").options)


def test_charts_stay_within_the_byte_budget() -> None:
    at = _page({"p": "23", "train_fraction": "0.4", "epochs": "500", "weight_decay": "0", "trained": "1"})
    assert not at.exception
    sizes = [len(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(sizes) == len(CHARTS)
    assert max(sizes) <= 150 * 1024 and sum(sizes) <= 500 * 1024, sizes
