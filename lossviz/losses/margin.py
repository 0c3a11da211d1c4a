"""Binary margin losses phi(m) of the margin m = (2y - 1) f(x), on one logit per sample.

See CATALOGUE.md section 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossviz.losses.registry import register


def binary_margin(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """m = (2y - 1) f: positive when the sample is on the right side.  # (N,)"""
    return (2.0 * target.to(logit.dtype) - 1.0) * logit


def _logistic_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype), reduction="none")


@register(
    title="Logistic",
    latex=r"\log(1 + e^{-m})",
    task="binary",
    paper="(standard) logistic regression / binary cross-entropy",
    reference=_logistic_reference,
    notes="Convex, smooth, classification-calibrated; never exactly zero.",
)
def logistic(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.softplus(-binary_margin(logit, target))
