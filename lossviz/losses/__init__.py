"""The loss registry and every registered loss: `from lossviz import losses; losses.get("focal")`."""

from lossviz.losses.registry import (
    HEADS,
    TASKS,
    BoundLoss,
    LossSpec,
    Param,
    get,
    make,
    n_outputs,
    names,
    register,
    unregister,
)

# Importing the family modules registers their losses (each module is one family of CATALOGUE.md).
from lossviz.losses import classification, margin, batch, regression, embedding, preference, distillation  # noqa: F401  isort: skip

__all__ = [
    "HEADS",
    "TASKS",
    "BoundLoss",
    "LossSpec",
    "Param",
    "get",
    "make",
    "n_outputs",
    "names",
    "register",
    "unregister",
]
