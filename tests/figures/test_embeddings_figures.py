"""Figures of the Embeddings page: traces, colours, the unit circle, densities that integrate to one."""

from __future__ import annotations

import numpy as np
import pytest

from lossviz import contrastive
from lossviz.figures import embeddings as F
from lossviz.figures import palette
from lossviz.figures.train import class_color
from tests.figures.checks import assert_round_log_ticks


def _points(n: int = 60, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(n) % 3


def test_circle_panels_draw_the_unit_circle_and_one_trace_per_class():
    x, y = _points()
    fig = F.sphere_figure(
        panels=[F.SpherePanel("info_nce", "InfoNCE", x, y), F.SpherePanel("supcon", "S", x, y)]
    )
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 6 and {t.marker.color for t in markers} == {class_color(k) for k in range(3)}
    circle = next(t for t in fig.data if t.mode == "lines")
    np.testing.assert_allclose(np.hypot(circle.x, circle.y), 1, atol=1e-6)
    assert fig.layout.annotations[0].font.color == palette.color_for("info_nce")
    assert len(fig.to_json()) < 150 * 1024


def test_sphere_panels_use_3d_scenes_and_refuse_mixed_dimensions():
    x3, y = _points(d=3)
    fig = F.sphere_figure(panels=[F.SpherePanel("info_nce", "a", x3, y)])
    assert {t.type for t in fig.data} == {"scatter3d"}
    x2, _ = _points()
    with pytest.raises(ValueError, match="one dimension"):
        F.sphere_figure(panels=[F.SpherePanel("a", "a", x2, y), F.SpherePanel("b", "b", x3, y)])


def test_angle_densities_integrate_to_one_per_class():
    x, y = _points(300)
    fig = F.angle_density_figure(panels=[F.SpherePanel("info_nce", "a", x, y)])
    for trace in fig.data:
        assert np.sum(trace.y) * (360 / F.ANGLE_BINS) == pytest.approx(1.0, rel=1e-5)


def test_align_uniform_path_ends_in_a_star():
    fig = F.align_uniform_figure(
        panels=[
            F.PathPanel("supcon", "SupCon", np.array([0.0, -1, -2]), np.array([1.0, 0.5, 0.2]), np.arange(3))
        ]
    )
    line, star = fig.data
    assert list(line.x) == [0, -1, -2] and star.marker.symbol == "star" and star.x[0] == -2


def test_similarity_histograms_are_percent_of_each_group():
    rng = np.random.default_rng(0)
    fig = F.similarity_histogram_figure(
        panels=[F.SimilarityPanel("supcon", "S", rng.uniform(0.5, 1, 50), rng.uniform(-1, 0.3, 400))]
    )
    assert [t.name for t in fig.data] == ["negative pairs", "positive pairs"]
    for trace in fig.data:
        assert np.sum(trace.y) == pytest.approx(100.0, rel=1e-5)


def test_negative_weights_and_pair_planes_draw_from_the_library():
    sims = np.linspace(-0.9, 0.9, 11)
    curves = [contrastive.negative_weights(sims, t) for t in (0.05, 0.2, 1.0)]
    fig = F.negative_weight_figure(curves=curves)
    assert [t.name for t in fig.data] == ["τ = 0.05", "τ = 0.2", "τ = 1"]
    planes = [
        F.PlanePanel(n, n, contrastive.pair_loss_surface(n, resolution=21)) for n in ("circle", "triplet")
    ]
    fig = F.pair_plane_figure(panels=planes)
    assert len([t for t in fig.data if t.type == "contour"]) == 2
    assert len(fig.to_json()) < 150 * 1024


def test_circle_panels_hide_their_axes():
    x, y = _points()
    fig = F.sphere_figure(panels=[F.SpherePanel("info_nce", "a", x, y), F.SpherePanel("supcon", "b", x, y)])
    for axis in (fig.layout.xaxis, fig.layout.yaxis2):
        assert axis.showline is False and axis.showticklabels is False


def _temperature_curves() -> list[F.TemperatureCurve]:
    sims = np.linspace(-0.975, 0.975, 40)
    curves = []
    for name, tau in (("", 0.05), ("supcon", 0.5)):
        weights = contrastive.negative_weights(sims, tau).y
        spread = float(contrastive.effective_negatives(sims, np.array([tau])).y[0])
        ring = np.linspace(0.3, 2 * np.pi - 0.3, 20)
        shares = contrastive.negative_weights(np.cos(ring), tau).y
        curves.append(F.TemperatureCurve(name, f"τ = {tau:g}", tau, sims, weights, spread, ring, shares))
    return curves


def test_temperature_figure_marks_each_tau_on_the_effective_negatives_curve():
    curves = _temperature_curves()
    spread = contrastive.effective_negatives(curves[0].similarities, np.logspace(-2, 0, 31))
    fig = F.temperature_figure(curves=curves, effective=spread)
    lines = [t for t in fig.data if t.xaxis == "x2" and t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["τ = 0.05", "τ = 0.5"]
    assert lines[0].line.color == F.OWN_TAU_COLOR and lines[1].line.color == palette.color_for("supcon")
    marks = [t for t in fig.data if t.xaxis == "x3" and t.mode == "markers+text"]
    assert [t.x[0] for t in marks] == [0.05, 0.5]
    assert float(marks[0].text[0]) < 3 < 15 < float(marks[1].text[0])  # few negatives share a small τ's push
    assert_round_log_ticks(fig.layout.xaxis3)
    assert "of 40" in fig.layout.yaxis3.title.text
    rings = [t for t in fig.data if t.xaxis == "x" and t.mode == "markers"]
    assert len(rings) == 2 and np.hypot(rings[1].x, rings[1].y) == pytest.approx(0.78, abs=1e-6)
    small, large = (np.asarray(r.marker.size) for r in rings)
    assert (small > 8).sum() <= 4 and (large > 5).all()  # τ = 0.05: the anchor's neighbours take the push
    assert np.argmax(small) in (0, len(small) - 1)
    with pytest.raises(ValueError, match="at least one"):
        F.temperature_figure(curves=[], effective=spread)


def _wedges(margin: float, k: int = 4) -> list[F.WedgePanel]:
    panels = []
    for kind in ("cosface", "arcface"):
        w = contrastive.margin_wedges(kind, k, margin, resolution=360)
        panels.append(F.WedgePanel(kind, kind, w.weight_angles, w.angles, w.winner, w.nearest))
    return panels


def test_margin_wedges_draw_a_filled_sector_per_class_and_an_arrow_per_weight():
    fig = F.margin_wedge_figure(panels=_wedges(0.35))
    filled = [t for t in fig.data if t.fill == "toself"]
    assert len(filled) == 2 * 2 * 4  # per panel and class: the nearest-class wedge and the margin wedge
    strong = [t for t in filled if t.opacity > 0.5 and t.xaxis == "x"]
    assert [t.fillcolor for t in strong] == [class_color(k) for k in range(4)]
    radii = np.hypot(strong[0].x, strong[0].y)
    assert np.nanmax(radii) == pytest.approx(1.0, abs=1e-6)
    arrows = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(arrows) == 8 and arrows[0].marker.symbol == "arrow"
    assert len(fig.to_json()) < 150 * 1024


def test_a_margin_that_leaves_a_class_no_direction_draws_no_strong_wedge():
    # K = 8 weights lie 45° apart: an ArcFace margin of 0.8 rad (46°) leaves no class a direction
    fig = F.margin_wedge_figure(panels=_wedges(0.8, k=8)[1:])
    assert not [t for t in fig.data if t.fill == "toself" and t.opacity > 0.5]
    assert len([t for t in fig.data if t.fill == "toself"]) == 8  # the nearest-class wedges remain
