"""Neural-collapse figures: traces per loss in its colour, NC1 on a round log axis, the ETF reference drawn as
an ETF (a triangle for K = 3, a tetrahedron for K = 4), per-class bars, float32 payloads, bounded JSON."""

from __future__ import annotations

import base64
import json
from itertools import combinations

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz import evaluate, metrics
from lossviz.figures import collapse as figures
from lossviz.figures.palette import color_for
from tests.figures.checks import assert_round_log_ticks

NAMES = ("cross_entropy", "squared_onehot", "label_smoothing", "focal")
CHART_BUDGET = 150 * 1024


def _features(k: int, d: int, spread: float, seed: int, counts: list[int] | None = None):
    """Features around a seeded simplex ETF: spread 0 is exact collapse."""
    rng = np.random.default_rng(seed)
    counts = counts or [30] * k
    labels = np.repeat(np.arange(k), counts)
    means = metrics.simplex_etf(k, d, scale=2.0, seed=seed) + 0.3 * rng.normal(size=(k, d))
    return means[labels] + spread * rng.normal(size=(len(labels), d)), labels


def _collapse_panels(k: int = 3, d: int = 8, snapshots: int = 6) -> list[figures.CollapsePanel]:
    panels = []
    for i, name in enumerate(NAMES):
        found = []
        for s in range(snapshots):
            h, y = _features(k, d, spread=1.0 / (1 + s + i), seed=s)
            w = metrics.simplex_etf(k, d, seed=s)
            found.append(metrics.neural_collapse(h, y, w, np.zeros(k)))
        panels.append(figures.CollapsePanel(name, f"{name} loss", np.arange(snapshots) * 10, found))
    return panels


def _geometry_panels(k: int, d: int = 8, classifier: bool = True) -> list[figures.GeometryPanel]:
    panels = []
    for i, name in enumerate(NAMES):
        h, y = _features(k, d, spread=0.5, seed=i)
        nc = metrics.neural_collapse(h, y)
        w = metrics.simplex_etf(k, d, seed=i) if classifier else None
        g = evaluate.class_mean_geometry(nc, w)
        panels.append(
            figures.GeometryPanel(
                name, f"{name} loss", g.means, nc.class_counts, g.etf, g.classifier, g.classifier_norms
            )
        )
    return panels


def _assert_well_formed(fig: go.Figure) -> None:
    for trace in fig.data:
        for axis in ("x", "y", "z"):
            values = getattr(trace, axis, None)
            if isinstance(values, np.ndarray) and len(values) > 2:
                assert values.dtype == np.float32, f"{trace.name!r} {axis} is {values.dtype}"
    assert len(fig.to_json()) < CHART_BUDGET


def _vertices(fig: go.Figure, axis: str = "x") -> list[np.ndarray]:
    """The ETF vertex coordinates (K, d) of each panel, read back from the figure's JSON."""
    spec = json.loads(fig.to_json())
    found = []
    for trace in spec["data"]:
        if trace["name"] == "simplex ETF vertices":
            keys = [a for a in "xyz" if a in trace]
            found.append(np.stack([_decoded(trace[a]) for a in keys], axis=1))
    return found


def _decoded(values) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(np.float64)
    return np.asarray(values, np.float64)


def _assert_etf(vertices: np.ndarray) -> None:
    k = len(vertices)
    norms = np.linalg.norm(vertices, axis=1)
    np.testing.assert_allclose(norms, norms.mean(), rtol=1e-5)
    unit = vertices / norms[:, None]
    for a, b in combinations(range(k), 2):
        assert unit[a] @ unit[b] == pytest.approx(-1.0 / (k - 1), abs=1e-5)


# ------------------------------------------------------------------------------------------- trajectories


def test_trajectories_have_six_panels_one_line_per_loss_in_its_colour() -> None:
    panels = _collapse_panels()
    fig = figures.trajectories_figure(panels=panels)
    assert len(fig.data) == 6 * len(panels)
    _assert_well_formed(fig)
    for panel in panels:
        mine = [t for t in fig.data if t.name == panel.label]
        assert len(mine) == 6 and {t.line.color for t in mine} == {color_for(panel.name)}
        assert sum(bool(t.showlegend) for t in mine) == 1  # one legend entry per loss
        np.testing.assert_allclose(mine[0].y, panel.series("nc1"), rtol=1e-6)
        np.testing.assert_allclose(mine[-1].y, panel.series("nc4"), rtol=1e-6)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("NC1") and "log" in titles[0] and titles[-1].startswith("NC4")


def test_nc1_is_on_a_round_log_axis_and_the_rest_start_at_zero() -> None:
    fig = figures.trajectories_figure(panels=_collapse_panels())
    assert_round_log_ticks(fig.layout.yaxis)
    for name in ("yaxis2", "yaxis3", "yaxis4", "yaxis5", "yaxis6"):
        assert fig.layout[name].type != "log" and fig.layout[name].rangemode == "tozero"


def test_many_losses_classes_and_snapshots_stay_within_the_chart_budget() -> None:
    panels = _collapse_panels(k=10, d=32, snapshots=21)
    fig = figures.trajectories_figure(panels=panels)
    assert len(fig.to_json()) < CHART_BUDGET
    shapes = _geometry_panels(k=10, d=32)
    assert len(figures.geometry_figure(panels=shapes).to_json()) < CHART_BUDGET
    assert len(figures.class_balance_figure(panels=shapes).to_json()) < CHART_BUDGET


# ----------------------------------------------------------------------------------------------- geometry


def test_k3_draws_means_and_a_regular_triangle_in_equal_aspect_2d_axes() -> None:
    panels = _geometry_panels(k=3)
    fig = figures.geometry_figure(panels=panels)
    _assert_well_formed(fig)
    assert {t.type for t in fig.data} == {"scatter"}
    vertices = _vertices(fig)
    assert len(vertices) == len(panels)
    for drawn, panel in zip(vertices, panels, strict=True):
        assert drawn.shape == (3, 2)
        _assert_etf(drawn)
        np.testing.assert_allclose(drawn, panel.etf, rtol=1e-5, atol=1e-6)
    edges = [t for t in fig.data if t.name == figures.ETF_NAME]
    assert len(edges) == len(panels) and all(np.isnan(np.asarray(t.x, float)).sum() == 3 for t in edges)
    means = [t for t in fig.data if t.name == figures.MEANS_NAME]
    np.testing.assert_allclose(means[1].x, panels[1].means[:, 0], rtol=1e-5, atol=1e-6)
    assert list(means[0].text) == ["0", "1", "2"] and list(means[0].customdata) == [30, 30, 30]
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"
    assert [a.font.color for a in fig.layout.annotations[: len(panels)]] == [color_for(n) for n in NAMES]


def test_k4_draws_a_tetrahedron_in_3d_scenes() -> None:
    panels = _geometry_panels(k=4)
    fig = figures.geometry_figure(panels=panels)
    _assert_well_formed(fig)
    assert {t.type for t in fig.data} == {"scatter3d"}
    for drawn in _vertices(fig):
        assert drawn.shape == (4, 3)
        _assert_etf(drawn)
    edges = [t for t in fig.data if t.name == figures.ETF_NAME]
    assert all(np.isnan(np.asarray(t.x, float)).sum() == 6 for t in edges)  # 6 edges of a tetrahedron
    assert fig.layout.scene4.aspectmode == "data"


def test_classifier_rows_follow_the_toggle_and_their_absence() -> None:
    with_rows = figures.geometry_figure(panels=_geometry_panels(k=3))
    without = figures.geometry_figure(panels=_geometry_panels(k=3), show_classifier=False)
    no_head = figures.geometry_figure(panels=_geometry_panels(k=3, classifier=False))
    rows = [t for t in with_rows.data if t.name == figures.CLASSIFIER_NAME]
    assert len(rows) == 3 * len(NAMES) and sum(bool(t.showlegend) for t in rows) == 1
    assert not [t for t in without.data if t.name == figures.CLASSIFIER_NAME]
    assert not [t for t in no_head.data if t.name == figures.CLASSIFIER_NAME]


def test_a_panel_without_an_etf_draws_only_the_means() -> None:
    panel = _geometry_panels(k=3)[0]
    fig = figures.geometry_figure(panels=[figures.GeometryPanel(panel.name, "", panel.means, panel.counts)])
    assert not _vertices(fig) and [t.name for t in fig.data].count(figures.MEANS_NAME) == 1


# ----------------------------------------------------------------------------------------- class balance


def test_class_balance_bars_are_norm_ratios_largest_cosines_and_classifier_norms() -> None:
    panels = _geometry_panels(k=4)
    fig = figures.class_balance_figure(panels=panels)
    _assert_well_formed(fig)
    assert len(fig.data) == 3 * len(panels) and {t.type for t in fig.data} == {"bar"}
    norms, cosines, rows = fig.data[0], fig.data[1], fig.data[2]
    expected = np.linalg.norm(panels[0].means, axis=1)
    np.testing.assert_allclose(norms.y, expected / expected.mean(), rtol=1e-5)
    unit = panels[0].means / expected[:, None]
    gram = unit @ unit.T - 2 * np.eye(4)
    np.testing.assert_allclose(cosines.y, gram.max(1), rtol=1e-5, atol=1e-6)
    w = np.linalg.norm(metrics.simplex_etf(4, 8, seed=0), axis=1)
    np.testing.assert_allclose(rows.y, w / w.mean(), rtol=1e-5)  # an ETF classifier: every ratio 1
    assert list(norms.x) == [f"class {c}<br>n=30" for c in range(4)]
    assert norms.marker.color == color_for(NAMES[0]) and fig.layout.barmode == "group"
    assert sorted(s.y0 for s in fig.layout.shapes) == pytest.approx([-1.0 / 3, 1.0, 1.0])  # ETF references
    assert len(fig.layout.annotations) >= 3 and "classifier" in fig.layout.annotations[2].text


def test_class_balance_without_classifier_rows_has_two_panels() -> None:
    fig = figures.class_balance_figure(panels=_geometry_panels(k=3, classifier=False))
    assert len(fig.data) == 2 * len(NAMES)
    assert not any("classifier" in a.text for a in fig.layout.annotations)


# ------------------------------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    "builder", [figures.trajectories_figure, figures.geometry_figure, figures.class_balance_figure]
)
def test_builders_refuse_empty_or_foreign_panels(builder) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        builder(panels=[])
    with pytest.raises(ValueError, match="panels must be"):
        builder(panels=["cross_entropy"])


def test_geometry_refuses_mixed_dimensions() -> None:
    two, three = _geometry_panels(k=3)[0], _geometry_panels(k=4)[0]
    with pytest.raises(ValueError, match=r"\(K, 2\) or \(K, 3\)"):
        figures.geometry_figure(panels=[two, three])


def test_builders_take_keyword_arguments_only() -> None:
    with pytest.raises(TypeError):
        figures.trajectories_figure(_collapse_panels())  # type: ignore[misc]


def test_final_table_holds_the_last_snapshot_and_the_rarest_class_norm() -> None:
    panels = _collapse_panels(k=3)
    rows = figures.final_table(panels=panels, accuracy=[1.0, 0.9, 0.8, 0.7])
    assert [r["loss"] for r in rows] == [p.label for p in panels]
    assert rows[1]["NC1"] == panels[1].final.nc1 and rows[1]["NC4"] == panels[1].final.nc4
    norms = np.linalg.norm(panels[2].final.centred_means, axis=1)
    assert rows[2]["‖μ_2‖ ÷ mean"] == pytest.approx(norms[-1] / norms.mean())
    assert rows[3]["train accuracy"] == 0.7
    assert "train accuracy" not in figures.final_table(panels=panels)[0]
