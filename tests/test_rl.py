"""The RL objectives of lossviz.rl: estimator bias against the exact gradient, clipping, the KL and entropy
terms, majority vote and novelty, the training record, the multi-prompt tabular task and its presets' claims,
and the pass@N loss against plain likelihood."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossviz import rl


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Row-wise softmax over a (P, K) table is split over threads, which costs ~20 ms a call on a loaded
    2-core machine (measured) for a 16 x 16 table; the app runs torch on one thread too (lossviz.ui)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


# ------------------------------------------------------------------------------ the multi-prompt tabular task


def test_correct_sets_have_n_correct_answers_per_prompt_and_extend_the_bandit():
    sets = rl.correct_sets(12, 9, 3, seed=5)
    assert sets.shape == (12, 9) and torch.all(sets.sum(1) == 3)
    assert torch.equal(sets[0], rl.correct_answers(9, 3, seed=5))
    assert len({tuple(row.tolist()) for row in sets}) > 1  # each prompt its own set


def test_mean_pass_at_k_matches_the_unbiased_estimator_on_samples():
    """Chen et al. (2021, Codex)'s unbiased estimator 1 - C(n - c, k) / C(n, k) from n samples per prompt with
    c correct, averaged over many draws, against the closed form 1 - (1 - p)^k for a known policy."""
    p = np.array([0.02, 0.1, 0.5, 0.9])  # four prompts' mass on their correct answers
    rng = np.random.default_rng(0)
    n, k, draws = 20, 5, 20000
    c = rng.binomial(n, p, size=(draws, len(p)))  # correct answers among n samples per prompt
    estimate = 1 - np.vectorize(math.comb)(n - c, k) / math.comb(n, k)  # (draws, P)
    per_draw = estimate.mean(1)
    se = per_draw.std(ddof=1) / math.sqrt(draws)
    assert abs(per_draw.mean() - rl.mean_pass_at_k(p, k)) < 4 * se
    assert rl.mean_pass_at_k(p, 1) == pytest.approx(p.mean())
    uniform = rl.mean_pass_at_k(np.full(3, 2 / 8), 4)  # 2 correct of 8, uniform: 1 - (6/8)^4
    assert uniform == pytest.approx(1 - 0.75**4)
    with pytest.raises(ValueError, match="k must be"):
        rl.mean_pass_at_k(p, 0)


def test_uniform_policy_has_entropy_log_k_and_pass_at_k_of_the_closed_form():
    run = rl.train_tabular(
        "grpo", {"init_scale": 0.0, "n_correct": 2}, P=4, K=10, G=4, steps=3, lr=0.1, seed=0
    )
    assert run.entropy[0] == pytest.approx(math.log(10), abs=1e-12)
    assert float(rl.policy_entropy(torch.zeros(7, dtype=torch.float64))) == pytest.approx(math.log(7))
    assert run.pass_at(3)[0] == pytest.approx(1 - 0.8**3)  # 2 of 10 correct, 3 samples


def test_training_reward_has_the_exact_expectation_when_pi_stays_put():
    """With a vanishing step the policy stays at its start; the sampled verifiable reward of P groups of G
    then averages to the exact mean over prompts of sum_a pi_a r_a, within its known standard error."""
    P, G, steps = 12, 6, 400
    run = rl.train_tabular("reinforce", {"n_correct": 3}, P=P, K=8, G=G, steps=steps, lr=1e-12, seed=2)
    assert np.abs(run.p_correct - run.p_correct[0]).max() < 1e-9
    p = run.p_correct[0]  # (P,)
    exact = p.mean()
    se = math.sqrt((p * (1 - p)).sum() * G / (P * G) ** 2 / steps)
    assert abs(run.accuracy.mean() - exact) < 4 * se
    assert np.array_equal(run.reward, run.accuracy)  # the verifiable reward is the correctness itself


def test_one_prompt_is_the_bandit():
    args = dict(params={"n_correct": 2, "entropy": 0.05}, K=6, G=4, steps=30, lr=0.5, seed=7)
    bandit = rl.train_bandit("ppo", **args)
    table = rl.train_tabular("ppo", P=1, **args)
    assert np.array_equal(table.entropy, bandit.entropy) and np.array_equal(table.reward, bandit.reward)
    assert np.array_equal(table.p_correct[:, 0], bandit.p_correct)
    assert np.array_equal(table.policy[:, 0], bandit.policy) and table.policy.shape == (4, 1, 6)
    assert np.allclose(table.pass_at(4), bandit.pass_at_k[:, 1])


def test_per_step_statistics_match_the_stored_policies_across_chunks():
    """Statistics are reduced rl.STATS_CHUNK steps at a time: recompute them from pi at every step."""
    steps = rl.STATS_CHUNK + 44
    run = rl.train_tabular("grpo", {"record_every": 1, "n_correct": 2}, P=3, K=5, G=4, steps=steps, seed=1)
    pi = run.policy  # (S + 1, P, K), every step stored
    assert pi.shape == (steps + 1, 3, 5) and run.policy_steps.tolist() == list(range(steps + 1))
    assert np.allclose(run.entropy, -(pi * np.log(pi)).sum(-1).mean(-1))
    assert np.allclose(run.p_correct, (pi * run.correct).sum(-1))
    kl = (pi * (np.log(pi) - np.log(pi[0]))).sum(-1).mean(-1)
    assert np.allclose(run.kl, kl) and run.kl[0] == 0


def test_majority_vote_and_group_novelty_act_per_group():
    actions = torch.tensor([[2, 1, 2, 0], [1, 0, 0, 1], [3, 3, 3, 3]])
    rewards = rl.majority_vote_rewards(actions, 4)
    assert rewards.tolist() == [[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 1, 1]]  # a tie goes to the lower answer
    for row, expected in zip(actions, rewards, strict=True):
        assert torch.equal(rl.majority_vote_rewards(row, 4), expected)
    novelty = rl.group_novelty_bonus(actions, 4, 3.0)  # 3 * (1 - (c - 1) / (G - 1)), c the answer's count
    assert torch.allclose(novelty[0], torch.tensor([2.0, 3.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.allclose(novelty[1], torch.full((4,), 2.0, dtype=torch.float64))
    assert torch.all(novelty[2] == 0)  # a collapsed group: nothing novel


def test_train_variant_fills_in_the_shared_terms():
    settings = {**rl.SETTINGS, "steps": 3, "novelty": 0.7, "entropy": 0.1, "band": True}
    majority = dict(rl.train_variant("majority_vote", **settings).params)
    assert majority["reward"] == "majority" and majority["novelty"] == 0.7 and majority["band_weight"] == 1.0
    grpo = dict(rl.train_variant("grpo", **settings).params)
    assert grpo["novelty"] == 0.0 and grpo["entropy"] == 0.1  # novelty belongs to the label-free reward
    assert dict(rl.train_variant("ppo_clip_higher", **settings).params)["eps_high"] == 0.28
    assert rl.without_diversity(settings) == {**settings, "entropy": 0.0, "band": False, "novelty": 0.0}
    with pytest.raises(ValueError, match="variant"):
        rl.train_variant("dpo", **settings)


def _preset(name: str, plain_for: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """{variant: run} for one preset (seed 0) and {variant: the run without the diversity terms} for the
    variants in plain_for."""
    preset = rl.PRESETS[name]
    settings = {**rl.SETTINGS, **{k: v for k, v in preset.items() if k in rl.SETTINGS}}
    runs = {v: rl.train_variant(v, **settings) for v in preset["variants"]}
    plain = {v: rl.train_variant(v, **rl.without_diversity(settings)) for v in plain_for}
    return runs, plain


def test_presets_name_known_variants_and_settings():
    for name, preset in rl.PRESETS.items():
        assert set(preset) <= set(rl.SETTINGS) | {"variants", "N", "k"}, name
        assert preset["variants"] and set(preset["variants"]) <= set(rl.VARIANTS), name


def test_entropy_collapses_while_pass_at_1_climbs_to_pass_at_16():
    runs, _ = _preset("entropy_collapse")
    for variant, run in runs.items():
        assert run.entropy[-1] < 0.25 * run.entropy[0], variant
        gap = run.pass_at(16) - run.pass_at(1)
        assert gap[0] > 0.4 and gap[-1] < 0.1, variant
        per_prompt = 1 - (1 - run.p_correct) ** 16  # (S + 1, P)
        assert np.all(per_prompt[-1] >= per_prompt[0] - 1e-6), variant  # no prompt lost coverage
    assert runs["grpo"].entropy[-1] < 0.1 and runs["grpo"].pass_at(1)[-1] > 0.95


def test_entropy_bonus_and_epo_band_keep_entropy_up():
    bonus, plain = _preset("entropy_bonus", ("grpo",))
    assert bonus["grpo"].entropy[-1] > 3 * plain["grpo"].entropy[-1] and bonus["grpo"].pass_at(1)[-1] > 0.95
    assert bonus["rloo"].entropy[-1] > 1.4 and bonus["rloo"].pass_at(1)[-1] < 0.85  # the bonus outweighs it
    band, plain = _preset("epo_band", ("grpo",))
    assert band["grpo"].entropy[-1] > 2 * plain["grpo"].entropy[-1] and band["grpo"].pass_at(1)[-1] > 0.95


def test_clip_higher_keeps_no_more_entropy_on_the_bandit():
    runs, _ = _preset("clip_higher")
    # the page's "not reproduced": no more entropy with the higher clip
    assert runs["ppo_clip_higher"].entropy[-1] < 1.5 * runs["ppo_clip"].entropy[-1]
    assert runs["ppo_clip_higher"].entropy[-1] < 0.1


def test_majority_vote_collapses_onto_the_majority_and_novelty_keeps_it_open():
    runs, _ = _preset("majority_vote")
    vote = runs["majority_vote"]
    assert vote.policy[-1].max(-1).min() > 0.95  # every prompt on one answer
    start_mode = vote.policy[0].argmax(-1)
    assert np.mean(vote.policy[-1].argmax(-1) == start_mode) > 0.6
    assert vote.pass_at(16)[-1] < 0.3 < 0.5 < vote.pass_at(16)[0]
    assert runs["grpo"].pass_at(1)[-1] > 0.95
    novel, plain = _preset("novelty", ("majority_vote",))
    assert novel["majority_vote"].entropy[-1] > 1.4 > 0.1 > plain["majority_vote"].entropy[-1]
    assert novel["majority_vote"].pass_at(16)[-1] > 0.4 > 0.25 > plain["majority_vote"].pass_at(16)[-1]


# ------------------------------------------------------------------------------ pass@N versus likelihood


def test_one_likelihood_step_is_the_closed_form_gradient_step():
    """The gradient of mean_{y in C} CE(theta, y) is softmax(theta) - (uniform over C): one step of lr."""
    kwargs = dict(prompts=5, answers=6, n_correct=2, lr=0.3, init_scale=1.0, seed=4)
    run = rl.train_likelihood("cross_entropy", steps=1, **kwargs)
    theta, correct, _ = rl.initial_policy(5, 6, 2, 1.0, 4)
    stepped = theta - 0.3 * (torch.softmax(theta, -1) - correct / 2)
    expected = (torch.softmax(stepped, -1) * correct).sum(-1).numpy()
    assert np.allclose(run.p_correct[1], expected, atol=1e-12)
    assert np.array_equal(run.correct, correct.numpy())
    ce = F.cross_entropy(theta.repeat_interleave(2, 0), correct.nonzero()[:, 1])
    assert run.loss_value[0] == pytest.approx(float(ce))
    same = rl.train_likelihood("pass_at_n", {"n": 1}, steps=20, **kwargs)  # pass@1 is cross-entropy
    assert np.allclose(same.p_correct, rl.train_likelihood("cross_entropy", steps=20, **kwargs).p_correct)


def test_pass_at_n_keeps_more_diversity_than_likelihood():
    preset = rl.PRESETS["pass_at_n"]
    s = {**rl.SETTINGS, **{k: v for k, v in preset.items() if k in rl.SETTINGS}}
    kwargs = {k: s[k] for k in ("prompts", "answers", "n_correct", "steps", "lr", "init_scale", "seed")}
    ce = rl.train_likelihood("cross_entropy", **kwargs)
    pn = rl.train_likelihood("pass_at_n", {"n": preset["N"]}, **kwargs)
    assert ce.entropy[-1] < 0.1 and pn.entropy[-1] > 1.5
    assert ce.pass_at(1)[-1] > 0.95 > 0.6 > pn.pass_at(1)[-1]
    assert ce.pass_at(16)[-1] > 0.99 and pn.pass_at(16)[-1] > 0.99


@pytest.mark.parametrize(
    "kwargs",
    [{"loss": "focal"}, {"n_correct": 7}, {"prompts": 0}, {"init_scale": -1.0}, {"params": {"n": 0}}],
)
def test_bad_likelihood_arguments_are_refused(kwargs):
    args = {"loss": "pass_at_n", "params": {}, "answers": 6, "steps": 2, **kwargs}
    with pytest.raises(ValueError):
        rl.train_likelihood(args.pop("loss"), args.pop("params"), **args)
