"""Figures of the Embeddings page: traces, colours, the unit circle, densities that integrate to one."""

from __future__ import annotations

import numpy as np
import pytest

from lossviz import contrastive
from lossviz.figures import embeddings as F
from lossviz.figures import palette
from lossviz.figures.train import class_color


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
