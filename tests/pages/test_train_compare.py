"""The Train & Compare page under AppTest: tiny training runs, presets, divergence, bad CSVs, URL state, and
settings that survive a page switch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz import losses
from lossviz.presets import PRESETS
from lossviz.ui import runs
from tests.pages.views import open_view

PAGE = Path(__file__).resolve().parents[2] / "pages" / "train_compare.py"
TIMEOUT = 180  # generous: the suite shares two cores; every configuration below trains in about a second
# a tiny configuration: 60 points, 10 epochs, a one-layer MLP of width 8
TINY = {"n": "60", "epochs": "10", "width": "8", "depth": "1", "losses": "cross_entropy,gce",
        "margin_losses": "logistic"}  # fmt: skip


def _page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at.run()


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "train", view)


def _texts(elements) -> str:
    return " | ".join(e.value for e in elements)


def _result(at: AppTest) -> runs.TrainResult:
    return at.session_state[runs.SHOWN]


def test_page_runs_and_invites_to_train():
    at = _page()
    assert not at.exception
    assert at.title[0].value == "Train & compare"
    assert "Press **Train**" in _texts(at.info)
    # nothing is trained before a click: one chart, the boundary every default loss starts from (one head)
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    (title,) = [a["text"] for a in spec["layout"]["annotations"]]
    assert "epoch 0 · the same initial weights" in title
    assert all(losses.get(n).title in title for n in ("cross_entropy", "gce", "apl_nce_rce"))
    assert runs.SHOWN not in at.session_state


def test_the_initial_boundaries_are_those_of_the_initial_weights():
    """The untrained panel of a loss is the decision map of experiment.initial_model, computed directly."""
    from lossviz import evaluate
    from lossviz import experiment as ex

    experiment = ex.Experiment(
        ex.DataSpec(n=60), ex.ModelSpec(width=8, depth=1), ex.OptimSpec(epochs=10), (ex.LossChoice("gce"),)
    )
    data = ex.dataset(experiment.data)
    task = losses.get("gce").task
    expected = evaluate.decision_map(ex.initial_model(experiment, "gce", data), task, data, None)
    got = runs.initial_map(experiment.base(), "gce")
    np.testing.assert_allclose(got.proba, expected.proba, atol=1e-6)
    trained = ex.run(experiment, "gce", data=data).model  # and it is not the trained model's map
    after = evaluate.decision_map(trained, task, data, None)
    assert np.abs(after.proba - got.proba).max() > 1e-3


def test_train_tiny_config_shows_figures_metrics_and_histograms():
    at = _page(TINY)
    at.button(key="train.train").click().run()
    assert not at.exception and not at.error
    result = _result(at)
    assert result.names == ["cross_entropy", "gce", "logistic"]
    assert [tab.label for tab in at.tabs] == [
        "Decision boundaries",
        "Training curves",
        "Per-sample gradient weight",
    ]
    assert len(at.get("plotly_chart")) == 1  # only the open view is built: the boundaries
    assert next(iter(at.table[0].value["loss"])) == "Cross-entropy"  # with the metrics under them
    assert at.query_params["trained"] == "1"  # a shared link trains and shows the same view
    (curves,) = _figures(_open(at, "curves"))
    assert "Cross-entropy" in {t.get("name") for t in curves["data"]}
    (weights,) = _figures(_open(at, "weights"))
    assert weights["data"] and at.query_params["view"] == "weights"
    assert (
        _page(dict(at.query_params)).get("plotly_chart")[0].proto.spec == at.get("plotly_chart")[0].proto.spec
    )
    # identical initial weights for the two multiclass losses
    a, b = (result.histories[n].snapshots[0] for n in ("cross_entropy", "gce"))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_the_epoch_slider_and_replay_redraw_one_frame_at_a_time():
    at = _page(TINY)
    at.button(key="train.train").click().run()
    last = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "frames" not in last or not last["frames"]  # one frame per message, not the whole animation
    at.select_slider(key="train.epoch").set_value("epoch 0").run()
    assert not at.exception
    first = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert first["data"][0]["z"] != last["data"][0]["z"]  # the initial weights draw another boundary
    assert at.query_params["epoch"] == "epoch 0"
    at.button(key="train.replay").click().run()
    assert not at.exception and at.get("plotly_chart")


def test_points_and_loss_axis_controls_rerun_their_own_views():
    at = _page(TINY)
    at.button(key="train.train").click().run()
    at.toggle(key="train.points").set_value(False).run()
    boundaries = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not [t for t in boundaries["data"] if t["type"] == "scatter"]  # the maps without the points
    _open(at, "curves").selectbox(key="train.loss_scale").set_value("symlog").run()
    assert not at.exception
    assert at.query_params["loss_scale"] == "symlog" and at.query_params["points"] == "0"


def test_a_shared_link_keeps_the_settings_of_views_drawn_after_a_fragment():
    """The boundary view is a fragment drawn mid-page: the URL is read in full before it is written."""
    at = _page({**TINY, "trained": "1", "loss_scale": "symlog", "points": "0", "view": "curves"})
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="train.loss_scale").value == "symlog"
    assert at.query_params["loss_scale"] == "symlog" and at.query_params["points"] == "0"


def test_training_is_drawn_live_with_each_snapshot():
    from lossviz.experiment import DataSpec, Experiment, LossChoice, ModelSpec, OptimSpec

    optim = OptimSpec(epochs=13, snapshots=5, seed=7)
    experiment = Experiment(
        DataSpec(n=60), ModelSpec(width=8, depth=1), optim, (LossChoice("focal"), LossChoice("gce"))
    )
    seen: list[tuple[str, int]] = []

    class Bar:
        def progress(self, *args, **kwargs):
            pass

    result = runs.train_all(experiment, Bar(), lambda name, epoch, params: seen.append((name, epoch)))
    assert result.names == ["focal", "gce"]
    assert [n for n, _ in seen][:1] == ["focal"] and (
        "gce",
        13,
    ) in seen  # the newest snapshot reaches the view
    assert all(e in result.histories[n].snapshot_epochs for n, e in seen)


def test_changing_a_setting_after_training_retrains_so_the_view_matches_the_controls():
    at = _page(TINY)
    at.button(key="train.train").click().run()
    at.select_slider(key="train.epochs").set_value(20).run()
    assert not at.exception
    assert len(_result(at).histories["cross_entropy"].epochs) == 21
    assert "Settings changed" not in _texts(at.info)


def test_settings_survive_leaving_the_page_and_coming_back():
    """Streamlit drops a widget's key when its page is not drawn; the canonical value lives elsewhere."""
    at = AppTest.from_file(str(PAGE.parents[1] / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/train_compare.py").run()
    at.select_slider(key="train.epochs").set_value(30).run()
    at.multiselect(key="train.losses.multiclass").set_value(["focal"]).run()
    at.switch_page("pages/loss_shapes.py").run()
    assert "train.epochs" not in at.session_state  # the widget's own state is gone, as in the browser
    at.switch_page("pages/train_compare.py").run()
    assert not at.exception
    assert at.select_slider(key="train.epochs").value == 30
    assert at.multiselect(key="train.losses.multiclass").value == ["focal"]


def test_regression_preset_fills_the_controls_and_trains():
    at = _page()
    at.button(key="train.preset.robust_regression").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="train.dataset").value == "sine"
    assert _result(at).experiment == PRESETS["robust_regression"].experiment  # the controls hold it exactly
    assert next(tab.label for tab in at.tabs) == "Fitted curves" and len(at.get("plotly_chart")) == 1
    r2 = list(at.table[0].value["test R²"])  # squared, Huber, Cauchy: the preset's order
    assert r2[2] > r2[0]


@pytest.mark.parametrize("key", [k for k in PRESETS if k != "robust_regression"])
def test_every_preset_round_trips_through_the_controls(key, monkeypatch):
    monkeypatch.setattr(runs, "train_all", _no_training)  # only the controls matter here
    at = _page()
    at.button(key=f"train.preset.{key}").click().run()
    assert not at.exception and not at.error
    assert _result(at).experiment == PRESETS[key].experiment


def _no_training(experiment, bar, live=None):
    return runs.TrainResult(experiment=experiment, histories={}, errors={})


def test_absurd_learning_rate_warns_instead_of_raising():
    query = {"dataset": "line", "n": "60", "model": "linear", "optimizer": "sgd", "lr": "1000", "epochs": "5",
             "losses": "squared", "trained": "1"}  # fmt: skip
    at = _page(query)
    assert not at.exception
    assert any("diverged: the training loss became" in w.value for w in at.warning), _texts(at.warning)
    assert at.get("plotly_chart")  # the views still show the last finite weights


def _csv_page(content: bytes, query: dict | None = None) -> AppTest:
    at = _page({"dataset": "csv", **(query or {})})
    at.file_uploader(key="train.upload").upload("data.csv", content, "text/csv")
    return at.run()


def _csv(
    rows: int = 40, nan_rows: int = 0, classes: str = "ab", extra: str = "", newline: str = "\n"
) -> bytes:
    rng = np.random.default_rng(0)
    lines = ["f1,f2,f3" + (",note" if extra else "") + ",label"]
    for i in range(rows):
        values = rng.normal(size=3)
        cells = ["" if i < nan_rows and j == 0 else f"{v:.3f}" for j, v in enumerate(values)]
        lines.append(",".join(cells + ([extra] if extra else []) + [classes[i % len(classes)]]))
    return newline.join(lines).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_csv(extra="red"), "column 'note' is not numeric"),
        (_csv(classes="a"), "single class"),
        (b"a,b\n" + b"1,0\n" * 5001, "data rows; the limit is 5000"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), "is it a CSV"),
        (bytes(range(256)) * 8, "is it a CSV"),
    ],
    ids=["non-numeric", "single-class", "too-many-rows", "random-bytes", "all-bytes"],
)
def test_bad_csv_shows_a_message_not_a_traceback(content, message):
    at = _csv_page(content)
    assert not at.exception
    assert any(message in e.value for e in at.error), _texts(at.error)
    assert not at.get("plotly_chart")


def test_csv_with_old_mac_line_endings_loads_and_trains():
    at = _csv_page(_csv(rows=60, newline="\r"), {"epochs": "5", "width": "8", "losses": "cross_entropy",
                                               "trained": "1"})  # fmt: skip
    assert not at.exception and not at.error
    assert at.selectbox(key="train.csv_target").value == "label"
    assert "42 training" in _texts(at.sidebar.caption)


def test_csv_with_missing_values_drops_rows_and_trains_in_full_dimension():
    at = _csv_page(_csv(rows=60, nan_rows=4), {"epochs": "5", "width": "8", "losses": "cross_entropy"})
    assert not at.exception and not at.error
    assert "dropped 4 rows with missing values" in _texts(at.sidebar.caption).lower()
    at.button(key="train.train").click().run()
    assert not at.exception and not at.error
    assert "principal components" in _texts(at.caption)  # 3 features: the map is drawn on the PCA plane
    assert _figures(at)[0]["layout"]["xaxis"]["title"]["text"].startswith("PC1")


def test_url_restores_the_view_and_ignores_garbage():
    at = _page(
        {"dataset": "circles", "epochs": "20", "losses": "cross_entropy,focal", "lr": "abc", "zz": "1"}
    )
    assert not at.exception
    assert at.selectbox(key="train.dataset").value == "circles"
    assert at.select_slider(key="train.epochs").value == 20
    assert at.multiselect(key="train.losses.multiclass").value == ["cross_entropy", "focal"]
    assert any("lr=abc" in w.value for w in at.warning)
    assert any("unknown URL parameters: zz" in w.value for w in at.warning)
    assert at.select_slider(key="train.lr").value == 0.01


def test_csv_with_a_real_valued_target_trains_regression_losses():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=80)
    rows = "\n".join(",".join(f"{v:.4f}" for v in (*x, t)) for x, t in zip(X, y, strict=True))
    at = _csv_page(f"a,b,c,target\n{rows}".encode(), {"epochs": "100", "lr": "0.1", "model": "linear"})
    assert not at.exception and not at.error
    assert "regression target" in _texts(at.sidebar.caption)
    assert at.multiselect(key="train.losses.regression").value == ["squared", "huber", "cauchy"]
    at.button(key="train.train").click().run()
    assert not at.exception and not at.error
    assert _figures(at)[0]["layout"]["xaxis"]["title"]["text"] == "true target (test)"
    assert at.table[0].value["test R²"].iloc[0] > 0.5  # a linear target, fitted by a linear model
