"""The Calibration page under AppTest: default losses, both binnings, temperature scaling, margin-loss maps,
one view built at a time, URL state, bad input and the byte budget of every view."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.pages.views import open_view, tab_labels

PAGE = Path(__file__).resolve().parents[2] / "pages" / "calibration.py"
TIMEOUT = 240
TINY = {"n": "160", "epochs": "20", "width": "8", "depth": "1"}
CHART_BUDGET, LOAD_BUDGET = 150 * 1024, 500 * 1024  # as tests/pages/test_byte_budgets.py


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "calibration", view)


_tabs = tab_labels


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _title(spec: dict) -> str:
    return spec["layout"]["title"]["text"]


def test_default_losses_get_every_view() -> None:
    at = _page({**TINY, "dataset": "blobs"})  # three classes: no margin losses
    assert not at.exception and not at.error
    assert at.multiselect(key="calibration.losses.multiclass").value == [
        "cross_entropy", "focal", "label_smoothing", "squentropy", "brier",
    ]  # fmt: skip
    assert _tabs(at) == ["Reliability", "Confidence histograms", "Temperature scaling"]
    (reliability,) = _specs(at)  # only the open view is built
    assert _title(reliability) == "Reliability diagram"
    table = at.table[0].value
    assert next(iter(table["loss"])) == "Cross-entropy"
    assert {"ECE (width)", "MCE (mass)", "smooth ECE", "NLL", "Brier"} <= set(table.columns)
    assert (table["ECE (width)"] >= 0).all()
    assert not at.info  # no margin-loss hint: these data have three classes
    (histogram,) = _specs(_open(at, "histogram"))
    assert not at.exception and _title(histogram) == "Confidence histogram" and not at.table
    assert at.query_params["view"] == "histogram"
    bars, scaled = _specs(_open(at, "temperature"))  # the fitted T per loss, then the rescaled diagrams
    assert not at.exception and not at.table
    assert _title(bars) == "Temperature scaling" and _title(scaled).startswith("Reliability before and after")
    assert len(bars["data"]) and len(scaled["data"])
    assert "T minimises the NLL" in " ".join(c.value for c in at.caption)


def test_binary_margin_losses_show_their_calibration_map() -> None:
    at = _page({**TINY, "margin_losses": "logistic,hinge", "losses": "cross_entropy"})
    assert not at.exception and not at.error
    assert _tabs(at)[-1] == "Margin losses"
    (spec,) = _specs(_open(at, "margin"))
    assert "f*" in _title(spec)
    maps = [t for t in spec["data"] if t.get("name") == "sigmoid(f*(eta))"]
    assert len(maps) == 2  # one map per margin loss
    assert "Binary margin losses" in " ".join(c.value for c in at.caption)


def test_binary_data_without_margin_losses_get_a_hint_and_no_margin_view() -> None:
    at = _page({**TINY, "margin_losses": "", "losses": "cross_entropy", "view": "margin"})
    assert not at.exception and not at.error
    assert "Margin losses" not in _tabs(at)  # not offered: the first view instead
    assert "Reliability" in _title(_specs(at)[0]) and "view" not in at.query_params
    assert any("Add binary margin losses" in i.value for i in at.info)


def test_a_view_url_opens_that_view_with_only_its_charts() -> None:
    at = _page({**TINY, "dataset": "blobs", "losses": "cross_entropy,focal", "view": "temperature"})
    assert not at.exception and not at.error and not at.warning
    assert at.tabs[2].label == "Temperature scaling"
    assert len(_specs(at)) == 2 and not at.table  # the bars and the rescaled diagrams only
    assert at.query_params["view"] == "temperature"
    at.slider(key="calibration.bins").set_value(8).run()  # the view stays open across reruns
    assert not at.exception and len(_specs(at)) == 2 and at.query_params["view"] == "temperature"


def test_bins_and_overlay_controls_change_the_view() -> None:
    at = _page({**TINY, "dataset": "blobs", "losses": "cross_entropy,focal"})
    before = at.get("plotly_chart")[0].proto.spec
    at.slider(key="calibration.bins").set_value(8).run()
    at.toggle(key="calibration.overlay").set_value(True).run()
    assert not at.exception
    assert at.get("plotly_chart")[0].proto.spec != before
    assert at.query_params["bins"] == "8" and at.query_params["overlay"] == "1"


def test_regression_data_gets_a_message() -> None:
    at = _page({**TINY, "dataset": "sine"})
    assert not at.exception
    assert any("classification dataset" in i.value for i in at.info)


def test_garbage_in_the_url_warns() -> None:
    at = _page({**TINY, "dataset": "blobs", "losses": "cross_entropy", "bins": "nine"})
    assert not at.exception
    assert any("bins=nine" in w.value for w in at.warning)
    assert at.slider(key="calibration.bins").value == 15
    warned = _page({**TINY, "dataset": "blobs", "losses": "cross_entropy", "view": "sideways"}).warning
    assert any("view=sideways" in w.value for w in warned)


def test_every_view_stays_within_the_byte_budget() -> None:
    """tests/pages/test_byte_budgets.py loads the default view; the others are sent by a tab click."""
    query = {
        "n": "200",
        "epochs": "20",
        "margin_losses": "logistic,hinge,exponential",
        "losses": "cross_entropy",
    }
    at = _page(query)
    for view in ("reliability", "histogram", "temperature", "margin"):
        sizes = [len(chart.proto.spec) for chart in _open(at, view).get("plotly_chart")]
        assert sizes and max(sizes) <= CHART_BUDGET and sum(sizes) <= LOAD_BUDGET, (view, sizes)
