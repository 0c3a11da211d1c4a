"""The Landscape page under AppTest, tiny configuration: surfaces on one scale that agree with a naive loop
over functional_call, toggles, a point picked by number inputs, interpolation, curvature vs dense Hessian."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch.func import functional_call

from lossviz import landscape, losses
from lossviz.models import make_model
from lossviz.train import with_state
from lossviz.ui import landscape as lv
from lossviz.ui import train as ui

PAGE = Path(__file__).resolve().parents[2] / "pages" / "landscape.py"
TIMEOUT = 120  # generous: the suite shares two cores; each run below takes a second or two

# 60 points, 10 epochs, one hidden layer of width 8 (42 parameters): two losses, a 21 x 21 grid
TINY = {
    "landscape.n": 60,
    "landscape.epochs": 10.0,
    "landscape.width": 8.0,
    "landscape.depth": 1,
    "landscape.losses.multiclass": ["cross_entropy", "focal"],
    "landscape.grid": 21.0,
}


def _page(
    state: dict | None = None, query: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    for key, value in {**{k: v for k, v in TINY.items() if k not in drop}, **(state or {})}.items():
        at.session_state[key] = value
    at.query_params.update(query or {})
    return at.run()


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


def _figure(at: AppTest, key: str) -> dict:
    for chart in at.get("plotly_chart"):
        if chart.proto.id.endswith(key):
            return _decode(json.loads(chart.proto.spec))
    raise AssertionError(f"no chart {key}; have {[c.proto.id[-30:] for c in at.get('plotly_chart')]}")


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _metric(at: AppTest, prefix: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(prefix))


def _trained(at: AppTest, name: str) -> tuple[torch.nn.Module, ui.TrainSettings, dict[str, float]]:
    """The page's trained model for one loss, rebuilt here from its History (make_model + final_state)."""
    settings: ui.TrainSettings = at.session_state[lv.SETTINGS]
    params = dict(dict(settings.losses)[name])
    history = ui.train_run(settings.run_key(), name, tuple(sorted(params.items())))
    data = ui.dataset(settings.data)
    net = make_model(
        "mlp", data.n_features, data.n_classes, width=settings.width, depth=settings.depth,
        activation=settings.activation, seed=settings.seed,
    )  # fmt: skip
    return with_state(net, history.final_state), settings, params


def _naive_loss(net, name, params, X, y, d1, d2, a: float, b: float) -> float:
    """Mean loss at theta + a·d1 + b·d2: one functional_call, the registry function, a plain mean."""
    shifted = {
        k: p.detach() + a * torch.as_tensor(d1[k]) + b * torch.as_tensor(d2[k])
        for k, p in net.named_parameters()
    }
    with torch.no_grad():
        out = functional_call(net, shifted, (torch.as_tensor(X),))
    return float(losses.get(name)(out, torch.as_tensor(y), **params).mean())


def test_default_view_draws_all_losses_on_one_scale_matching_the_naive_loop():
    at = _page()
    _clean(at)
    assert at.title[0].value == "Loss landscape"
    spec = _figure(at, "landscape.fig.surfaces")
    contours = [t for t in spec["data"] if t["type"] == "contour"]
    assert len(contours) == 2 and {c["coloraxis"] for c in contours} == {"coloraxis"}
    assert len(contours[0]["x"]) == 21  # the refined grid
    grids = [t for t in spec["data"] if t.get("name") == "grid"]
    values = [np.asarray(g["customdata"], np.float64)[:, 0] for g in grids]
    cmin, cmax = spec["layout"]["coloraxis"]["cmin"], spec["layout"]["coloraxis"]["cmax"]
    assert cmin == pytest.approx(min(v.min() for v in values)) and cmax == pytest.approx(
        max(v.max() for v in values)
    )
    for name, grid in zip(["cross_entropy", "focal"], grids, strict=True):
        net, settings, params = _trained(at, name)
        data = ui.dataset(settings.data)
        # the same filter-normalized directions, recomputed independently of the page's cache
        d1, d2 = landscape.random_direction(net, 0), landscape.random_direction(net, 1)
        custom = np.asarray(grid["customdata"], np.float64)
        for k in (0, 57, 220, len(custom) - 1):
            naive = _naive_loss(
                net, name, params, data.X_train, data.y_train, d1, d2, grid["x"][k], grid["y"][k]
            )
            assert custom[k, 0] == pytest.approx(naive, rel=1e-4, abs=1e-6)
    assert any("filter-normalized" in c.value for c in at.caption)
    assert at.query_params["axes"] == "random" and at.query_params["losses"] == "cross_entropy,focal"


@pytest.mark.parametrize(
    ("widget", "key", "value"),
    [
        ("toggle", "landscape.3d", True),
        ("toggle", "landscape.log", True),
        ("radio", "landscape.split", "test"),
    ],
)
def test_toggles_rerun_cleanly(widget, key, value):
    at = _page()
    getattr(at, widget)(key=key).set_value(value).run()
    _clean(at)
    spec = _figure(at, "landscape.fig.surfaces")
    kinds = {t["type"] for t in spec["data"]}
    if key == "landscape.3d":
        assert "surface" in kinds and "contour" not in kinds and "scene" in spec["layout"]
        assert at.query_params["3d"] == "1"
    elif key == "landscape.log":
        contour = next(t for t in spec["data"] if t["type"] == "contour")
        grid = next(t for t in spec["data"] if t.get("name") == "grid")
        z = np.asarray(contour["z"], np.float64)  # (21, 21): every node is clickable at this size
        loss = np.asarray(grid["customdata"], np.float64)[:, 0]  # the raw losses, row-major like z
        assert np.allclose(z.ravel(), np.log10(loss))
        assert "log" in spec["layout"]["coloraxis"]["colorbar"]["title"]["text"]
    else:
        net, settings, params = _trained(at, "cross_entropy")
        data = ui.dataset(settings.data)
        grid = next(t for t in spec["data"] if t.get("name") == "grid")
        centre = next(
            i for i, (x, y) in enumerate(zip(grid["x"], grid["y"], strict=True)) if x == 0 and y == 0
        )
        zero = {k: np.zeros_like(v.detach().numpy()) for k, v in net.named_parameters()}
        naive = _naive_loss(net, "cross_entropy", params, data.X_test, data.y_test, zero, zero, 0.0, 0.0)
        assert grid["customdata"][centre][0] == pytest.approx(naive, rel=1e-5)  # the clean test set


def test_pca_axes_put_the_trajectory_in_the_plane_ending_at_the_origin():
    at = _page()
    at.radio(key="landscape.axes").set_value("pca").run()
    _clean(at)
    spec = _figure(at, "landscape.fig.surfaces")
    paths = [t for t in spec["data"] if t.get("name") == "training trajectory"]
    assert paths and all(
        p["x"][-1] == pytest.approx(0, abs=1e-9) and p["y"][-1] == pytest.approx(0, abs=1e-9) for p in paths
    )
    assert spec["layout"]["xaxis"]["title"]["text"] == "PC1"
    _net, settings, params = _trained(at, "cross_entropy")
    history = ui.train_run(settings.run_key(), "cross_entropy", tuple(sorted(params.items())))
    pca = landscape.pca_directions(history.snapshots, history.final_state)
    assert np.allclose(paths[0]["x"], pca.coords[:, 0]) and np.allclose(paths[0]["y"], pca.coords[:, 1])
    assert any("Variance explained" in c.value for c in at.caption)


def test_choosing_a_point_shows_its_loss_and_decision_boundary():
    at = _page()
    at.selectbox(key="landscape.point.loss").set_value("focal")
    at.number_input(key="landscape.point.x").set_value(0.5)
    at.number_input(key="landscape.point.y").set_value(-0.25).run()
    _clean(at)
    net, settings, params = _trained(at, "focal")
    data = ui.dataset(settings.data)
    d1, d2 = landscape.random_direction(net, 0), landscape.random_direction(net, 1)
    naive = _naive_loss(net, "focal", params, data.X_train, data.y_train, d1, d2, 0.5, -0.25)
    assert float(_metric(at, "Loss at (0.5, -0.25)")) == pytest.approx(naive, rel=1e-3)
    assert float(_metric(at, "Loss at the centre")) == pytest.approx(
        _naive_loss(net, "focal", params, data.X_train, data.y_train, d1, d2, 0.0, 0.0), rel=1e-3
    )
    boundary = _figure(at, "landscape.fig.boundary")
    maps = [t for t in boundary["data"] if t["type"] == "contour"]
    assert len(maps) == 2 and boundary["layout"]["annotations"][1]["text"] == "at (0.5, -0.25)"
    # the right map is P(class 1) of the shifted weights: check one grid node against a direct forward pass
    xs, ys, z = np.asarray(maps[1]["x"]), np.asarray(maps[1]["y"]), np.asarray(maps[1]["z"], np.float64)
    i, j = 20, 45
    shifted = {k: p.detach() + 0.5 * d1[k] - 0.25 * d2[k] for k, p in net.named_parameters()}
    with torch.no_grad():
        logits = functional_call(net, shifted, (torch.tensor([[xs[j], ys[i]]], dtype=torch.float32),))
    assert z[i, j] == pytest.approx(float(torch.softmax(logits, -1)[0, 1]), abs=1e-5)
    assert not np.allclose(np.asarray(maps[0]["z"], np.float64), z)  # the point's boundary moved
    assert at.query_params["point.x"] == "0.5" and at.query_params["point.loss"] == "focal"


def test_interpolation_barrier_matches_a_naive_segment():
    at = _page()
    _clean(at)
    a, settings, _params_a = _trained(at, "cross_entropy")
    b, _, _ = _trained(at, "focal")
    data = ui.dataset(settings.data)
    theta_a = {k: p.detach() for k, p in a.named_parameters()}
    theta_b = {k: p.detach() for k, p in b.named_parameters()}
    alphas = np.linspace(-0.5, 1.5, 81)
    values = []
    for alpha in alphas:
        state = {k: (1 - alpha) * theta_a[k] + alpha * theta_b[k] for k in theta_a}
        with torch.no_grad():
            out = functional_call(a, state, (torch.as_tensor(data.X_train),))
        values.append(float(losses.get("cross_entropy")(out, torch.as_tensor(data.y_train)).mean()))
    values = np.asarray(values)
    inside = (alphas >= 0) & (alphas <= 1)
    gap = values[inside] - ((1 - alphas[inside]) * values[20] + alphas[inside] * values[60])
    assert float(_metric(at, "Loss barrier")) == pytest.approx(max(gap.max(), 0.0), rel=2e-3, abs=1e-6)
    spec = _figure(at, "landscape.fig.interp")
    line = next(t for t in spec["data"] if t["name"] == "loss")
    assert np.allclose(line["y"], values, rtol=1e-4, atol=1e-6)


def _flat_loss(net: torch.nn.Module, name: str, params: dict, X: np.ndarray, y: np.ndarray):
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    sizes = [p.numel() for _, p in net.named_parameters()]
    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y)
    model = net.double()

    def loss(theta: torch.Tensor) -> torch.Tensor:
        state = {k: t.reshape(s) for k, t, s in zip(names, theta.split(sizes), shapes, strict=True)}
        return losses.get(name)(functional_call(model, state, (Xt,)), yt, **params).mean()

    theta = torch.cat([p.detach().double().reshape(-1) for _, p in net.named_parameters()])
    return loss, theta


def test_curvature_agrees_with_the_dense_hessian():
    at = _page()
    at.button(key="landscape.curvature.button").click().run()
    _clean(at)
    table = at.dataframe[0].value
    spec = _figure(at, "landscape.fig.sharpness")
    threshold = next(t for t in spec["data"] if t["name"].startswith("2/lr"))
    settings: ui.TrainSettings = at.session_state[lv.SETTINGS]
    assert threshold["y"][0] == pytest.approx(2.0 / settings.lr)
    assert _figure(at, "landscape.fig.spectrum")["data"]
    for row, name in enumerate(["cross_entropy", "focal"]):
        net, settings, params = _trained(at, name)
        data = ui.dataset(settings.data)
        loss, theta = _flat_loss(net, name, params, data.X_train, data.y_train)
        H = torch.autograd.functional.hessian(loss, theta)  # (42, 42) dense
        eig = torch.linalg.eigvalsh(H).flip(0).numpy()
        assert int(table["parameters"][row]) == theta.numel()
        for k, column in enumerate(("λ₁", "λ₂", "λ₃")):
            assert float(table[column][row]) == pytest.approx(eig[k], rel=1e-3, abs=1e-5)
        # Hutchinson with 32 Rademacher probes: within 4 standard deviations of the exact trace
        var = 2 * (float((H**2).sum()) - float((torch.diagonal(H) ** 2).sum())) / 32
        assert abs(float(table["trace (Hutchinson)"][row]) - float(torch.trace(H))) <= 4 * var**0.5 + 1e-6
        assert float(table["λ₁ · lr / 2"][row]) == pytest.approx(eig[0] * settings.lr / 2, rel=1e-3)


def test_unsupported_loss_is_explained_and_the_others_drawn():
    at = _page({"landscape.losses.multiclass": ["cross_entropy", "elr"]})
    assert not at.exception
    assert any("ELR" in i.value or "ema_target" in i.value for i in at.info)
    contours = [t for t in _figure(at, "landscape.fig.surfaces")["data"] if t["type"] == "contour"]
    assert len(contours) == 1


def test_url_restores_the_view_and_ignores_garbage():
    at = _page(query={"axes": "pca", "log": "1", "span": "2", "grid": "7"}, drop=("landscape.grid",))
    assert not at.exception
    assert at.radio(key="landscape.axes").value == "pca" and at.toggle(key="landscape.log").value is True
    assert at.session_state["landscape.span"] == 2.0
    assert any("grid=7" in w.value for w in at.warning)  # outside 21..101: ignored with a warning
    assert at.session_state["landscape.grid"] == 41


def test_a_train_and_compare_run_is_reused_without_training(monkeypatch):
    settings = ui.TrainSettings(
        data=ui.DataSettings(n=60, noise=0.2), width=8, depth=1, epochs=10,
        losses=(("cross_entropy", ()), ("gce", (("q", 0.7),))),
    )  # fmt: skip
    histories = {name: ui.train_run(settings.run_key(), name, params) for name, params in settings.losses}

    def no_training(*args, **kwargs):
        raise AssertionError("the Landscape page retrained a model that Train & Compare had cached")

    monkeypatch.setattr(ui, "fit", no_training)
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.session_state[ui.LAST_RESULT] = ui.TrainResult(settings=settings, histories=histories, errors={})
    at.run()
    _clean(at)
    assert at.session_state[lv.SETTINGS] == settings
    assert at.radio(key="landscape.source").value == "train"
    titles = [a["text"] for a in _figure(at, "landscape.fig.surfaces")["layout"]["annotations"]]
    assert titles[:2] == [ui.run_label("cross_entropy"), ui.run_label("gce", (("q", 0.7),))]


def test_clicked_point_reads_streamlit_selection_events():
    panels = ["cross_entropy", "focal"]
    # the event a click on a grid node of the second panel produced in Chromium (customdata as a typed array)
    event = {
        "selection": {
            "points": [
                {"curve_number": 6, "point_index": 330, "x": 0.5, "y": 0.5,
                 "customdata": {"0": 0.6486, "1": 0.605, "2": 1}}
            ],
            "point_indices": [330], "box": [], "lasso": [],
        }
    }  # fmt: skip
    assert lv.clicked_point(event, panels) == ("focal", 0.5, 0.5)
    listed = {"selection": {"points": [{"x": -0.25, "y": 0.125, "customdata": [0.1, 0.9, 0]}]}}
    assert lv.clicked_point(listed, panels) == ("cross_entropy", -0.25, 0.125)
    assert lv.clicked_point({"selection": {"points": [{"x": 1.0, "y": 1.0}]}}, panels) is None  # no panel
    assert (
        lv.clicked_point({"selection": {"points": [{"x": 1, "y": 1, "customdata": [0, 0, 5]}]}}, panels)
        is None
    )
    assert lv.clicked_point(None, panels) is None


def test_absurd_grids_are_refused():
    settings = ui.TrainSettings(data=ui.DataSettings(n=60, noise=0.2), width=8, depth=1, epochs=10)
    with pytest.raises(ValueError, match=r"resolution must be an integer in \[2, 101\]"):
        lv.surface(settings, "cross_entropy", (), "random", 0, 1.0, "train", 1001)
    with pytest.raises(ValueError, match="axes must be one of"):
        lv.plane(settings, "cross_entropy", (), "hessian", 0, 1.0)
