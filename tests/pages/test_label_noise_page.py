"""The Label-noise study page under AppTest: the noise designer, a sweep started on the page running in the
background into a store (LOSSVIZ_STORE = a temporary directory), resume after a restart without recomputing,
reattaching after a reload, cancel, failed jobs, the transition-matrix check, one view per section built at a
time, URL state, page switches and the byte budget. Tiny experiments on the serial backend (8 jobs of a
16-wide MLP, 50 epochs)."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lossviz import backends, noise
from lossviz.store import Store
from lossviz.ui import noise as study_ui
from tests.pages.views import open_view, tab_labels

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "pages" / "label_noise.py"
TIMEOUT = 240
TINY = {
    "n": "100", "epochs": "50", "width": "16", "depth": "1", "seeds": "2", "rates": "0,0.4",
    "losses": "cross_entropy,gce", "backend": "serial",
}  # fmt: skip
LOAD_BUDGET, CHART_BUDGET = 500 * 1024, 150 * 1024  # as tests/pages/test_byte_budgets.py


def _page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _open(at: AppTest, view: str, tabs: str = "view") -> AppTest:
    """Open a view of one section's tabs ("preview", "view" or "flips")."""
    return open_view(at, "noise", view, tabs)


_tabs = tab_labels


def _texts(elements) -> str:
    return " ".join(e.value for e in elements)


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def _decode(value):
    """Plotly's JSON with numpy arrays as {"dtype", "bdata", "shape"} turned back into arrays, recursively."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            shape = value.get("shape")
            if isinstance(shape, str):
                shape = [int(n) for n in shape.split(",")]
            return array.reshape(shape) if shape else array
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _chart(at: AppTest, title: str) -> dict:
    specs = [_decode(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]
    return next(s for s in specs if s["layout"]["title"]["text"] == title)


def _the_run() -> study_ui.SweepRun:
    (run,) = study_ui._RUNS.values()
    return run


def _run_and_wait(at: AppTest) -> study_ui.SweepRun:
    at.button(key="noise.run").click().run()
    assert not at.exception
    run = study_ui.wait(_the_run().key, TIMEOUT)
    assert run is not None and not run.running, "the sweep did not end"
    return run


@pytest.fixture(autouse=True)
def fresh_server():
    """Each test starts like a fresh server: no sweep in the registry (and none left running after it)."""
    study_ui._RUNS.clear()
    yield
    for run in list(study_ui._RUNS.values()):
        run.cancel.set()
        if run.thread is not None:
            run.thread.join(TIMEOUT)
    study_ui._RUNS.clear()


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory) -> Path:
    """A store holding the TINY sweep, computed once by pressing Run on the page."""
    path = tmp_path_factory.mktemp("finished-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOSSVIZ_STORE", str(path))
        study_ui._RUNS.clear()
        run = _run_and_wait(_page(TINY))
        assert run.state == "finished" and run.computed == 8, (run.state, run.message)
        study_ui._RUNS.clear()
    return path


@pytest.fixture
def empty_store(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LOSSVIZ_STORE", str(tmp_path / "store"))
    return tmp_path / "store"


@pytest.fixture
def filled_store(finished_store, tmp_path, monkeypatch) -> Path:
    """A copy of the finished store, so a test may add to it."""
    path = tmp_path / "store"
    shutil.copytree(finished_store, path)
    monkeypatch.setenv("LOSSVIZ_STORE", str(path))
    return path


def test_default_page_designs_the_noise_and_offers_the_sweep(empty_store) -> None:
    at = _page({})
    assert not at.exception and not at.error
    assert _tabs(at) == ["Realised transition", "Training labels"]
    assert _titles(at) == ["Realised transition"]  # only the open preview is built
    assert "**80 jobs**: 4 rates × 5 losses × 4 seeds" in _texts(at.markdown)
    assert [b.label for b in at.button] == ["Run sweep"]
    assert "No results yet" in _texts(at.info)
    assert at.multiselect(key="noise.losses").value == ["cross_entropy", "gce", "sce", "mae_prob", "elr"]
    sizes = [len(c.proto.spec) for c in at.get("plotly_chart")]
    assert max(sizes) <= CHART_BUDGET and sum(sizes) <= LOAD_BUDGET
    # the realised matrix is the one the preview data holds: 40% symmetric noise on 280 training points
    t = np.asarray(_chart(at, "Realised transition")["data"][0]["z"], float)
    assert np.allclose(t.sum(1), 1) and abs(np.diag(t).mean() - 0.6) < 0.05
    assert _titles(_open(at, "points", "preview")) == ["Training labels at 40% noise"]
    assert at.query_params["preview"] == "points"
    at.slider(key="noise.rate").set_value(0.2).run()  # the preview rate redraws the open chart only
    assert not at.exception and _titles(at) == ["Training labels at 20% noise"]


def test_a_sweep_started_on_the_page_fills_the_store_and_the_results(filled_store) -> None:
    at = _page(TINY)
    assert not at.exception and not at.error
    assert "Every job of this sweep is in the store." in _texts(at.success)
    store = Store(filled_store)
    assert store.counts()["done"] == 8
    assert _tabs(at) == [
        "Realised transition", "Training labels",
        "Accuracy", "Gain over cross-entropy", "Calibration (ECE)", "Heat maps",
        "Memorisation", "Gradient weight",
    ]  # fmt: skip
    titles = _titles(at)  # one chart per section: the open view of each
    assert titles[:2] == ["Realised transition", "Clean test accuracy"] and len(titles) == 3
    assert "Memorisation at 40% noise" in titles[2]
    assert "early learning" in _texts(at.caption)
    # the accuracy curve is the seed mean of what the store holds, independently recomputed here
    accuracy: dict[tuple[str, float], list[float]] = {}
    for r in store.list():
        job = store.get(r["digest"]).job
        accuracy.setdefault((job.loss.name, job.experiment.data.label_noise), []).append(
            r["summary"]["test_acc"]
        )
    curve = next(t for t in _chart(at, "Clean test accuracy")["data"] if t.get("name") == "Cross-entropy")
    expected = [np.mean(accuracy[("cross_entropy", rate)]) for rate in (0.0, 0.4)]
    np.testing.assert_allclose(curve["y"], expected, atol=1e-6)
    sizes = [len(c.proto.spec) for c in at.get("plotly_chart")]
    _open(at, "gain")
    assert _titles(at)[1] == "Test accuracy gain over Cross-entropy, paired by seed" and len(_titles(at)) == 3
    assert "paired intervals above 0" in _texts(at.caption)
    gain = next(t for t in _chart(at, _titles(at)[1])["data"] if t.get("name", "").startswith("Generalized"))
    np.testing.assert_allclose(gain["x"], [0.0, 0.4])
    sizes += [len(c.proto.spec) for c in at.get("plotly_chart")[1:2]]
    assert _titles(_open(at, "ece"))[1] == "Expected calibration error (15 bins)" and len(_titles(at)) == 3
    sizes += [len(c.proto.spec) for c in at.get("plotly_chart")[1:2]]
    assert _titles(_open(at, "heatmaps"))[1:3] == ["Mean clean test accuracy", "Mean test ECE"]
    sizes += [len(c.proto.spec) for c in at.get("plotly_chart")[1:3]]
    assert len(_titles(at)) == 4  # the preview, two heat maps, the memorisation curves
    assert "gradient weight" in _titles(_open(at, "weights", "flips"))[-1] and len(_titles(at)) == 4
    assert "bounded losses" in _texts(at.caption)
    sizes.append(len(at.get("plotly_chart")[-1].proto.spec))
    assert len(sizes) == 8 and max(sizes) <= CHART_BUDGET and sum(sizes) <= LOAD_BUDGET, sizes


def test_a_view_url_opens_those_views_with_only_their_charts(filled_store) -> None:
    query = {**TINY, "preview": "points", "view": "ece", "flips": "weights"}
    at = _page(query)
    assert not at.exception and not at.error and not at.warning
    titles = _titles(at)
    assert titles[:2] == ["Training labels at 40% noise", "Expected calibration error (15 bins)"]
    assert len(titles) == 3 and "gradient weight" in titles[2]
    assert {k: at.query_params[k] for k in ("preview", "view", "flips")} == {
        "preview": "points", "view": "ece", "flips": "weights",
    }  # fmt: skip
    _open(at, "accuracy")  # the default view leaves the URL
    assert "view" not in at.query_params and _titles(at)[1] == "Clean test accuracy"


def test_widening_the_sweep_after_a_restart_computes_only_the_missing_jobs(filled_store) -> None:
    store = Store(filled_store)
    before = {r["digest"]: r["finished_at"] for r in store.list()}
    at = _page({**TINY, "seeds": "3"})  # a fresh server (empty registry), one seed more
    assert not at.exception
    assert "**12 jobs**" in _texts(at.markdown) and "**8 in the store**" in _texts(at.markdown)
    assert at.button(key="noise.run").label == "Resume (4 to compute)"
    run = _run_and_wait(at)
    assert (run.state, run.computed, run.failed, run.done) == ("finished", 4, 0, 12)
    after = {r["digest"]: r["finished_at"] for r in store.list()}
    assert len(after) == 12 and all(after[d] == t for d, t in before.items())  # none recomputed
    at.run()
    assert "Every job of this sweep is in the store." in _texts(at.success)


def test_a_reload_reattaches_to_the_running_sweep_and_cancel_stops_it(empty_store, monkeypatch) -> None:
    first_done, release = threading.Event(), threading.Event()
    real = backends.run_sweep

    def held_after_each_job(jobs, store, backend, *, progress, **kwargs):  # the real sweep, paused
        def report(done, total, job, status):
            progress(done, total, job, status)
            first_done.set()
            release.wait(TIMEOUT)

        return real(jobs, store, backend, progress=report, **kwargs)

    monkeypatch.setattr(study_ui.backends, "run_sweep", held_after_each_job)
    _page(TINY).button(key="noise.run").click().run()
    assert first_done.wait(TIMEOUT)
    reloaded = _page(TINY)  # a new session with the same settings finds the sweep
    assert not reloaded.exception
    assert not any(b.label.startswith(("Run", "Resume")) for b in reloaded.button)
    assert "1 of 8 jobs done" in reloaded.get("progress")[0].proto.text
    run = _the_run()
    reloaded.button(key=f"noise.cancel.{run.key}").click().run()
    assert run.cancel.is_set()
    release.set()
    study_ui.wait(run.key, TIMEOUT)
    assert (run.state, run.done) == ("cancelled", 1)  # stopped after the job in flight
    assert Store(empty_store).counts()["done"] == 1
    reloaded.run()
    assert "Cancelled: 1 of 8 jobs are in the store" in _texts(reloaded.info)
    assert reloaded.button(key="noise.run").label == "Resume (7 to compute)"


def test_a_sweep_run_offline_from_the_pages_spec_shows_up_on_the_page(empty_store, tmp_path) -> None:
    import io

    from lossviz import cli

    query = {**TINY, "seeds": "1", "rates": "0.4"}  # one sweep spec: the noisy rates only
    at = _page(query)
    (spec,) = [c.value for c in at.code]
    path = tmp_path / "spec.json"
    path.write_text(spec)
    status = cli.main(["sweep", str(path), "--backend", "serial", "--store", str(empty_store)], io.StringIO())
    assert status == 0
    at.run()
    assert not at.exception
    assert "**2 in the store**" in _texts(at.markdown) and "Every job of this sweep" in _texts(at.success)
    assert "Clean test accuracy" in _titles(at)


def test_a_job_that_cannot_run_is_shown_as_failed(empty_store) -> None:
    # a class map flips only classes 1 and 2: 80% of 70 labels is more than they hold
    at = _page({**TINY, "kind": "asymmetric", "rates": "0,0.8"})
    run = _run_and_wait(at)
    assert (run.state, run.computed, run.failed) == ("finished", 4, 4)
    at.run()
    assert not at.exception
    (failed,) = [e for e in at.expander if "failed" in e.label]
    assert failed.label == "4 jobs failed"
    assert "asymmetric label_noise 0.8 needs" in _texts(failed.markdown)
    assert "Clean test accuracy" in _titles(at)  # the clean runs are shown
    assert "Add a noise rate above 0" in _texts(at.info)


def test_the_transition_matrix_is_checked_row_by_row(empty_store) -> None:
    at = _page({**TINY, "kind": "transition"})
    area = at.text_area(key="noise.T")
    assert area.value == study_ui.format_matrix(study_ui.default_transition(3))
    area.set_value("0 0.5 0.5\n0.2 0 0.7\n0.5 0.5 0").run()
    assert not at.exception
    assert "transition row 1 sums to 0.9" in _texts(at.error)
    assert not at.get("plotly_chart")  # nothing is drawn or swept with an invalid T
    at.button(key="noise.fill.cyclic").click().run()
    assert not at.exception and not at.error
    assert at.text_area(key="noise.T").value == "0  1  0\n0  0  1\n1  0  0"
    assert at.query_params["T"] == "0,1,0,0,0,1,1,0,0"
    realised = np.asarray(_chart(at, "Realised transition")["data"][0]["z"], float)
    # 40% of each class moves to the next: the pair-flip matrix, up to rounding of ~23 samples per class
    assert np.abs(realised - noise.pair_transition(3, 0.4)).max() < 1 / 20


def test_url_round_trip_and_bad_values(empty_store) -> None:
    query = {
        "kind": "pair",
        "rate": "0.2",
        "rates": "0,0.6",
        "seeds": "2",
        "losses": "cross_entropy,mae_prob",
    }
    at = _page(query)
    assert not at.exception and not at.warning
    assert at.selectbox(key="noise.kind").value == "pair"
    assert at.multiselect(key="noise.rates").value == ["0", "0.6"]
    assert "**8 jobs**" in _texts(at.markdown)
    assert {k: at.query_params[k] for k in query} == query
    bad = _page({"kind": "transition", "T": "1,2,3", "seeds": "many", "rates": "0,0.45"})
    assert not bad.exception and not bad.error
    warned = _texts(bad.warning)
    for part in ("T=1,2,3", "seeds=many", "rates=0,0.45"):
        assert part in warned
    assert bad.slider(key="noise.seeds").value == 4
    assert bad.text_area(key="noise.T").value == study_ui.format_matrix(study_ui.default_transition(3))


def test_settings_survive_leaving_the_page_and_coming_back(empty_store) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("pages/label_noise.py").run()
    at.slider(key="noise.seeds").set_value(2).run()
    at.selectbox(key="noise.kind").set_value("transition").run()
    at.text_area(key="noise.T").set_value("0 1 0\n0 0 1\n0.5 0.5 0").run()
    at.switch_page("pages/loss_shapes.py").run()
    assert "noise.seeds" not in at.session_state  # the widget's own state is gone, as in the browser
    at.switch_page("pages/label_noise.py").run()
    assert not at.exception
    assert at.slider(key="noise.seeds").value == 2
    assert at.selectbox(key="noise.kind").value == "transition"
    assert at.text_area(key="noise.T").value == "0  1  0\n0  0  1\n0.5  0.5  0"
