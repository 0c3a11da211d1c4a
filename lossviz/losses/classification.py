"""Multiclass classification losses on logits z (N, K) with int64 targets y (N,).

See CATALOGUE.md section 1 for the formulas and the papers they come from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, register


def _true_class_log_prob(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p_y computed stably with log_softmax.  # (N,)"""
    return torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)


def _ce_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction="none")


@register(
    title="Cross-entropy",
    latex=r"-\log p_y = \log\sum_k e^{z_k} - z_y",
    task="multiclass",
    paper="Cross-Entropy Loss Functions: Theoretical Analysis and Applications (Mao, Mohri, Zhong, 2023)",
    reference=_ce_reference,
    notes="Unbounded for wrong points; the gradient p - e_y is never zero, so logits keep growing.",
)
def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -_true_class_log_prob(logits, target)
