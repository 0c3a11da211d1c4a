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


# ------------------------------------------------------------------------------------- embedding presets

from lossviz import contrastive, metrics  # noqa: E402  (the embedding presets' section)
from lossviz import train as training  # noqa: E402
from lossviz.presets import EMBEDDING_PRESETS  # noqa: E402


def _small_embedding_runs(key: str) -> tuple[dict, object]:
    """A preset at n = 200, 100 epochs (about a second per loss): {loss: Run}, its dataset."""
    e = EMBEDDING_PRESETS[key].experiment
    e = dataclasses.replace(
        e, data=dataclasses.replace(e.data, n=200), optim=dataclasses.replace(e.optim, epochs=100)
    )
    runs = experiment.run_all(e)
    assert not runs.errors, runs.errors
    return runs.runs, experiment.dataset(e.data)


def test_the_three_embedding_presets_exist_apart_from_the_classification_ones() -> None:
    assert list(EMBEDDING_PRESETS) == ["temperature", "align_uniform", "supcon"]
    assert not set(EMBEDDING_PRESETS) & set(PRESETS)


@pytest.mark.parametrize("key", list(EMBEDDING_PRESETS))
def test_embedding_preset_is_valid_and_says_what_it_reproduces(key: str) -> None:
    p = EMBEDDING_PRESETS[key]
    data = experiment.dataset(p.experiment.data)
    for choice in p.experiment.losses:
        check_compatible(choice.bound, data)
    assert experiment.Experiment.from_json(p.experiment.to_json()) == p.experiment
    assert "Reproduced here" in p.claim and "Not reproduced" in p.claim
    assert p.experiment.model.embedding_dim in (2, 3)


def test_margin_info_nce_at_zero_margin_is_info_nce() -> None:
    """The temperature preset's second InfoNCE is NT-Xent with additive margin at m = 0."""
    import torch

    from lossviz import losses

    z = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6).repeat(2)
    a = losses.get("info_nce").fn(z, y, temperature=0.5)
    b = losses.get("margin_info_nce").fn(z, y, temperature=0.5, margin=0.0)
    torch.testing.assert_close(a, b)


def test_small_temperature_pushes_the_hardest_negatives_and_the_own_class() -> None:
    """Wang & Liu, reproduced part: tau = 0.05 spreads the push over far fewer negatives (exact), and on the
    trained embeddings more of it lands on the anchor's own class. (The uniformity gap is not reproduced at
    this size; the preset's text says so.)"""
    spread = contrastive.effective_negatives(np.linspace(-0.975, 0.975, 40), np.array([0.05, 0.5])).y
    assert spread[0] < 3 and spread[1] > 15
    runs, data = _small_embedding_runs("temperature")
    push = {}
    for run in runs.values():
        tau = dict(run.experiment.losses[0].params)["temperature"]
        push[tau] = contrastive.same_class_push(training.embed(run.model, data.X_test), data.y_test, tau)
    assert push[0.05] > push[0.5] + 0.1, push


def test_alignment_and_uniformity_train_about_as_well_as_info_nce() -> None:
    runs, _ = _small_embedding_runs("align_uniform")
    acc = {name: run.history.test_acc[-1] for name, run in runs.items()}
    assert min(acc.values()) > 0.85 and abs(acc["align_uniform"] - acc["info_nce"]) <= 0.05, acc
    uniformity = {name: run.history.uniformity[-1] for name, run in runs.items()}
    assert uniformity["align_uniform"] < uniformity["info_nce"], uniformity  # the more uniform


def test_supcon_separates_the_classes_on_the_sphere() -> None:
    runs, data = _small_embedding_runs("supcon")
    run = runs["supcon"]
    z = training.embed(run.model, data.X_test)
    assert z.shape[1] == 3
    assert run.history.test_acc[-1] > 0.9
    assert metrics.recall_at_k(z, data.y_test, 1) > 0.9
