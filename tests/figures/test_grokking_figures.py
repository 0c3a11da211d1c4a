"""Grokking figures: log-epoch axes with round ticks, memorised/grokked marks, float32 data, small specs."""

from __future__ import annotations

import numpy as np
import pytest

from lossviz.figures import grokking as figures
from lossviz.grokking import log_epochs
from lossviz.results import GrokkingRun
from tests.figures.checks import assert_round_log_ticks


def _run(p: int = 11, epochs: int = 1000, grok: bool = True) -> GrokkingRun:
    at = log_epochs(epochs)
    t = np.log1p(at) / np.log1p(epochs)
    test = np.clip(2 * t - 1, 0, 1) if grok else np.zeros_like(t)
    k = np.arange(p // 2 + 1)
    spectrum = np.exp(-k.astype(float))
    return GrokkingRun(
        p=p, train_fraction=0.5, loss="cross_entropy", dtype="float32", optimizer="adamw", lr=5e-3,
        weight_decay=1.0, seed=0, n_train=60, n_test=61, epochs=at, train_accuracy=np.minimum(3 * t, 1),
        test_accuracy=test, train_loss=1 - t, test_loss=1 - test, collapse=t / 2, zero_gradient=t / 4,
        logit_norm=1 + 100 * t, weight_norm=10 + t, frequencies=k, spectrum=spectrum / spectrum.sum(),
    )  # fmt: skip


@pytest.mark.parametrize("builder", [figures.accuracy_figure, figures.collapse_figure, figures.norms_figure])
def test_epoch_series_sit_on_a_round_log_axis_without_epoch_zero(builder) -> None:
    fig = builder(run=_run())
    assert_round_log_ticks(fig.layout.xaxis)
    for trace in fig.data:
        assert np.asarray(trace.x).min() >= 1
        assert np.asarray(trace.y).dtype == np.float32


def test_accuracy_marks_the_memorised_and_grokked_epochs() -> None:
    run = _run()
    fig = figures.accuracy_figure(run=run)
    marks = {t.name.split(" @ ")[0]: t.x[0] for t in fig.data if " @ " in (t.name or "")}
    assert marks == {"memorised": run.memorised_epoch, "grokked": run.grokked_epoch}
    assert not fig.layout.annotations  # a log axis would read an annotation's x as log10(x)


def test_a_run_that_never_groks_gets_only_the_memorised_mark() -> None:
    fig = figures.accuracy_figure(run=_run(grok=False))
    assert [t.name.split(" @ ")[0] for t in fig.data if " @ " in t.name] == ["memorised"]


def test_norms_use_a_log_value_axis() -> None:
    assert_round_log_ticks(figures.norms_figure(run=_run()).layout.yaxis)


def test_spectrum_is_one_bar_per_frequency() -> None:
    run = _run(p=23)
    (bars,) = figures.spectrum_figure(run=run).data
    assert bars.type == "bar" and list(bars.x) == list(range(12))
    assert np.asarray(bars.y).dtype == np.float32 and float(np.sum(bars.y)) == pytest.approx(1, rel=1e-5)


@pytest.mark.parametrize(
    "builder",
    [figures.accuracy_figure, figures.collapse_figure, figures.norms_figure, figures.spectrum_figure],
)
def test_each_chart_is_small(builder) -> None:
    assert len(builder(run=_run(p=113, epochs=10000)).to_json()) < 40 * 1024


def test_the_live_accuracy_spans_the_whole_run_while_it_grows() -> None:
    epochs, train, test = (
        np.array([0, 1, 3, 10]),
        np.array([0.1, 0.3, 0.6, 1.0]),
        np.array([0.1, 0.1, 0.1, 0.2]),
    )
    fig = figures.live_accuracy_figure(
        epochs=epochs, train_accuracy=train, test_accuracy=test, last_epoch=4000
    )
    lines = {t.name: t for t in fig.data}
    assert list(lines["train accuracy"].x) == [1, 3, 10] and list(lines["test accuracy"].y) == pytest.approx(
        [0.1, 0.1, 0.2]
    )  # epoch 0 cannot sit on the log axis
    low, high = fig.layout.xaxis.range
    assert fig.layout.xaxis.type == "log" and low <= 0 and high >= np.log10(4000)  # the whole run, from 1
    assert "epoch 10 of 4,000" in fig.layout.title.text
