"""Identities and limits of the distillation losses (lossviz/losses/distillation.py) against independent
references: torch.nn.functional.kl_div / cross_entropy, closed forms, and Hinton et al.'s high-T limit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossviz import losses
from lossviz.losses import classification as C
from lossviz.losses import distillation as D
from tests.losses.conftest import N_CLASSES, extreme_inputs, make_inputs

DISTILLATION = ("kd", "forward_kl", "reverse_kl")


def _teacher(seed: int = 5, scale: float = 2.0, like: torch.Tensor | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = like.shape if like is not None else (12, N_CLASSES)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor, T: float) -> torch.Tensor:
    """KL(softmax(p/T) || softmax(q/T)) per row by torch.nn.functional.kl_div."""
    log_p, log_q = F.log_softmax(p_logits / T, -1), F.log_softmax(q_logits / T, -1)
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)


def test_the_three_losses_are_registered_as_multiclass_with_a_teacher_context():
    for name in DISTILLATION:
        spec = losses.get(name)
        assert spec.task == "multiclass" and spec.context == ("teacher_logits",)
        assert "Hinton" in spec.paper or "MiniLLM" in spec.paper
    assert {p.name for p in losses.get("kd").params} == {"T", "alpha"}


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (0.5, 0.0), (20.0, 1.0)])
def test_kd_is_alpha_t_squared_kl_plus_one_minus_alpha_cross_entropy(T, alpha):
    logits, target = make_inputs("multiclass")
    teacher = _teacher(like=logits)
    expected = alpha * T**2 * _kl(teacher, logits, T) + (1 - alpha) * F.cross_entropy(
        logits, target, reduction="none"
    )
    torch.testing.assert_close(D.kd(logits, target, T=T, alpha=alpha, teacher_logits=teacher), expected)


@pytest.mark.parametrize("T", [0.5, 1.0, 3.0, 20.0])
def test_forward_and_reverse_kl_match_kl_div_in_each_direction(T):
    logits, target = make_inputs("multiclass", seed=3)
    teacher = _teacher(like=logits)
    forward = D.forward_kl(logits, target, T=T, teacher_logits=teacher)
    torch.testing.assert_close(forward, _kl(teacher, logits, T))
    torch.testing.assert_close(
        D.reverse_kl(logits, target, T=T, teacher_logits=teacher), _kl(logits, teacher, T)
    )
    assert not torch.allclose(forward, _kl(logits, teacher, T))  # the two directions differ: KL is asymmetric


def test_two_class_kl_equals_the_bernoulli_formula():
    s, t = torch.tensor([[0.0, 1.3]], dtype=torch.float64), torch.tensor([[0.4, -0.7]], dtype=torch.float64)
    p, q = torch.sigmoid(s[0, 1] - s[0, 0]), torch.sigmoid(t[0, 1] - t[0, 0])  # class-1 probabilities
    bernoulli = q * torch.log(q / p) + (1 - q) * torch.log((1 - q) / (1 - p))  # KL(Bern(q) || Bern(p))
    y = torch.tensor([1])
    torch.testing.assert_close(D.forward_kl(s, y, T=1.0, teacher_logits=t)[0], bernoulli)


def test_kl_of_equal_distributions_is_zero_and_kd_is_then_scaled_cross_entropy():
    logits, target = make_inputs("multiclass", seed=4)
    shifted = logits + 3.7  # softmax is shift invariant: the same distribution
    zero = torch.zeros(len(logits), dtype=logits.dtype)
    for T in (0.5, 1.0, 8.0):
        torch.testing.assert_close(D.forward_kl(logits, target, T=T, teacher_logits=shifted), zero)
        torch.testing.assert_close(D.reverse_kl(logits, target, T=T, teacher_logits=shifted), zero)
        torch.testing.assert_close(
            D.kd(logits, target, T=T, alpha=0.3, teacher_logits=logits),
            0.7 * F.cross_entropy(logits, target, reduction="none"),
        )


def test_kd_with_alpha_zero_is_cross_entropy_whatever_the_teacher():
    logits, target = make_inputs("multiclass", seed=6)
    out = D.kd(logits, target, T=4.0, alpha=0.0, teacher_logits=_teacher(like=logits, scale=9.0))
    torch.testing.assert_close(out, F.cross_entropy(logits, target, reduction="none"))


def test_without_a_teacher_kd_is_label_smoothing_minus_a_constant():
    # Yuan et al. (2020): label smoothing is KD from a uniform "virtual teacher"; eps = alpha at T = 1, and
    # eps * CE(u, p) = eps * (KL(u || p) + log K)
    logits, target = make_inputs("multiclass", seed=7)
    for eps in (0.0, 0.1, 0.5):
        torch.testing.assert_close(
            D.kd(logits, target, T=1.0, alpha=eps),
            C.label_smoothing(logits, target, eps=eps) - eps * math.log(N_CLASSES),
        )
    # and the two KLs are then against the uniform distribution: -log K - mean log p, and log K - H(p)
    log_p = F.log_softmax(logits, -1)
    torch.testing.assert_close(D.forward_kl(logits, target), -math.log(N_CLASSES) - log_p.mean(-1))
    entropy = -(log_p.exp() * log_p).sum(-1)
    torch.testing.assert_close(D.reverse_kl(logits, target), math.log(N_CLASSES) - entropy)


def test_t_squared_makes_the_soft_gradient_independent_of_t_for_large_t():
    # Hinton et al.: d KL_T / dz = (p_T - q_T) / T and p_T - q_T ~ (centred z - centred t) / (K T), so
    # T^2 d KL_T / dz -> (centred z - centred t) / K, independent of T; without T^2 it shrinks like 1 / T^2
    logits, target = make_inputs("multiclass", scale=1.0, seed=8)
    teacher = _teacher(like=logits, scale=1.0)
    centred = logits - logits.mean(-1, keepdim=True), teacher - teacher.mean(-1, keepdim=True)
    limit = (centred[0] - centred[1]) / N_CLASSES

    def grad(T: float, scaled: bool) -> torch.Tensor:
        z = logits.clone().requires_grad_(True)
        value = D.kd(z, target, T=T, alpha=1.0, teacher_logits=teacher) if scaled else _kl(teacher, z, T)
        return torch.autograd.grad(value.sum(), z)[0]

    for T in (100.0, 1000.0):
        torch.testing.assert_close(grad(T, True), limit, rtol=0, atol=5.0 / T)  # the error is O(1 / T)
    errors = [torch.linalg.norm(grad(T, True) - limit) for T in (100.0, 1000.0)]
    assert errors[1] / errors[0] == pytest.approx(0.1, rel=0.2)  # O(1 / T): 10x the T, 1/10 the error
    ratio = torch.linalg.norm(grad(100.0, False)) / torch.linalg.norm(grad(1000.0, False))
    assert ratio == pytest.approx(100.0, rel=0.05)  # unscaled: 10x the temperature, 1/100 the gradient


def test_the_teacher_receives_no_gradient():
    logits, target = make_inputs("multiclass", seed=9)
    teacher = _teacher(like=logits).requires_grad_(True)
    for name in DISTILLATION:
        student = logits.clone().requires_grad_(True)
        losses.get(name)(student, target, teacher_logits=teacher).sum().backward()
        assert teacher.grad is None and student.grad is not None and student.grad.abs().sum() > 0, name


@pytest.mark.parametrize("name", DISTILLATION)
def test_finite_with_extreme_student_and_teacher_at_every_slider_bound(name):
    spec = losses.get(name)
    pred, target = extreme_inputs("multiclass")  # float32 logits of +-1e4, right and wrong
    teachers = {
        "agrees": pred.clone(),
        "opposes": -pred,
        "rolled": pred.roll(1, dims=1),
        "moderate": _teacher(like=pred).float(),
    }
    settings = [{}, *({p.name: getattr(p, side)} for p in spec.params for side in ("low", "high"))]
    for params in settings:
        for kind, teacher in teachers.items():
            z = pred.clone().requires_grad_(True)
            out = spec(z, target, teacher_logits=teacher, **params)
            (grad,) = torch.autograd.grad(out.sum(), z)
            assert torch.isfinite(out).all() and torch.isfinite(grad).all(), (name, params, kind)
            assert (out >= -1e-3 * (1 + out.abs().max())).all(), (name, params, kind)  # KL and CE are >= 0


@pytest.mark.parametrize("name", DISTILLATION)
def test_float64_gradcheck_with_a_teacher(name):
    spec = losses.get(name)
    logits, target = make_inputs("multiclass", scale=1.5, seed=10)
    teacher = _teacher(like=logits)
    logits.requires_grad_(True)
    check = torch.autograd.gradcheck(lambda x: spec(x, target, T=2.0, teacher_logits=teacher), (logits,))
    assert check


def test_a_teacher_of_the_wrong_shape_is_refused_by_name():
    logits, target = make_inputs("multiclass")
    with pytest.raises(ValueError, match=r"teacher_logits must have the student logits' shape \(12, 4\)"):
        D.kd(logits, target, teacher_logits=torch.zeros(12, 3))
