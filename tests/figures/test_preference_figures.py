"""Preference figures: one colour per loss, float32 arrays, thinned long runs, the simplex only for A = 3."""

from __future__ import annotations

import numpy as np
import pytest

from lossviz.figures import preference as figures
from lossviz.figures.palette import color_for
from lossviz.preference import train_preference


@pytest.fixture(scope="module")
def runs():
    return {name: train_preference(name, {}, 6, 3, 30, 0.05, 0) for name in ("dpo", "ipo", "asft")}


def _data(fig):
    return [t for t in fig.data if t.name and t.showlegend is not False]


def test_probability_figure_has_chosen_and_rejected_per_loss_in_its_colour(runs) -> None:
    fig = figures.probability_figure(runs=runs)
    assert len(fig.data) == 2 * len(runs)
    for trace in fig.data:
        loss = trace.legendgroup
        assert trace.line.color == color_for(loss)
        assert np.asarray(trace.y).dtype == np.float32


@pytest.mark.parametrize("build", [figures.margin_figure, figures.kl_figure])
def test_series_figures_one_trace_per_loss(runs, build) -> None:
    fig = build(runs=runs)
    assert [t.name for t in fig.data] == list(runs)
    assert all(np.asarray(t.y).dtype == np.float32 for t in fig.data)


def test_simplex_figure_draws_a_path_per_loss_inside_the_triangle(runs) -> None:
    fig = figures.simplex_figure(runs=runs)
    paths = [t for t in fig.data if t.name in runs]
    assert len(paths) == len(runs)
    for t in paths:
        x, y = np.asarray(t.x), np.asarray(t.y)
        assert x.dtype == np.float32 and len(x) == 31
        assert np.all(y >= -1e-6) and np.all(y <= np.sqrt(3) / 2 + 1e-6)


def test_long_runs_are_thinned_and_figures_are_keyword_only() -> None:
    run = train_preference("dpo", {}, 4, 3, 1000, 0.05, 0)
    fig = figures.probability_figure(runs={"DPO": run})
    assert len(fig.data[0].x) <= figures.MAX_POINTS and fig.data[0].x[-1] == 1000
    assert len(fig.to_json()) < 150 * 1024
    with pytest.raises(TypeError):
        figures.kl_figure({"DPO": run})  # type: ignore[misc]


def test_simplex_skips_runs_with_other_answer_counts() -> None:
    run = train_preference("dpo", {}, 4, 4, 10, 0.05, 0)
    fig = figures.simplex_figure(runs={"DPO": run})
    assert not [t for t in fig.data if t.name == "DPO"]
