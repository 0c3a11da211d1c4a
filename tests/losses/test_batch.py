"""Batch-level losses: Dice-family identities, AnyLoss vs scikit-learn metrics, AUC and Lovász checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    fbeta_score,
    recall_score,
    roc_auc_score,
)

from lossviz import losses
from lossviz.losses.batch import lovasz_jaccard_gradient

BATCH = [n for n in losses.names("binary") if losses.get(n).batch]


def _batch(n: int = 40, seed: int = 0, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(n, generator=g) < 0.3).double()
    target[:2] = torch.tensor([0.0, 1.0])
    logit = scale * torch.randn(n, generator=g, dtype=torch.float64) + (2 * target - 1)  # informative scores
    return logit, target


def _confident(seed: int, n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and logits with |logit| >= 2, right about 70% of the time."""
    rng = np.random.default_rng(seed)
    target = (rng.random(n) < 0.35).astype(float)
    target[:2] = [0.0, 1.0]
    right = rng.random(n) < 0.7
    sign = np.where(right, 2 * target - 1, 1 - 2 * target)
    logit = sign * rng.uniform(2.0, 8.0, n)
    return torch.tensor(logit), torch.tensor(target)


def test_at_least_nine_batch_losses():
    assert len(BATCH) >= 9, BATCH


@pytest.mark.parametrize("name", BATCH)
def test_batch_losses_ignore_the_order_of_samples(name):
    spec = losses.get(name)
    logit, target = _batch()
    perm = torch.randperm(len(logit), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(spec(logit[perm], target[perm]), spec(logit, target))


@pytest.mark.parametrize("name", BATCH)
def test_batch_losses_prefer_right_to_wrong(name):
    spec = losses.get(name)
    _, target = _batch()
    right = 5.0 * (2 * target - 1)
    assert float(spec(right, target)) < float(spec(-right, target))


@pytest.mark.parametrize(
    "name",
    [
        "soft_dice",
        "tversky",
        "soft_jaccard",
        "anyloss_f1",
        "anyloss_gmean",
        "anyloss_gmean_sqrt",
        "lovasz_hinge",
    ],
)
def test_overlap_losses_near_zero_on_perfect_predictions(name):
    _, target = _batch()
    assert float(losses.get(name)(20.0 * (2 * target - 1), target)) < 1e-3


def test_soft_dice_near_one_on_worst_predictions():
    _, target = _batch()
    worst = losses.get("soft_dice")(-20.0 * (2 * target - 1), target, smoothing=1e-6)
    assert float(worst) == pytest.approx(1.0, abs=1e-6)


def test_dice_family_identities():
    logit, target = _batch(seed=3)
    dice = losses.get("soft_dice")(logit, target)
    torch.testing.assert_close(
        losses.get("tversky")(logit, target, alpha=0.5, beta=0.5, smoothing=0.5), dice
    )  # Dice counts TP twice
    torch.testing.assert_close(
        losses.get("tversky")(logit, target, alpha=1.0, beta=1.0), losses.get("soft_jaccard")(logit, target)
    )
    torch.testing.assert_close(losses.get("self_adjusting_dice")(logit, target, alpha=0.0), dice)


def test_soft_dice_matches_hand_formula():
    logit, target = _batch(seed=4)
    p = torch.sigmoid(logit).numpy()
    y = target.numpy()
    expected = 1 - (2 * (p * y).sum() + 1.0) / (p.sum() + y.sum() + 1.0)
    assert float(losses.get("soft_dice")(logit, target)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("smoothing", [1e-6, 0.25, 1.0, 5.0])
def test_tversky_at_one_half_is_soft_dice_with_doubled_smoothing(smoothing):
    # Tversky(1/2, 1/2, s) = 1 - (2 TP + 2s) / (2 TP + FP + FN + 2s): soft Dice's formula with smoothing 2s
    logit, target = _batch(seed=7)
    tversky, dice = losses.get("tversky"), losses.get("soft_dice")
    half = tversky(logit, target, alpha=0.5, beta=0.5, smoothing=smoothing)
    torch.testing.assert_close(half, dice(logit, target, smoothing=2.0 * smoothing), rtol=1e-12, atol=0)
    if smoothing > 1e-3:  # with the same smoothing they differ
        assert abs(float(half) - float(dice(logit, target, smoothing=smoothing))) > 1e-4
    assert "doubled smoothing" in tversky.notes


def test_tversky_beta_punishes_missed_positives():
    # a batch that misses positives: raising beta (weight of FN) raises the loss, raising alpha does not
    target = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    logit = torch.tensor([-3.0, -3.0, 3.0, -3.0, -3.0], dtype=torch.float64)
    tversky = losses.get("tversky")
    assert float(tversky(logit, target, alpha=0.1, beta=0.9)) > float(
        tversky(logit, target, alpha=0.9, beta=0.1)
    )


def test_self_adjusting_dice_weight_fades_confident_samples():
    # the weight (1-p)^alpha p of a very confident positive drops, so the loss no longer reaches 0;
    # at alpha = 1 the weight p (1 - p) is symmetric: confidently right and wrong batches cost the same
    _, target = _batch()
    perfect = 20.0 * (2 * target - 1)
    sadice = losses.get("self_adjusting_dice")
    assert float(sadice(perfect, target, alpha=1.0, smoothing=1e-6)) > 0.9
    torch.testing.assert_close(sadice(perfect, target, alpha=1.0), sadice(-perfect, target, alpha=1.0))
    right = 5.0 * (2 * target - 1)  # a small alpha keeps moderately confident right batches cheap
    assert float(sadice(right, target, alpha=0.1)) < 0.5 * float(sadice(-right, target, alpha=0.1))


@pytest.mark.parametrize("seed", range(4))
def test_anyloss_matches_sklearn_metrics_on_confident_predictions(seed):
    logit, target = _confident(seed)
    y_true, y_pred = target.numpy().astype(int), (logit.numpy() > 0).astype(int)
    sens = recall_score(y_true, y_pred, pos_label=1)
    spec = recall_score(y_true, y_pred, pos_label=0)
    expected = {
        "anyloss_f1": 1 - f1_score(y_true, y_pred),
        "anyloss_fbeta": 1 - fbeta_score(y_true, y_pred, beta=2.0),
        "anyloss_gmean": 1 - sens * spec,
        "anyloss_gmean_sqrt": 1 - np.sqrt(sens * spec),
        "anyloss_balanced_accuracy": 1 - balanced_accuracy_score(y_true, y_pred),
        "anyloss_accuracy": 1 - accuracy_score(y_true, y_pred),
    }
    for name, value in expected.items():
        assert float(losses.get(name)(logit, target)) == pytest.approx(value, abs=1e-5), name


def test_anyloss_fbeta_with_beta_one_is_f1():
    logit, target = _batch(seed=5)
    torch.testing.assert_close(
        losses.get("anyloss_fbeta")(logit, target, beta=1.0), losses.get("anyloss_f1")(logit, target)
    )


def test_anyloss_amplifier_sharpens_towards_the_metric():
    # at logit 0.5 (p ~ 0.62) a small amplifier leaves the prediction soft, L = 73 makes it nearly hard
    target = torch.tensor([1.0, 0.0], dtype=torch.float64)
    logit = torch.tensor([0.5, -0.5], dtype=torch.float64)
    soft = float(losses.get("anyloss_accuracy")(logit, target, amplifier=1.0))
    sharp = float(losses.get("anyloss_accuracy")(logit, target, amplifier=73.0))
    assert soft > 0.4 and sharp < 1e-3


def _soft_counts_np(logit: torch.Tensor, target: torch.Tensor, amplifier: float) -> tuple[float, ...]:
    """AnyLoss's soft TP, TN and the class sizes P, N in numpy: A = 1 / (1 + exp(-L (p - 1/2)))."""
    p = 1 / (1 + np.exp(-logit.numpy()))
    a = 1 / (1 + np.exp(-amplifier * (p - 0.5)))
    y = target.numpy()
    return float((y * a).sum()), float(((1 - y) * (1 - a)).sum()), float(y.sum()), float((1 - y).sum())


@pytest.mark.parametrize("amplifier", [1.0, 5.0, 73.0])
def test_anyloss_gmean_forms_match_hand_formulas_on_soft_counts(amplifier):
    # anyloss_gmean is the authors' code, 1 - TP TN / (P N); anyloss_gmean_sqrt is 1 - sqrt(TPR TNR)
    logit, target = _batch(seed=8, scale=1.0)
    tp, tn, n_pos, n_neg = _soft_counts_np(logit, target, amplifier)
    gmean = float(losses.get("anyloss_gmean")(logit, target, amplifier=amplifier))
    root = float(losses.get("anyloss_gmean_sqrt")(logit, target, amplifier=amplifier))
    # rel 1e-6: the losses add RATE_EPS = 1e-7 to the denominators
    assert gmean == pytest.approx(1 - tp * tn / (n_pos * n_neg), rel=1e-6)
    assert root == pytest.approx(1 - np.sqrt(tp / n_pos * tn / n_neg), rel=1e-6)
    assert 1 - gmean == pytest.approx((1 - root) ** 2, rel=1e-6)  # the same product, with and without root
    assert "authors' code" in losses.get("anyloss_gmean").notes
    assert "anyloss_gmean_sqrt" in losses.get("anyloss_gmean").notes


@pytest.mark.parametrize("name", ["anyloss_gmean", "anyloss_gmean_sqrt"])
def test_anyloss_gmean_gradient_stays_finite_when_a_class_is_missed(name):
    target = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    logit = torch.tensor([-30.0, -30.0, -30.0, -30.0], dtype=torch.float64, requires_grad=True)
    value = losses.get(name)(logit, target)
    (grad,) = torch.autograd.grad(value, logit)
    assert float(value.detach()) == pytest.approx(1.0, abs=1e-6) and torch.isfinite(grad).all()


def test_pairwise_auc_matches_the_double_loop_at_several_temperatures():
    spec = losses.get("pairwise_auc")
    logit, target = _batch(n=15, seed=6)
    for temperature in (0.05, 1.0, 7.0):
        torch.testing.assert_close(
            spec(logit, target, temperature=temperature),
            spec.reference(logit, target, temperature=temperature),
        )


def test_pairwise_auc_falls_as_the_auc_rises():
    # fixed scores; move positives up one rank at a time (adjacent swaps). Each swap raises the AUC by one
    # pair and raises every positive-negative score gap, so the surrogate must fall strictly.
    rng = np.random.default_rng(0)
    scores = torch.tensor(np.sort(rng.normal(size=12)) * 2)
    labels = np.array([1] * 4 + [0] * 8)  # positives at the bottom: AUC 0
    aucs, values = [], []
    while True:
        aucs.append(roc_auc_score(labels, scores.numpy()))
        values.append(float(losses.get("pairwise_auc")(scores, torch.tensor(labels, dtype=torch.float64))))
        swaps = [i for i in range(len(labels) - 1) if labels[i] == 1 and labels[i + 1] == 0]
        if not swaps:
            break
        i = int(rng.choice(swaps))
        labels[i], labels[i + 1] = labels[i + 1], labels[i]
    assert aucs[0] == 0.0 and aucs[-1] == 1.0 and len(aucs) == 4 * 8 + 1
    assert all(np.diff(aucs) > 0) and all(np.diff(values) < 0)


def test_pairwise_auc_is_rank_correlated_with_sklearn_auc():
    aucs, values = [], []
    for seed in range(30):
        logit, target = _batch(n=30, seed=seed, scale=float(1 + seed % 5))
        aucs.append(roc_auc_score(target.numpy(), logit.numpy()))
        values.append(float(losses.get("pairwise_auc")(logit, target, temperature=0.1)))
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(ranks(aucs), ranks(values))[0, 1] < -0.8


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_pairwise_auc_is_zero_with_zero_gradient_for_one_class(label):
    logit = torch.randn(6, dtype=torch.float64, requires_grad=True)
    value = losses.get("pairwise_auc")(logit, torch.full((6,), label, dtype=torch.float64))
    (grad,) = torch.autograd.grad(value, logit)
    assert value.shape == () and float(value.detach()) == 0.0 and (grad == 0).all()


def _jaccard_set_loss(mistakes: set[int], positives: set[int]) -> float:
    """Delta_J(M) = |M| / |P u M| (0 for no mistakes)."""
    return len(mistakes) / len(positives | mistakes) if mistakes else 0.0


def _lovasz_brute_force(errors: np.ndarray, labels: np.ndarray) -> float:
    """Lovász extension of a submodular set function: the max over all orderings (Edmonds' greedy theorem)."""
    positives = {i for i, y in enumerate(labels) if y == 1}
    best = -np.inf
    for order in itertools.permutations(range(len(errors))):
        value, prefix = 0.0, set()
        for i in order:
            gain = _jaccard_set_loss(prefix | {i}, positives) - _jaccard_set_loss(prefix, positives)
            value += errors[i] * gain
            prefix.add(i)
        best = max(best, value)
    return best


@pytest.mark.parametrize("seed", range(3))
def test_lovasz_hinge_matches_brute_force_over_orderings(seed):
    rng = np.random.default_rng(seed)
    labels = np.array([1, 0, 1, 0, 0, 1])
    logit = rng.normal(size=6) * 1.5
    errors = np.maximum(0.0, 1.0 - (2 * labels - 1) * logit)
    ours = float(losses.get("lovasz_hinge")(torch.tensor(logit), torch.tensor(labels, dtype=torch.float64)))
    assert ours == pytest.approx(_lovasz_brute_force(errors, labels), rel=1e-10)


def test_lovasz_hinge_equals_the_jaccard_loss_on_unit_errors():
    # with errors in {0, 1} (margins 1 or 0) the extension equals the set function: 1 - IoU of the mistakes
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    logit = torch.tensor([1.0, 0.0, -1.0, 0.0, 1.0], dtype=torch.float64)  # samples 1 and 3 at margin 0
    assert float(losses.get("lovasz_hinge")(logit, labels)) == pytest.approx(
        _jaccard_set_loss({1, 3}, {0, 1, 4})
    )


def test_lovasz_jaccard_gradient_sums_to_the_full_jaccard_loss():
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    assert float(lovasz_jaccard_gradient(labels).sum()) == pytest.approx(1.0)  # Delta_J(everything wrong) = 1
    assert (lovasz_jaccard_gradient(labels) >= 0).all()
