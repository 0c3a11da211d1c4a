"""The Neural collapse page under AppTest: a tiny experiment from the URL, every control, the K = 4 preset,
a loss that cannot train, the URL round trip, imbalance, bad input, and the byte budget of its charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz.losses.registry import register, unregister
from tests.pages.views import open_view

PAGE = Path(__file__).resolve().parents[2] / "pages" / "neural_collapse.py"
TIMEOUT = 300
SETTINGS = {"n": "120", "epochs": "20", "dataset": "blobs", "K": "3"}
TINY = {**SETTINGS, "trained": "1"}  # a shared link of a trained page: it trains
DEFAULTS = ["cross_entropy", "squared_onehot", "label_smoothing", "focal"]
SHOWN = [*DEFAULTS, "supcon"]  # the embedding picker's default: an encoder, measured on its embeddings
CHART_BUDGET, LOAD_BUDGET = 150 * 1024, 500 * 1024


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _sizes(at: AppTest) -> list[int]:
    return [len(chart.proto.spec) for chart in at.get("plotly_chart")]


VIEWS = ("trajectories", "geometry", "balance", "final")  # the page's tabs


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "neural_collapse", view)


def _each_view(at: AppTest) -> dict[str, Any]:
    """Every view's figures (one per chart view) and, for the final values, the table."""
    shown = {}
    for view in VIEWS:
        _open(at, view)
        _clean(at)
        shown[view] = at.table[0].value if view == "final" else _figures(at)
    return shown


def test_a_tiny_experiment_from_the_url_gets_every_view_within_the_byte_budget() -> None:
    at = _page(TINY)
    _clean(at)
    assert at.multiselect(key="neural_collapse.losses.multiclass").value == DEFAULTS
    assert [tab.label for tab in at.tabs] == [
        "NC1–NC4 over training", "Class means and the simplex ETF", "Minority collapse", "Final values"
    ]  # fmt: skip
    assert len(_figures(at)) == 1  # only the open view is built
    sizes = _sizes(at)
    shown = _each_view(at)
    (trajectories,), (geometry,), (balance,), table = shown.values()
    assert "over training" in trajectories["layout"]["title"]["text"]
    assert at.multiselect(key="neural_collapse.embedding_losses.embedding").value == ["supcon"]
    assert len(trajectories["data"]) == 6 * len(SHOWN)
    assert trajectories["layout"]["yaxis"]["type"] == "log"  # NC1
    assert {t["type"] for t in geometry["data"]} == {"scatter"}  # K = 3: a plane
    assert sum(t["name"] == "simplex ETF vertices" for t in geometry["data"]) == len(SHOWN)
    assert {t["type"] for t in balance["data"]} == {"bar"}
    assert len(balance["data"]) == 3 * len(DEFAULTS) + 2  # the encoder has no classifier rows to bar
    assert list(table["loss"])[:2] == ["Cross-entropy", "Squared error on one-hot targets (MSE)"]
    assert {"NC1", "NC2 equinorm", "NC2 equiangular", "NC3", "NC4", "‖μ_2‖ ÷ mean"} <= set(table.columns)
    classifiers, (encoder,) = table[~table["loss"].str.startswith("Supervised contrastive")], [len(table) - 1]
    assert (table["NC1"] > 0).all() and ((classifiers["NC4"] >= 0) & (classifiers["NC4"] <= 1)).all()
    assert np.isnan(table["NC3"][encoder]) and np.isnan(table["NC4"][encoder])  # no classifier to measure
    assert max(sizes) <= CHART_BUDGET and sum(sizes) <= LOAD_BUDGET, [f"{s / 1024:.0f} KB" for s in sizes]
    for figure in (geometry, balance):  # any view can be the one a step resends
        assert len(json.dumps(figure)) <= CHART_BUDGET
    assert any("SupCon trains an encoder" in c.value for c in at.caption)
    assert any("imbalance slider" in c.value for c in _open(at, "trajectories").caption)


def test_a_view_url_builds_only_that_view_and_keeps_it() -> None:
    at = _page({**TINY, "view": "balance"})
    _clean(at)
    (balance,) = _figures(at)
    assert {t["type"] for t in balance["data"]} == {"bar"}
    assert at.query_params["view"] == "balance"
    at.radio(key="neural_collapse.centre").set_value("classes").run()  # a control keeps the open view
    _clean(at)
    assert at.query_params["view"] == "balance" and len(_figures(at)) == 1
    assert "view" not in _open(at, "trajectories").query_params  # the default view leaves the URL clean


def test_every_control_changes_the_view_and_the_url() -> None:
    at = _page(TINY)
    _clean(at)
    first = _sizes(_open(at, "geometry"))[0]
    _open(at, "trajectories")
    at.select_slider(key="neural_collapse.imbalance").set_value(5.0).run()  # the shared experiment's slider
    _clean(at)
    assert at.query_params["imbalance"] == "5"
    ticks = _figures(_open(at, "balance"))[0]["data"][0]["x"]
    assert ticks == ["class 0<br>n=25", "class 1<br>n=11", "class 2<br>n=5"]
    assert any("5:1" in c.value for c in at.caption)
    imbalanced = _open(at, "final").table[0].value
    at.radio(key="neural_collapse.centre").set_value("classes").run()
    _clean(at)
    assert at.query_params["centre"] == "classes"
    by_classes = at.table[0].value
    assert (by_classes["NC1"] != imbalanced["NC1"]).all()  # imbalanced: the two centres differ
    same = np.isclose(by_classes["NC4"], imbalanced["NC4"], equal_nan=True)  # NaN: SupCon has no classifier
    assert same.all()  # NC4 does not depend on the centre
    at.toggle(key="neural_collapse.classifier").set_value(False).run()
    _clean(at)
    assert at.query_params["classifier"] == "0"
    names = {t["name"] for t in _figures(_open(at, "geometry"))[0]["data"]}
    assert "classifier rows w_k (scaled)" not in names and _sizes(at)[0] < first


def test_the_page_waits_for_train_showing_the_data_and_where_training_starts() -> None:
    at = _page(SETTINGS)
    _clean(at)
    assert not at.tabs and any("Press **Train**" in i.value for i in at.info)
    assert len(_figures(at)) == 1  # the initial weights' boundary over the data
    at.button(key="neural_collapse.train").click().run()
    _clean(at)
    assert at.query_params["trained"] == "1" and len(at.tabs) == 4


def test_the_preset_loads_four_separable_blobs_and_draws_a_tetrahedron() -> None:
    at = _page(SETTINGS)  # not trained yet: the preset trains
    at.button(key="neural_collapse.demo").click().run()
    _clean(at)
    q = at.query_params
    assert (q["dataset"], q["K"], q["epochs"], q["noise"], q["data_seed"]) == (
        "blobs",
        "4",
        "400",
        "0.5",
        "1",
    )
    assert "n" not in q  # back to the default 400 samples
    (geometry,) = _figures(_open(at, "geometry"))
    assert {t["type"] for t in geometry["data"]} == {"scatter3d"}
    sizes = _sizes(at)
    assert max(sizes) <= CHART_BUDGET and sum(sizes) <= LOAD_BUDGET
    table = _open(at, "final").table[0].value
    classifiers = table[~table["loss"].str.startswith("Supervised contrastive")]
    assert (classifiers["train accuracy"] == 1.0).all()  # the terminal phase: every classifier fits the data
    assert (classifiers["NC4"] < 0.02).all()


def test_the_url_round_trip_reopens_the_same_view() -> None:
    at = _page(TINY)
    at.radio(key="neural_collapse.centre").set_value("classes").run()
    at.toggle(key="neural_collapse.classifier").set_value(False).run()
    query = {k: at.query_params[k] for k in at.query_params}
    assert {"centre", "classifier", "dataset", "n", "epochs"} <= set(query)
    again = _page(query)
    _clean(again)
    assert not again.warning
    assert again.radio(key="neural_collapse.centre").value == "classes"
    assert again.toggle(key="neural_collapse.classifier").value is False
    for before, after in zip(_each_view(at).values(), _each_view(again).values(), strict=True):
        assert str(before) == str(after)


@pytest.fixture
def untrainable():
    def lv_test_collapse_untrainable(logits, target):
        raise ValueError("this loss cannot train")

    register(title="lv_test_collapse_untrainable", latex="", task="multiclass", paper="test only")(
        lv_test_collapse_untrainable
    )
    yield "lv_test_collapse_untrainable"
    unregister("lv_test_collapse_untrainable")


def test_a_failing_loss_gets_one_error_and_the_others_are_drawn(untrainable: str) -> None:
    at = _page({**TINY, "losses": f"cross_entropy,{untrainable},focal", "embedding_losses": ""})
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "could not train: this loss cannot train" in errors[0], errors
    trajectories = _figures(at)[0]
    assert len(trajectories["data"]) == 6 * 2
    assert len(_open(at, "final").table[0].value) == 2


def test_too_few_minority_samples_stop_with_a_message() -> None:
    at = _page({**TINY, "imbalance": "20"})
    assert not at.exception and not at.get("plotly_chart")
    assert any("two training samples per class" in w.value for w in at.warning)


def test_regression_data_and_garbage_get_messages() -> None:
    at = _page({**TINY, "dataset": "sine"})
    assert not at.exception
    assert any("classification dataset" in i.value for i in at.info)
    at = _page({**TINY, "centre": "middle"})
    assert not at.exception
    assert any("centre=middle" in w.value for w in at.warning)
    assert at.radio(key="neural_collapse.centre").value == "samples"


def test_the_imbalanced_preset_shows_minority_collapse() -> None:
    at = _page(SETTINGS)  # not trained yet: the preset trains
    at.button(key="neural_collapse.minority").click().run()
    _clean(at)
    q = at.query_params
    shown = (q["dataset"], q["K"], q["imbalance"], q["view"], q["trained"])
    assert shown == ("blobs", "4", "10", "balance", "1")
    (balance,) = _figures(at)  # the view its claim is read in
    assert {t["type"] for t in balance["data"]} == {"bar"}
    cosines = {t["name"]: _decoded(t["y"]) for t in balance["data"] if t.get("yaxis") == "y2"}
    assert len(cosines) == len(SHOWN)
    for name, largest in cosines.items():  # per class: the largest cosine of its centred mean with another's
        # a simplex ETF has -1/3 everywhere (K = 4); the two rare classes' means move together instead
        assert largest[2] > 0 and largest[3] > 0, (name, largest)


def _decoded(values: Any) -> np.ndarray:
    """A Plotly array as sent: a list, or {"dtype", "bdata"} base64 bytes."""
    if isinstance(values, dict):
        import base64

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values, np.float64)
