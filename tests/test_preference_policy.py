"""The toy preference policy (lossviz.preference): DPO separates chosen from rejected, probabilities stay on
the simplex, runs are deterministic, bad values raise, and the ASFT paper's claim about DPO as a measurement.

The claim (Wang et al., 2024): DPO pushes the rejected answer down faster than it lifts the chosen one. With
tabular logits log pi_w - log pi_l = z_w - z_l, so DPO's gradient moves z_w and z_l by equal and opposite
amounts and the log-normaliser shifts both log-probabilities alike, by about lr (pi_w - pi_l). What holds
deterministically, and is asserted: from a uniform start every epoch lowers log pi_l by more than it raises
log pi_w; from the default random start (seeds 0-5; not seed 6, whose initial pi_w - pi_l differs) the same
holds over the first 10 epochs; and ASFT lifts log pi_w more and lowers log pi_l less than DPO on seeds 0-9.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossviz import losses
from lossviz.preference import (
    PreferenceTraining,
    initial_logits,
    preference_pairs,
    train_preference,
    train_preferences,
)


@pytest.mark.parametrize("name", losses.names("preference"))
def test_every_preference_loss_trains_and_stays_on_the_simplex(name: str) -> None:
    run = train_preference(name, {}, prompts=6, answers=3, epochs=30, lr=0.05, seed=1)
    assert run.path.shape == (31, 3) and run.chosen.shape == (31,)
    np.testing.assert_allclose(run.path.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(run.path >= 0)
    for series in (run.chosen, run.rejected, run.margin, run.kl, run.loss_value):
        assert np.all(np.isfinite(series))
    assert run.kl[0] == pytest.approx(0.0, abs=1e-12) and run.margin[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(run.kl >= -1e-12)


def test_dpo_raises_the_ratio_of_chosen_to_rejected() -> None:
    run = train_preference("dpo", {"beta": 0.1}, 8, 3, 200, 0.05, 0)
    assert run.chosen[-1] / run.rejected[-1] > 100 * run.chosen[0] / run.rejected[0]
    assert run.margin[-1] > run.margin[0] and run.beta == 0.1
    assert np.all(run.chosen_index != run.rejected_index)


def test_the_reward_margin_uses_beta_or_one() -> None:
    dpo = train_preference("dpo", {"beta": 0.5}, 4, 3, 20, 0.05, 0)
    slic = train_preference("slic", {}, 4, 3, 20, 0.05, 0)
    h_dpo = (dpo.log_chosen - dpo.log_chosen[0]) - (dpo.log_rejected - dpo.log_rejected[0])
    h_slic = (slic.log_chosen - slic.log_chosen[0]) - (slic.log_rejected - slic.log_rejected[0])
    np.testing.assert_allclose(dpo.margin, 0.5 * h_dpo, atol=1e-12)
    np.testing.assert_allclose(slic.margin, h_slic, atol=1e-12)
    assert slic.beta == 1.0


def test_runs_are_deterministic_and_seeded() -> None:
    a, b = (train_preference("asft", {"lam": 0.5}, 8, 3, 40, 0.05, 3) for _ in range(2))
    np.testing.assert_array_equal(a.path, b.path)
    np.testing.assert_array_equal(a.margin, b.margin)
    c = train_preference("asft", {"lam": 0.5}, 8, 3, 40, 0.05, 4)
    assert not np.array_equal(a.path[0], c.path[0])


def test_a_separate_reference_starts_away_from_the_policy() -> None:
    run = train_preference("dpo", {}, 8, 3, 10, 0.05, 0, reference="separate")
    assert run.kl[0] > 0


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        (dict(prompts=0), "prompts"),
        (dict(answers=1), "answers"),
        (dict(epochs=0), "epochs"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(seed=-2), "seed"),
        (dict(loss="cross_entropy"), "cross_entropy"),
        (dict(loss="nope"), "nope"),
        (dict(params={"beta": 100.0}), "beta"),
        (dict(params={"gamma": 1.0}), "gamma"),
        (dict(reference="other"), "reference"),
    ],
)
def test_bad_values_raise_naming_them(kwargs: dict, word: str) -> None:
    arguments = dict(loss="dpo", params={}, prompts=4, answers=3, epochs=5, lr=0.05, seed=0) | kwargs
    with pytest.raises(ValueError, match=word):
        train_preference(**arguments)


def _alone(name: str, params: dict, prompts: int, answers: int, epochs: int, lr: float, seed: int) -> dict:
    """One policy trained by itself with plain full-batch Adam: the curves a run must match."""
    loss = losses.make(losses.get(name), **params)
    chosen, rejected = (torch.from_numpy(a) for a in preference_pairs(prompts, answers, seed))
    rows, start = torch.arange(prompts), initial_logits(prompts, answers, seed)
    ref = torch.log_softmax(start, 1)
    ref_pair = torch.stack([ref[rows, chosen], ref[rows, rejected]], 1)
    z = start.clone().requires_grad_(True)
    adam = torch.optim.Adam([z], lr=lr)
    curves: dict[str, list[float]] = {"chosen": [], "kl": [], "loss_value": []}
    for epoch in range(epochs + 1):
        log_p = torch.log_softmax(z, 1)
        value = loss(torch.stack([log_p[rows, chosen], log_p[rows, rejected]], 1), ref_pair)
        p = log_p.detach().exp()
        curves["chosen"].append(float(p[rows, chosen].mean()))
        curves["kl"].append(float((p * (log_p.detach() - ref)).sum(1).mean()))
        curves["loss_value"].append(float(value.detach()))
        if epoch < epochs:
            adam.zero_grad()
            value.backward()
            adam.step()
    return curves


def test_losses_trained_together_each_match_a_policy_trained_alone() -> None:
    selection = {"dpo": {"beta": 0.5}, "ipo": {}, "asft": {"lam": 0.5}, "kto": {}}
    together = train_preferences(selection, prompts=5, answers=4, epochs=25, lr=0.1, seed=2)
    assert list(together) == list(selection)
    for name, params in selection.items():
        alone = _alone(name, params, 5, 4, 25, 0.1, 2)
        for key, curve in alone.items():
            np.testing.assert_allclose(getattr(together[name], key), curve, rtol=1e-10, atol=1e-12)
    assert together["dpo"].beta == 0.5 and together["ipo"].params == train_preference("ipo", {}).params


def test_more_epochs_continue_the_training_and_fewer_slice_it() -> None:
    selection = {"dpo": {"beta": 0.5}, "asft": {"lam": 0.5}}
    straight = train_preferences(selection, prompts=6, answers=3, epochs=40, lr=0.05, seed=4)
    training = PreferenceTraining(selection, prompts=6, answers=3, lr=0.05, seed=4)
    first = training.runs(15)
    assert training.epochs == 15 and len(first["dpo"].chosen) == 16
    continued = training.runs(40)  # 25 more steps from where the 15 ended
    shorter = training.runs(7)  # a slice: nothing trains
    assert training.epochs == 40
    for name in selection:
        for key in ("chosen", "rejected", "margin", "kl", "loss_value", "path"):
            np.testing.assert_array_equal(getattr(continued[name], key), getattr(straight[name], key))
            np.testing.assert_array_equal(getattr(first[name], key), getattr(straight[name], key)[:16])
            np.testing.assert_array_equal(getattr(shorter[name], key), getattr(straight[name], key)[:8])
        np.testing.assert_array_equal(shorter[name].epochs, np.arange(8))
    for bad in (0, -3, 1.5, True, 10**6):
        with pytest.raises(ValueError, match="epochs"):
            training.runs(bad)


def test_training_ahead_in_the_background_changes_no_result() -> None:
    selection = {"dpo": {"beta": 0.5}, "slic": {}}
    straight = train_preferences(selection, prompts=6, answers=3, epochs=120, lr=0.05, seed=2)
    training = PreferenceTraining(selection, prompts=6, answers=3, lr=0.05, seed=2)
    training.runs(10)
    thread = training.train_ahead(120, chunk=7)  # chunks that do not divide the steps, to mix the two
    assert thread is not None and training.train_ahead(120) is None  # one thread ahead at a time
    during = training.runs(60)  # while it trains: waits at most a chunk, or slices what it has done
    thread.join(timeout=60)
    assert not thread.is_alive() and training.epochs == 120
    assert training.train_ahead(100) is None  # already there: nothing starts
    after = training.runs(120)  # nothing left to train
    for name in selection:
        for key in ("chosen", "rejected", "margin", "kl", "loss_value", "path"):
            np.testing.assert_array_equal(getattr(after[name], key), getattr(straight[name], key))
            np.testing.assert_array_equal(getattr(during[name], key), getattr(straight[name], key)[:61])
    for bad in (0, 1.5, 10**6):
        with pytest.raises(ValueError, match="epochs"):
            training.train_ahead(bad)
    with pytest.raises(ValueError, match="chunk"):
        training.train_ahead(200, chunk=0)


def test_a_bad_loss_in_a_selection_is_named() -> None:
    with pytest.raises(ValueError, match="nope"):
        train_preferences({"dpo": {}, "nope": {}})
    with pytest.raises(ValueError, match="beta"):
        train_preferences({"ipo": {}, "dpo": {"beta": 100.0}})
    with pytest.raises(ValueError, match="at least one"):
        train_preferences({})


def _early(name: str, seed: int, epochs: int = 10, **kwargs) -> tuple[float, float]:
    run = train_preference(name, {}, 8, 3, epochs, 0.05, seed, **kwargs)
    return run.log_chosen[epochs] - run.log_chosen[0], run.log_rejected[epochs] - run.log_rejected[0]


def test_asft_claim_dpo_lowers_the_rejected_faster_from_a_uniform_start() -> None:
    run = train_preference("dpo", {}, 8, 3, 30, 0.05, 0, init_scale=0.0)
    d_chosen, d_rejected = np.diff(run.log_chosen), np.diff(run.log_rejected)
    assert np.all(d_chosen > 0) and np.all(d_rejected < 0)
    assert np.all(-d_rejected > d_chosen)


@pytest.mark.parametrize("seed", range(6))
def test_asft_claim_dpo_lowers_the_rejected_faster_early(seed: int) -> None:
    d_chosen, d_rejected = _early("dpo", seed)
    assert d_chosen > 0 and -d_rejected > d_chosen


def test_asft_claim_is_not_universal_on_a_random_start() -> None:
    d_chosen, d_rejected = _early("dpo", 6)  # documented exception: depends on the initial pi_w - pi_l
    assert d_chosen > -d_rejected > 0


@pytest.mark.parametrize("seed", range(10))
def test_asft_lifts_the_chosen_more_and_lowers_the_rejected_less_than_dpo(seed: int) -> None:
    dpo, asft = _early("dpo", seed), _early("asft", seed)
    assert asft[0] > dpo[0] and asft[1] > dpo[1]
