"""The 2-D planes of the landscape views: filter-normalized random directions or the two leading PCA
directions of a training trajectory, the trajectory projected onto them, and the grid limits.

Follows "Visualizing the Loss Landscape of Neural Nets" (Li et al., 2018), sections 4 and 7.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from torch import nn

from lossviz import landscape
from lossviz.results import History, Plane, Trajectory

Axes = Literal["random", "pca"]
AXES: tuple[str, ...] = ("random", "pca")
PCA_MARGIN = 0.25  # PCA grids cover the trajectory plus this fraction of its extent on every side


def _flat(params: Mapping[str, np.ndarray], keys: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(params[k], np.float64).reshape(-1) for k in keys])


def pca_limits(values: np.ndarray, span: float) -> tuple[float, float]:
    """The trajectory's range on one PCA axis (with the origin), padded, scaled by span about the origin."""
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    pad = PCA_MARGIN * (high - low) or 0.1
    return (float(span) * (low - pad), float(span) * (high + pad))


def view_plane(model: nn.Module, history: History, axes: Axes, seed: int, span: float) -> Plane:
    """The plane of one trained model: random directions (seeds seed, seed + 1) scaled to ±span, or the
    trajectory's PCA axes covering its extent times span; with the trajectory's coordinates in it."""
    if axes not in AXES:
        raise ValueError(f"axes must be one of {list(AXES)}, got {axes!r}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span!r}")
    keys = [name for name, _ in model.named_parameters()]
    final = {k: np.asarray(history.final_state[k]) for k in keys}
    diffs = np.stack([_flat(s, keys) - _flat(final, keys) for s in history.snapshots])  # (T, P)
    if axes == "random":
        d1 = {k: v.numpy() for k, v in landscape.random_direction(model, seed).items()}
        d2 = {k: v.numpy() for k, v in landscape.random_direction(model, seed + 1).items()}
        basis = np.stack([_flat(d1, keys), _flat(d2, keys)], axis=1)  # (P, 2)
        # least-squares coordinates of theta_t - theta_final in the plane of (d1, d2)
        coords = np.linalg.lstsq(basis, diffs.T, rcond=None)[0].T  # (T, 2)
        xlim = ylim = (-float(span), float(span))
        names = ("δ (random, filter-normalized)", "η (random, filter-normalized)")
        explained = None
    else:
        pca = landscape.pca_directions(history.snapshots, history.final_state)
        d1, d2 = pca.directions
        coords = pca.coords
        basis = np.stack([_flat(d1, keys), _flat(d2, keys)], axis=1)
        xlim, ylim = (pca_limits(coords[:, i], span) for i in (0, 1))
        explained = np.asarray(pca.explained_variance)
        names = (f"PC1 ({explained[0]:.0%} of the trajectory)", f"PC2 ({explained[1]:.0%})")
    fitted = coords @ basis.T
    total = float((diffs**2).sum())
    residual = float(((diffs - fitted) ** 2).sum() / total) if total > 0 else 0.0
    trajectory = Trajectory(
        name=history.loss_name, x=coords[:, 0], y=coords[:, 1], epochs=np.asarray(history.snapshot_epochs)
    )
    return Plane(
        d1={k: np.asarray(v, np.float32) for k, v in d1.items()},
        d2={k: np.asarray(v, np.float32) for k, v in d2.items()},
        trajectory=trajectory,
        xlim=xlim,
        ylim=ylim,
        axis_names=names,
        explained=explained,
        residual=residual,
    )


def grid(lim: tuple[float, float], resolution: int) -> np.ndarray:
    """resolution points over lim; an odd resolution over a symmetric range puts 0 on the grid."""
    return np.linspace(lim[0], lim[1], resolution)


def shifted_state(model: nn.Module, plane: Plane, x: float, y: float) -> dict[str, np.ndarray]:
    """The parameters theta + x·d1 + y·d2 as new arrays (the model itself is left untouched)."""
    return {
        name: param.detach().cpu().numpy() + float(x) * plane.d1[name] + float(y) * plane.d2[name]
        for name, param in model.named_parameters()
    }
