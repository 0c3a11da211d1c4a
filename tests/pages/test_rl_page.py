"""The RL page under AppTest: loads and trains, every view draws its chart, one view is built at a time and
named in the URL, a control retrains, the pass@k slider redraws its chart, presets set every control and
train, bad settings give a message, settings survive a page switch, URL round trip, bad URL values warn and
fall back, and the byte budget at the largest settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lossviz import rl
from tests.pages.views import open_view, tab_labels

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "pages" / "rl.py"
TIMEOUT = 120
# the page's tabs: {view: the title of the one chart it builds}
VIEWS = {
    "entropy": "Entropy",
    "reward": "Training reward",
    "pass_at_k": "pass@1 and pass@16",
    "policy": "π at step",
    "likelihood": "pass@N loss",
}
TABS = ["Entropy", "Reward", "pass@k", "π per prompt", "pass@N loss vs likelihood"]
QUICK = {"steps": "100", "prompts": "8"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the app does (lossviz.ui); see tests/test_rl.py
    yield
    torch.set_num_threads(threads)


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def _spec(at: AppTest, i: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "rl", view)


_tabs = tab_labels


def _captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_page_trains_on_load_and_draws_every_view() -> None:
    at = _page({})
    assert not at.exception and not at.error and not at.warning
    assert _tabs(at) == TABS
    assert len(_titles(at)) == 1 and "Entropy" in _titles(at)[0]  # only the open view is built
    assert at.multiselect(key="rl.variants").value == ["reinforce", "grpo", "majority_vote"]
    assert [t["name"] for t in _spec(at)["data"]] == ["REINFORCE", "GRPO", "Majority vote (label-free)"]
    assert "Collapse is the fall towards 0" in _captions(at)
    assert at.slider(key="rl.answers").value == rl.SETTINGS["answers"]
    assert not at.query_params  # nothing but defaults
    captions = {
        "reward": "the verifier's 0/1",
        "pass_at_k": "pass@1 is the mean mass on the correct answers",
        "policy": "rings mark the correct ones",
        "likelihood": "Both reach pass@16 = 1.00",
    }
    for view, title in VIEWS.items():
        titles = _titles(_open(at, view))
        assert not at.exception and not at.error
        assert len(titles) == 1 and title in titles[0], (view, titles)
        assert captions.get(view, "Dotted") in _captions(at), view
        assert at.query_params.get("view", "entropy") == view
        assert bool(at.table) == (view == "pass_at_k")  # the start/end table shares pass@k's tab
    assert [t["name"] for t in _spec(_open(at, "reward"))["data"]] == [
        "REINFORCE",
        "GRPO",
        "Majority vote (label-free)",
    ]
    assert len(_open(at, "pass_at_k").table[0].value) == 3  # one row per objective


def test_changing_a_control_retrains_and_lands_in_the_url() -> None:
    at = _page(QUICK)
    before = _spec(at)["data"][0]["y"]
    at.slider(key="rl.seed").set_value(3).run()
    assert not at.exception and not at.error
    assert _spec(at)["data"][0]["y"] != before
    assert at.query_params["seed"] == "3"
    at.select_slider(key="rl.entropy").set_value(0.3).run()  # a diversity term: dotted runs appear
    names = [t["name"] for t in _spec(at)["data"]]
    assert "GRPO · no diversity terms" in names and len(names) == 6


def test_the_k_slider_redraws_pass_at_k() -> None:
    at = _page({**QUICK, "view": "pass_at_k"})
    at.select_slider(key="rl.k").set_value(64).run()
    assert not at.exception
    assert "pass@64" in _titles(at)[0] and at.query_params["k"] == "64"
    assert any("pass@64: start → end" in c for c in at.table[0].value.columns)
    _open(at, "entropy")  # kept, not drawn, while its view is closed
    assert at.query_params["k"] == "64" and "pass@64" in _titles(_open(at, "pass_at_k"))[0]


def test_the_policy_view_follows_its_picker_and_step() -> None:
    at = _page({**QUICK, "view": "policy"})
    assert at.selectbox(key="rl.objective").value == "majority_vote"  # the last objective by default
    assert "at step 100" in _titles(at)[0]
    at.selectbox(key="rl.objective").set_value("grpo").run()
    at.select_slider(key="rl.step").set_value(50).run()
    assert not at.exception
    assert _titles(at)[0] == "GRPO: π at step 50" and at.query_params["step"] == "50"
    assert at.query_params["objective"] == "grpo"
    _open(at, "reward")  # kept, not drawn, while their view is closed
    assert at.query_params["step"] == "50" and at.query_params["objective"] == "grpo"
    at.button(key="rl.preset.entropy_collapse").click().run()  # a preset resets the view, opens the entropy
    assert "Entropy" in _titles(at)[0] and "view" not in at.query_params
    assert "step" not in at.query_params and "objective" not in at.query_params
    _open(at, "policy")
    assert at.selectbox(key="rl.objective").value == "grpo" and "at step 300" in _titles(at)[0]
    assert "step" not in at.query_params  # the last step is the default


@pytest.mark.parametrize("name", ["novelty", "clip_higher", "pass_at_n"])
def test_a_preset_sets_every_control_and_trains(name: str) -> None:
    at = _page({"seed": "5", "steps": "50", "kl": "0.1"})
    at.button(key=f"rl.preset.{name}").click().run()
    assert not at.exception and not at.error
    preset = {**rl.SETTINGS, **rl.PRESETS[name]}
    assert at.multiselect(key="rl.variants").value == list(preset["variants"])
    assert at.slider(key="rl.seed").value == 0  # every control, not only those the preset names
    assert at.select_slider(key="rl.steps").value == preset["steps"]
    assert at.select_slider(key="rl.kl").value == 0.0
    assert at.select_slider(key="rl.novelty").value == preset["novelty"]
    assert at.slider(key="rl.n_correct").value == preset["n_correct"]
    assert at.session_state["_lv.rl"]["N"] == preset.get("N", 16)  # its view is closed: the stored value
    opened = "likelihood" if name == "pass_at_n" else "entropy"  # the view the preset's claim is read in
    assert len(_titles(at)) == 1 and VIEWS[opened] in _titles(at)[0]
    assert at.query_params.get("view", "entropy") == opened
    assert "seed" not in at.query_params and "kl" not in at.query_params


def test_the_novelty_preset_draws_the_plain_majority_vote_dotted() -> None:
    at = _page({})
    at.button(key="rl.preset.novelty").click().run()
    solid, dotted = _spec(at)["data"]
    assert dotted["line"]["dash"] == "dot" and solid["line"]["color"] == dotted["line"]["color"]
    assert at.query_params["novelty"] == "2" and at.query_params["variants"] == "majority_vote"


def test_bad_settings_give_a_message_not_a_traceback() -> None:
    at = _page({"answers": "4", "n_correct": "10"})
    assert not at.exception and not at.get("plotly_chart")
    assert any("must not exceed" in e.value for e in at.error)
    at.multiselect(key="rl.variants").set_value([]).run()
    at.slider(key="rl.n_correct").set_value(2).run()
    assert not at.exception and not at.get("plotly_chart")
    assert any("Pick at least one objective" in i.value for i in at.info)


def test_settings_survive_leaving_the_page_and_coming_back() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/rl.py").run()
    at.select_slider(key="rl.steps").set_value(100).run()
    at.multiselect(key="rl.variants").set_value(["grpo", "rloo"]).run()
    at.toggle(key="rl.band").set_value(True).run()
    _open(at, "reward")
    assert not at.exception
    at.switch_page("pages/loss_shapes.py").run()
    for key in [k for k in at.session_state if str(k).startswith("rl.")]:
        del at.session_state[key]  # what the browser does to a page's widgets when another page is shown
    at.switch_page("pages/rl.py").run()
    assert not at.exception and not at.error
    assert at.select_slider(key="rl.steps").value == 100
    assert at.multiselect(key="rl.variants").value == ["grpo", "rloo"]
    assert at.toggle(key="rl.band").value is True
    assert "Training reward" in _titles(at)[0]  # the open view too


def test_url_round_trip() -> None:
    query = {"variants": "rloo,ppo_clip_higher", "prompts": "6", "answers": "8", "n_correct": "3",
             "group": "4", "steps": "50", "lr": "0.2", "init_scale": "2", "seed": "4", "kl": "0.03",
             "entropy": "0.1", "band": "1", "novelty": "1", "plain": "0", "k": "8", "N": "4",
             "objective": "rloo", "view": "reward"}  # fmt: skip
    at = _page(query)
    assert not at.exception and not at.error and not at.warning
    assert at.multiselect(key="rl.variants").value == ["rloo", "ppo_clip_higher"]
    assert at.slider(key="rl.init_scale").value == 2.0 and at.toggle(key="rl.band").value is True
    assert len(_titles(at)) == 1 and "Training reward" in _titles(at)[0]
    assert [t["name"] for t in _spec(at)["data"]][:2] == [
        "REINFORCE + baseline (RLOO)",
        "PPO clip-higher (0.2 / 0.28)",
    ]
    assert len(_spec(at)["data"]) == 2  # plain = 0: no dotted runs
    assert {k: at.query_params[k] for k in query} == query
    assert "pass@8" in _titles(_open(at, "pass_at_k"))[0] and "N = 4" in _titles(_open(at, "likelihood"))[0]
    assert _titles(_open(at, "policy"))[0].startswith("REINFORCE + baseline (RLOO): π at step")


def test_bad_url_values_warn_and_fall_back() -> None:
    at = _page({**QUICK, "group": "seven", "lr": "-1", "variants": "grpo,dpo", "bogus": "1"})
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    for part in ("group=seven", "lr=-1", "dpo", "bogus"):
        assert part in text
    assert at.select_slider(key="rl.group").value == rl.SETTINGS["group"]
    assert at.select_slider(key="rl.lr").value == rl.SETTINGS["lr"]


def test_charts_stay_within_the_byte_budget_with_every_objective() -> None:
    """Every objective and its dotted run on the largest table (64 x 64). 100 steps keep the test quick: the
    curves' worst case (MAX_POINTS points, 2000 steps) is checked without training in
    tests/figures/test_rl_figures.py."""
    every = ",".join(rl.VARIANTS)  # with a diversity term on, each also has its dotted run
    at = _page({"variants": every, "prompts": "64", "answers": "64", "steps": "100", "entropy": "0.1",
                "k": "256", "group": "2"})  # fmt: skip
    assert not at.exception and not at.error
    assert len(_spec(at)["data"]) == 2 * len(rl.VARIANTS)
    for view in VIEWS:
        sizes = [len(c.proto.spec) for c in _open(at, view).get("plotly_chart")]
        assert len(sizes) == 1 and sizes[0] <= 150 * 1024, (view, sizes)


def test_only_the_open_view_is_built_and_the_url_names_it(monkeypatch) -> None:
    """pass@N vs likelihood needs none of the RL runs: opened from the URL, it trains none."""
    trained = []
    train_variant = rl.train_variant
    monkeypatch.setattr(rl, "train_variant", lambda *a, **k: trained.append(a) or train_variant(*a, **k))
    at = _page({**QUICK, "seed": "17", "view": "likelihood", "N": "4"})  # a seed no other test caches
    assert not at.exception and not at.error and not at.warning
    assert len(_titles(at)) == 1 and "N = 4" in _titles(at)[0] and not at.table
    assert at.query_params["view"] == "likelihood" and not trained
    assert "Rethinking Fine-Tuning" in " ".join(m.value for m in at.markdown)
    _open(at, "policy")
    assert len(_titles(at)) == 1 and "π at step" in _titles(at)[0] and len(trained) == 3
    assert at.query_params["view"] == "policy" and at.query_params["N"] == "4"
    bogus = _page({**QUICK, "view": "sideways"})
    assert bogus.warning[0].value.startswith("Ignored URL parameter `view=sideways`")
    assert "Entropy" in _titles(bogus)[0] and "view" not in bogus.query_params
