"""Knowledge-distillation losses: a student's logits z (N, K) matched to a teacher's logits t (N, K).

Temperature-scaled KD of "Distilling the Knowledge in a Neural Network" (Hinton, Vinyals & Dean, 2015) and
the two directions of the KL between teacher and student compared by MiniLLM (Gu et al., 2024) and GKD
(Agarwal et al., 2024). The teacher's logits are context (lossviz.context supplies them in training); called
without them the teacher is uniform (zero logits), the "virtual teacher" under which KD is label smoothing
(Yuan et al., 2020).
"""

from __future__ import annotations

import torch

from lossviz.losses.registry import Param, register

_HINTON = "Distilling the Knowledge in a Neural Network (Hinton, Vinyals & Dean, 2015)"
_MINILLM = "MiniLLM: Knowledge Distillation of Large Language Models (Gu et al., 2024)"
_GKD = (
    "On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes (Agarwal et al., 2024)"
)
_YUAN = "Revisiting Knowledge Distillation via Label Smoothing Regularization (Yuan et al., 2020)"

_TEMPERATURE = Param(
    "T",
    0.5,
    20.0,
    log=True,
    help="T: softmax temperature of teacher and student; a larger T shows more of the teacher's 'dark "
    "knowledge' (how it ranks the wrong classes)",
)


def _teacher(logits: torch.Tensor, teacher_logits: torch.Tensor | None) -> torch.Tensor:
    """The teacher's logits, detached, in the student's dtype; zeros (uniform) when none.  # (N, K)"""
    if teacher_logits is None:
        return torch.zeros_like(logits)
    teacher = teacher_logits.detach().to(logits.dtype)
    if teacher.shape != logits.shape:
        raise ValueError(
            f"teacher_logits must have the student logits' shape {tuple(logits.shape)}, got "
            f"{tuple(teacher.shape)}"
        )
    return teacher


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row from log-probabilities; finite where p underflows (log p stays finite).  # (N,)"""
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def _softened(logits: torch.Tensor, T: float) -> torch.Tensor:
    """log softmax(z / T).  # (N, K)"""
    return torch.log_softmax(logits / T, dim=-1)


# ----------------------------------------------------------------------------------------------------------
# References for the tests: torch.nn.functional's kl_div and cross_entropy, written independently
# ----------------------------------------------------------------------------------------------------------


def _kl_reference(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    # F.kl_div(input=log q, target=log p, log_target=True) is sum p (log p - log q)
    return torch.nn.functional.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=-1)


def _reference_teacher(logits: torch.Tensor, teacher_logits: torch.Tensor | None) -> torch.Tensor:
    return torch.zeros_like(logits) if teacher_logits is None else teacher_logits.to(logits.dtype)


def _kd_reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    T: float,
    alpha: float,
    teacher_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    t = _reference_teacher(logits, teacher_logits)
    soft = _kl_reference(torch.log_softmax(t / T, -1), torch.log_softmax(logits / T, -1))
    hard = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return alpha * T**2 * soft + (1 - alpha) * hard


def _forward_kl_reference(
    logits: torch.Tensor, target: torch.Tensor, T: float, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    t = _reference_teacher(logits, teacher_logits)
    return _kl_reference(torch.log_softmax(t / T, -1), torch.log_softmax(logits / T, -1))


def _reverse_kl_reference(
    logits: torch.Tensor, target: torch.Tensor, T: float, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    t = _reference_teacher(logits, teacher_logits)
    return _kl_reference(torch.log_softmax(logits / T, -1), torch.log_softmax(t / T, -1))


# ----------------------------------------------------------------------------------------------------------
# The losses
# ----------------------------------------------------------------------------------------------------------


@register(
    title="Knowledge distillation (KD)",
    latex=r"\alpha\,T^2\,\mathrm{KL}\big(\sigma(t/T)\,\|\,\sigma(z/T)\big) + (1-\alpha)(-\log p_y)",
    task="multiclass",
    paper=f"{_HINTON}; without a teacher: {_YUAN}",
    params=[
        _TEMPERATURE,
        Param("alpha", 0.0, 1.0, help="alpha: weight of the teacher's soft targets (1 - alpha: the labels)"),
    ],
    reference=_kd_reference,
    notes="Matches the student's softened probabilities to a bigger teacher's (trained with cross-entropy on "
    "the same data) plus the labels; T² keeps the soft term's gradient the same size as T grows. Without a "
    "teacher (Loss shapes, landscapes) the teacher is uniform: KD is then label smoothing.",
)
def kd(
    logits: torch.Tensor,
    target: torch.Tensor,
    T: float = 4.0,
    alpha: float = 0.9,
    *,
    teacher_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    teacher = _teacher(logits, teacher_logits)
    soft = _kl(_softened(teacher, T), _softened(logits, T))  # (N,)
    hard = -torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N,)
    # T^2: the soft term's gradient is (p_s - p_t) / T, and p_s - p_t itself shrinks like 1/T (Hinton et al.)
    return alpha * T**2 * soft + (1.0 - alpha) * hard


@register(
    title="Forward KL (teacher ‖ student)",
    latex=r"\mathrm{KL}\big(\sigma(t/T)\,\|\,\sigma(z/T)\big) = \sum_k q_k \log\frac{q_k}{p_k}",
    task="multiclass",
    paper=f"{_HINTON}; forward vs reverse: {_MINILLM}",
    params=[_TEMPERATURE],
    reference=_forward_kl_reference,
    notes="Pure distillation, labels unused: mean-seeking, the student spreads mass over every class the "
    "teacher gives any (q = teacher, p = student). Without a teacher it is uniform.",
)
def forward_kl(
    logits: torch.Tensor, target: torch.Tensor, T: float = 1.0, *, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    return _kl(_softened(_teacher(logits, teacher_logits), T), _softened(logits, T))


@register(
    title="Reverse KL (student ‖ teacher)",
    latex=r"\mathrm{KL}\big(\sigma(z/T)\,\|\,\sigma(t/T)\big) = \sum_k p_k \log\frac{p_k}{q_k}",
    task="multiclass",
    paper=f"{_MINILLM}; {_GKD}",
    params=[_TEMPERATURE],
    reference=_reverse_kl_reference,
    notes="Pure distillation, labels unused: mode-seeking, the student may drop classes the teacher finds "
    "unlikely and concentrate on its main mode (p = student, q = teacher). Without a teacher it is uniform.",
)
def reverse_kl(
    logits: torch.Tensor, target: torch.Tensor, T: float = 1.0, *, teacher_logits: torch.Tensor | None = None
) -> torch.Tensor:
    return _kl(_softened(logits, T), _softened(_teacher(logits, teacher_logits), T))
