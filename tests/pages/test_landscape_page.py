"""The Landscape page under AppTest on a tiny shared experiment (60 points, a 1 x 8 MLP, 20 epochs): surfaces
on one scale against a naive functional_call loop, every view control, a typed and a clicked point,
interpolation, curvature against the dense Hessian, URL state, per-loss errors, page switches, and
Train & compare's losses and models.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest
from torch.func import functional_call

from lossviz import experiment as ex
from lossviz import landscape, losses
from lossviz.experiment import DataSpec, Experiment, LossChoice, ModelSpec, OptimSpec
from lossviz.figures.landscape import LEVEL_STEPS
from lossviz.losses.registry import register, unregister
from lossviz.ui import charts, runs
from lossviz.ui import landscape as lv
from tests.pages.views import open_view

PAGE = Path(__file__).resolve().parents[2] / "pages" / "landscape.py"
TIMEOUT = 120  # generous: the suite shares two cores; each run below takes a second or two
CHART = "landscape.fig.surfaces"

# the shared experiment's URL names (the same on Train & compare) and two of this page's
TINY = {"n": "60", "width": "8", "depth": "1", "epochs": "20", "grid": "21", "losses": "cross_entropy,focal"}
# what the page builds from TINY: 42 parameters (2·8 + 8 + 8·2 + 2); moons' default input noise is 0.2
EXPERIMENT = Experiment(DataSpec(n=60, noise=0.2), ModelSpec(width=8, depth=1), OptimSpec(epochs=20))


def _page(query: dict[str, str] | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.query_params.update(TINY if query is None else query)
    return at.run()


def _open(at: AppTest, view: str) -> AppTest:
    return open_view(at, "landscape", view)


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


def _chart(at: AppTest, key: str):
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    assert found, f"no chart {key}; have {[c.proto.id[-30:] for c in at.get('plotly_chart')]}"
    return found[0]


def _figure(at: AppTest, key: str = CHART) -> dict:
    return _decode(json.loads(_chart(at, key).proto.spec))


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]


def _metric(at: AppTest, prefix: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(prefix))


def _grids(spec: dict) -> list[dict]:
    """The invisible clickable traces of the surfaces chart, one per panel (customdata [loss, acc, panel])."""
    return [t for t in spec["data"] if t.get("name") == "grid"]


def _click(at: AppTest, event: dict) -> AppTest:
    """What a click on the surfaces chart sends: its selection as the chart's widget value (AppTest has no
    plotly interaction, so the widget state the browser would send is built here)."""
    states = at._tree.get_widget_states()
    widget = states.widgets.add()
    widget.id = _chart(at, CHART).proto.id
    widget.string_value = json.dumps(event)
    return at._run(WidgetStates(widgets=states.widgets))


@functools.cache
def _trained(name: str, **params: float) -> torch.nn.Module:
    """The loss's model trained again here, outside the page and its caches (same data, seed and weights)."""
    return ex.run(EXPERIMENT, LossChoice(name, tuple(params.items()))).model


def _data():
    return ex.dataset(EXPERIMENT.data)


def _naive_loss(net, name, X, y, d1, d2, a: float, b: float, **params) -> float:
    """Mean loss at theta + a·d1 + b·d2: one functional_call, the registry function, a plain mean."""
    shifted = {
        k: p.detach() + a * torch.as_tensor(d1[k]) + b * torch.as_tensor(d2[k])
        for k, p in net.named_parameters()
    }
    with torch.no_grad():
        out = functional_call(net, shifted, (torch.as_tensor(X),))
    return float(losses.get(name)(out, torch.as_tensor(y), **params).mean())


def _check_grid(spec: dict, names: list[str], seed: int = 0, split: str = "train") -> None:
    """A few clickable nodes of each panel hold the loss a naive loop finds at their coordinates."""
    data = _data()
    X, y = (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)
    for name, grid in zip(names, _grids(spec), strict=True):
        net = _trained(name)
        d1, d2 = landscape.random_direction(net, seed), landscape.random_direction(net, seed + 1)
        custom = np.asarray(grid["customdata"], np.float64)
        for k in (0, 57, len(custom) // 2, len(custom) - 1):
            naive = _naive_loss(net, name, X, y, d1, d2, grid["x"][k], grid["y"][k])
            assert custom[k, 0] == pytest.approx(naive, rel=1e-4, abs=1e-6)


# ----------------------------------------------------------------------------------------------- surfaces


def test_default_view_draws_all_losses_on_one_scale_matching_the_naive_loop():
    at = _page()
    _clean(at)
    assert at.title[0].value == "Loss landscape"
    assert any(c.value == f"Models: {runs.describe(EXPERIMENT)}" for c in at.caption)  # the shared experiment
    spec = _figure(at)
    maps = [t for t in spec["data"] if t["type"] == "heatmap"]  # each under its contour lines
    assert len(maps) == 2 and {m["coloraxis"] for m in maps} == {"coloraxis"}
    assert sum(t["type"] == "contour" for t in spec["data"]) == 2
    assert len(maps[0]["x"]) == 21  # the refined grid (the 11² coarse chart was replaced)
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("landscape.fig.coarse")]
    values = [np.asarray(g["customdata"], np.float64)[:, 0] for g in _grids(spec)]
    layout = spec["layout"]["coloraxis"]  # one scale: uint16 steps of [lowest, highest] loss over the panels
    assert layout["cmin"] == 0 and layout["cmax"] == LEVEL_STEPS
    # 21²: every second node is a clickable grid node, whose exact loss the heat map's step must encode: one
    # affine map (the shared range, which the nodes need not reach) for both panels, to about half a step
    steps = np.concatenate([np.asarray(m["z"], np.float64)[::2, ::2].ravel() for m in maps])
    loss = np.concatenate(values)
    slope, offset = np.polyfit(loss, steps, 1)
    assert slope > 0 and np.abs(steps - (offset + slope * loss)).max() <= 0.6
    _check_grid(spec, ["cross_entropy", "focal"])
    assert any("filter-normalized" in c.value for c in at.caption)
    assert dict(at.query_params) == TINY  # defaults stay out of the URL
    assert at.multiselect(key="landscape.losses.multiclass").value == ["cross_entropy", "focal"]


@pytest.mark.parametrize(("slow_s", "coarse_first"), [(-1.0, True), (1e9, False)])
def test_the_coarse_grid_is_drawn_first_only_when_refining_would_take_long(monkeypatch, slow_s, coarse_first):
    drawn = []  # the keys of the charts the page draws, in order
    real_show = charts.show

    def show(container, builder, /, **kwargs):
        drawn.append(kwargs.get("key"))
        return real_show(container, builder, **kwargs)

    monkeypatch.setattr(charts, "show", show)
    monkeypatch.setattr(lv, "SLOW_REFINE_S", slow_s)  # -1: any refinement counts as slow; 1e9: none does
    at = _page({"grid": "31"})
    _clean(at)
    coarse, refined = "landscape.fig.coarse", "landscape.fig.surfaces"
    assert [k for k in drawn if k in (coarse, refined)] == ([coarse, refined] if coarse_first else [refined])
    contour = next(t for t in _figure(at)["data"] if t["type"] == "contour")
    assert len(contour["x"]) == 31  # refined in the end


def test_a_refinement_is_slow_when_its_points_would_take_longer_than_the_threshold():
    assert lv.SLOW_REFINE_S == 1.0
    assert lv.refine_is_slow(0.02, 101)  # 0.02 s for 11², so about 1.7 s for 101²
    assert not lv.refine_is_slow(0.01, 101)  # about 0.84 s
    assert not lv.refine_is_slow(0.05, 11)  # the coarse grid itself


@pytest.mark.parametrize(
    ("widget", "key", "value"),
    [
        ("toggle", "landscape.3d", True),
        ("toggle", "landscape.log", True),
        ("radio", "landscape.split", "test"),
    ],
)
def test_toggles_and_split_rerun_cleanly(widget, key, value):
    at = _page()
    getattr(at, widget)(key=key).set_value(value).run()
    _clean(at)
    spec = _figure(at)
    kinds = {t["type"] for t in spec["data"]}
    if key == "landscape.3d":
        assert "surface" in kinds and "contour" not in kinds and "scene" in spec["layout"]
        assert at.query_params["3d"] == "1"
        # one WebGL scene, of the chosen point's loss; choosing another loss draws that one
        assert next(t for t in spec["data"] if t["type"] == "surface")["name"] == "Cross-entropy"
        assert sum(t["type"] == "surface" for t in spec["data"]) == 1 and "scene2" not in spec["layout"]
        at.selectbox(key="landscape.point.loss").set_value("focal").run()
        _clean(at)
        (surface,) = [t for t in _figure(at)["data"] if t["type"] == "surface"]
        assert surface["name"].startswith("Focal")
    elif key == "landscape.log":
        maps = [t for t in spec["data"] if t["type"] == "heatmap"]
        steps = np.concatenate([np.asarray(m["z"], np.float64)[::2, ::2].ravel() for m in maps])
        logs = np.concatenate([np.log10(np.asarray(g["customdata"], np.float64)[:, 0]) for g in _grids(spec)])
        slope, offset = np.polyfit(logs, steps, 1)  # uint16 steps affine in log10(loss)
        assert slope > 0 and np.abs(steps - (offset + slope * logs)).max() <= 0.6
        assert "log" in spec["layout"]["coloraxis"]["colorbar"]["title"]["text"]
        slices = _figure(_open(at, "slices"), "landscape.fig.slices")
        assert slices["layout"]["yaxis"]["type"] == "log"
        assert len(at.get("plotly_chart")) == 1 and at.query_params["view"] == "slices"  # only that view
        shared = _page({**dict(at.query_params), "point.y": "0.05"})  # a control of the closed surfaces view
        assert not shared.warning and shared.query_params["point.y"] == "0.05"
    else:
        _check_grid(spec, ["cross_entropy", "focal"], split="test")  # the clean test set
        assert at.query_params["split"] == "test"


@pytest.mark.parametrize(("key", "value"), [("grid", 31), ("span", 0.5), ("dir_seed", 3)])
def test_grid_span_and_direction_seed_change_the_surfaces(key, value):
    at = _page()
    (at.slider if key == "dir_seed" else at.select_slider)(key=f"landscape.{key}").set_value(value).run()
    _clean(at)
    spec = _figure(at)
    contour = next(t for t in spec["data"] if t["type"] == "contour")
    if key == "grid":
        assert len(contour["x"]) == 31 and len(contour["y"]) == 31
    elif key == "span":
        assert (contour["x"][0], contour["x"][-1]) == pytest.approx((-0.5, 0.5))
    else:
        _check_grid(spec, ["cross_entropy", "focal"], seed=3)
        assert any("seeds 3, 4" in c.value for c in at.caption)
    assert at.query_params[key] == str(value)


def test_pca_axes_put_the_trajectory_in_the_plane_ending_at_the_origin():
    at = _page()
    at.radio(key="landscape.axes").set_value("pca").run()
    _clean(at)
    spec = _figure(at)
    paths = [t for t in spec["data"] if t.get("name") == "training trajectory"]
    assert len(paths) == 2
    assert all(
        p["x"][-1] == pytest.approx(0, abs=1e-9) and p["y"][-1] == pytest.approx(0, abs=1e-9) for p in paths
    )
    assert spec["layout"]["xaxis"]["title"]["text"] == "PC1"
    history = ex.run(EXPERIMENT, "cross_entropy").history
    pca = landscape.pca_directions(history.snapshots, history.final_state)
    assert np.allclose(paths[0]["x"], pca.coords[:, 0]) and np.allclose(paths[0]["y"], pca.coords[:, 1])
    assert any("Variance explained" in c.value for c in at.caption)


# ----------------------------------------------------------------------------------------------- the point


def _boundary_moves(at: AppTest, name: str, x: float, y: float) -> None:
    """The right map is P(class 1) of the shifted weights: one node against a direct forward pass."""
    spec = _figure(at, "landscape.fig.boundary")
    maps = [t for t in spec["data"] if t["type"] in ("heatmap", "contour") and t.get("z") is not None]
    assert spec["layout"]["annotations"][1]["text"] == f"at ({x:.3g}, {y:.3g})"
    # P(class 1) arrives in steps of 1/zmax (bytes, zmax = 255, since the maps are sent as bytes)
    top = float(maps[len(maps) // 2].get("zmax") or 1.0)
    left, right = (np.asarray(maps[k]["z"], np.float64) / top for k in (0, len(maps) // 2))
    xs, ys = np.asarray(maps[-1]["x"]), np.asarray(maps[-1]["y"])
    net = _trained(name)
    d1, d2 = landscape.random_direction(net, 0), landscape.random_direction(net, 1)
    i, j = 20, 45
    shifted = {k: p.detach() + x * d1[k] + y * d2[k] for k, p in net.named_parameters()}
    with torch.no_grad():
        logits = functional_call(net, shifted, (torch.tensor([[xs[j], ys[i]]], dtype=torch.float32),))
    step = 0.5 / top if top > 1 else 0.0  # rounding to the nearest step
    assert right[i, j] == pytest.approx(float(torch.softmax(logits, -1)[0, 1]), abs=1e-5 + step)
    assert not np.allclose(left, right)  # the point's boundary moved


def test_a_typed_point_shows_its_loss_and_decision_boundary():
    at = _page()
    annotations = _figure(at, "landscape.fig.boundary")["layout"]["annotations"]
    (title,) = [a["text"] for a in annotations if "·" in a["text"]]  # one panel while the point is the centre
    assert title.endswith("trained weights, the chosen point (0, 0)")
    at.selectbox(key="landscape.point.loss").set_value("focal")
    at.number_input(key="landscape.point.x").set_value(0.5)
    at.number_input(key="landscape.point.y").set_value(-0.25).run()
    _clean(at)
    data, net = _data(), _trained("focal")
    d1, d2 = landscape.random_direction(net, 0), landscape.random_direction(net, 1)
    naive = _naive_loss(net, "focal", data.X_train, data.y_train, d1, d2, 0.5, -0.25)
    assert float(_metric(at, "Loss at (0.5, -0.25)")) == pytest.approx(naive, rel=1e-3)
    centre = _naive_loss(net, "focal", data.X_train, data.y_train, d1, d2, 0.0, 0.0)
    assert float(_metric(at, "Loss at the centre")) == pytest.approx(centre, rel=1e-3)
    _boundary_moves(at, "focal", 0.5, -0.25)
    marks = [t for t in _figure(at)["data"] if t.get("name") == "chosen point"]
    assert len(marks) == 1 and (marks[0]["x"], marks[0]["y"]) == ([0.5], [-0.25])
    assert at.query_params["point.x"] == "0.5" and at.query_params["point.loss"] == "focal"


def test_a_clicked_point_becomes_the_chosen_point():
    at = _page()
    # the event a click on a grid node of the second panel produced in Chromium (customdata as a typed array)
    event = {
        "selection": {
            "points": [{"curve_number": 6, "point_index": 330, "x": 0.5, "y": 0.5,
                        "customdata": {"0": 0.6486, "1": 0.605, "2": 1}}],
            "point_indices": [330], "box": [], "lasso": [],
        }
    }  # fmt: skip
    _click(at, event)
    _clean(at)
    assert at.selectbox(key="landscape.point.loss").value == "focal"
    assert (
        at.number_input(key="landscape.point.x").value,
        at.number_input(key="landscape.point.y").value,
    ) == (
        0.5,
        0.5,
    )
    _boundary_moves(at, "focal", 0.5, 0.5)
    # a list customdata on the first panel works too; a point without a panel changes nothing
    _click(at, {"selection": {"points": [{"x": -0.25, "y": 0.125, "customdata": [0.1, 0.9, 0]}]}})
    assert at.selectbox(key="landscape.point.loss").value == "cross_entropy"
    assert at.number_input(key="landscape.point.y").value == 0.125
    _click(at, {"selection": {"points": [{"x": 1.0, "y": 1.0}, {"x": 1, "y": 1, "customdata": [0, 0, 5]}]}})
    _clean(at)
    assert at.number_input(key="landscape.point.x").value == -0.25


# --------------------------------------------------------------------------------- interpolation, curvature


def _segment(a: torch.nn.Module, b: torch.nn.Module, name: str) -> np.ndarray:
    data = _data()
    theta_a = {k: p.detach() for k, p in a.named_parameters()}
    theta_b = {k: p.detach() for k, p in b.named_parameters()}
    values = []
    for alpha in np.linspace(-0.5, 1.5, 81):
        state = {k: (1 - alpha) * theta_a[k] + alpha * theta_b[k] for k in theta_a}
        with torch.no_grad():
            out = functional_call(a, state, (torch.as_tensor(data.X_train),))
        values.append(float(losses.get(name)(out, torch.as_tensor(data.y_train)).mean()))
    return np.asarray(values)


def _barrier(values: np.ndarray) -> float:
    alphas = np.linspace(-0.5, 1.5, 81)
    inside = (alphas >= 0) & (alphas <= 1)
    gap = values[inside] - ((1 - alphas[inside]) * values[20] + alphas[inside] * values[60])
    return max(float(gap.max()), 0.0)


def test_interpolation_barrier_matches_a_naive_segment():
    at = _page({**TINY, "losses": "cross_entropy,focal,gce", "view": "interpolation"})
    _clean(at)
    assert len(at.get("plotly_chart")) == 1  # the surfaces are not built in this view
    values = _segment(_trained("cross_entropy"), _trained("focal"), "cross_entropy")
    assert float(_metric(at, "Loss barrier")) == pytest.approx(_barrier(values), rel=2e-3, abs=1e-6)
    line = next(t for t in _figure(at, "landscape.fig.interp")["data"] if t["name"] == "loss")
    assert np.allclose(line["y"], values, rtol=1e-4, atol=1e-6)
    # another pair, measured with the second loss
    at.selectbox(key="landscape.interp.b").set_value("gce").run()
    at.selectbox(key="landscape.interp.measure").set_value("gce").run()
    _clean(at)
    values = _segment(_trained("cross_entropy"), _trained("gce"), "gce")
    line = next(t for t in _figure(at, "landscape.fig.interp")["data"] if t["name"] == "loss")
    assert np.allclose(line["y"], values, rtol=1e-4, atol=1e-6)
    assert at.query_params["interp.b"] == "gce" and at.query_params["interp.measure"] == "gce"
    assert "interp.a" not in at.query_params  # the default pair's first loss stays out of the URL


def _flat_loss(net: torch.nn.Module, name: str, X: np.ndarray, y: np.ndarray):
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    sizes = [p.numel() for _, p in net.named_parameters()]
    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y)
    model = copy.deepcopy(net).double()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        state = {k: t.reshape(s) for k, t, s in zip(names, theta.split(sizes), shapes, strict=True)}
        return losses.get(name)(functional_call(model, state, (Xt,)), yt).mean()

    theta = torch.cat([p.detach().double().reshape(-1) for _, p in net.named_parameters()])
    return loss, theta


def test_curvature_button_agrees_with_the_dense_hessian():
    at = _open(_page(), "curvature")
    assert not at.dataframe and not at.get("plotly_chart")  # nothing before the click
    at.button(key="landscape.curvature.button").click().run()
    _clean(at)
    table = at.dataframe[0].value
    threshold = next(
        t for t in _figure(at, "landscape.fig.sharpness")["data"] if t["name"].startswith("2/lr")
    )
    assert threshold["y"][0] == pytest.approx(2.0 / EXPERIMENT.optim.lr)
    assert _figure(at, "landscape.fig.spectrum")["data"]
    data = _data()
    for row, name in enumerate(["cross_entropy", "focal"]):
        loss, theta = _flat_loss(_trained(name), name, data.X_train, data.y_train)
        H = torch.autograd.functional.hessian(loss, theta)  # (42, 42) dense
        eig = torch.linalg.eigvalsh(H).flip(0).numpy()
        assert int(table["parameters"][row]) == theta.numel() == 42
        for k, column in enumerate(("λ₁", "λ₂", "λ₃")):
            assert float(table[column][row]) == pytest.approx(eig[k], rel=1e-3, abs=1e-5)
        # 42 parameters: the trace is exact (one Hessian-vector product per unit vector), no standard error
        assert float(table["tr(H)"][row]) == pytest.approx(float(torch.trace(H)), rel=1e-4, abs=1e-6)
        assert float(table["± s.e."][row]) == 0.0 and table["trace by"][row].startswith("exact")
        assert float(table["λ₁ · lr / 2"][row]) == pytest.approx(eig[0] * EXPERIMENT.optim.lr / 2, rel=1e-3)
    at.toggle(key="landscape.log").set_value(True).run()  # the curvature stays shown for the same models
    _clean(at)
    assert at.dataframe


# ----------------------------------------------------------------------------------------------- URL, state


def test_bad_url_values_warn_and_fall_back_without_exceptions():
    query = {**TINY, "axes": "hessian", "grid": "7", "log": "maybe", "point.x": "abc", "span": "-1",
             "losses": "cross_entropy,nope", "source": "train"}  # fmt: skip
    at = _page(query)
    assert not at.exception and not at.error
    warnings = " | ".join(w.value for w in at.warning)
    for name in (
        "axes=hessian",
        "grid=7",
        "log=maybe",
        "point.x=abc",
        "span=-1",
        "losses=cross_entropy,nope",
    ):
        assert name in warnings
    assert "Ignored unknown URL parameters: source" in warnings  # the old page's parameter, gone
    assert at.radio(key="landscape.axes").value == "random" and at.toggle(key="landscape.log").value is False
    assert (
        at.select_slider(key="landscape.grid").value == 41
        and at.select_slider(key="landscape.span").value == 1
    )
    assert at.multiselect(key="landscape.losses.multiclass").value == ["cross_entropy", "focal", "gce"]
    assert len([t for t in _figure(at)["data"] if t["type"] == "contour"]) == 3


def _settings(at: AppTest) -> dict:
    widgets = {"axes": "radio", "split": "radio", "grid": "select_slider", "span": "select_slider",
               "3d": "toggle", "log": "toggle", "dir_seed": "slider", "point.loss": "selectbox",
               "point.x": "number_input", "point.y": "number_input", "epochs": "select_slider",
               "losses.multiclass": "multiselect", "focal.gamma": "slider"}  # fmt: skip
    return {k: getattr(at, w)(key=f"landscape.{k}").value for k, w in widgets.items()}


def _change_everything(at: AppTest) -> AppTest:
    at.radio(key="landscape.axes").set_value("pca")
    at.radio(key="landscape.split").set_value("test")
    at.select_slider(key="landscape.grid").set_value(31)
    at.select_slider(key="landscape.span").set_value(1.5)
    at.toggle(key="landscape.log").set_value(True)
    at.slider(key="landscape.dir_seed").set_value(7)
    at.select_slider(key="landscape.epochs").set_value(10)  # the shared experiment
    at.slider(key="landscape.focal.gamma").set_value(1.0)  # a hyperparameter of this page's losses
    at.run()
    at.selectbox(key="landscape.point.loss").set_value("focal").run()
    at.number_input(key="landscape.point.y").set_value(0.05).run()
    _clean(at)
    return at


def test_a_url_reproduces_the_view_in_a_fresh_session():
    at = _change_everything(_page())
    settings, url = _settings(at), dict(at.query_params)
    assert url["epochs"] == "10" and url["axes"] == "pca" and url["focal.gamma"] == "1"
    fresh = _page(url)
    _clean(fresh)
    assert _settings(fresh) == settings
    assert dict(fresh.query_params) == url
    first, second = _figure(at), _figure(fresh)
    assert [t["name"] for t in first["data"]] == [t["name"] for t in second["data"]]
    for a, b in zip(first["data"], second["data"], strict=True):
        if a["type"] == "contour":
            assert np.array_equal(a["z"], b["z"])


def test_settings_survive_switching_pages():
    at = _change_everything(_page())
    settings, url = _settings(at), dict(at.query_params)
    # a page switch in the browser drops every widget's state; the canonical values live under "_lv.*"
    kept = {k: copy.deepcopy(at.session_state[k]) for k in at.session_state.keys() if k.startswith("_lv.")}
    assert not any(k.startswith("landscape.") for k in kept)
    back = _page({}, kept)  # no widget state, an empty URL
    _clean(back)
    assert _settings(back) == settings and dict(back.query_params) == url


def test_use_train_and_compare_losses_reuses_its_models(monkeypatch):
    # what Train & compare holds: its loss choice (canonical state) and the models it trained (the cache)
    train = {"losses.multiclass": ("cross_entropy", "gce"), "gce.q": 0.5, "dataset": "ignored: not a loss's"}
    for choice in (LossChoice("cross_entropy"), LossChoice("gce", (("q", 0.5),))):
        runs.history(EXPERIMENT.base(), choice)

    def no_training(*args, **kwargs):
        raise AssertionError("the Landscape page retrained a model that Train & compare had cached")

    monkeypatch.setattr(ex, "fit", no_training)
    at = _page({k: v for k, v in TINY.items() if k != "losses"}, {"_lv.train": train})
    assert not at.button(key="landscape.use_train").disabled
    at.button(key="landscape.use_train").click().run()
    _clean(at)
    assert at.multiselect(key="landscape.losses.multiclass").value == ["cross_entropy", "gce"]
    assert at.slider(key="landscape.gce.q").value == 0.5
    titles = [a["text"] for a in _figure(at)["layout"]["annotations"]]
    assert titles[:2] == [
        runs.run_label(LossChoice("cross_entropy")),
        runs.run_label(LossChoice("gce", (("q", 0.5),))),
    ]
    assert at.query_params["losses"] == "cross_entropy,gce" and at.query_params["gce.q"] == "0.5"
    assert _page({}).button(key="landscape.use_train").disabled  # nothing to copy without Train & compare


# ----------------------------------------------------------------------------------------------- errors


@pytest.fixture
def broken_losses():
    """Two throwaway losses: one that cannot train, one that needs context only a training step has."""

    def lv_test_untrainable(logits, target):
        raise ValueError("this loss cannot train")

    def lv_test_training_only(logits, target, *, feature_norms=None):
        if feature_norms is None:
            raise ValueError("needs the feature norms of a training step")
        return F.cross_entropy(logits, target, reduction="none")

    for fn in (lv_test_untrainable, lv_test_training_only):
        register(title=fn.__name__, latex="", task="multiclass", paper="test only")(fn)
    yield "lv_test_untrainable", "lv_test_training_only"
    for fn in (lv_test_untrainable, lv_test_training_only):
        unregister(fn.__name__)


def test_a_failing_loss_gets_one_error_and_the_others_are_drawn(broken_losses):
    at = _page({**TINY, "losses": ",".join(("cross_entropy", *broken_losses))})
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 2, errors
    assert "lv_test_untrainable** could not train: this loss cannot train" in errors[0]
    assert "lv_test_training_only**: needs the feature norms of a training step" in errors[1]
    notes = [c.value for c in at.caption if c.value.startswith("**lv_test_training_only**")]
    assert (
        notes and "without feature norms" in notes[0]
    )  # context.approximations explains the missing context
    contours = [t for t in _figure(at)["data"] if t["type"] == "contour"]
    assert len(contours) == 1
    # its model trained: the interpolation to it is measured with a loss that needs no training context
    _open(at, "interpolation")
    assert not at.exception and at.selectbox(key="landscape.interp.measure").value == "cross_entropy"
    assert "Cross-entropy" in _figure(at, "landscape.fig.interp")["layout"]["title"]["text"]


def test_a_regression_experiment_draws_surfaces_without_boundaries():
    at = _page({"dataset": "sine", "n": "60", "width": "8", "depth": "1", "epochs": "20", "grid": "21"})
    _clean(at)
    assert len([t for t in _figure(at)["data"] if t["type"] == "contour"]) == 3  # squared, huber, cauchy
    assert any("need a classification dataset" in i.value for i in at.info)
    assert not any(m.label.startswith("Accuracy") for m in at.metric)
    assert math.isfinite(float(_metric(_open(at, "interpolation"), "Loss barrier")))


def test_absurd_requests_are_refused():
    base, choice = EXPERIMENT.base(), LossChoice("cross_entropy")
    with pytest.raises(ValueError, match=r"resolution must be an integer in \[2, 101\]"):
        lv.surface(base, choice, "random", 0, 1.0, "train", 1001)
    with pytest.raises(ValueError, match="axes must be one of"):
        lv.plane(base, choice, "hessian", 0, 1.0)
    with pytest.raises(ValueError, match="split must be one of"):
        lv.slices(base, choice, "random", 0, 1.0, "validation")


def test_the_cache_module_names_no_loss():
    source = Path(lv.__file__).read_text()
    assert not [name for name in losses.names() if f'"{name}"' in source or f"'{name}'" in source]
