"""The Preference page under AppTest: runs with every chart, a control changes the runs, URL round trip, bad
URL values warn and fall back, and the byte budget."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[2] / "pages" / "preference.py"
TIMEOUT = 120
CHARTS = ("π(chosen)", "margin", "KL", "simplex")


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def _spec(at: AppTest, i: int) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def test_page_runs_and_draws_every_chart() -> None:
    at = _page({})
    assert not at.exception and not at.error and not at.warning
    titles = _titles(at)
    assert len(titles) == len(CHARTS) and all(c in t for c, t in zip(CHARTS, titles, strict=True))
    assert at.multiselect(key="preference.losses.preference").value == ["dpo", "ipo", "slic", "asft"]
    assert any("ASFT" in c.value for c in at.caption)
    assert at.table


def test_changing_a_control_retrains() -> None:
    at = _page({"epochs": "50"})
    before = _spec(at, 0)["data"][0]["x"]
    at.select_slider(key="preference.epochs").set_value(100).run()
    assert not at.exception and not at.error
    assert _spec(at, 0)["data"][0]["x"] != before
    assert at.query_params["epochs"] == "100"
    at.slider(key="preference.answers").set_value(4).run()
    assert not at.exception and len(at.get("plotly_chart")) == 3
    assert any("three answers" in i.value for i in at.info)


def test_url_round_trip() -> None:
    query = {"losses": "dpo,kto,orpo", "dpo.beta": "0.5", "epochs": "100", "lr": "0.1", "prompts": "4",
             "seed": "3"}  # fmt: skip
    at = _page(query)
    assert not at.exception and not at.error and not at.warning
    assert at.multiselect(key="preference.losses.preference").value == ["dpo", "kto", "orpo"]
    assert at.select_slider(key="preference.dpo.beta").value == 0.5
    assert at.slider(key="preference.seed").value == 3
    assert len(at.get("plotly_chart")) == len(CHARTS)
    assert {k: at.query_params[k] for k in query} == query


def test_bad_url_values_warn_and_fall_back() -> None:
    at = _page({"epochs": "lots", "prompts": "-3", "losses": "dpo,mse", "bogus": "1"})
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    for part in ("epochs=lots", "prompts=-3", "mse", "bogus"):
        assert part in text
    assert at.select_slider(key="preference.epochs").value == 200
    assert at.slider(key="preference.prompts").value == 8


def test_no_loss_asks_for_one() -> None:
    at = _page({})
    at.multiselect(key="preference.losses.preference").set_value([]).run()
    assert not at.exception and not at.get("plotly_chart")
    assert any("Pick at least one loss" in i.value for i in at.info)


def test_charts_stay_within_the_byte_budget() -> None:
    every = "dpo,ipo,cdpo,soft_preference,kto,slic,orpo,simpo,asft"
    at = _page({"losses": every, "epochs": "1000", "prompts": "64"})
    assert not at.exception and not at.error
    sizes = [len(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(sizes) == len(CHARTS)
    assert max(sizes) <= 150 * 1024 and sum(sizes) <= 500 * 1024, sizes
