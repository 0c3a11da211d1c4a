"""Pick the compute device once (cuda, then mps, then cpu); every compute function takes `device=`."""

from __future__ import annotations

import functools

import torch


@functools.cache
def default_device() -> torch.device:
    """The fastest device present: CUDA when available, then Apple MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None means default_device(); a string is validated so a typo fails with the valid choices."""
    if device is None:
        return default_device()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be one of 'cpu', 'cuda', 'cuda:N', 'mps', got {device!r}") from None
