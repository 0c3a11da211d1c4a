"""Tests for lossviz.presets: every preset is a valid Experiment, and the founding claims hold on its data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lossviz import experiment
from lossviz.presets import PRESETS, Preset, preset, run_preset
from lossviz.train import check_compatible

ROBUST = ("gce", "apl_nce_rce", "ldr_kl")


@pytest.fixture(scope="module")
def label_noise_runs():
    return [run_preset("label_noise", seed=seed) for seed in range(3)]


def test_the_four_presets_exist() -> None:
    assert set(PRESETS) == {"label_noise", "imbalance", "digits", "robust_regression"}
    assert PRESETS["label_noise"].title == "40% label noise: CE vs GCE vs NCE+RCE vs LDR-KL"
    assert [c.name for c in PRESETS["imbalance"].experiment.losses] == [
        "cross_entropy",
        "focal",
        "vs_loss",
        "ldam",
        "soft_dice",
    ]


@pytest.mark.parametrize("key", list(PRESETS))
def test_preset_is_a_valid_frozen_experiment(key: str) -> None:
    p = PRESETS[key]
    data = experiment.dataset(p.experiment.data)
    for choice in p.experiment.losses:
        check_compatible(choice.bound, data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.title = "x"  # type: ignore[misc]
    assert experiment.Experiment.from_json(p.experiment.to_json()) == p.experiment
    assert p.metric in ("test_acc", "ece", "test_nll")


def test_forty_percent_noise_robust_loss_beats_cross_entropy(label_noise_runs) -> None:
    """The founding claim, averaged over 3 seeds: a robust loss keeps a higher clean test accuracy than CE,
    and CE memorises more of the noisy labels than every robust loss."""
    final: dict[str, list[float]] = {}
    memorised: dict[str, list[float]] = {}
    for runs in label_noise_runs:
        assert not runs.errors
        for name, run in runs.runs.items():
            final.setdefault(name, []).append(run.history.test_acc[-1])
            memorised.setdefault(name, []).append(run.history.noisy_acc[-1])
    mean = {k: float(np.mean(v)) for k, v in final.items()}
    assert max(mean[k] for k in ROBUST) > mean["cross_entropy"] + 0.05, mean
    mem = {k: float(np.mean(v)) for k, v in memorised.items()}
    assert all(mem["cross_entropy"] > mem[k] for k in ROBUST), mem


def test_preset_losses_share_data_and_initialisation(label_noise_runs) -> None:
    runs = label_noise_runs[0].runs
    assert list(runs) == [c.name for c in PRESETS["label_noise"].experiment.losses]
    assert dict(runs["gce"].experiment.losses[0].params) == {"q": 0.7}
    first = runs["cross_entropy"].history.snapshots[0]
    for run in runs.values():
        assert run.history.snapshot_epochs[0] == 0
        assert all(np.array_equal(first[k], run.history.snapshots[0][k]) for k in first)
    again = experiment.dataset(PRESETS["label_noise"].experiment.data)
    np.testing.assert_array_equal(runs["gce"].dataset.y_train, again.y_train)
    assert runs["gce"].dataset.noisy_mask.mean() == pytest.approx(0.4, abs=0.002)


def test_robust_regression_claim() -> None:
    runs = run_preset("robust_regression", seed=0).runs
    r2 = {name: run.history.test_acc[-1] for name, run in runs.items()}
    assert r2["cauchy"] > r2["huber"] > r2["squared"], r2


def test_imbalance_vs_loss_moves_the_boundary_back() -> None:
    exp = PRESETS["imbalance"].experiment
    pair = [c for c in exp.losses if c.name in ("cross_entropy", "vs_loss")]
    runs = experiment.run_all(exp, pair).runs
    acc = {name: run.history.test_acc[-1] for name, run in runs.items()}
    assert acc["vs_loss"] > acc["cross_entropy"] + 0.03, acc
    counts = runs["vs_loss"].dataset.class_counts
    assert counts[0] == 20 * counts[1]


def test_digits_preset_runs_with_progress() -> None:
    exp = PRESETS["digits"].experiment
    short = dataclasses.replace(exp, optim=dataclasses.replace(exp.optim, epochs=2, snapshots=2))
    calls: list[float] = []
    runs = experiment.run_all(short, progress=lambda f, m: calls.append(f))
    assert len(runs.runs) == 4 and not runs.errors
    assert all(r.history.test_acc[-1] > 0.5 for r in runs.runs.values())
    assert calls == sorted(calls) and calls[-1] == pytest.approx(1.0)


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="preset must be one of"):
        preset("noise")
    assert isinstance(PRESETS["digits"], Preset)
