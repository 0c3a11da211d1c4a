"""The Loss Shapes page under AppTest: runs clean, reruns on every control, keeps its settings when widgets
are dropped, restores a view from its URL, and renders long formulas unclipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lossviz import losses, shapes
from lossviz.figures import shapes as figures
from lossviz.ui import cache
from lossviz.ui import shapes as view_notes
from lossviz.ui.fields import Field
from tests.pages.views import open_view, tab_labels

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "pages" / "loss_shapes.py"
TIMEOUT = 60


def _page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at.run()


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _trace(figure: dict, name_contains: str) -> dict:
    return next(t for t in figure["data"] if name_contains in t.get("name", ""))


VIEWS = ("value", "derivative", "weight", "simplex", "properties", "formulas")  # the page's tabs


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "shapes", view)


_tabs = tab_labels


def _view(at: AppTest) -> list:
    """What every view of the page shows: the figures' traces (names and values), formulas and tables."""
    shown = []
    for view in VIEWS:
        _open(at, view)
        traces = [[(t.get("name"), t.get("y"), t.get("z")) for t in f["data"]] for f in _figures(at)]
        shown.append([traces, [e.value for e in at.latex], [d.value.to_dict() for d in at.table]])
    return shown


def test_default_view_runs_and_keeps_a_clean_url():
    at = _page()
    assert not at.exception and not at.warning
    assert at.title[0].value == "Loss shapes"
    expected = [
        n for n in ("cross_entropy", "focal", "label_smoothing", "gce") if n in losses.names("multiclass")
    ]
    assert at.radio(key="shapes.task").value == "multiclass"
    assert at.multiselect(key="shapes.losses.multiclass").value == expected
    assert dict(at.query_params) == {}  # only values that differ from the defaults go to the URL
    assert _tabs(at) == ["Loss", "Derivative", "Relative weight", "Simplex", "Properties", "Formulas"]
    figures = _figures(at)
    assert len(figures) == 1  # only the open view is built: the loss
    assert len(figures[0]["data"]) == len(expected)
    assert len(_figures(_open(at, "simplex"))) == 1 and at.query_params["view"] == "simplex"
    assert len(_open(at, "formulas").latex) == len(expected)  # one formula per selected loss
    assert len(_open(at, "properties").table[0].value) == len(expected)  # one properties row per loss
    assert not at.get("plotly_chart")


def test_only_the_open_view_is_built_and_the_url_names_it():
    at = _page({"view": "derivative", "task": "binary"})
    assert not at.exception and not at.warning
    (figure,) = _figures(at)
    assert "Derivative" in figure["layout"]["title"]["text"]
    assert at.query_params["view"] == "derivative"
    at.radio(key="shapes.task").set_value("regression").run()  # no relative weight for regression
    assert _tabs(at) == ["Loss", "Derivative", "Properties", "Formulas"]
    assert "Derivative" in _figures(at)[0]["layout"]["title"]["text"]
    _open(at, "weight")  # not offered here: the first view instead
    assert "view" not in at.query_params and len(_figures(at)) == 1
    assert _page({"view": "sideways"}).warning[0].value.startswith("Ignored URL parameter `view=sideways`")
    # the simplex's own control lives in its closed view: kept in the URL, read when the view opens
    at = _page({"losses": "cross_entropy,focal", "simplex": "focal"})
    assert not at.warning and at.query_params["simplex"] == "focal"
    assert "Focal" in _figures(_open(at, "simplex"))[0]["layout"]["title"]["text"]


def test_changing_the_task_reruns_with_that_task_losses():
    at = _page()
    at.radio(key="shapes.task").set_value("binary").run()
    assert not at.exception and not at.warning
    labels = [
        f"{s.title} (batch-level)" if s.batch else s.title for s in map(losses.get, losses.names("binary"))
    ]
    assert at.multiselect(key="shapes.losses.binary").options == labels  # generated from the registry
    assert at.radio(key="shapes.axis.binary").value == "margin"
    assert at.query_params["task"] == "binary" and "axis" not in at.query_params  # margin is the default
    assert "Relative weight" in _tabs(at) and "Simplex" not in _tabs(at)  # weight vs logistic
    assert "calibrated" in _open(at, "properties").table[0].value.columns
    at.radio(key="shapes.task").set_value("regression").run()
    assert not at.exception
    assert _tabs(at) == ["Loss", "Derivative", "Properties", "Formulas"]  # no sample weight or simplex
    _open(at, "value")
    assert "residual" in _figures(at)[0]["layout"]["xaxis"]["title"]["text"]


def test_switching_task_with_losses_in_the_url_gives_no_warning():
    # the app wrote `losses` for the multiclass list; other tasks keep their own lists and never re-read it
    at = _page({"losses": "cross_entropy,focal", "focal.gamma": "0.5"})
    assert not at.exception and not at.warning
    for task in ("binary", "regression", "multiclass"):
        at.radio(key="shapes.task").set_value(task).run()
        assert not at.exception
        assert not at.warning, (task, [w.value for w in at.warning])
    assert at.multiselect(key="shapes.losses.multiclass").value == ["cross_entropy", "focal"]
    assert at.slider(key="shapes.focal.gamma").value == 0.5
    assert at.query_params["losses"] == "cross_entropy,focal" and at.query_params["focal.gamma"] == "0.5"


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


def test_axis_classes_and_simplex_controls():
    at = _page({"losses": "cross_entropy,focal", "view": "simplex"})
    at.selectbox(key="shapes.simplex").set_value("focal").run()
    assert not at.exception and at.query_params["simplex"] == "focal"
    assert "Focal" in _figures(at)[0]["layout"]["title"]["text"]
    _open(at, "value")
    at.radio(key="shapes.axis.multiclass").set_value("logit_margin").run()
    assert not at.exception and at.query_params["axis"] == "logit_margin"
    assert "logit margin" in _figures(at)[0]["layout"]["xaxis"]["title"]["text"]
    at.slider(key="shapes.K").set_value(10).run()
    assert not at.exception and at.query_params["K"] == "10"
    assert "Simplex" not in _tabs(at)  # the simplex needs K = 3


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


def test_the_url_reproduces_a_changed_view_in_a_fresh_session():
    at = _page()
    at.radio(key="shapes.task").set_value("binary").run()
    at.multiselect(key="shapes.losses.binary").set_value(["logistic", "bce_focal", "hinge"]).run()
    at.slider(key="shapes.bce_focal.gamma").set_value(1.0).run()
    at.radio(key="shapes.task").set_value("multiclass").run()
    at.slider(key="shapes.K").set_value(5).run()
    at.radio(key="shapes.task").set_value("binary").run()
    assert not at.exception
    fresh = _page(dict(at.query_params))
    assert not fresh.exception and not fresh.warning
    assert dict(fresh.query_params) == dict(at.query_params)
    assert _view(fresh) == _view(at)


def test_settings_survive_their_widgets_being_dropped():
    # a widget that is not drawn in a run loses its session-state key; the canonical copy brings it back
    at = _page({"task": "regression", "losses": "huber,cauchy"})
    at.select_slider(key="shapes.huber.delta").set_value(2.5).run()
    at.radio(key="shapes.task").set_value("binary").run()
    assert "shapes.huber.delta" not in at.session_state and "shapes.losses.regression" not in at.session_state
    at.radio(key="shapes.task").set_value("regression").run()
    assert not at.exception and not at.warning
    assert at.multiselect(key="shapes.losses.regression").value == ["huber", "cauchy"]
    assert at.select_slider(key="shapes.huber.delta").value == 2.5
    assert at.query_params["huber.delta"] == "2.5"


def test_settings_survive_switching_pages():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.radio(key="shapes.task").set_value("regression").run()
    at.select_slider(key="shapes.huber.delta").set_value(2.5).run()
    at.radio(key="shapes.mode").set_value("sweep").run()
    assert not at.exception
    at.switch_page("pages/landscape.py").run()
    for key in [k for k in at.session_state if str(k).startswith("shapes.")]:
        del at.session_state[key]  # what the browser does to a page's widgets when another page is shown
    at.switch_page("pages/loss_shapes.py").run()
    assert not at.exception and not at.warning
    assert at.radio(key="shapes.task").value == "regression" and at.radio(key="shapes.mode").value == "sweep"
    at.radio(key="shapes.mode").set_value("compare").run()
    assert at.select_slider(key="shapes.huber.delta").value == 2.5


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
    assert len(_open(at, "properties").table[0].value) == 5  # properties along the sweep
    _open(at, "formulas")
    assert [e.value for e in at.latex] and "Phi" in at.latex[0].value  # the swept loss's formula
    at.selectbox(key="shapes.sweep.loss.multiclass").set_value("focal").run()
    assert not at.exception and at.selectbox(key="shapes.sweep.param.focal").value == "gamma"
    assert at.query_params["sweep.loss"] == "focal"


def test_sweeping_another_hyperparameter_is_kept_in_the_url():
    at = _page({"task": "regression", "mode": "sweep"})
    assert not at.exception and at.selectbox(key="shapes.sweep.loss.regression").value == "barron"
    at.selectbox(key="shapes.sweep.param.barron").set_value("scale").run()
    at.slider(key="shapes.sweep.n").set_value(3).run()
    assert (
        not at.exception and at.query_params["sweep.param"] == "scale" and at.query_params["sweep.n"] == "3"
    )
    assert [t["name"].split(" = ")[0] for t in _figures(at)[0]["data"]] == ["scale"] * 3
    fresh = _page(dict(at.query_params))
    assert not fresh.warning and _view(fresh) == _view(at)


def test_garbage_url_gives_warnings_not_exceptions():
    at = _page(
        {"task": "chess", "losses": "nope", "K": "-3", "axis": "sideways", "focal.gamma": "x", "zzz": "1"}
    )
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for fragment in ("task=chess", "losses=nope", "K=-3", "axis=sideways", "focal.gamma=x", "zzz"):
        assert fragment in warnings
    assert at.radio(key="shapes.task").value == "multiclass"
    assert "task" not in at.query_params and "zzz" not in at.query_params  # the URL is cleaned


def test_long_formulas_render_unclipped():
    at = _page({"losses": "comp_sum,stablemax_ce", "view": "formulas"})
    assert not at.exception and not at.warning
    formulas = [e.value for e in at.latex]
    assert len(formulas) == 2
    for formula, name in zip(formulas, ("comp_sum", "stablemax_ce"), strict=True):
        assert r"\begin{gathered}" in formula and r"\\" in formula, name  # split into lines at `,\ `
        assert losses.get(name).latex.split(r",\ ")[0] in formula
    assert formulas[1].count(r"\begin{cases}") == 1  # the cases block stays whole
    styles = [m.value for m in at.markdown if "<style>" in m.value]
    assert styles and "overflow-x:auto" in styles[0]  # and a formula that cannot be split scrolls


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
    assert not at.exception and not at.error
    assert len(_figures(at)[0]["data"]) == len(losses.names(task))
    assert len(_open(at, "properties").table[0].value) == len(losses.names(task))
    assert len(_open(at, "formulas").latex) == len(losses.names(task))


# ------------------------------------------------------------------------------------------ byte budget
# What a view sends is deterministic (unlike how long it takes): the Plotly specs of a fresh load within
# 400 KB (room for the rest of the page in 500 KB) and each chart within 120 KB, the most one slider step
# can resend (a step resends only the charts that depend on it; identical ones are skipped).

LOAD_BYTES = 400_000
CHART_BYTES = 120_000
DEFAULT_VIEWS = {
    "multiclass": {},
    "binary": {"task": "binary"},
    "regression": {"task": "regression"},
    "sweep": {"mode": "sweep"},
}


@pytest.mark.parametrize("query", DEFAULT_VIEWS.values(), ids=DEFAULT_VIEWS.keys())
def test_default_views_stay_within_the_byte_budget(query):
    at = _page(query)
    assert not at.exception
    sizes = [len(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert sizes and max(sizes) <= CHART_BYTES, sizes
    assert sum(sizes) <= LOAD_BYTES, sizes


ALL_AT_ONCE_BYTES = 500_000  # the whole page-load budget: every registered loss at once leaves little else


def test_every_loss_of_a_task_at_once_stays_within_the_byte_budget():
    for task in ("multiclass", "binary"):
        at = _page({"task": task, "losses": ",".join(losses.names(task))})
        for view in ("value", "derivative", "weight"):
            sizes = [len(chart.proto.spec) for chart in _open(at, view).get("plotly_chart")]
            assert max(sizes) <= CHART_BYTES and sum(sizes) <= ALL_AT_ONCE_BYTES, (task, view, sizes)


def test_every_multiclass_simplex_fits_one_chart():
    for name in losses.names("multiclass"):
        surface = shapes.simplex_surface(name, resolution=cache.SIMPLEX_RESOLUTION)
        title = f"{losses.get(name).title} over the simplex (K = 3)"
        assert len(figures.simplex_figure(surface=surface, title=title).to_json()) <= CHART_BYTES, name


def test_charts_draw_the_adaptive_curves_at_float32():
    at = _page({"task": "binary", "losses": "hinge"})
    trace = _figures(at)[0]["data"][0]
    assert trace["x"]["dtype"] == trace["y"]["dtype"] == "f4"  # base64 float32, not decimal text
    assert "customdata" not in trace  # binary curves have no p_y / logit margin hover
    multiclass = _trace(_figures(_page())[0], "Cross-entropy")
    assert multiclass["customdata"]["dtype"] == "f4" and "shape" not in multiclass["customdata"]  # 1 column


# ------------------------------------------------------------------------------------- page helpers (ui)


def test_offer_keeps_a_choice_per_task_under_one_url_name():
    field = Field("sweep.loss", "Loss", "select", None)
    offered = view_notes.offer(field, ["focal", "comp_sum"], "comp_sum", "multiclass")
    assert (offered.key, offered.url_name, offered.default) == (
        "sweep.loss.multiclass",
        "sweep.loss",
        "comp_sum",
    )
    assert offered.options == ("focal", "comp_sum")
    assert view_notes.offer(field, ["a", "b"], "missing").default == "a"  # the preferred one is not offered
    assert view_notes.offer(field, ["a"]).key == "sweep.loss"


def test_formula_card_and_properties_table_render_alone():
    def script():
        from lossviz import shapes
        from lossviz.ui import shapes as view

        view.formula_style()
        view.formula_card("comp_sum")
        rows = {"Logistic": shapes.loss_properties("logistic"), "Hinge": shapes.loss_properties("hinge")}
        view.properties_table(rows, "loss", task="binary", derivative="dL/dm")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert r"\begin{gathered}" in at.latex[0].value  # broken into lines
    assert "comp_sum" in at.markdown[1].value and "Paper:" in at.caption[0].value
    table = at.table[0].value
    assert list(table.index) == ["Logistic", "Hinge"] and "calibrated" in table.columns
    assert list(table["convex"]) == ["✓", "✓"]
    assert "Convexity checked on m in [-4, 4]" in at.caption[1].value
    assert "**calibrated**: Binary margin losses" in at.caption[1].value  # what each check means, below it
