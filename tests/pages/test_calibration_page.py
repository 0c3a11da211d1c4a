"""The Calibration page under AppTest: default losses, both binnings, temperature scaling, margin-loss maps,
URL state and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[2] / "pages" / "calibration.py"
TIMEOUT = 240
TINY = {"n": "160", "epochs": "20", "width": "8", "depth": "1"}


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def test_default_losses_get_every_view() -> None:
    at = _page({**TINY, "dataset": "blobs"})  # three classes: no margin losses
    assert not at.exception and not at.error
    assert at.multiselect(key="calibration.losses.multiclass").value == [
        "cross_entropy", "focal", "label_smoothing", "squentropy", "brier",
    ]  # fmt: skip
    assert len(at.get("plotly_chart")) == 4  # reliability, histogram, temperature bars, scaled diagrams
    table = at.table[0].value
    assert next(iter(table["loss"])) == "Cross-entropy"
    assert {"ECE (width)", "MCE (mass)", "smooth ECE", "NLL", "Brier"} <= set(table.columns)
    assert (table["ECE (width)"] >= 0).all()


def test_binary_margin_losses_show_their_calibration_map() -> None:
    at = _page({**TINY, "margin_losses": "logistic,hinge", "losses": "cross_entropy"})
    assert not at.exception and not at.error
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert "f*" in spec["layout"]["title"]["text"]  # the calibration-map figure comes last
    maps = [t for t in spec["data"] if t.get("name") == "sigmoid(f*(eta))"]
    assert len(maps) == 2  # one map per margin loss


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
