"""MadaCos, the adaptive-scale, adaptive-margin softmax of CFCD (Zhu et al., ICCV 2023), against the authors'
formula transcribed by hand from their code (bassyess/CFCD, core/model/madacos.py) and its defining property:
the batch's median sample is held at true-class probability rho. MadaCos is batch-level (its s and m exist
per batch): the registered loss is the batch mean, its per-sample terms CosFace's at the batch's s and m.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lossviz import losses
from lossviz.losses.classification import cosface, madacos, madacos_statistics
from tests.losses.conftest import numerical_jacobian

TOL = {"rtol": 1e-10, "atol": 1e-10}  # float64; the two computations differ only by round-off


def _authors_formula(cosines: list[list[float]], labels: list[int], rho: float) -> tuple[float, float, list]:
    """(s, m, per-sample losses) in plain floats, step by step as MadaCosLayerFunction.forward does it."""
    true = [row[y] for row, y in zip(cosines, labels, strict=True)]
    median = sorted(true)[(len(true) - 1) // 2]  # torch.median: the lower of the two middle values
    index = true.index(median)
    s = math.log(9999999 * (1.0 - rho) / rho) / (1 - median)
    if s < 32:
        s = 32.0
    b_avg = sum(math.exp(s * c) for k, c in enumerate(cosines[index]) if k != labels[index])  # "default" B
    m = median - math.log(b_avg * rho / (1.0 - rho)) / s
    if m < 0:
        m = 0.0
    values = []
    for row, y in zip(
        cosines, labels, strict=True
    ):  # cross-entropy of s cos, with s (cos_y - m) on the target
        logits = [s * (c - m) if k == y else s * c for k, c in enumerate(row)]
        values.append(math.log(sum(math.exp(z) for z in logits)) - logits[y])
    return s, m, values


def _trained_batch(seed: int, n: int = 12, k: int = 4, low: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines of a batch past the first epochs: true-class cosines in [low, low + 0.45] (low <= 0.55), the
    rest in ±0.6."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    cosines = torch.rand(n, k, generator=g, dtype=torch.float64) * 1.2 - 0.6
    cosines[torch.arange(n), labels] = low + 0.45 * torch.rand(n, generator=g, dtype=torch.float64)
    return cosines, labels


def _statistics(cosines: torch.Tensor, labels: torch.Tensor, rho: float = 0.02) -> tuple[float, float]:
    scale, margin = madacos_statistics(cosines, labels, rho)
    return float(scale), float(margin)


def _true_probabilities(cosines: torch.Tensor, labels: torch.Tensor, s: float, m: float) -> torch.Tensor:
    logits = s * (cosines - m * F.one_hot(labels, cosines.shape[1]).to(cosines.dtype))
    return torch.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)


def test_madacos_is_a_cosine_head_multiclass_loss_whose_batch_statistics_stop_the_gradient():
    spec = losses.get("madacos")
    assert spec.task == "multiclass" and spec.head == "cosine" and spec.batch
    assert "s" in spec.stop_gradient and "m" in spec.stop_gradient
    assert spec.defaults == {"rho": 0.02}  # the authors' training configs (configs/resnet*_cfcd_s*_8gpu.yaml)


@pytest.mark.parametrize("rho", [0.001, 0.02, 0.1, 0.5])
@pytest.mark.parametrize("n", [12, 11], ids=["even", "odd"])
@pytest.mark.parametrize("low", [-0.2, 0.3, 0.54], ids=["early", "trained", "tight"])
def test_madacos_matches_the_authors_formula(rho, n, low):
    cosines, labels = _trained_batch(seed=n, n=n, low=low)
    s, m, expected = _authors_formula(cosines.tolist(), labels.tolist(), rho)
    assert _statistics(cosines, labels, rho) == pytest.approx((s, m), rel=1e-12, abs=1e-12)
    per_sample = cosface(cosines, labels, scale=s, margin=m)
    torch.testing.assert_close(per_sample, torch.tensor(expected, dtype=torch.float64), **TOL)
    torch.testing.assert_close(madacos(cosines, labels, rho=rho), per_sample.mean(), **TOL)


@pytest.mark.parametrize("rho", [0.005, 0.02, 0.1, 0.3])
def test_the_median_sample_is_held_at_true_class_probability_rho(rho):
    cosines, labels = _trained_batch(seed=3)
    s, m = _statistics(cosines, labels, rho)
    assert m > 0
    median = torch.median(cosines[torch.arange(12), labels], dim=0).indices
    p = _true_probabilities(cosines, labels, s, m)
    assert float(p[median]) == pytest.approx(rho, rel=1e-9)


def test_the_scale_and_the_lower_median_by_hand():
    # true-class cosines 0.2, 0.5, 0.7, 0.9: the lower median is 0.5 (sample 1), so
    # s = log(9999999 * 0.98 / 0.02) / (1 - 0.5) = 40.0..., above the floor of 32
    cosines = torch.tensor(
        [[0.2, 0.1, -0.3], [0.0, 0.5, 0.25], [0.1, -0.2, 0.7], [0.9, 0.3, 0.0]], dtype=torch.float64
    )
    labels = torch.tensor([0, 1, 2, 0])
    s, m = _statistics(cosines, labels)
    assert s == pytest.approx(2 * math.log(9999999 * 49), rel=1e-12)
    # B of sample 1 sums its two wrong classes; m = 0.5 - log(B * 0.02 / 0.98) / s
    b = math.exp(s * 0.0) + math.exp(s * 0.25)
    assert m == pytest.approx(0.5 - math.log(b / 49) / s, rel=1e-12)


def test_an_untrained_batch_gets_the_floor_scale_and_no_margin():
    # median true-class cosine near 0: log(R (1 - rho) / rho) ~ 20 < 32, and the median sample is already
    # below probability rho at s = 32, so m clips to 0: MadaCos is then cross-entropy of 32 cos
    cosines, labels = _trained_batch(seed=4, low=-0.25)
    assert _statistics(cosines, labels) == (32.0, 0.0)
    torch.testing.assert_close(madacos(cosines, labels), F.cross_entropy(32 * cosines, labels))


def test_scale_and_margin_grow_as_the_batch_tightens():
    # the paper's claim: as training pulls samples to their class centres, s and m rise (stronger supervision)
    base, labels = _trained_batch(seed=5, low=0.0)
    stats = []
    for lift in (0.0, 0.2, 0.4, 0.6, 0.8):
        cosines = base.clone()
        cosines[torch.arange(12), labels] = (base[torch.arange(12), labels] + lift).clamp(max=0.999)
        stats.append(_statistics(cosines, labels))
    scales, margins = zip(*stats, strict=True)
    assert all(a <= b for a, b in itertools.pairwise(scales)) and scales[-1] > 32
    assert all(a < b for a, b in itertools.pairwise(margins[1:])) and margins[-1] > 0.3


def test_the_gradient_is_the_authors_backward_with_s_and_m_held_constant():
    # MadaCosLayerFunction.backward passes grad_logit * scale to the cosines; through the mean cross-entropy
    # that is s (p - e_y) / N per sample, with p the softmax of the margin logits
    cosines, labels = _trained_batch(seed=6)
    s, m = _statistics(cosines, labels)
    assert s > 32 and m > 0  # both adaptive here, so a gradient through them would show
    x = cosines.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(madacos(x, labels), x)
    logits = s * (cosines - m * F.one_hot(labels, 4).to(cosines.dtype))
    expected = s * (torch.softmax(logits, dim=1) - F.one_hot(labels, 4).to(cosines.dtype)) / 12
    torch.testing.assert_close(grad, expected, **TOL)
    # it is not the derivative of the value, which also moves s and m through the median sample
    value = numerical_jacobian(lambda c: madacos(c, labels), cosines).reshape(cosines.shape)
    assert (grad - value).abs().max() > 1e-2 * value.abs().max()


def test_a_batch_at_cosine_one_stays_finite():
    # the authors divide by 1 - median cosine; a converged batch reaches it exactly
    cosines = torch.tensor([[1.0, -0.5, 0.0], [0.2, 1.0, 0.1], [0.0, 0.3, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    out = madacos(cosines, labels)
    (grad,) = torch.autograd.grad(out, cosines)
    assert torch.isfinite(out) and torch.isfinite(grad).all()
    s, m = _statistics(cosines, labels)
    assert math.isfinite(s) and s > 1e6 and 0 < m <= 1  # m is the gap to the best wrong class, less log terms


def test_torch_func_transforms_trace_the_loss():
    # the curvature page takes Hessian-vector products with torch.func, Loss shapes vmaps batch-level losses
    cosines, labels = _trained_batch(seed=7)
    x = cosines.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(madacos(x, labels), x)
    torch.testing.assert_close(torch.func.grad(lambda c: madacos(c, labels))(cosines), expected, **TOL)
    batches = [_trained_batch(seed=seed) for seed in (8, 9, 10)]
    stacked = torch.func.vmap(madacos)(
        torch.stack([c for c, _ in batches]), torch.stack([y for _, y in batches])
    )
    torch.testing.assert_close(stacked, torch.stack([madacos(c, y) for c, y in batches]), **TOL)
