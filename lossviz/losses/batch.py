"""Batch-level losses (need the whole batch, return a scalar): Dice, Tversky, AnyLoss, pairwise AUC, Lovász.

See CATALOGUE.md section 3.
"""

from __future__ import annotations

import torch

from lossviz.losses.registry import register  # noqa: F401
