"""Distillation figures: the temperature sweep's traces, colours, axes and level lines, its bad input, and the
score titles."""

from __future__ import annotations

import pytest

from lossviz.figures import distillation as figures
from lossviz.figures.palette import color_for

REFERENCES = (
    figures.Reference("Teacher · MLP 3×128", 0.95, 0.04, "teacher"),
    figures.Reference("Labels alone · cross-entropy", 0.97, 0.03, "cross_entropy"),
)


def _figure(**overrides):
    kwargs = dict(
        name="kd",
        label="KD student (α = 0.9)",
        temperatures=[1.0, 4.0, 16.0],
        accuracy=[0.9, 0.92, 0.88],
        ece=[0.05, 0.02, 0.03],
        references=REFERENCES,
    )
    return figures.temperature_figure(**{**kwargs, **overrides})


def test_one_curve_and_one_level_line_per_reference_in_each_panel():
    fig = _figure()
    assert len(fig.data) == 2 * (1 + len(REFERENCES))
    students = [t for t in fig.data if t.name == "KD student (α = 0.9)"]
    assert [list(t.y) for t in students] == [[0.9, 0.92, 0.88], [0.05, 0.02, 0.03]]
    assert all(t.line.color == color_for("kd") and list(t.x) == [1.0, 4.0, 16.0] for t in students)
    for ref in REFERENCES:
        lines = [t for t in fig.data if t.name == ref.label]
        assert [t.y[0] for t in lines] == [ref.accuracy, ref.ece] and all(t.y[0] == t.y[1] for t in lines)
        assert all(t.line.color == color_for(ref.name) for t in lines)
        assert sum(bool(t.showlegend) for t in lines) == 1  # one legend entry per model
    dashes = {t.name: t.line.dash for t in fig.data if t.name != "KD student (α = 0.9)"}
    assert len(set(dashes.values())) == len(REFERENCES)  # the references are told apart by their dash


def test_the_temperature_axis_is_logarithmic_and_labelled_at_the_sampled_temperatures():
    fig = _figure()
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):
        assert axis.type == "log" and list(axis.tickvals) == [1.0, 4.0, 16.0]
        assert list(axis.ticktext) == ["1", "4", "16"]
        low, high = axis.range
        assert low < 0 < 1.2 < high  # log10: the markers at T = 1 and T = 16 sit inside the frame
    assert fig.layout.yaxis.tickformat == ".1%"
    assert len(fig.to_json()) < 20_000


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="must be 1-D of one length"):
        _figure(accuracy=[0.9, 0.92])
    with pytest.raises(ValueError, match="must be 1-D of one length"):
        _figure(temperatures=[], accuracy=[], ece=[])
    with pytest.raises(ValueError, match=r"temperatures must be finite and > 0, got \[0.0, 4.0, 16.0\]"):
        _figure(temperatures=[0.0, 4.0, 16.0])


def test_score_titles_carry_accuracy_and_ece():
    title = figures.score_title("Labels alone · cross-entropy", 0.9666, 0.03512)
    assert title.startswith("Labels alone · cross-entropy<br>")
    assert "test acc 97%" in title and "ECE 0.035" in title
