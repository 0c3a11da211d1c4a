"""The Embeddings page under AppTest: the analytic views before training, every view after it (tiny experiment
from the URL), one view built at a time and named in the URL, one frame per epoch step, every control, the
presets, a loss that cannot train, the URL round trip, bad input and the byte budget of the trained views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz import losses
from lossviz.losses.registry import register, unregister
from lossviz.presets import EMBEDDING_PRESETS
from lossviz.ui import runs
from tests.pages.views import open_view, tab_labels

PAGE = Path(__file__).resolve().parents[2] / "pages" / "embeddings.py"
TIMEOUT = 300
TINY = {"n": "120", "epochs": "20", "dataset": "blobs", "K": "3"}
TRAINED = {**TINY, "trained": "1"}
DEFAULTS = ["info_nce", "supcon", "align_uniform"]
ANALYTIC = ["emb.fig.temperature", "emb.fig.plane", "emb.fig.wedges"]
TRAINED_VIEWS = ["emb.fig.sphere", "emb.fig.angles", "emb.fig.path", "emb.fig.cosines"]
# the page's tabs: {view: the charts it builds}
VIEWS = {
    "temperature": ["emb.fig.temperature"],
    "plane": ["emb.fig.plane"],
    "wedges": ["emb.fig.wedges"],
    "spheres": ["emb.fig.sphere", "emb.fig.angles"],
    "path": ["emb.fig.path"],
    "cosines": ["emb.fig.cosines"],
    "retrieval": [],
}
TABS = ["Temperature τ", "(s_n, s_p) plane", "Angular margins"]
TRAINED_TABS = [*TABS, "Trained embeddings", "Alignment & uniformity", "Pair cosines", "Retrieval"]


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _charts(at: AppTest) -> dict[str, dict]:
    """{chart key: its Plotly spec} (keys end with the key given in the page)."""
    found = {}
    for chart in at.get("plotly_chart"):
        key = next((k for k in ANALYTIC + TRAINED_VIEWS if chart.proto.id.endswith(k)), chart.proto.id)
        found[key] = json.loads(chart.proto.spec)
    return found


def _query(at: AppTest) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "embeddings", view)


_tabs = tab_labels


def test_analytic_views_draw_before_training() -> None:
    at = _page(TINY)
    _clean(at)
    assert not at.warning
    assert _tabs(at) == TABS  # no trained views before training
    assert list(_charts(at)) == ["emb.fig.temperature"]  # the default view, and only it
    assert any("Press **Train**" in i.value for i in at.info)
    assert at.multiselect(key="embeddings.losses.embedding").value == DEFAULTS
    temperature = _charts(at)["emb.fig.temperature"]
    names = [t.get("name") for t in temperature["data"] if t.get("mode") == "lines+markers"]
    assert names[0] == "τ = 0.5 (this view's slider)"  # then the two selected losses at their own τ
    assert [n.split(" · ")[0] for n in names[1:]] == ["InfoNCE / NT-Xent", "Supervised contrastive (SupCon)"]
    assert len(temperature["layout"]["annotations"]) >= 3  # one figure of three panels
    assert any("What the temperature τ does" in s.value for s in at.subheader)
    assert any("softmax(s_n/τ)" in c.value for c in at.caption)
    plane = _charts(_open(at, "plane"))
    assert list(plane) == ["emb.fig.plane"] and at.query_params["view"] == "plane"
    assert any("(Sun et al., 2020)" in c.value for c in at.caption)
    assert (
        len([t for t in plane["emb.fig.plane"]["data"] if t["type"] == "contour"]) == 3
    )  # circle, triplet, InfoNCE
    wedges = _charts(_open(at, "wedges"))
    assert list(wedges) == ["emb.fig.wedges"] and any("MadaCos (CFCD)" in c.value for c in at.caption)
    assert _open(at, "spheres").query_params.get("view") is None  # not offered untrained: the first view
    assert list(_charts(at)) == ["emb.fig.temperature"]


def test_after_training_every_view_draws() -> None:
    at = _page(TRAINED)
    _clean(at)
    assert _tabs(at) == TRAINED_TABS
    assert list(_charts(at)) == ["emb.fig.temperature"]  # the default view: training waits for its views
    for view, keys in VIEWS.items():
        assert list(_charts(_open(at, view))) == keys, view
        _clean(at)
    charts = _charts(_open(at, "spheres"))
    sphere = charts["emb.fig.sphere"]
    assert len([t for t in sphere["data"] if t.get("mode") == "markers"]) == 3 * 3  # losses x classes
    assert "frames" not in sphere  # one frame per load, never the whole animation
    assert len([t for t in charts["emb.fig.angles"]["data"] if t.get("mode") == "lines"]) >= 3 * 3
    path = _charts(_open(at, "path"))["emb.fig.path"]
    assert len([t for t in path["data"] if "InfoNCE" in t.get("name", "")]) >= 1
    assert any("Wang & Isola's plane" in c.value for c in at.caption)
    cosines = _charts(_open(at, "cosines"))["emb.fig.cosines"]
    assert [t["name"] for t in cosines["data"]][:2] == ["negative pairs", "positive pairs"]
    assert len(cosines["data"]) == 3 * 2  # per loss: negative and positive pairs
    assert any("Cosines of held-out pairs" in c.value for c in at.caption)
    table = _open(at, "retrieval").table[0].value
    assert list(table["loss"].str.split(" · ").str[0]) == [
        "InfoNCE / NT-Xent", "Supervised contrastive (SupCon)", "Alignment + λ uniformity",
    ]  # fmt: skip
    assert {"recall@1", "recall@5", "mAP@R", "NCM accuracy", "tolerance", "own-class push"} <= set(table)
    assert ((table["recall@1"] >= 0) & (table["recall@1"] <= 1)).all()
    assert table["own-class push"].isna().tolist() == [False, False, True]  # only the InfoNCE family
    assert any("mAP@R: mean average precision" in c.value for c in at.caption)
    assert at.query_params["trained"] == "1" and at.query_params["view"] == "retrieval"


def test_train_button_trains_and_goes_in_the_url() -> None:
    at = _page({**TINY, "losses": "supcon"})
    assert len(_charts(at)) == 1
    at.button(key="embeddings.train").click().run()
    _clean(at)
    assert _tabs(at) == TRAINED_TABS
    assert list(_charts(at)) == ["emb.fig.sphere", "emb.fig.angles"]  # Train opens the trained embeddings
    assert at.query_params["trained"] == "1" and at.query_params["view"] == "spheres"
    _open(at, "temperature")  # the slider's default epoch stays out of the URL on the other views
    assert _query(at) == {k: v for k, v in {**TINY, "losses": "supcon", "trained": "1"}.items() if k != "K"}


def test_the_epoch_slider_redraws_one_frame() -> None:
    at = _page({**TRAINED, "losses": "info_nce,supcon", "view": "spheres"})
    before = _charts(at)
    slider = at.select_slider(key="embeddings.epoch")
    assert slider.value == 20 and slider.options[0] == "0"
    slider.set_value(0).run()
    _clean(at)
    after = _charts(at)
    assert after["emb.fig.sphere"] != before["emb.fig.sphere"]
    assert "frames" not in after["emb.fig.sphere"]
    title = after["emb.fig.sphere"]["layout"]["annotations"][0]["text"]
    assert "epoch 0 ·" in title
    assert after["emb.fig.angles"] != before["emb.fig.angles"]
    assert at.query_params["epoch"] == "0"
    _open(at, "path")  # kept, not drawn, while its view is closed
    assert at.query_params["epoch"] == "0" and not at.warning
    assert _open(at, "spheres").select_slider(key="embeddings.epoch").value == 0


def test_analytic_controls_change_their_views_and_the_url() -> None:
    at = _page(TINY)
    controls = [
        ("temperature", "select_slider", "tau", 0.05, "emb.fig.temperature", "0.05"),
        ("plane", "slider", "plane_margin", 0.4, "emb.fig.plane", "0.4"),
        ("plane", "select_slider", "plane_tau", 0.5, "emb.fig.plane", "0.5"),
        ("wedges", "slider", "wedge_margin", 0.6, "emb.fig.wedges", "0.6"),
        ("wedges", "slider", "wedge_K", 3, "emb.fig.wedges", "3"),
    ]
    for view, kind, name, value, chart, text in controls:
        before = _charts(_open(at, view))[chart]
        getattr(at, kind)(key=f"embeddings.{name}").set_value(value).run()
        _clean(at)
        assert _charts(at)[chart] != before, name
        assert at.query_params[name] == text
    _open(at, "temperature")  # the other views' settings stay in the URL
    assert {k: at.query_params[k] for k in ("tau", "plane_margin", "plane_tau", "wedge_K")} == {
        "tau": "0.05", "plane_margin": "0.4", "plane_tau": "0.5", "wedge_K": "3",
    }  # fmt: skip
    wedges = _charts(_open(at, "wedges"))["emb.fig.wedges"]
    assert at.slider(key="embeddings.wedge_margin").value == 0.6
    assert len([t for t in wedges["data"] if t.get("mode") == "lines+markers"]) == 3 * 3  # K = 3 arrows
    # the third panel is MadaCos's: its margin is set by the batch, not by the slider
    titles = [a["text"] for a in wedges["layout"]["annotations"]]
    assert titles[2].startswith("MadaCos") and "batch's m = " in titles[2] and "m = 0.6" not in titles[2]


def test_embedding_controls_change_the_trained_views_and_round_trip() -> None:
    at = _page({**TRAINED, "losses": "info_nce,supcon", "view": "spheres"})
    at.radio(key="embeddings.dim").set_value(3).run()
    _clean(at)
    assert {t["type"] for t in _charts(at)["emb.fig.sphere"]["data"]} == {"scatter3d"}
    before = _open(at, "retrieval").table[0].value
    at.radio(key="embeddings.positives").set_value("instance").run()
    at.slider(key="embeddings.augment").set_value(0.5).run()
    at.slider(key="embeddings.views").set_value(3).run()
    _clean(at)
    assert not at.table[0].value.equals(before)
    query = _query(_open(at, "spheres"))
    assert {"dim": "3", "positives": "instance", "augment": "0.5", "views": "3"}.items() <= query.items()
    assert "views, positives = instance, augmentation 0.5" in " ".join(c.value for c in at.caption)
    again = _page(query)
    _clean(again)
    assert not again.warning
    assert again.radio(key="embeddings.dim").value == 3
    assert again.radio(key="embeddings.positives").value == "instance"
    assert [c.proto.spec for c in again.get("plotly_chart")] == [c.proto.spec for c in at.get("plotly_chart")]


def test_loss_hyperparameters_come_from_the_registry_sliders() -> None:
    at = _page({**TINY, "losses": "info_nce"})
    at.select_slider(key="embeddings.info_nce.temperature").set_value(0.02).run()
    _clean(at)
    assert at.query_params["info_nce.temperature"] == "0.02"
    names = [t.get("name") for t in _charts(at)["emb.fig.temperature"]["data"]]
    assert "InfoNCE / NT-Xent · temperature=0.02 (selected)" in names


@pytest.mark.parametrize("key", list(EMBEDDING_PRESETS))
def test_every_preset_loads_into_the_controls(key: str, monkeypatch) -> None:
    seen = []

    def no_training(experiment, bar, live=None):
        seen.append(experiment)
        return runs.TrainResult(experiment=experiment, histories={}, errors={})

    monkeypatch.setattr(runs, "train_all", no_training)  # only the controls matter here
    at = _page({})
    at.button(key=f"embeddings.preset.{key}").click().run()
    assert not at.exception
    assert seen[-1] == EMBEDDING_PRESETS[key].experiment
    assert at.query_params["trained"] == "1"


@pytest.fixture
def untrainable():
    def lv_test_embedding_untrainable(embeddings, labels):
        raise ValueError("this loss cannot train")

    register(title="lv_test_embedding_untrainable", latex="", task="embedding", paper="test only")(
        lv_test_embedding_untrainable
    )
    yield "lv_test_embedding_untrainable"
    unregister("lv_test_embedding_untrainable")


def test_a_failing_loss_gets_one_error_and_the_others_are_drawn(untrainable: str) -> None:
    at = _page({**TRAINED, "losses": f"info_nce,{untrainable},supcon", "view": "retrieval"})
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "could not train: this loss cannot train" in errors[0], errors
    assert len(at.table[0].value) == 2
    for view in ("spheres", "path", "cosines"):
        assert list(_charts(_open(at, view))) == VIEWS[view]
        assert len(at.error) == 1  # the same message on every trained view


def test_bad_url_values_warn_and_fall_back() -> None:
    at = _page({**TINY, "dim": "7", "positives": "friends", "tau": "hot", "wedge_K": "99", "colour": "red"})
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for text in ("dim=7", "positives=friends", "tau=hot", "unknown URL parameters: colour"):
        assert text in warnings, warnings
    assert at.radio(key="embeddings.dim").value == 2
    assert at.select_slider(key="embeddings.tau").value == 0.5
    assert list(_charts(at)) == ["emb.fig.temperature"]
    assert at.query_params["wedge_K"] == "99"  # its view is closed: kept as it came, read when it opens
    assert _open(at, "wedges").slider(key="embeddings.wedge_K").value == 4
    assert any("wedge_K=99" in w.value for w in at.warning) and "wedge_K" not in at.query_params


def test_instance_positives_with_one_view_get_a_message() -> None:
    at = _page({**TRAINED, "positives": "instance", "views": "1"})
    assert not at.exception
    assert any("views must be >= 2" in e.value for e in at.error), [e.value for e in at.error]


def test_regression_data_gets_a_message() -> None:
    at = _page({**TINY, "dataset": "sine"})
    assert not at.exception
    assert any("need class labels" in i.value for i in at.info)


def test_view_settings_in_the_url_survive_a_fresh_load() -> None:
    """The fragments read their sliders after the page's other fields, the closed views' settings are kept
    without their widgets: the URL keeps every one of them."""
    query = {
        **TRAINED,
        "losses": "supcon",
        "tau": "0.05",
        "plane_margin": "0.4",
        "wedge_K": "3",
        "epoch": "0",
    }
    at = _page(query)
    _clean(at)
    assert not at.warning, [w.value for w in at.warning]
    assert at.select_slider(key="embeddings.tau").value == 0.05
    assert _query(at) == {k: v for k, v in query.items() if k != "K"}  # K = 3 is the default
    assert _open(at, "plane").slider(key="embeddings.plane_margin").value == 0.4
    assert _open(at, "spheres").select_slider(key="embeddings.epoch").value == 0
    assert _query(at) == {**{k: v for k, v in query.items() if k != "K"}, "view": "spheres"}


def test_only_the_open_view_is_built_and_the_url_names_it() -> None:
    at = _page({**TINY, "view": "wedges", "wedge_K": "3"})
    _clean(at)
    assert not at.warning
    assert list(_charts(at)) == ["emb.fig.wedges"] and not at.table
    assert at.slider(key="embeddings.wedge_K").value == 3
    assert at.query_params["view"] == "wedges"
    trained = _page({**TRAINED, "view": "cosines"})
    _clean(trained)
    assert list(_charts(trained)) == ["emb.fig.cosines"] and not trained.table
    assert trained.query_params["view"] == "cosines"
    untrained = _page({**TINY, "view": "cosines"})  # a trained view without training: the first view
    assert [w.value for w in untrained.warning] == [
        "Ignored URL parameter `view=cosines`: it must be one of ['temperature', 'plane', 'wedges']."
    ]
    assert list(_charts(untrained)) == ["emb.fig.temperature"] and "view" not in untrained.query_params


BIG = {
    "n": "1200", "epochs": "5", "trained": "1", "dataset": "blobs", "K": "10", "dim": "3",
    "losses": "info_nce,supcon,align_uniform,circle,multi_similarity,decoupled_contrastive",
}  # fmt: skip


def test_the_trained_views_stay_within_the_byte_budget() -> None:
    """tests/pages/test_byte_budgets.py loads the default view; here every trained view of its largest run."""
    at = _page(BIG)
    _clean(at)
    for view in ("spheres", "path", "cosines"):
        sizes = [len(chart.proto.spec) for chart in _open(at, view).get("plotly_chart")]
        assert len(sizes) == len(VIEWS[view]), view
        assert max(sizes) <= 150 * 1024 and sum(sizes) <= 500 * 1024, (view, sizes)


@pytest.mark.parametrize("dim", [2, 3])
def test_training_draws_the_embeddings_live_at_each_snapshot(dim: int) -> None:
    from lossviz.experiment import DataSpec, Experiment, LossChoice, ModelSpec, OptimSpec
    from lossviz.ui import embeddings as cached

    experiment = Experiment(
        DataSpec(source="blobs", n=60, n_classes=3, noise=0.5, seed=1),
        ModelSpec(width=8, depth=1, embedding_dim=dim),
        OptimSpec(epochs=12, snapshots=4, seed=3),
        (LossChoice("info_nce"), LossChoice("supcon")),
    )
    drawn = []

    class Placeholder:  # what st.empty() offers the live view
        def plotly_chart(self, figure, **kwargs):
            drawn.append(figure)

    class Bar:
        def progress(self, *args, **kwargs):
            pass

    live = cached.live_spheres(Placeholder(), experiment)
    live.every = 0.0  # draw every snapshot (the page throttles to what the browser can draw)
    result = runs.train_all(experiment, Bar(), live)
    assert result.names == ["info_nce", "supcon"] and drawn
    assert live.every == 0.0 and len(drawn) >= 2  # more than one frame: the points move while training runs
    last = drawn[-1]
    titles = [a.text for a in last.layout.annotations if "training · epoch" in a.text]
    assert [t.split("<br>")[0] for t in titles] == [losses.get(n).title for n in ("info_nce", "supcon")]
    points = [t for t in last.data if getattr(t, "mode", None) == "markers"]
    coords = np.stack([np.asarray(getattr(points[0], axis), np.float64) for axis in "xyz"[:dim]], axis=1)
    np.testing.assert_allclose(np.linalg.norm(coords, axis=1), 1.0, atol=1e-5)  # on the circle or sphere
