"""Tests for lossviz.metrics against scikit-learn and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, f1_score, log_loss, roc_auc_score

from lossviz import losses
from lossviz.metrics import (
    accuracy,
    auc,
    brier,
    ece,
    ece_tensor,
    macro_f1,
    mce,
    nll,
    per_sample_gradient_weight,
    probabilities_tensor,
    r2_tensor,
    reliability,
)
from lossviz.models import make_model


def _random_probs(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, rng.integers(0, k, n)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_accuracy_nll_brier_against_sklearn(k: int) -> None:
    probs, y = _random_probs(500, k, seed=k)
    assert accuracy(probs, y) == pytest.approx(np.mean(probs.argmax(1) == y))
    assert nll(probs, y) == pytest.approx(log_loss(y, probs, labels=list(range(k))), rel=1e-10)
    expected_brier = np.mean(np.sum((probs - np.eye(k)[y]) ** 2, 1))
    assert brier(probs, y) == pytest.approx(expected_brier, rel=1e-12)
    if k == 2:
        # sklearn's binary Brier score is mean (p1 - y)^2: half of the two-class sum
        assert brier(probs, y) == pytest.approx(2 * brier_score_loss(y, probs[:, 1]), rel=1e-10)
        assert brier(probs[:, 1], y) == pytest.approx(brier(probs, y))  # 1-D = P(class 1)


def test_ece_hand_computed() -> None:
    # 3 bins: (0, 1/3], (1/3, 2/3], (2/3, 1]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.45, 0.55], [0.7, 0.3]])
    labels = np.array([0, 1, 1, 0, 0])
    # confidences: 0.9 (right), 0.8 (wrong), 0.6 (right), 0.55 (wrong), 0.7 (right)
    # bin 2 holds 0.9, 0.8, 0.7: acc 2/3, conf 0.8; bin 1 holds 0.6, 0.55: acc 1/2, conf 0.575
    expected_ece = 3 / 5 * abs(2 / 3 - 0.8) + 2 / 5 * abs(0.5 - 0.575)
    rel = reliability(probs, labels, n_bins=3)
    assert rel.ece == pytest.approx(expected_ece)
    assert rel.mce == pytest.approx(max(abs(2 / 3 - 0.8), abs(0.5 - 0.575)))
    np.testing.assert_array_equal(rel.counts, [0, 2, 3])
    assert np.isnan(rel.confidence[0]) and np.isnan(rel.accuracy[0])
    np.testing.assert_allclose(rel.confidence[1:], [0.575, 0.8])
    np.testing.assert_allclose(rel.edges, [0, 1 / 3, 2 / 3, 1])
    assert ece(probs, labels, 3) == rel.ece and mce(probs, labels, 3) == rel.mce


def test_ece_bin_edges_are_right_closed() -> None:
    # confidence exactly 0.6 with 5 bins belongs to (0.4, 0.6], not (0.6, 0.8]
    rel = reliability(np.array([[0.6, 0.4]]), np.array([0]), n_bins=5)
    np.testing.assert_array_equal(rel.counts, [0, 0, 1, 0, 0])
    assert rel.ece == pytest.approx(0.4)


def test_perfectly_calibrated_ece_is_small() -> None:
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0, 1, 200_000)
    y = (rng.uniform(0, 1, p1.size) < p1).astype(int)
    assert ece(p1, y) < 0.01


@pytest.mark.parametrize("k", [2, 5])
def test_ece_tensor_matches_numpy(k: int) -> None:
    probs, y = _random_probs(1000, k, seed=10 + k)
    value = ece_tensor(torch.as_tensor(probs), torch.as_tensor(y))
    assert float(value) == pytest.approx(ece(probs, y), rel=1e-9)


def test_ece_tensor_survives_nan() -> None:
    probs = torch.tensor([[float("nan"), float("nan")], [0.9, 0.1]])
    assert torch.isfinite(ece_tensor(probs, torch.tensor([0, 0])))


def test_macro_f1_against_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.uniform(size=300) < 0.6, y, rng.integers(0, 5, 300))
    assert macro_f1(pred, y) == pytest.approx(f1_score(y, pred, average="macro"))
    # a class that is never predicted (and one never present) still counts, as in sklearn
    pred2 = np.where(pred == 4, 0, pred)
    y2 = np.where(y == 3, 2, y)
    assert macro_f1(pred2, y2) == pytest.approx(f1_score(y2, pred2, average="macro", zero_division=0))


def test_auc_against_sklearn_with_ties() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    scores = np.round(y * 0.5 + rng.normal(size=400), 1)  # rounding creates many ties
    assert auc(scores, y) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)
    probs = np.column_stack([1 - 1 / (1 + np.exp(-scores)), 1 / (1 + np.exp(-scores))])
    assert auc(probs, y) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        auc(scores, np.zeros(400, int))


def test_probabilities_and_r2_tensors() -> None:
    logit = torch.tensor([[0.0], [2.0]])
    torch.testing.assert_close(probabilities_tensor(logit, "binary")[:, 1], torch.sigmoid(logit[:, 0]))
    logits = torch.randn(4, 3)
    torch.testing.assert_close(probabilities_tensor(logits, "multiclass"), torch.softmax(logits, 1))
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    pred = torch.tensor([1.1, 1.9, 3.2, 3.8])
    ss_res, ss_tot = 0.01 + 0.01 + 0.04 + 0.04, 5.0
    assert float(r2_tensor(pred, target)) == pytest.approx(1 - ss_res / ss_tot)


def test_per_sample_gradient_weight_matches_closed_form_for_ce() -> None:
    # For cross-entropy dL_i/dz_i = p_i - e_{y_i}
    model = make_model("mlp", 2, 3, width=8, seed=0)
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    y = np.arange(20) % 3
    weights = per_sample_gradient_weight(model, "cross_entropy", X, y)
    with torch.no_grad():
        p = torch.softmax(model(torch.as_tensor(X)), 1)
    expected = (p - torch.eye(3)[y]).norm(dim=1).numpy()
    np.testing.assert_allclose(weights, expected, rtol=1e-5)


def test_per_sample_gradient_weight_is_bounded_for_robust_losses_and_model_untouched() -> None:
    # GCE's weight p_y^q (p - e_y) vanishes for badly misfit samples, CE's does not
    model = make_model("mlp", 2, 2, width=8, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    with torch.no_grad():
        wrong = 1 - model(torch.as_tensor(X)).argmax(1).numpy()  # labels the model contradicts
    ce = per_sample_gradient_weight(model, "cross_entropy", X, wrong)
    gce = per_sample_gradient_weight(model, losses.make("gce", q=0.7), X, wrong)
    assert np.all(gce < ce)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_per_sample_gradient_weight_binary_and_class_counts() -> None:
    model = make_model("linear", 2, 1, seed=0)
    X = np.random.default_rng(3).normal(size=(10, 2)).astype(np.float32)
    y = np.array([0, 1] * 5)
    weights = per_sample_gradient_weight(model, "logistic", X, y)
    with torch.no_grad():
        s = torch.sigmoid(model(torch.as_tensor(X))[:, 0]).numpy()
    np.testing.assert_allclose(weights, np.abs(s - y), rtol=1e-5)  # d/dz log(1+e^-m) = sigmoid(z) - y
    vs = per_sample_gradient_weight(make_model("linear", 2, 2, seed=0), "vs_loss", X, y)
    assert vs.shape == (10,) and np.isfinite(vs).all()
