"""The bandit RL objectives of lossviz.rl: estimator bias against the exact gradient, clipping, the KL and
entropy terms, majority vote, and the training record."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lossviz import rl

LOGITS = torch.tensor([0.5, -0.3, 1.2, 0.0, -1.0], dtype=torch.float64)
CORRECT = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)


def _per_group_estimates(objective, G: int, B: int = 40000, seed: int = 0) -> np.ndarray:
    """B independent gradient estimates, one per sampled group, (B, K)."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(LOGITS, -1)
    actions = torch.multinomial(probs, B * G, replacement=True, generator=g).reshape(B, G)
    theta = LOGITS.expand(B, -1).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(theta, actions, CORRECT[actions]), theta)
    return (grad * B).numpy()


def _assert_mean_is(estimates: np.ndarray, expected: np.ndarray) -> None:
    mean = estimates.mean(0)
    se = estimates.std(0, ddof=1) / math.sqrt(len(estimates))
    assert np.all(np.abs(mean - expected) < 4 * se + 1e-12), (mean, expected, se)


def test_exact_gradient_matches_autograd():
    theta = LOGITS.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((torch.softmax(theta, -1) * CORRECT).sum(), theta)
    assert torch.allclose(rl.exact_reward_gradient(LOGITS, CORRECT), grad)


@pytest.mark.parametrize("baseline", ["none", "loo"])
def test_reinforce_is_unbiased(baseline):
    est = _per_group_estimates(lambda t, a, r: rl.reinforce(t, a, r, baseline), G=4)
    _assert_mean_is(est, rl.exact_reward_gradient(LOGITS, CORRECT).numpy())


def test_reinforce_mean_baseline_is_shrunk_by_one_minus_one_over_g():
    G = 2  # the shrink (1 - 1/G) = 1/2 is far outside the error bars
    est = _per_group_estimates(lambda t, a, r: rl.reinforce(t, a, r, "mean"), G=G)
    exact = rl.exact_reward_gradient(LOGITS, CORRECT).numpy()
    _assert_mean_is(est, (1 - 1 / G) * exact)
    with pytest.raises(AssertionError):
        _assert_mean_is(est, exact)


@pytest.mark.parametrize("G", [4, 8])
def test_grpo_is_unbiased_up_to_its_known_scale(G):
    est = _per_group_estimates(lambda t, a, r: rl.grpo(t, a, r), G=G)
    exact = rl.exact_reward_gradient(LOGITS, CORRECT).numpy()
    p_correct = float((torch.softmax(LOGITS, -1) * CORRECT).sum())
    scale = rl.grpo_gradient_scale(p_correct, G)
    assert scale > 0 and abs(scale - 1) > 0.1  # normalising by the std changes the step size ...
    _assert_mean_is(est, scale * exact)  # ... but not, for 0/1 rewards, its direction


def test_grpo_advantage_is_normalised_and_zero_for_equal_rewards():
    adv = rl.grpo_advantage(torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64))
    assert abs(float(adv.mean())) < 1e-12 and abs(float(adv.std()) - 1) < 1e-5
    assert torch.all(rl.grpo_advantage(torch.ones(6, dtype=torch.float64)) == 0)


def _ppo_grad(ratio: float, adv: float, eps_low: float, eps_high: float | None) -> torch.Tensor:
    old = torch.zeros(3, dtype=torch.float64)
    # raise logit 0 so that pi(0) / pi_old(0) = ratio exactly: pi(0) = e^z / (e^z + 2)
    p_new = ratio / 3
    z = math.log(2 * p_new / (1 - p_new))
    theta = torch.tensor([z, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    actions, advantages = torch.tensor([0]), torch.tensor([adv], dtype=torch.float64)
    (grad,) = torch.autograd.grad(rl.ppo_clip(theta, old, actions, advantages, eps_low, eps_high), theta)
    return grad


def test_ppo_clip_gradient_vanishes_beyond_the_clip_in_the_advantages_direction():
    assert torch.all(_ppo_grad(1.3, +1.0, 0.2, None) == 0)  # pushed up past 1 + eps: no more push
    assert torch.all(_ppo_grad(0.7, -1.0, 0.2, None) == 0)  # pushed down past 1 - eps: no more push
    assert _ppo_grad(1.3, -1.0, 0.2, None).abs().sum() > 0  # past the clip, against its advantage: still
    assert _ppo_grad(0.7, +1.0, 0.2, None).abs().sum() > 0
    assert _ppo_grad(1.1, +1.0, 0.2, None).abs().sum() > 0  # inside the clip


def test_asymmetric_clip_allows_larger_increases():
    assert torch.all(_ppo_grad(1.25, +1.0, 0.2, None) == 0)
    assert _ppo_grad(1.25, +1.0, 0.2, 0.28).abs().sum() > 0  # clip-higher: still rising at 1.25

    def final_ratio(eps_high):  # optimise one group to convergence: how far can pi(a) rise?
        old = torch.zeros(4, dtype=torch.float64)
        theta = old.clone().requires_grad_(True)
        actions, adv = torch.tensor([0]), torch.tensor([1.0], dtype=torch.float64)
        for _ in range(300):
            (grad,) = torch.autograd.grad(rl.ppo_clip(theta, old, actions, adv, 0.2, eps_high), theta)
            with torch.no_grad():
                theta += 0.05 * grad
        return float(torch.softmax(theta.detach(), -1)[0] / 0.25)

    sym, asym = final_ratio(None), final_ratio(0.28)
    assert 1.2 <= sym < 1.24 and 1.28 <= asym < 1.32  # stops one step past 1 + eps_high


def test_entropy_bonus_prevents_entropy_collapse():
    for seed in (0, 1):
        base = rl.train_bandit("grpo", {"n_correct": 3}, K=8, G=8, steps=300, lr=0.5, seed=seed)
        bonus = rl.train_bandit(
            "grpo", {"n_correct": 3, "entropy": 0.3}, K=8, G=8, steps=300, lr=0.5, seed=seed
        )
        assert base.entropy[-1] < 0.2  # collapse onto one of the three correct answers
        assert bonus.entropy[-1] > 0.8  # spread over them (log 3 = 1.10)
        assert base.p_correct[-1] > 0.95 and bonus.p_correct[-1] > 0.95


def test_entropy_band_slows_the_collapse():
    base = rl.train_bandit("grpo", {"n_correct": 3}, K=8, G=8, steps=300, lr=0.5, seed=0)
    band = rl.train_bandit("grpo", {"n_correct": 3, "band_weight": 1.0}, K=8, G=8, steps=300, lr=0.5, seed=0)
    assert band.entropy[-1] > 5 * base.entropy[-1]
    theta = LOGITS.clone()
    h = float(rl.policy_entropy(LOGITS))
    assert float(rl.entropy_band_penalty(theta, h)) == 0  # inside the band: no penalty
    assert float(rl.entropy_band_penalty(theta, 2 * h)) > 0  # entropy below the band


def test_kl_penalty_keeps_pi_near_the_reference():
    free = rl.train_bandit("grpo", {}, K=8, G=8, steps=200, lr=0.5, seed=0)
    tied = rl.train_bandit("grpo", {"kl": 1.0}, K=8, G=8, steps=200, lr=0.5, seed=0)
    assert free.kl[0] == 0 and tied.kl[0] == 0
    assert tied.kl[-1] < 0.2 * free.kl[-1]


def test_kl_estimators_agree_in_expectation():
    ref = torch.zeros(5, dtype=torch.float64)
    exact = float(rl.kl_to_reference(LOGITS, ref))
    g = torch.Generator().manual_seed(0)
    actions = torch.multinomial(torch.softmax(LOGITS, -1), 200000, replacement=True, generator=g)
    k3 = float(rl.kl_to_reference(LOGITS, ref, actions, "k3"))
    assert exact > 0 and abs(k3 - exact) < 0.01


def test_majority_vote_reinforces_the_mode_without_ground_truth():
    assert rl.majority_vote_rewards(torch.tensor([2, 1, 2, 0]), 3).tolist() == [1.0, 0.0, 1.0, 0.0]
    run = rl.train_bandit("grpo", {"reward": "majority"}, K=8, G=8, steps=200, lr=0.5, seed=0)
    mode = int(np.argmax(run.policy[0]))
    assert run.correct[mode] == 0  # the mode is wrong, and majority vote cannot know
    assert run.policy[-1][mode] > run.policy[0][mode] + 0.3 and run.policy[-1][mode] > 0.9


def test_novelty_bonus_favours_rarely_sampled_answers():
    bonus = rl.novelty_bonus(torch.tensor([0, 1]), torch.tensor([0.0, 99.0], dtype=torch.float64), 1.0)
    assert bonus[0] == 1.0 and abs(float(bonus[1]) - 0.1) < 1e-12


def test_run_record():
    run = rl.train_bandit("ppo", {"eps_high": 0.28, "record_every": 25}, K=6, G=4, steps=50, lr=0.3, seed=3)
    again = rl.train_bandit("ppo", {"eps_high": 0.28, "record_every": 25}, K=6, G=4, steps=50, lr=0.3, seed=3)
    assert np.array_equal(run.policy, again.policy) and np.array_equal(run.reward, again.reward)
    assert run.entropy.shape == (51,) and run.reward.shape == (50,) and run.pass_at_k.shape == (51, 3)
    assert run.policy_steps.tolist() == [0, 25, 50] and run.policy.shape == (3, 6)
    assert np.allclose(run.policy.sum(1), 1)
    assert np.allclose(run.pass_at_k[:, 0], run.p_correct)
    assert np.all(np.diff(run.pass_at_k, axis=1) >= 0)  # pass@1 <= pass@4 <= pass@16
    pc = float(run.policy[-1] @ run.correct)
    assert abs(rl.pass_at_k(run.policy[-1], run.correct, 16) - (1 - (1 - pc) ** 16)) < 1e-12
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.K = 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"objective": "dpo"},
        {"params": {"nope": 1}},
        {"params": {"baseline": "median"}},
        {"params": {"n_correct": 9}},
        {"K": 1},
        {"lr": float("nan")},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    args = {"objective": "grpo", "params": {}, "K": 8, "G": 8, "steps": 5, "lr": 0.5, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        rl.train_bandit(**args)
