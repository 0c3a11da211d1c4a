"""The Loss Shapes page under AppTest: runs clean, reruns on every control, restores a view from its URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lossviz import losses

PAGE = Path(__file__).resolve().parents[2] / "pages" / "loss_shapes.py"
TIMEOUT = 60


def _page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at.run()


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _trace(figure: dict, name_contains: str) -> dict:
    return next(t for t in figure["data"] if name_contains in t.get("name", ""))


def test_default_view_runs_and_mirrors_itself_in_the_url():
    at = _page()
    assert not at.exception
    assert at.title[0].value == "Loss shapes"
    expected = [
        n for n in ("cross_entropy", "focal", "label_smoothing", "gce") if n in losses.names("multiclass")
    ]
    assert at.multiselect(key="shapes.losses.multiclass").value == expected
    assert at.query_params["task"] == "multiclass" and at.query_params["losses"] == ",".join(expected)
    figures = _figures(at)
    assert len(figures) == 4  # loss, derivative, relative weight, simplex (K = 3)
    assert len(figures[0]["data"]) == len(expected)
    assert len(at.latex) == len(expected)  # one formula per selected loss
    assert at.dataframe and len(at.dataframe[0].value) == len(expected)  # one properties row per loss


def test_changing_the_task_reruns_with_that_task_losses():
    at = _page()
    at.radio(key="shapes.task").set_value("binary").run()
    assert not at.exception
    labels = [
        f"{s.title} (batch-level)" if s.batch else s.title for s in map(losses.get, losses.names("binary"))
    ]
    assert at.multiselect(key="shapes.losses.binary").options == labels  # generated from the registry
    assert at.query_params["task"] == "binary" and at.query_params["axis"] == "margin"
    assert "calibrated" in at.dataframe[0].value.columns
    at.radio(key="shapes.task").set_value("regression").run()
    assert not at.exception
    assert len(_figures(at)) == 2  # loss and influence; no sample weight or simplex for regression


def test_changing_the_loss_set_and_a_slider_reruns_cleanly():
    at = _page({"task": "multiclass", "losses": "cross_entropy,focal"})
    assert not at.exception
    before = _trace(_figures(at)[0], losses.get("focal").title)["y"]
    at.slider(key="shapes.focal.gamma").set_value(0.0).run()
    assert not at.exception
    assert at.query_params["focal.gamma"] == "0"
    figure = _figures(at)[0]
    after, ce = _trace(figure, losses.get("focal").title)["y"], _trace(figure, "Cross-entropy")["y"]
    assert after != before
    assert after == pytest.approx(ce)  # focal with gamma = 0 is cross-entropy
    at.multiselect(key="shapes.losses.multiclass").set_value(["cross_entropy"]).run()
    assert not at.exception
    assert at.query_params["losses"] == "cross_entropy" and "focal.gamma" not in at.query_params
    assert len(_figures(at)[0]["data"]) == 1
    at.multiselect(key="shapes.losses.multiclass").set_value([]).run()
    assert not at.exception and at.info  # asks for a loss instead of failing


def test_axis_and_classes_controls():
    at = _page({"losses": "cross_entropy"})
    at.radio(key="shapes.axis").set_value("logit_margin").run()
    assert not at.exception and at.query_params["axis"] == "logit_margin"
    assert "logit margin" in _figures(at)[0]["layout"]["xaxis"]["title"]["text"]
    at.slider(key="shapes.K").set_value(10).run()
    assert not at.exception and at.query_params["K"] == "10"
    assert len(_figures(at)) == 3  # the simplex needs K = 3


def test_a_url_restores_the_view():
    at = _page(
        {
            "task": "regression",
            "losses": "huber,cauchy",
            "huber.delta": "2.5",
            "cauchy.c": "0.5",
            "axis": "residual",
        }
    )
    assert not at.exception and not at.warning
    assert at.radio(key="shapes.task").value == "regression"
    assert at.multiselect(key="shapes.losses.regression").value == ["huber", "cauchy"]
    assert at.select_slider(key="shapes.huber.delta").value == 2.5
    assert at.select_slider(key="shapes.cauchy.c").value == 0.5
    names = [t["name"] for t in _figures(at)[0]["data"]]
    assert names == [losses.get("huber").title, losses.get("cauchy").title]


def test_a_sweep_url_restores_the_family():
    at = _page(
        {
            "task": "multiclass",
            "mode": "sweep",
            "sweep.loss": "comp_sum",
            "sweep.param": "tau",
            "sweep.n": "5",
        }
    )
    assert not at.exception and not at.warning
    value_figure = _figures(at)[0]
    assert [t["name"] for t in value_figure["data"]] == [
        "tau = 0",
        "tau = 0.5",
        "tau = 1",
        "tau = 1.5",
        "tau = 2",
    ]
    assert len(at.dataframe[0].value) == 5  # properties along the sweep
    at.selectbox(key="shapes.sweep.loss").set_value("focal").run()
    assert not at.exception and at.query_params["sweep.param"] == "gamma"


def test_garbage_url_gives_warnings_not_exceptions():
    at = _page(
        {"task": "chess", "losses": "nope", "K": "-3", "axis": "sideways", "focal.gamma": "x", "zzz": "1"}
    )
    assert not at.exception
    assert len(at.warning) >= 4
    assert at.query_params["task"] == "multiclass" and "zzz" not in at.query_params


def test_batch_level_losses_are_labelled_on_the_margin_axis():
    batch = [n for n in losses.names("binary") if losses.get(n).batch]
    if not batch:
        pytest.fail("the catalogue's batch-level losses (Dice, AnyLoss, AUC) should be registered")
    at = _page({"task": "binary", "losses": f"logistic,{batch[0]}"})
    assert not at.exception
    trace = _trace(_figures(at)[0], losses.get(batch[0]).title)
    assert "batch-level" in trace["name"] and trace["line"]["dash"] == "dash"
    assert any("batch" in info.value for info in at.info)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_every_registered_loss_of_a_task_renders_together(task):
    at = _page({"task": task, "losses": ",".join(losses.names(task))})
    assert not at.exception
    assert len(_figures(at)[0]["data"]) == len(losses.names(task))
    assert len(at.dataframe[0].value) == len(losses.names(task))
