"""The Train & Compare page under AppTest: tiny training runs, presets, divergence, bad CSVs, URL state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz.ui import train as ui

PAGE = Path(__file__).resolve().parents[2] / "pages" / "train_compare.py"
TIMEOUT = 120  # generous: the suite shares two cores; every configuration below trains in about a second

# a tiny configuration: 60 points, 5 epochs, a one-layer MLP of width 8; a multiclass and a binary loss
TINY = {
    "train.dataset": "moons",
    "train.n": 60,
    "train.epochs": 10,
    "train.width": 8,
    "train.depth": 1,
    "train.losses.multiclass": ["cross_entropy", "gce"],
    "train.losses.binary": ["logistic"],
}


def _page(state: dict | None = None, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.query_params.update(query or {})
    return at.run()


def _figures(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by their element key suffix (boundaries, fit, curves, weights, ...)."""
    found = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        found[chart.proto.id] = spec
    return found


def _texts(elements) -> str:
    return " | ".join(e.value for e in elements)


def _result(at: AppTest) -> ui.TrainResult:
    return at.session_state[ui.LAST_RESULT]


def test_page_runs_and_invites_to_train():
    at = _page()
    assert not at.exception
    assert at.title[0].value == "Train & compare"
    assert not at.button(key="train.button").disabled
    assert "Press **Train**" in _texts(at.info)
    assert not at.get("plotly_chart")  # nothing is trained before a click
    assert (
        at.query_params["dataset"] == "moons" and at.query_params["losses"] == "cross_entropy,gce,apl_nce_rce"
    )


def test_train_tiny_config_shows_figures_metrics_and_histograms():
    at = _page(TINY)
    at.select_slider(key="train.epochs").set_value(5).run()  # a widget changed through the UI
    assert at.query_params["epochs"] == "5"
    at.button(key="train.button").click().run()
    assert not at.exception and not at.error and not at.warning
    result = _result(at)
    assert result.names == ["cross_entropy", "gce", "logistic"]
    histories = result.histories
    assert all(len(h.epochs) == 6 for h in histories.values())  # epochs 0..5
    # identical initialisation: the two multiclass runs start from the same weights
    first, second = histories["cross_entropy"].snapshots[0], histories["gce"].snapshots[0]
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    specs = list(_figures(at).values())
    assert len(specs) == 3  # boundaries, training curves, gradient weights
    boundaries = specs[0]
    assert len(boundaries["frames"]) == len(histories["gce"].snapshot_epochs)
    titles = [a["text"] for a in boundaries["layout"]["annotations"]]
    assert titles[0].startswith("Cross-entropy") and titles[2].startswith("Logistic")
    # metrics table: one row per loss, accuracy recomputed from the final weights matches fit's own record
    table = at.dataframe[0].value
    assert list(table["loss"]) == [ui.run_label(n, dict(result.settings.losses)[n]) for n in result.names]
    recorded = [histories[n].test_acc[-1] for n in result.names]
    np.testing.assert_allclose(table["test accuracy"].to_numpy(), recorded, atol=1e-6)
    assert table[["NLL", "ECE", "Brier", "macro F1"]].notna().all().all()
    weights = specs[2]
    assert sum(t["type"] == "bar" for t in weights["data"]) == 3  # no noisy labels: one clean group per loss


def test_changed_settings_keep_the_results_and_say_so():
    at = _page({**TINY, "train.epochs": 5})
    at.button(key="train.button").click().run()
    trained = _result(at).settings
    at.slider(key="train.label_noise").set_value(0.2).run()
    assert not at.exception
    assert "Settings changed" in _texts(at.info)
    assert _result(at).settings == trained  # nothing retrained, nothing discarded
    assert len(at.get("plotly_chart")) == 3


def test_regression_preset_fills_widgets_and_trains():
    at = _page()
    at.button(key="train.preset.robust_regression").click().run()
    assert not at.exception and not at.error
    preset = ui.preset_settings("robust_regression")
    assert at.selectbox(key="train.dataset").value == "sine"
    assert at.selectbox(key="train.model").value == "mlp"
    assert at.radio(key="train.activation").value == "tanh"
    assert at.multiselect(key="train.losses.regression").value == ["squared", "huber", "cauchy"]
    assert _result(at).settings == preset
    assert "Settings changed" not in _texts(at.info)
    fit = next(iter(_figures(at).values()))
    assert any(t["name"].startswith("outliers") for t in fit["data"])
    # the claim of the preset: the bounded-influence loss fits the clean line better than the squared loss
    table = at.dataframe[0].value.set_index("loss")
    cauchy, squared = ui.run_label("cauchy", {"c": 1.0}), ui.run_label("squared")
    assert table.loc[cauchy, "test MSE"] < table.loc[squared, "test MSE"]


@pytest.mark.parametrize("key", list(ui.presets()))
def test_preset_settings_rebuild_the_library_preset(key):
    from lossviz.data import make_dataset
    from lossviz.presets import PRESETS, build_model

    preset, settings = PRESETS[key], ui.preset_settings(key)
    expected = make_dataset(seed=0, **preset.dataset)
    data = ui.dataset(settings.data)
    np.testing.assert_array_equal(data.X_train, expected.X_train)
    np.testing.assert_array_equal(data.y_train, expected.y_train)
    for (name, params), bound in zip(settings.losses, preset.bound_losses(), strict=True):
        assert name == bound.name and dict(params) == pytest.approx(bound.params)
        mine = ui.initial_model(settings, name).state_dict()
        theirs = build_model(preset, expected, bound, seed=0).state_dict()
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
    for field in ("optimizer", "lr", "epochs", "batch_size", "weight_decay"):
        if field in preset.training:
            assert getattr(settings, field) == preset.training[field]


@pytest.mark.parametrize("key", list(ui.presets()))
def test_every_preset_round_trips_through_the_widgets(key):
    preset = ui.preset_settings(key)
    at = _page(ui.widget_values(preset))
    assert not at.exception and not at.error
    assert at.session_state[ui.CURRENT] == preset  # the widgets can show every preset value exactly


def test_absurd_learning_rate_warns_instead_of_raising():
    state = {
        "train.dataset": "line", "train.n": 60, "train.model": "linear", "train.optimizer": "sgd",
        "train.lr": 1000.0, "train.epochs": 5, "train.losses.regression": ["squared"],
    }  # fmt: skip
    at = _page(state)
    at.button(key="train.button").click().run()
    assert not at.exception
    assert any("diverged" in w.value for w in at.warning)
    assert _result(at).histories["squared"].diverged
    assert at.get("plotly_chart")  # the views still show the last finite weights


def _csv_page(content: bytes, state: dict | None = None) -> AppTest:
    at = _page({"train.dataset": "csv", **(state or {})})
    at.file_uploader(key="train.upload").upload("data.csv", content, "text/csv")
    return at.run()


def _csv(rows: int = 40, nan_rows: int = 0, classes: str = "ab", extra: str = "") -> bytes:
    rng = np.random.default_rng(0)
    lines = ["f1,f2,f3" + (",note" if extra else "") + ",label"]
    for i in range(rows):
        values = rng.normal(size=3)
        cells = ["" if i < nan_rows and j == 0 else f"{v:.3f}" for j, v in enumerate(values)]
        lines.append(",".join(cells + ([extra] if extra else []) + [classes[i % len(classes)]]))
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_csv(extra="red"), "column 'note' is not numeric"),
        (_csv(classes="a"), "single class"),
        (b"a,b\n" + b"1,0\n" * 5001, "data rows; the limit is 5000"),
        (("," * 60 + "\n").encode().replace(b",", b"c,", 60), "columns; the limit is 50"),
        (b"x,y\n" + b"1.0,0\n" * 1_000_000, "larger than 5.0 MB"),
    ],
    ids=["non-numeric", "single-class", "too-many-rows", "too-many-columns", "oversize"],
)
def test_bad_csv_shows_the_library_message(content, message):
    at = _csv_page(content)
    assert not at.exception
    assert any(message in e.value for e in at.error), _texts(at.error)
    assert not at.get("plotly_chart") and "Fix the data settings" in _texts(at.info)


def test_csv_with_missing_values_drops_rows_and_trains_in_full_dimension():
    at = _csv_page(
        _csv(rows=60, nan_rows=4),
        {"train.epochs": 5, "train.width": 8, "train.losses.multiclass": ["cross_entropy"]},
    )
    assert not at.exception and not at.error
    assert at.selectbox(key="train.csv.target").value == "label"  # the last column by default
    assert "dropped 4 rows with missing values" in _texts(at.sidebar.caption).lower()
    at.button(key="train.button").click().run()
    assert not at.exception and not at.error
    assert "principal components" in _texts(at.caption)  # 3 features: the map is drawn on the PCA plane
    boundaries = next(iter(_figures(at).values()))
    assert boundaries["layout"]["xaxis"]["title"]["text"].startswith("PC1")


def test_url_restores_the_view_and_ignores_garbage():
    at = _page(query={"dataset": "circles", "epochs": "20", "losses": "cross_entropy,focal", "lr": "abc"})
    assert not at.exception
    assert at.selectbox(key="train.dataset").value == "circles"
    assert at.select_slider(key="train.epochs").value == 20
    assert at.multiselect(key="train.losses.multiclass").value == ["cross_entropy", "focal"]
    assert any("lr=abc" in w.value for w in at.warning)
    assert at.select_slider(key="train.lr").value == 0.01


# ------------------------------------------------------------------ the cached helpers behind the page

TINY_SETTINGS = ui.TrainSettings(
    data=ui.DataSettings("blobs", n=60, noise=1.0, n_classes=3),
    width=8,
    depth=1,
    epochs=5,
    losses=(("cross_entropy", ()), ("focal", (("gamma", 2.0),))),
)


def test_snapshot_surfaces_hold_the_model_probabilities_at_their_grid_points():
    from lossviz.train import predict_proba

    history = ui.trained_runs(TINY_SETTINGS)["focal"]
    surfaces = ui.snapshot_surfaces(TINY_SETTINGS, "focal", (("gamma", 2.0),))
    assert len(surfaces) == len(history.snapshots)
    last = surfaces[-1]
    model = ui.initial_model(TINY_SETTINGS, "focal")
    i, j = 5, 40  # z[i, j] is the value at (xs[j], ys[i])
    expected = predict_proba(
        model, np.array([[last.xs[j], last.ys[i]]], np.float32), "multiclass", history.snapshots[-1]
    )
    np.testing.assert_allclose(last.z[i, j], expected[0], atol=1e-6)


def test_trained_model_reproduces_the_final_predictions_for_other_pages():
    data = ui.dataset(TINY_SETTINGS.data)
    model = ui.trained_model(TINY_SETTINGS, "cross_entropy")
    import torch

    with torch.no_grad():
        probs = torch.softmax(model(torch.as_tensor(data.X_test)), dim=1).numpy()
    np.testing.assert_allclose(probs, ui.final_predictions(TINY_SETTINGS, "cross_entropy", ()), atol=1e-6)
    # every loss of one Train press starts from the same weights
    a = ui.initial_model(TINY_SETTINGS, "cross_entropy").state_dict()
    b = ui.initial_model(TINY_SETTINGS, "focal").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_frames_by_epoch_holds_a_stopped_run_at_its_last_snapshot():
    epochs, frames = ui.frames_by_epoch(
        [np.array([0, 5, 10]), np.array([0, 5])], [["a0", "a5", "a10"], ["b0", "b5"]]
    )
    assert epochs == [0, 5, 10]
    assert frames == [["a0", "b0"], ["a5", "b5"], ["a10", "b5"]]


def test_csv_with_a_real_valued_target_trains_regression_losses():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=80)
    rows = "\n".join(",".join(f"{v:.4f}" for v in (*x, t)) for x, t in zip(X, y, strict=True))
    at = _csv_page(
        f"a,b,c,target\n{rows}".encode(), {"train.epochs": 100, "train.lr": 0.1, "train.model": "linear"}
    )
    assert not at.exception and not at.error
    assert "regression target" in _texts(at.sidebar.caption)
    assert at.multiselect(key="train.losses.regression").value == ["squared", "huber", "cauchy"]
    assert not [s for s in at.slider if s.key == "train.label_noise"]  # no label noise on a real target
    at.button(key="train.button").click().run()
    assert not at.exception and not at.error
    prediction = next(iter(_figures(at).values()))
    assert prediction["layout"]["xaxis"]["title"]["text"] == "true target (test)"
    assert at.dataframe[0].value["test R²"].iloc[0] > 0.5  # a linear target, fitted by a linear model
