"""The Preference page under AppTest: runs and every view draws its chart, one view is built at a time and
named in the URL, a control changes the runs, URL round trip, bad URL values warn and fall back, and the byte
budget of every view."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.pages.views import open_view, tab_labels

PAGE = Path(__file__).resolve().parents[2] / "pages" / "preference.py"
TIMEOUT = 120
# the page's tabs: {view: the title of the one chart it builds}
VIEWS = {"probability": "π(chosen)", "margin": "margin", "kl": "KL", "simplex": "simplex"}
TABS = ["π(chosen) and π(rejected)", "Implicit reward margin", "KL to π_ref", "Prompt 0 on the simplex"]


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def _spec(at: AppTest, i: int) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "preference", view)


_tabs = tab_labels


def _captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_page_runs_and_draws_every_view() -> None:
    at = _page({})
    assert not at.exception and not at.error and not at.warning
    assert _tabs(at) == TABS
    titles = _titles(at)
    assert len(titles) == 1 and "π(chosen)" in titles[0]  # only the open view is built
    assert at.multiselect(key="preference.losses.preference").value == ["dpo", "ipo", "slic", "asft"]
    assert "ASFT" in _captions(at)
    table = at.table[0].value
    assert len(table) == 4 and "rejected falls faster" in table.columns  # one row per loss
    captions = {
        "margin": "IPO pulls it to 1/(2τ)",
        "kl": "do not hold π near π_ref",
        "simplex": "open circle",
    }
    for view, title in VIEWS.items():
        titles = _titles(_open(at, view))
        assert not at.exception and not at.error
        assert len(titles) == 1 and title in titles[0], (view, titles)
        assert captions.get(view, "Solid: mean π(chosen)") in _captions(at), view
        assert bool(at.table) == (view == "probability")  # the table shares the probabilities' tab
        assert at.query_params.get("view", "probability") == view
    assert len(_spec(at, 0)["data"]) >= 4  # the simplex: a path per loss


def test_changing_a_control_retrains() -> None:
    at = _page({"epochs": "50"})
    before = _spec(at, 0)["data"][0]["x"]
    at.select_slider(key="preference.epochs").set_value(100).run()
    assert not at.exception and not at.error
    assert _spec(at, 0)["data"][0]["x"] != before
    assert at.query_params["epochs"] == "100"
    _open(at, "simplex")
    at.slider(key="preference.answers").set_value(4).run()  # no simplex: the first view instead
    assert not at.exception and "Prompt 0 on the simplex" not in _tabs(at)
    assert "π(chosen)" in _titles(at)[0] and "view" not in at.query_params
    assert any("three answers" in i.value for i in at.info)


def test_url_round_trip() -> None:
    query = {"losses": "dpo,kto,orpo", "dpo.beta": "0.5", "epochs": "100", "lr": "0.1", "prompts": "4",
             "seed": "3"}  # fmt: skip
    at = _page(query)
    assert not at.exception and not at.error and not at.warning
    assert at.multiselect(key="preference.losses.preference").value == ["dpo", "kto", "orpo"]
    assert at.select_slider(key="preference.dpo.beta").value == 0.5
    assert at.slider(key="preference.seed").value == 3
    assert len(at.get("plotly_chart")) == 1
    assert {k: at.query_params[k] for k in query} == query
    kl = _page({**query, "view": "kl"})
    assert not kl.exception and not kl.warning and "KL" in _titles(kl)[0]
    assert {k: kl.query_params[k] for k in query} == query and kl.query_params["view"] == "kl"


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
    for view in VIEWS:
        sizes = [len(c.proto.spec) for c in _open(at, view).get("plotly_chart")]
        assert len(sizes) == 1 and sizes[0] <= 150 * 1024, (view, sizes)


def test_only_the_open_view_is_built_and_the_url_names_it() -> None:
    at = _page({"view": "margin", "epochs": "50"})
    assert not at.exception and not at.error and not at.warning
    assert _tabs(at) == TABS
    (title,) = _titles(at)
    assert "margin" in title and not at.table
    assert at.query_params["view"] == "margin"
    at.select_slider(key="preference.epochs").set_value(100).run()  # a control keeps the open view
    assert "margin" in _titles(at)[0] and at.query_params["view"] == "margin"
    four = _page({"view": "simplex", "answers": "4"})  # not offered with four answers: the first view
    assert [w.value for w in four.warning] == [
        "Ignored URL parameter `view=simplex`: it must be one of ['probability', 'margin', 'kl']."
    ]
    assert "π(chosen)" in _titles(four)[0] and "view" not in four.query_params
