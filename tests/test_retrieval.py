"""Retrieval metrics (recall@k, mAP@R) against brute-force loops over queries."""

from __future__ import annotations

import numpy as np
import pytest

from lossviz import metrics


def _brute(x: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    recalls, aps = [], []
    for q in range(len(x)):
        others = [i for i in range(len(x)) if i != q]
        ranked = sorted(others, key=lambda i: -float(x[q] @ x[i]))
        recalls.append(any(y[i] == y[q] for i in ranked[:k]))
        r = sum(y[i] == y[q] for i in others)
        if r:
            hits, total = 0, 0.0
            for pos, i in enumerate(ranked[:r], start=1):
                if y[i] == y[q]:
                    hits += 1
                    total += hits / pos
            aps.append(total / r)
    return float(np.mean(recalls)), float(np.mean(aps))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_and_map_match_a_brute_force_loop(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 40)
    x = rng.normal(size=(40, 3)) + 1.5 * np.eye(3)[y % 3]
    for k in (1, 5):
        recall, ap = _brute(x, y, k)
        assert metrics.recall_at_k(x, y, k) == pytest.approx(recall)
    assert metrics.map_at_r(x, y) == pytest.approx(ap)


def test_perfectly_clustered_embeddings_score_one():
    y = np.repeat(np.arange(3), 5)
    x = np.eye(3)[y] + 1e-3 * np.random.default_rng(0).normal(size=(15, 3))
    assert metrics.recall_at_k(x, y, 1) == 1.0 and metrics.map_at_r(x, y) == pytest.approx(1.0)


def test_retrieval_checks_its_inputs():
    with pytest.raises(ValueError, match="k must be"):
        metrics.recall_at_k(np.ones((3, 2)), np.zeros(3), 0)
    with pytest.raises(ValueError, match="one label each"):
        metrics.map_at_r(np.ones((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="two or more samples"):
        metrics.map_at_r(np.eye(3), np.arange(3))
