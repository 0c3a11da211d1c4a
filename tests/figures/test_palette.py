"""The shared palette and layout helpers: one colour per loss across every page and task, none shared; round
log ticks; horizontal legends that leave the plot its full width; float32 arrays."""

from __future__ import annotations

import itertools
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from lossviz import losses
from lossviz.figures import palette
from tests.figures.checks import assert_round_log_ticks

MIN_TASK_DISTANCE = 0.06  # ΔE_OK between any two losses of one task (about 3x a just-noticeable difference)
MIN_GLOBAL_DISTANCE = 0.05  # between any two registered losses, even of different tasks


@pytest.fixture
def fresh_slots(monkeypatch):
    monkeypatch.setattr(palette, "_SLOTS", {})


def _registry_groups() -> list[list[str]]:
    return [losses.names(task) for task in losses.TASKS]


def _min_distance(colours: list[str]) -> float:
    return min(palette.color_distance(a, b) for a, b in itertools.combinations(colours, 2))


# ------------------------------------------------------------------------------------------------ colours


def test_palette_colours_are_distinct_and_dark_enough_for_white():
    assert len(set(palette.PALETTE)) == len(palette.PALETTE) == palette.N_COLOURS
    assert palette.PALETTE[: len(palette.BASE)] == palette.BASE  # the hand-picked hues come first
    for colour in palette.PALETTE:
        lightness = palette.oklab(colour)[0]
        assert lightness <= 0.78, f"{colour} is too light for a line on white"


def test_any_prefix_of_the_palette_is_well_spread():
    # farthest-point order: the first 100 colours (the registry's expected size) stay clearly apart
    assert _min_distance(list(palette.PALETTE[:100])) > 0.065
    assert _min_distance(list(palette.PALETTE)) > MIN_GLOBAL_DISTANCE


def test_oklab_of_white_black_and_a_known_colour():
    np.testing.assert_allclose(palette.oklab("#ffffff"), [1.0, 0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(palette.oklab("#000000"), [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(palette.oklab("#ff0000"), [0.62796, 0.22486, 0.12585], atol=1e-4)  # Ottosson


def test_every_registered_loss_gets_its_own_colour(fresh_slots):
    palette.assign_order(losses.names(task) for task in losses.TASKS)  # a generator, as lossviz.ui passes
    names = losses.names()
    colours = {name: palette.color_for(name) for name in names}
    assert len(set(colours.values())) == len(names), "two registered losses share a colour"
    # the complaint of the issue: losses of different tasks collided
    assert colours["cross_entropy"] != colours["logistic"]
    if "vs_loss" in colours and "bce_focal" in colours:
        assert colours["focal"] != colours["vs_loss"] and colours["bce_focal"] != colours["vs_loss"]
    assert _min_distance(list(colours.values())) > MIN_GLOBAL_DISTANCE


@pytest.mark.parametrize("task", [t for t in losses.TASKS if len(losses.names(t)) >= 2])
def test_one_task_losses_are_perceptually_far_apart(fresh_slots, task):
    palette.assign_order(_registry_groups())
    colours = [palette.color_for(n) for n in losses.names(task)]
    assert _min_distance(colours) > MIN_TASK_DISTANCE


def test_every_task_starts_with_the_hand_picked_colours(fresh_slots):
    palette.assign_order(_registry_groups())
    for task in ("multiclass", "binary", "regression"):
        assert palette.color_for(losses.names(task)[0]) in palette.BASE


def test_colours_do_not_depend_on_which_page_asks_first(fresh_slots):
    palette.assign_order(_registry_groups())
    first = {n: palette.color_for(n) for n in losses.names()}
    reversed_order = {n: palette.color_for(n) for n in reversed(losses.names())}
    assert first == reversed_order
    palette.assign_order([losses.names("regression")])  # a page syncing its own task again moves nothing
    palette.assign_order(reversed(_registry_groups()))
    assert {n: palette.color_for(n) for n in losses.names()} == first


def test_a_later_loss_joins_without_moving_the_others(fresh_slots):
    palette.assign_order(_registry_groups())
    before = {n: palette.color_for(n) for n in losses.names()}
    palette.assign_order([[*losses.names("multiclass"), "a_new_multiclass_loss"]])
    assert {n: palette.color_for(n) for n in losses.names()} == before
    assert palette.color_for("a_new_multiclass_loss") not in before.values()


def test_a_hundred_and_more_losses_stay_distinct(fresh_slots):
    sizes = {"multiclass": 40, "binary": 35, "regression": 25, "embedding": 12, "pairwise": 8}
    groups = [[f"{task}_{i}" for i in range(n)] for task, n in sizes.items()]
    palette.assign_order(groups)
    everything = [palette.color_for(n) for group in groups for n in group]
    assert len(set(everything)) == len(everything) == 120
    assert _min_distance(everything) > MIN_GLOBAL_DISTANCE
    for group in groups:
        assert _min_distance([palette.color_for(n) for n in group]) > MIN_TASK_DISTANCE


def test_an_unassigned_name_has_a_stable_palette_colour(fresh_slots):
    assert palette.color_for("some_loss") == palette.color_for("some_loss")
    assert palette.color_for("some_loss") in palette.PALETTE


def test_sequential_colors():
    assert len(palette.sequential_colors(5)) == 5
    assert len(set(palette.sequential_colors(5))) == 5
    with pytest.raises(ValueError, match="0"):
        palette.sequential_colors(0)


def test_styled_figure_uses_the_template():
    fig = palette.styled_figure("T", "x axis", "y axis")
    assert fig.layout.title.text == "T"
    assert fig.layout.xaxis.title.text == "x axis" and fig.layout.yaxis.title.text == "y axis"
    assert fig.layout.template.layout.colorway == palette.BASE


# ---------------------------------------------------------------------------------------------- log ticks


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.015, 7.0), (1.4, 200.0), (1e-5, 1e5), (0.15, 0.9), (0.3, 0.45), (2.0, 2.0), (3e-9, 4.0)],
)
def test_log_ticks_are_round_and_cover_the_range(low, high):
    ticks = palette.log_ticks(low, high)
    values = ticks["tickvals"]
    assert 2 <= len(values) <= 9
    fig = go.Figure(layout=dict(yaxis=dict(type="log", **ticks)))
    assert_round_log_ticks(fig.layout.yaxis)
    if "range" in ticks:  # too narrow for two 1-2-5 values: the range widens to the steps around the data
        assert ticks["range"][0] <= math.log10(low) and ticks["range"][1] >= math.log10(high)
        assert ticks["range"] == [math.log10(values[0]), math.log10(values[-1])]
    else:
        assert all(low / 1.05 <= v <= high * 1.05 for v in values)


def test_log_ticks_of_many_decades_are_whole_decades():
    values = palette.log_ticks(1e-8, 1e8)["tickvals"]
    assert all(math.log10(v) == pytest.approx(round(math.log10(v))) for v in values)


def test_log_ticks_refuse_non_positive_ranges():
    assert palette.log_ticks(0.0, 1.0) == {}
    assert palette.log_ticks(-1.0, 1.0) == {}
    assert palette.log_axis(np.array([0.0, -1.0])) == {"type": "log"}


def test_tick_text_writes_full_numbers():
    assert [palette.tick_text(v) for v in (0, 1e-5, 0.001, 0.2, 5, 2000, 3e6, -20)] == [
        "0", "1e-5", "0.001", "0.2", "5", "2000", "3e6", "-20",
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------- legends


def test_legend_below_is_horizontal_and_grows_the_figure_not_the_plot():
    labels = [f"A rather long loss label number {i}" for i in range(10)]
    fig = palette.styled_figure("T", "x", "y", height=400)
    palette.legend_below(fig, labels)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"
    rows = palette.legend_rows(labels)
    assert rows > 1
    assert fig.layout.height == 400 + rows * palette.LEGEND_ROW_PX + palette.LEGEND_GAP_PX, (
        "the plot keeps its own height"
    )
    assert fig.layout.xaxis.domain is None or tuple(fig.layout.xaxis.domain) == (0.0, 1.0)
    assert palette.legend_rows(["a", "b"]) == 1


def test_lean_is_float32_and_keeps_nan_and_overflow_finite_or_inf():
    out = palette.lean([1.0, np.nan, 1e300, -2.5])
    assert out.dtype == np.float32
    assert np.isnan(out[1]) and np.isinf(out[2]) and out[3] == -2.5


def test_the_loss_sets_shown_together_get_distinct_colours():
    """The app colours the default comparisons first (lossviz.ui.widgets): none has two look-alikes."""
    from lossviz import presets
    from lossviz.ui import widgets  # noqa: F401  (assigns the app's colours at import)

    for group in presets.shown_together():
        assert _min_distance([palette.color_for(n) for n in group]) > 0.09, group
    study = [palette.color_for(n) for n in presets.NOISE_STUDY_LOSSES]
    assert _min_distance(study) > 0.2  # five robust losses on one chart: far apart, not five purples
