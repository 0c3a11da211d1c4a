"""Tests for lossviz.presets: every preset is valid, and the founding claims hold on the presets' own data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lossviz.data import make_dataset
from lossviz.presets import PRESETS, Preset, loss_label, run_preset
from lossviz.train import check_compatible

ROBUST = ("gce", "apl_nce_rce", "ldr_kl")


@pytest.fixture(scope="module")
def label_noise_runs():
    return [run_preset("label_noise", seed=seed) for seed in range(3)]


def test_the_four_presets_exist() -> None:
    assert set(PRESETS) == {"label_noise", "imbalance", "digits", "robust_regression"}
    assert PRESETS["label_noise"].name == "40% label noise: CE vs GCE vs NCE+RCE vs LDR-KL"
    assert [name for name, _ in PRESETS["imbalance"].losses] == [
        "cross_entropy",
        "focal",
        "vs_loss",
        "ldam",
        "soft_dice",
    ]


@pytest.mark.parametrize("key", list(PRESETS))
def test_preset_is_valid_and_frozen(key: str) -> None:
    preset = PRESETS[key]
    data = make_dataset(seed=0, **preset.dataset)
    for bound in preset.bound_losses():  # raises on an unknown loss or an out-of-range hyperparameter
        check_compatible(bound, data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        preset.dataset["n"] = 5  # type: ignore[index]
    assert preset.metric in ("test_acc", "ece", "test_nll")


def test_forty_percent_noise_robust_loss_beats_cross_entropy(label_noise_runs) -> None:
    """The founding claim, averaged over 3 seeds: a robust loss keeps a higher clean test accuracy than CE,
    and CE memorises more of the noisy labels than every robust loss."""
    final = {}
    memorised = {}
    for run in label_noise_runs:
        for history in run.histories:
            final.setdefault(history.loss_name, []).append(history.test_acc[-1])
            memorised.setdefault(history.loss_name, []).append(history.noisy_acc[-1])
    mean = {k: float(np.mean(v)) for k, v in final.items()}
    assert max(mean[k] for k in ROBUST) > mean["cross_entropy"] + 0.05, mean
    mem = {k: float(np.mean(v)) for k, v in memorised.items()}
    assert all(mem["cross_entropy"] > mem[k] for k in ROBUST), mem


def test_preset_losses_share_data_and_initialisation(label_noise_runs) -> None:
    run = label_noise_runs[0]
    assert run.labels == tuple(loss_label(b) for b in PRESETS["label_noise"].bound_losses())
    assert run.labels[1] == "gce (q=0.7)"
    first = run.histories[0].snapshots[0]
    for history in run.histories[1:]:
        assert history.snapshot_epochs[0] == 0
        assert all(np.array_equal(first[k], history.snapshots[0][k]) for k in first)
    again = make_dataset(seed=0, **PRESETS["label_noise"].dataset)
    np.testing.assert_array_equal(run.dataset.y_train, again.y_train)
    assert run.dataset.noisy_mask.mean() == pytest.approx(0.4, abs=0.002)


def test_robust_regression_claim() -> None:
    run = run_preset("robust_regression", seed=0)
    r2 = {h.loss_name: h.test_acc[-1] for h in run.histories}
    assert r2["cauchy"] > r2["huber"] > r2["squared"], r2


def test_imbalance_vs_loss_moves_the_boundary_back() -> None:
    preset = PRESETS["imbalance"]
    pair = tuple(loss for loss in preset.losses if loss[0] in ("cross_entropy", "vs_loss"))
    run = run_preset(dataclasses.replace(preset, losses=pair), seed=0)
    acc = {h.loss_name: h.test_acc[-1] for h in run.histories}
    assert acc["vs_loss"] > acc["cross_entropy"] + 0.03, acc
    counts = run.dataset.class_counts
    assert counts[0] == 20 * counts[1]


def test_digits_preset_runs_with_progress() -> None:
    preset = PRESETS["digits"]
    short = dataclasses.replace(preset, training={**preset.training, "epochs": 2, "snapshots": 2})
    calls: list[float] = []
    run = run_preset(short, seed=0, progress=lambda f, m: calls.append(f))
    assert len(run.histories) == 4
    assert all(h.test_acc[-1] > 0.5 for h in run.histories)
    assert calls == sorted(calls) and calls[-1] == pytest.approx(1.0)
    assert run.preset == short.name  # a modified preset is named by its title


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="preset must be one of"):
        run_preset("noise", seed=0)
    assert isinstance(PRESETS["digits"], Preset)
