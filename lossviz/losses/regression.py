"""Regression losses of the residual r = pred - target, one value per sample.

See CATALOGUE.md section 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossviz.losses.registry import register


def _squared_reference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target, reduction="none")


@register(
    title="Squared error",
    latex=r"r^2",
    task="regression",
    paper="(standard) least squares",
    reference=_squared_reference,
    notes="Influence grows linearly with the residual: one outlier can drag the fit.",
)
def squared(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target) ** 2
