"""Landscape figures: one colour scale and one set of contour levels for all panels, the grid convention, the
clickable grid nodes and how a click on them is read back, the trajectory, log ticks, interpolation barrier,
spectra and sharpness vs 2/lr, and the page's captions, metric cards and curvature table."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz.figures import landscape as figures
from lossviz.figures import palette
from lossviz.figures.landscape import SharpnessPanel, SlicePanel, SpectrumPanel, SurfacePanel
from lossviz.results import (
    Curvature,
    Curve,
    Dataset,
    DecisionMap,
    Interpolation,
    Plane,
    Sharpness,
    Spectrum,
    Surface,
    TraceEstimate,
    Trajectory,
)
from tests.figures.checks import assert_round_log_ticks


def _surface(scale: float = 1.0, offset: float = 0.0, n: int = 5, acc: bool = True) -> Surface:
    xs = np.linspace(-1.0, 1.0, n)
    ys = np.linspace(-2.0, 2.0, n + 2)  # a different length catches a transposed z
    gx, gy = np.meshgrid(xs, ys)
    z = offset + scale * (gx**2 + 0.5 * gy**2 + 0.3 * gx)  # (ny, nx), z[i, j] at (xs[j], ys[i])
    return Surface(xs=xs, ys=ys, z=z, label="loss", accuracy=1.0 / (1.0 + z) if acc else None)


def _trajectory() -> Trajectory:
    x = np.array([-0.8, -0.5, -0.2, 0.0])
    return Trajectory(name="t", x=x, y=0.5 * x, epochs=np.array([0, 10, 20, 30]))


def _panels(surfaces, names, titles=None, trajectories=None) -> list[SurfacePanel]:
    titles = titles or [n.upper() for n in names]
    trajectories = trajectories or [None] * len(surfaces)
    return [SurfacePanel(*p) for p in zip(names, titles, surfaces, trajectories, strict=True)]


def _traces(fig: go.Figure, kind: str) -> list:
    return [t for t in fig.data if t.type == kind]


@pytest.mark.parametrize(("n", "shape"), [(1, (1, 1)), (2, (1, 2)), (3, (1, 3)), (4, (2, 2)), (5, (2, 3))])
def test_grid_shape(n, shape):
    assert figures.grid_shape(n) == shape


def test_grid_shape_rejects_zero():
    with pytest.raises(ValueError, match="n must be >= 1"):
        figures.grid_shape(0)


def test_shared_range_spans_every_surface_linear_and_log():
    a, b = _surface(1.0, 0.1), _surface(3.0, 0.5)
    low, high = figures.shared_range([a, b])
    assert low == pytest.approx(min(a.z.min(), b.z.min()))
    assert high == pytest.approx(max(a.z.max(), b.z.max()))
    low, high = figures.shared_range([a, b], log=True)
    assert low == pytest.approx(math.log10(min(a.z.min(), b.z.min())))
    assert high == pytest.approx(math.log10(max(a.z.max(), b.z.max())))


def test_shared_range_widens_a_flat_landscape():
    flat = Surface(xs=np.arange(3.0), ys=np.arange(3.0), z=np.full((3, 3), 2.0))
    assert figures.shared_range([flat]) == (1.5, 2.5)


def test_log_scale_clips_non_positive_values_at_the_floor():
    s = Surface(xs=np.arange(3.0), ys=np.arange(2.0), z=np.array([[0.0, 1e-3, 1.0], [-1.0, 10.0, 100.0]]))
    floor = figures.log_floor([s])
    assert floor == pytest.approx(1e-3)  # the smallest positive value (above 1e-6 of the largest)
    z = figures.scaled(s.z, True, floor)
    assert np.allclose(z, [[-3, -3, 0], [-3, 1, 2]])


def test_surfaces_share_one_coloraxis_and_the_same_contour_levels():
    surfaces = [_surface(1.0), _surface(2.0, 0.2), _surface(0.5, 0.05)]
    names = ["cross_entropy", "focal", "gce"]
    fig = figures.surfaces_figure(panels=_panels(surfaces, names, ["A", "B", "C"], [_trajectory()] * 3))
    maps, contours = _traces(fig, "heatmap"), _traces(fig, "contour")  # a heat map under contour lines
    assert len(maps) == 3 and len(contours) == 3
    low, high = figures.shared_range(surfaces)
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == figures.LEVEL_STEPS
    assert {m.coloraxis for m in maps} == {"coloraxis"}  # one scale: a colour means one loss in every panel
    levels = {(c.contours.start, c.contours.end, c.contours.size) for c in contours}
    assert len(levels) == 1 and {c.contours.coloring for c in contours} == {"none"}  # lines only, same levels
    for heat, contour, surface in zip(maps, contours, surfaces, strict=True):
        # grid convention: x = xs, y = ys and z[i, j] at (xs[j], ys[i]) unchanged
        assert np.allclose(heat.x, surface.xs) and np.allclose(heat.y, surface.ys)
        step = (high - low) / figures.LEVEL_STEPS  # uint16 steps of the shared range: lean JSON
        assert heat.z.dtype == np.uint16
        np.testing.assert_allclose(figures.dequantise(heat.z, low, high), surface.z, atol=0.51 * step)
        np.testing.assert_array_equal(contour.z, heat.z)  # a small grid: the lines from every node
    assert [a.text for a in fig.layout.annotations][:3] == ["A", "B", "C"]
    assert [a.font.color for a in fig.layout.annotations][:3] == [palette.color_for(n) for n in names]


def test_clickable_grid_nodes_carry_loss_accuracy_and_panel():
    surfaces = [_surface(n=41), _surface(2.0, n=41)]
    fig = figures.surfaces_figure(panels=_panels(surfaces, ["cross_entropy", "focal"]))
    grids = [t for t in fig.data if t.name == figures.GRID_NAME]
    assert len(grids) == 2
    for panel, (grid, surface) in enumerate(zip(grids, surfaces, strict=True)):
        data = np.asarray(grid.customdata, dtype=np.float64)
        assert len(grid.x) <= figures.CLICK_NODES**2  # thinned for the browser
        assert np.all(data[:, 2] == panel)
        for x, y, (loss, acc, _) in zip(grid.x, grid.y, data, strict=True):
            j, i = int(np.argmin(abs(surface.xs - x))), int(np.argmin(abs(surface.ys - y)))
            assert surface.xs[j] == pytest.approx(x) and surface.ys[i] == pytest.approx(y)  # a node
            assert loss == pytest.approx(surface.z[i, j]) and acc == pytest.approx(surface.accuracy[i, j])


def test_trajectory_centre_and_chosen_point_are_drawn():
    fig = figures.surfaces_figure(
        panels=_panels([_surface(), _surface(2.0)], ["cross_entropy", "focal"], None, [_trajectory(), None]),
        point=(1, 0.25, -0.5),
    )
    lines = [t for t in fig.data if t.name == "training trajectory"]
    assert (
        len(lines) == 1
        and np.allclose(lines[0].x, _trajectory().x)
        and np.allclose(lines[0].y, _trajectory().y)
    )
    assert np.allclose(np.asarray(lines[0].customdata)[:, 0], [0, 10, 20, 30])  # epochs for the hover
    centres = [t for t in fig.data if t.name == "trained weights (centre)"]
    assert len(centres) == 2 and all(t.x == (0.0,) and t.y == (0.0,) for t in centres)
    chosen = [t for t in fig.data if t.name == "chosen point"]
    assert len(chosen) == 1 and chosen[0].x == (0.25,) and chosen[0].y == (-0.5,)
    assert chosen[0].xaxis == "x2"  # on the second panel


def test_log_surfaces_plot_log10_with_ticks_in_loss_units():
    surface = _surface(1.0, 0.01)
    fig = figures.surfaces_figure(panels=_panels([surface], ["cross_entropy"]), log=True)
    heat = _traces(fig, "heatmap")[0]
    low, high = figures.shared_range([surface], log=True)
    decoded = figures.dequantise(heat.z, low, high)
    np.testing.assert_allclose(decoded, np.log10(surface.z), atol=0.51 * (high - low) / figures.LEVEL_STEPS)
    bar = fig.layout.coloraxis.colorbar
    assert bar.tickmode == "array" and len(bar.tickvals) >= 2
    for q, t in zip(bar.tickvals, bar.ticktext, strict=True):  # labels in loss units, at round values
        v = float(figures.dequantise(q, low, high))
        assert float(t) == pytest.approx(10**v, rel=1e-6)
        mantissa = 10**v / 10 ** math.floor(v + 1e-12)
        assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9
    hover = np.asarray(next(t for t in fig.data if t.name == figures.GRID_NAME).customdata, np.float64)
    assert hover[:, 0].min() == pytest.approx(surface.z.min())  # the hover keeps the loss itself


def test_three_d_lifts_the_trajectory_onto_the_surface():
    surface = _surface(n=9)
    trajectory = Trajectory(name="t", x=surface.xs[[1, 4, 6]], y=surface.ys[[2, 5, 8]], epochs=np.arange(3))
    fig = figures.surfaces_figure(
        panels=_panels([surface], ["cross_entropy"], None, [trajectory]), three_d=True
    )
    assert len(_traces(fig, "surface")) == 1 and not _traces(fig, "contour") and not _traces(fig, "heatmap")
    path = next(t for t in fig.data if t.name == "training trajectory")
    lift = 0.01 * (surface.z.max() - surface.z.min())
    assert np.allclose(np.asarray(path.z) - lift, surface.z[[2, 5, 8], [1, 4, 6]], rtol=1e-6)  # on nodes
    low, high = figures.shared_range([surface])
    assert tuple(fig.layout.scene.zaxis.range) == pytest.approx((low, high))  # the shared scale on z too


def test_bilinear_is_exact_for_bilinear_functions():
    xs, ys = np.linspace(0, 1, 4), np.linspace(-1, 2, 5)
    gx, gy = np.meshgrid(xs, ys)
    surface = Surface(xs=xs, ys=ys, z=1 + 2 * gx - gy + 0.5 * gx * gy)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, 20), rng.uniform(-1, 2, 20)
    # bilinear interpolation reproduces a bilinear function only inside each cell, where it is exact
    assert np.allclose(figures._bilinear(surface, x, y), 1 + 2 * x - y + 0.5 * x * y)


def test_surfaces_figure_needs_a_panel():
    with pytest.raises(ValueError, match="at least one"):
        figures.surfaces_figure(panels=[])
    with pytest.raises(TypeError):
        figures.surfaces_figure([SurfacePanel("a", "A", _surface())])  # type: ignore[misc]


def test_trajectory_checks_its_lengths():
    with pytest.raises(ValueError, match=r"Trajectory.epochs has shape \(2,\), expected \(4,\)"):
        Trajectory(name="t", x=np.zeros(4), y=np.zeros(4), epochs=np.arange(2))


@pytest.mark.parametrize(("zmin", "zmax"), [(-2.0, 1.0), (-0.3, 0.4), (0.31, 0.39), (-9.0, 6.0)])
def test_log_colour_bar_ticks_read_loss_values(zmin, zmax):
    values, labels = figures.log_colorbar_ticks(zmin, zmax)
    assert len(values) >= 2 and all(zmin - 1e-9 <= v <= zmax + 1e-9 for v in values)
    for v, text in zip(values, labels, strict=True):
        assert float(text) == pytest.approx(10**v, rel=1e-9)  # never the log10 value itself


def _slice_panels(log_values: bool = True) -> list[SlicePanel]:
    x = np.linspace(-1, 1, 11)
    y = np.linspace(0.1, 2, 11) if log_values else np.linspace(-1, 1, 11)
    curves = {n: Curve(name=n, x=x, y=y * (k + 1), label=n.upper()) for k, n in enumerate(("a", "b"))}
    return [SlicePanel(n, c.label, c, c) for n, c in curves.items()]


def test_slices_figure_has_both_axes_per_loss():
    fig = figures.slices_figure(panels=_slice_panels(), log=True)
    assert len(fig.data) == 4
    assert [t.name for t in fig.data] == ["A", "B", "A", "B"]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert_round_log_ticks(fig.layout.yaxis)  # round 1-2-5 ticks instead of Plotly's minor digits
    assert_round_log_ticks(fig.layout.yaxis2)
    linear = figures.slices_figure(panels=_slice_panels(False))
    assert linear.layout.yaxis.type == "linear"


def test_interpolation_figure_marks_the_barrier_above_the_chord():
    alphas = np.linspace(-0.5, 1.5, 81)
    loss = 1.0 + 0.2 * alphas + np.sin(np.pi * np.clip(alphas, 0, 1))  # a bump of height 1 at alpha = 0.5
    path = Interpolation(alphas=alphas, loss=loss, accuracy=np.full(81, 0.9), barrier=1.0, barrier_alpha=0.5)
    fig = figures.interpolation_figure(
        interpolation=path, name_a="cross_entropy", name_b="focal", labels=("CE", "Focal")
    )
    barrier = next(t for t in fig.data if t.name.startswith("barrier"))
    chord = next(t for t in fig.data if t.name == "linear chord")
    assert chord.y == pytest.approx((1.0, 1.2))  # the endpoint losses
    assert barrier.x == (0.5, 0.5) and barrier.y[1] - barrier.y[0] == pytest.approx(1.0)
    assert barrier.y[0] == pytest.approx(1.1)  # the chord's value at alpha = 0.5
    assert next(t for t in fig.data if t.name == "accuracy").yaxis == "y2"
    assert {a.text for a in fig.layout.annotations} >= {"CE", "Focal"}
    assert fig.layout.legend.orientation == "h"


def _spectrum(grid: np.ndarray, density: np.ndarray) -> Spectrum:
    return Spectrum(
        grid=grid, density=density, nodes=np.zeros((1, 2)), weights=np.zeros((1, 2)),
        eigenvalues=np.array([2.0]), trace=2.0, n_params=3, sigma=0.1,
    )  # fmt: skip


def test_spectrum_figure_is_positive_on_a_log_axis_with_round_ticks():
    grid = np.linspace(-1, 5, 50)
    density = np.exp(-((grid - 2) ** 2))
    density[:10] = 0.0
    fig = figures.spectrum_figure(panels=[SpectrumPanel("cross_entropy", "CE", _spectrum(grid, density))])
    assert min(fig.data[0].y) > 0 and fig.data[0].name == "CE"
    assert fig.data[0].line.color == palette.color_for("cross_entropy")
    assert_round_log_ticks(fig.layout.yaxis)


def test_sharpness_figure_draws_two_over_lr_as_a_trace():
    steps = np.arange(0, 50, 10)
    near = Sharpness(steps=steps, top_eigenvalue=np.array([5.0, 12, 18, 19.5, 20.1]), threshold=20.0)
    fig = figures.sharpness_figure(panels=[SharpnessPanel("cross_entropy", "CE", near)])
    line = next(t for t in fig.data if t.name.startswith("2/lr"))
    assert line.y == (20.0, 20.0) and line.x == (0.0, 40.0)
    assert fig.layout.yaxis.type != "log" and not fig.layout.shapes  # close to 2/lr: a linear axis
    far = Sharpness(steps=steps, top_eigenvalue=np.array([0.5, 1, 2, 3, 4.0]), threshold=200.0)
    fig = figures.sharpness_figure(panels=[SharpnessPanel("cross_entropy", "CE", far)])
    assert_round_log_ticks(fig.layout.yaxis)
    assert 200.0 in fig.layout.yaxis.tickvals


def test_ten_losses_leave_the_plots_their_full_width():
    x = np.linspace(-1, 1, 11)
    names = [f"loss_{i}" for i in range(10)]
    line = Curve(name="a", x=x, y=1 + x**2)
    spectra = [SpectrumPanel(n, f"Loss {n} with a long label", _spectrum(x, np.exp(-(x**2)))) for n in names]
    slices = [SlicePanel(n, f"Loss {n} with a long label", line, line) for n in names]
    for fig in (figures.spectrum_figure(panels=spectra), figures.slices_figure(panels=slices)):
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"
        assert fig.layout.xaxis.domain is None or fig.layout.xaxis.domain[0] == 0.0
        last = fig.layout.xaxis2.domain if "xaxis2" in fig.layout else fig.layout.xaxis.domain
        assert last is None or last[1] == 1.0
        assert fig.layout.margin.b > palette.LEGEND_ROW_PX * palette.legend_rows([p.label for p in spectra])


def test_the_chosen_point_can_be_named_by_its_loss():
    panels = _panels([_surface(), _surface(2.0)], ["cross_entropy", "focal"])
    chosen = [t for t in figures.surfaces_figure(panels=panels, point=("focal", 0.25, -0.5)).data
              if t.name == "chosen point"]  # fmt: skip
    assert len(chosen) == 1 and chosen[0].xaxis == "x2" and chosen[0].x == (0.25,)
    unknown = figures.surfaces_figure(panels=panels, point=("gce", 0.25, -0.5))
    in_3d = figures.surfaces_figure(panels=panels, point=("focal", 0.25, -0.5), three_d=True)
    for absent in (unknown, in_3d):
        assert not [t for t in absent.data if t.name == "chosen point"]


# ------------------------------------------------------------------------------------ reading a click back


def _event(*points: dict) -> dict:
    return {"selection": {"points": list(points), "point_indices": [], "box": [], "lasso": []}}


def test_clicked_point_reads_the_customdata_the_surfaces_figure_writes():
    names = ["cross_entropy", "focal"]
    fig = figures.surfaces_figure(
        panels=_panels([_surface(), _surface(2.0)], names, None, [_trajectory()] * 2)
    )
    grid = [t for t in fig.data if t.name == figures.GRID_NAME][1]  # the second panel's clickable nodes
    node = {
        "x": float(grid.x[7]),
        "y": float(grid.y[7]),
        "customdata": [float(v) for v in grid.customdata[7]],
    }
    assert figures.clicked_point(_event(node), names) == ("focal", round(node["x"], 4), round(node["y"], 4))
    snapshot = next(t for t in fig.data if t.name == "training trajectory" and t.xaxis == "x2")
    click = {"x": float(snapshot.x[1]), "y": float(snapshot.y[1]), "customdata": list(snapshot.customdata[1])}
    assert figures.clicked_point(_event(click), names)[0] == "focal"
    centre = next(t for t in fig.data if t.name == "trained weights (centre)")
    click = {"x": 0.0, "y": 0.0, "customdata": list(centre.customdata[0])}
    assert figures.clicked_point(_event(click), names) == ("cross_entropy", 0.0, 0.0)


def test_clicked_point_takes_typed_arrays_rounds_and_skips_points_without_a_panel():
    names = ["cross_entropy", "focal"]
    # Chromium sends a typed customdata array as an object keyed by index
    typed = {"x": 0.123456, "y": -0.5, "customdata": {"0": 0.6486, "1": 0.605, "2": 1}}
    assert figures.clicked_point(_event(typed), names) == ("focal", 0.1235, -0.5)
    unnamed = [
        {"x": 1.0, "y": 1.0},  # the chosen-point mark: no customdata
        {"x": 1.0, "y": 1.0, "customdata": [0.1, 0.9, 5]},  # no such panel
        {"x": 1.0, "y": 1.0, "customdata": [0.1, 0.9, None]},  # NaN arrives as null
        {"x": 1.0, "y": 1.0, "customdata": [0.1, 0.9]},
        {"x": None, "y": 1.0, "customdata": [0.1, 0.9, 0]},
    ]
    assert figures.clicked_point(_event(*unnamed), names) is None
    assert figures.clicked_point(_event(*unnamed, typed), names) == (
        "focal",
        0.1235,
        -0.5,
    )  # the first that names
    for nothing in (None, {}, {"selection": None}, {"selection": {"points": []}}):
        assert figures.clicked_point(nothing, names) is None


# ------------------------------------------------------------------------- captions, cards and tables


def _plane(residual: float = 0.25, explained: tuple[float, float] | None = None) -> Plane:
    return Plane(
        d1={}, d2={}, trajectory=_trajectory(), xlim=(-1.0, 1.0), ylim=(-1.0, 1.0), axis_names=("a", "b"),
        explained=None if explained is None else np.asarray(explained), residual=residual,
    )  # fmt: skip


def test_surfaces_caption_names_the_axes_and_what_each_plane_keeps():
    random = figures.surfaces_caption("random", 3, "test", {"CE": _plane(0.25), "Focal": _plane(0.5)})
    assert "seeds 3, 4" in random and "**filter-normalized**" in random
    assert "CE 75%, Focal 50%" in random and "loss on the test set" in random
    pca = figures.surfaces_caption("pca", 0, "train", {"CE": _plane(explained=(0.6, 0.3))})
    tiny = figures.surfaces_caption("random", 0, "train", {"CE": _plane(0.997), "Focal": _plane(1.0)})
    assert "CE <1%, Focal 0%" in tiny  # a random plane of a big model holds little of the trajectory
    assert "Variance explained: CE 60% + 30%" in pca and "loss on the train set" in pca
    assert "seeds" not in pca


def test_point_metrics_compare_the_point_with_the_centre():
    cards = figures.point_metrics(0.5, -0.25, (1.0, 0.9), (1.5, 0.8))
    assert [c["label"] for c in cards] == [
        "Loss at (0.5, -0.25)", "Loss at the centre", "Accuracy at the point", "Accuracy at the centre",
    ]  # fmt: skip
    assert [c["value"] for c in cards] == ["1.5", "1", "80.0%", "90.0%"]
    assert cards[0]["delta"] == "+0.5 vs centre" and cards[0]["delta_color"] == "inverse"  # lower is better
    assert cards[2]["delta"] == "-10.0 pts" and "delta_color" not in cards[2]
    at_centre = figures.point_metrics(0.0, 0.0, (1.0, 0.9), (1.0, 0.9))
    assert all(c.get("delta") is None for c in at_centre)
    regression = figures.point_metrics(0.5, 0.5, (1.0, math.nan), (2.0, math.nan))
    assert [c["label"] for c in regression] == ["Loss at (0.5, 0.5)", "Loss at the centre"]


def test_barrier_metrics():
    path = Interpolation(alphas=np.linspace(0, 1, 3), loss=np.ones(3), accuracy=None, barrier=0.01234,
                         barrier_alpha=0.5)  # fmt: skip
    cards = figures.barrier_metrics(path)
    assert [(c["label"], c["value"]) for c in cards] == [("Loss barrier", "0.01234"), ("at α", "0.50")]
    assert "chord" in cards[0]["help"]
    flat = Interpolation(alphas=np.linspace(0, 1, 3), loss=np.ones(3), accuracy=None, barrier=0.0,
                         barrier_alpha=0.0)  # fmt: skip
    assert [c["value"] for c in figures.barrier_metrics(flat)] == ["0", "—"]  # no barrier, so nowhere


def _curvature(eigenvalues, trace: TraceEstimate, n_params: int = 42) -> Curvature:
    grid = np.linspace(0, 1, 5)
    sharp = Sharpness(steps=np.arange(3), top_eigenvalue=np.ones(3), threshold=20.0)
    return Curvature(eigenvalues=np.asarray(eigenvalues), trace=trace, spectrum=_spectrum(grid, np.ones(5)),
                     sharpness=sharp, n_params=n_params)  # fmt: skip


def test_curvature_table_has_one_row_per_loss_with_its_trace_and_stability():
    exact = _curvature([4.0, 2.0, 1.0], TraceEstimate(7.5, 0.0, "exact", 42))
    sampled = _curvature([30.0, 3.0], TraceEstimate(40.0, 1.5, "hutch++", 64), n_params=5000)
    rows = figures.curvature_table(curvatures={"cross_entropy": exact, "focal": sampled},
                                   labels={"cross_entropy": "CE", "focal": "Focal"}, lr=0.1)  # fmt: skip
    assert rows[0] == {
        "loss": "CE", "λ₁": 4.0, "λ₂": 2.0, "λ₃": 1.0, "tr(H)": 7.5, "± s.e.": 0.0,
        "trace by": "exact, 42 HVPs", "λ₁ · lr / 2": pytest.approx(0.2), "parameters": 42,
    }  # fmt: skip
    assert rows[1]["loss"] == "Focal" and "λ₃" not in rows[1]  # only the eigenvalues found
    assert rows[1]["λ₁ · lr / 2"] == pytest.approx(1.5) and rows[1]["± s.e."] == 1.5
    assert rows[1]["trace by"] == "hutch++, 64 HVPs" and rows[1]["parameters"] == 5000


def test_sharpness_caption_says_whether_two_over_lr_applies():
    gd = figures.sharpness_caption(lr=0.1, optimizer="SGD", full_batch_gd=True)
    assert "2/lr = 20" in gd and "full-batch gradient descent: the threshold applies" in gd
    adam = figures.sharpness_caption(lr=0.01, optimizer="Adam", full_batch_gd=False)
    assert "2/lr = 200" in adam and "Adam, whose effective step differs" in adam


def test_point_boundary_figure_puts_the_trained_map_beside_the_point_map():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)).astype(np.float32), rng.integers(0, 2, 20)
    data = Dataset(
        name="toy", task="binary", X_train=X, y_train=y, y_train_clean=y, noisy_mask=np.zeros(20, bool),
        X_test=X, y_test=y, feature_names=("x0", "x1"), class_names=("c0", "c1"), n_classes=2,
    )  # fmt: skip
    xs, ys = np.linspace(-2, 2, 6), np.linspace(-1, 1, 4)
    p = np.clip(np.add.outer(ys, xs) / 4 + 0.5, 0, 1)  # (4, 6)
    maps = (DecisionMap(xs, ys, np.stack([1 - p, p], -1)), DecisionMap(xs, ys, np.stack([p, 1 - p], -1)))
    fig = figures.point_boundary_figure(data=data, name="focal", label="Focal", maps=maps, point=(0.5, -0.25))
    titles = [a.text for a in fig.layout.annotations][:2]
    assert titles == ["Focal · trained weights", "at (0.5, -0.25)"]
    assert {a.font.color for a in fig.layout.annotations[:2]} == {palette.color_for("focal")}
    centre = figures.point_boundary_figure(data=data, name="focal", label="Focal", maps=maps, point=(0, 0))
    assert sum(t.type == "contour" for t in centre.data) == 1  # one map: the chosen point is the trained one
    assert centre.layout.annotations[0].text == "Focal · trained weights, the chosen point (0, 0)"


def test_a_surface_with_a_diverged_point_keeps_float32():
    surface = _surface(1.0)
    z = np.array(surface.z, copy=True)
    z[0, 0] = np.nan
    fig = figures.surfaces_figure(panels=_panels([replace(surface, z=z)], ["cross_entropy"]))
    assert _traces(fig, "heatmap")[0].z.dtype == np.float32


def test_a_large_grid_draws_its_lines_from_at_most_line_nodes_per_axis():
    surface = _surface(n=101)
    fig = figures.surfaces_figure(panels=_panels([surface], ["cross_entropy"]))
    (heat,), (lines,) = _traces(fig, "heatmap"), _traces(fig, "contour")
    assert heat.z.shape == (103, 101) and lines.z.shape == (35, 51)  # every 3rd row and 2nd column: exact
    np.testing.assert_array_equal(lines.z, heat.z[::3, ::2])
    assert np.allclose(lines.x, surface.xs[::2]) and np.allclose(lines.y, surface.ys[::3])


def test_a_large_grid_stays_within_a_step_budget():
    big = [_surface(1.0 + k, n=101) for k in range(3)]
    fig = figures.surfaces_figure(panels=_panels(big, ["cross_entropy", "focal", "gce"]))
    assert len(fig.to_json()) < 150 * 1024
