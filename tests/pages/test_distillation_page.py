"""The Distillation page under AppTest: the teacher and every student drawn, metrics, reliability, the
temperature sweep, one view built at a time, controls that change the view and the URL, presets, bad input
and the byte budget."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lossviz.presets import DISTILLATION_PRESETS
from tests.pages.views import open_view, tab_labels

PAGE = Path(__file__).resolve().parents[2] / "pages" / "distillation.py"
TIMEOUT = 240
VIEWS = ("boundaries", "calibration", "targets", "temperature")  # the page's tabs
SETTINGS = {
    "n": "160", "epochs": "20", "width": "8", "depth": "1", "teacher_width": "32", "teacher_depth": "2"
}  # fmt: skip
TINY = {**SETTINGS, "trained": "1"}  # a shared link of a trained page: it trains
CHART_BUDGET, LOAD_BUDGET = 150 * 1024, 500 * 1024  # as tests/pages/test_byte_budgets.py


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "distillation", view)


_tabs = tab_labels


def _titles(at: AppTest, index: int) -> list[str]:
    spec = json.loads(at.get("plotly_chart")[index].proto.spec)
    return [a["text"] for a in spec["layout"]["annotations"] if "test acc" in a["text"] or "T =" in a["text"]]


def test_the_teacher_the_baseline_and_every_distillation_loss_are_shown() -> None:
    at = _page(TINY)
    assert not at.exception and not at.error
    assert at.multiselect(key="distillation.losses.multiclass").value == ["kd", "forward_kl", "reverse_kl"]
    assert _tabs(at) == ["Decision boundaries", "Calibration", "Soft targets", "Temperature sweep"]
    assert len(at.get("plotly_chart")) == 1  # only the open view is built: the boundaries
    titles = _titles(at, 0)
    assert [t.split("<br>")[0] for t in titles] == [
        "Teacher · MLP 2×32",
        "Labels alone · cross-entropy",
        "Knowledge distillation (KD) · T=4, alpha=0.9",
        "Forward KL (teacher ‖ student) · T=1",
        "Reverse KL (student ‖ teacher) · T=1",
    ]
    assert all("test acc" in t and "ECE" in t for t in titles)
    table = at.table[0].value
    assert list(table["loss"])[:2] == ["Teacher · MLP 2×32", "Labels alone · cross-entropy"]
    assert {"test accuracy", "ECE", "NLL"} <= set(table.columns) and len(table) == 5
    assert ((table["ECE"] >= 0) & (table["ECE"] <= 1)).all()
    (reliability,) = _open(at, "calibration").get("plotly_chart")
    assert not at.exception and not at.table
    assert "Reliability" in json.loads(reliability.proto.spec)["layout"]["title"]["text"]
    assert "On the clean test set" in " ".join(c.value for c in at.caption)
    # what the temperature does: the teacher's targets, then a KD student, at T = 1, 4, 16
    assert len(_open(at, "targets").get("plotly_chart")) == 1
    assert [t.split(" at ")[-1] for t in _titles(at, 0)] == ["T = 1", "T = 4", "T = 16"]
    assert len(_open(at, "temperature").get("plotly_chart")) == 2  # the students' maps, then the curve over T
    assert [t.split("<br>")[0] for t in _titles(at, 0)] == [f"KD at T = {t}, α = 0.9" for t in (1, 4, 16)]
    curve = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert [a["text"] for a in curve["layout"]["annotations"]][:2] == ["Test accuracy", "ECE (test)"]


def test_teacher_size_and_kd_alpha_change_the_view_and_the_url() -> None:
    at = _page({**TINY, "losses": "kd"})
    assert len(_titles(at, 0)) == 3  # teacher, labels alone, KD
    at.select_slider(key="distillation.teacher_width").set_value(16).run()
    assert not at.exception and not at.error
    assert _titles(at, 0)[0].startswith("Teacher · MLP 2×16")
    assert at.query_params["teacher_width"] == "16"
    at.slider(key="distillation.kd.alpha").set_value(0.5).run()
    assert not at.exception
    assert _titles(at, 0)[2].startswith("Knowledge distillation (KD) · T=4, alpha=0.5")
    assert all("α = 0.5" in t for t in _titles(_open(at, "temperature"), 0))  # the sweep follows KD's alpha
    assert at.query_params["kd.alpha"] == "0.5"


def test_the_view_controls_rerun_their_figures() -> None:
    at = _open(_page({**TINY, "losses": "kd"}), "calibration")
    before = at.get("plotly_chart")[0].proto.spec
    at.toggle(key="distillation.overlay").set_value(True).run()
    at.slider(key="distillation.bins").set_value(8).run()
    assert not at.exception
    assert at.get("plotly_chart")[0].proto.spec != before
    assert at.query_params["overlay"] == "1" and at.query_params["bins"] == "8"
    points = len(json.loads(_open(at, "boundaries").get("plotly_chart")[0].proto.spec)["data"])
    at.toggle(key="distillation.points").set_value(False).run()
    assert len(json.loads(at.get("plotly_chart")[0].proto.spec)["data"]) < points


def test_the_page_waits_for_train_showing_where_the_students_start() -> None:
    at = _page(SETTINGS)
    assert not at.exception and not at.error and not at.table and not at.tabs  # nothing trained yet
    assert any("Press **Train**" in i.value for i in at.info)
    (start,) = at.get("plotly_chart")  # the shared initial weights' map over the data, one panel
    assert "epoch 0" in json.loads(start.proto.spec)["layout"]["annotations"][0]["text"]
    at.slider(key="distillation.kd.alpha").set_value(0.5).run()  # a step redraws the preview, trains nothing
    assert not at.tabs and "trained" not in at.query_params
    at.button(key="distillation.train").click().run()
    assert not at.exception and not at.error and at.query_params["trained"] == "1"
    assert _tabs(at)[0] == "Decision boundaries" and len(at.table[0].value) == 5


def test_a_preset_loads_its_data_student_teacher_and_losses() -> None:
    at = _page({**SETTINGS, "epochs": "5"})  # not trained yet: the preset trains
    preset = DISTILLATION_PRESETS["circles"]
    button = next(b for b in at.button if b.key == "distillation.preset.circles")
    assert button.help == preset.claim
    button.click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="distillation.dataset").value == "circles"
    assert at.select_slider(key="distillation.width").value == 8
    assert at.select_slider(key="distillation.teacher_width").value == 128
    assert at.slider(key="distillation.teacher_depth").value == 3
    assert at.multiselect(key="distillation.losses.multiclass").value == ["kd"]
    assert _titles(at, 0)[0].startswith("Teacher · MLP 3×128") and at.query_params["trained"] == "1"


def test_regression_data_gets_a_message() -> None:
    at = _page({**TINY, "dataset": "sine"})
    assert not at.exception
    assert any("classification dataset" in i.value for i in at.info)


def test_garbage_in_the_url_warns() -> None:
    at = _page({**TINY, "losses": "kd", "teacher_width": "huge"})
    assert not at.exception
    assert any("teacher_width=huge" in w.value for w in at.warning)
    assert at.select_slider(key="distillation.teacher_width").value == 128


def test_a_view_url_opens_that_view_with_only_its_charts() -> None:
    at = _page({**TINY, "losses": "kd", "view": "temperature"})
    assert not at.exception and not at.error and not at.warning
    assert at.query_params["view"] == "temperature"
    assert len(at.get("plotly_chart")) == 2 and not at.table  # the sweep's maps and curve, nothing else
    assert [t.split("<br>")[0] for t in _titles(at, 0)] == [f"KD at T = {t}, α = 0.9" for t in (1, 4, 16)]
    at.slider(key="distillation.kd.alpha").set_value(0.5).run()  # a sidebar step keeps the view open
    assert not at.exception and at.query_params["view"] == "temperature"
    assert all("α = 0.5" in t for t in _titles(at, 0))
    _open(at, "boundaries")
    assert "view" not in at.query_params and len(at.get("plotly_chart")) == 1  # the default leaves the URL
    shared = _page({**TINY, "losses": "kd", "view": "targets", "bins": "20", "points": "0"})  # closed views'
    assert not shared.warning and (shared.query_params["bins"], shared.query_params["points"]) == ("20", "0")
    assert _open(shared, "calibration").slider(key="distillation.bins").value == 20  # read when it opens
    assert (
        _page({**TINY, "losses": "kd", "view": "x"})
        .warning[0]
        .value.startswith("Ignored URL parameter `view=x`")
    )


def test_a_full_load_stays_within_the_byte_budget() -> None:
    at = _page({"n": "400", "epochs": "5", "dataset": "spirals", "K": "4", "trained": "1"})
    assert not at.exception
    sizes = {view: [len(c.proto.spec) for c in _open(at, view).get("plotly_chart")] for view in VIEWS}
    assert [len(s) for s in sizes.values()] == [1, 1, 1, 2]  # every view built, one at a time
    every = [s for view in sizes.values() for s in view]
    assert max(every) <= CHART_BUDGET and sum(every) <= LOAD_BUDGET, {
        v: [f"{s / 1024:.0f} KB" for s in sizes[v]] for v in sizes
    }


# ------------------------------------------- the other pages that list every multiclass loss support these


def test_train_and_compare_trains_the_distillation_losses_from_the_default_teacher() -> None:
    from lossviz import experiment as ex
    from lossviz.ui import runs

    page = PAGE.parent / "train_compare.py"
    at = AppTest.from_file(str(page), default_timeout=TIMEOUT)
    tiny = {k: v for k, v in TINY.items() if not k.startswith("teacher")}  # not that page's fields
    at.query_params.update({**tiny, "epochs": "60", "trained": "1", "losses": "cross_entropy,kd,reverse_kl"})
    at.run()
    assert not at.exception and not at.error
    result = at.session_state[runs.SHOWN]
    assert result.names == ["cross_entropy", "kd", "reverse_kl"]
    assert result.experiment.teacher is None  # Train & compare has no teacher controls: the default one
    teacher = ex.teacher_run(result.experiment, device="cpu")
    assert teacher.experiment.model == ex.DEFAULT_TEACHER  # trained by experiment.run, then kept
    assert all(result.histories[n].final["train_acc"] > 0.75 for n in result.names)


def test_loss_shapes_draws_them_against_a_uniform_teacher_and_says_so() -> None:
    at = AppTest.from_file(str(PAGE.parent / "loss_shapes.py"), default_timeout=TIMEOUT)
    at.query_params.update({"losses": "label_smoothing,kd,forward_kl,reverse_kl"})
    at.run()
    assert not at.exception and not at.error
    names = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert "Knowledge distillation (KD)" in names and "Reverse KL (student ‖ teacher)" in names
    notes = " ".join(c.value for c in at.caption)
    assert notes.count("the teacher is uniform") >= 1 and "label smoothing" in notes
