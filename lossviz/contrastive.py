"""What an embedding loss asks of one anchor: its value over the (s_n, s_p) plane of one negative and one
positive cosine, how InfoNCE spreads its push over the negatives as the temperature moves, and the wedges of
the circle that CosFace / ArcFace / MadaCos margins leave each class.

Views of "Circle Loss: A Unified Perspective of Pair Similarity Optimization" (Sun et al., 2020),
"Understanding the Behaviour of Contrastive Loss" (Wang & Liu, 2021), CosFace (Wang et al., 2018), ArcFace
(Deng et al., 2019) and CFCD's MadaCos (Zhu et al., 2023). The plane is drawn from the registered function
by placing an anchor, a positive and a negative on the sphere; the margin logits are checked against the
registered losses by the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lossviz import losses
from lossviz.results import Curve, Surface

PLANE_RANGE = (-1.0, 1.0)


def triplet_embeddings(s_p: torch.Tensor, s_n: torch.Tensor) -> torch.Tensor:
    """(M, 3, 3) unit vectors [anchor, positive, negative] with cos(a, p) = s_p and cos(a, n) = s_n.

    a = e1, p in the (e1, e2) plane, n in the (e1, e3) plane: any pair in [-1, 1]^2 is reachable.
    """
    s_p, s_n = s_p.reshape(-1), s_n.reshape(-1)
    zero = torch.zeros_like(s_p)
    anchor = torch.stack([torch.ones_like(s_p), zero, zero], -1)
    positive = torch.stack([s_p, (1 - s_p**2).clamp(min=0).sqrt(), zero], -1)
    negative = torch.stack([s_n, zero, (1 - s_n**2).clamp(min=0).sqrt()], -1)
    return torch.stack([anchor, positive, negative], 1)


def pair_loss_surface(name: str, params: Mapping[str, float] | None = None, resolution: int = 61) -> Surface:
    """The anchor's loss on a grid of (s_n = cos(anchor, negative) on x, s_p = cos(anchor, positive) on y).

    Batches of three (anchor and positive share a label, the negative has another) go through the
    registered function; z[i, j] is the anchor's value at (s_n = xs[j], s_p = ys[i]).
    """
    spec = losses.get(name)
    if spec.task != "embedding":
        raise ValueError(f"{name} is a {spec.task} loss; the pair plane is drawn for embedding losses")
    if spec.batch:
        raise ValueError(f"{spec.title} exists only per batch: it has no per-anchor value to draw")
    if not (isinstance(resolution, int) and 2 <= resolution <= 201):
        raise ValueError(f"resolution must be an integer in [2, 201], got {resolution!r}")
    bound = spec.bind(**dict(params or {}))
    axis = torch.linspace(*PLANE_RANGE, resolution, dtype=torch.float64)
    s_p, s_n = torch.meshgrid(axis, axis, indexing="ij")  # (ny, nx): rows follow s_p, columns s_n
    batches = triplet_embeddings(s_p, s_n)  # (M, 3, 3)
    labels = torch.tensor([0, 0, 1])
    try:
        with torch.no_grad():
            values = _per_batch(lambda b: spec.fn(b, labels, **bound)[0], batches)
    except ValueError as err:  # e.g. a loss over paired views needs two views per instance
        raise ValueError(
            f"{spec.title} cannot be drawn for one anchor, one positive, one negative: {err}"
        ) from None
    z = values.reshape(resolution, resolution).numpy()
    return Surface(xs=axis.numpy(), ys=axis.numpy(), z=z, label=spec.title)


def _per_batch(anchor_value: Callable[[torch.Tensor], torch.Tensor], batches: torch.Tensor) -> torch.Tensor:
    """anchor_value(batch) for each of the (M, 3, D) batches: vectorised with torch.func.vmap (a 61² plane of
    three losses took 2.6 s one batch at a time), one at a time for a loss whose ops vmap cannot batch."""
    try:
        return torch.func.vmap(anchor_value)(batches)
    except (RuntimeError, NotImplementedError):  # e.g. data-dependent indexing inside the loss
        return torch.stack([anchor_value(b) for b in batches])


def negative_weights(
    similarities: np.ndarray, temperature: float, positive: float = 1.0, name: str = "info_nce"
) -> Curve:
    """The share of InfoNCE's push each negative gets, d L / d s_n normalised over the negatives.

    For one anchor with one positive (cosine `positive`) and negatives at `similarities`, autograd through
    the registered loss gives weights equal to softmax(s_n / tau) over the negatives (Wang & Liu, 2021):
    small tau puts almost all of it on the hardest (most similar) negatives.
    """
    s = np.asarray(similarities, np.float64).reshape(-1)
    if s.size < 1 or not np.all(np.abs(s) <= 1):
        raise ValueError(
            f"similarities must be cosines in [-1, 1], got {s.size} values in [{s.min()}, {s.max()}]"
        )
    spec = losses.get(name)
    bound = spec.bind(temperature=temperature)
    # anchor e1, positive in the (e1, e2) plane, negative k in the plane of e1 and its own axis e_{3+k}
    dim = 2 + s.size
    x = torch.zeros(2 + s.size, dim, dtype=torch.float64)
    x[0, 0] = 1.0
    x[1, 0], x[1, 1] = positive, np.sqrt(max(1 - positive**2, 0.0))
    cos = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    rows = [x[0], x[1]]
    for k in range(s.size):
        axis = torch.zeros(dim, dtype=torch.float64)
        axis[2 + k] = 1.0
        rows.append(cos[k] * x[0] + torch.sqrt((1 - cos[k] ** 2).clamp(min=1e-30)) * axis)
    labels = torch.tensor([0, 0] + [1] * s.size)
    value = spec.fn(torch.stack(rows), labels, **bound)[0]
    (grad,) = torch.autograd.grad(value, cos)
    weights = grad.numpy() / grad.numpy().sum()
    return Curve(name=name, x=s, y=weights, label=f"τ = {temperature:g}")


# ------------------------------------------------------------------------ the temperature, on many negatives

# Losses whose push on the negatives of an anchor is softmax(s_n / tau) over them (Wang & Liu, 2021): the
# InfoNCE family. A margin on the positive or dropping it from the denominator (DCL) leaves the shares as
# they are; tests check each one that can be drawn for one anchor through negative_weights(name=...).
SOFTMAX_FAMILY = ("info_nce", "margin_info_nce", "clip_info_nce", "decoupled_contrastive", "supcon")


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def effective_negatives(similarities: np.ndarray, temperatures: np.ndarray) -> Curve:
    """How many of the negatives share the push at each temperature: 1 / sum_k w_k^2, w = softmax(s / tau).

    Between 1 (all of it on the hardest negative) and the number of negatives (equal shares, tau -> inf).
    """
    s = np.asarray(similarities, np.float64).reshape(-1)
    taus = np.asarray(temperatures, np.float64).reshape(-1)
    if s.size < 1 or not np.all(np.abs(s) <= 1):
        raise ValueError(f"similarities must be cosines in [-1, 1], got {s.size} values")
    if taus.size < 1 or not np.all(np.isfinite(taus) & (taus > 0)):
        raise ValueError(f"temperatures must be positive and finite, got {taus.tolist()}")
    weights = _softmax_rows(s[None, :] / taus[:, None])  # (T, K)
    return Curve(name="info_nce", x=taus, y=1.0 / (weights**2).sum(axis=1), label="effective negatives")


def same_class_push(embeddings: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """The share of an InfoNCE push that lands on samples of the anchor's own class, averaged over anchors.

    With instance positives every other sample is a negative; weights softmax(s / tau) over them (the anchor
    itself left out). At small tau the hardest negatives, usually the same class's, take nearly all of it:
    semantically similar samples are pushed apart (the intolerance of Wang & Liu, 2021). As tau grows the
    share falls to the fraction of other samples in the class.
    """
    z = np.asarray(embeddings, np.float64)
    y = np.asarray(labels).reshape(-1)
    if z.ndim != 2 or len(z) != len(y) or len(y) < 2:
        raise ValueError(
            f"embeddings (N, D) and labels (N,) with N >= 2 are needed, got {z.shape}, {y.shape}"
        )
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
    z = z / np.linalg.norm(z, axis=1, keepdims=True).clip(min=1e-12)
    logits = z @ z.T / temperature  # (N, N)
    np.fill_diagonal(logits, -np.inf)
    weights = _softmax_rows(logits)
    same = y[:, None] == y[None, :]
    return float((weights * same).sum(axis=1).mean())


# ---------------------------------------------------------------------------- angular margins on the circle

MarginKind = Literal["cosface", "arcface", "madacos"]
MARGIN_KINDS: tuple[str, ...] = ("cosface", "arcface", "madacos")


@dataclass(frozen=True)
class MarginWedges:
    """Where on the circle each class's margin-adjusted logit beats every other class's plain cosine."""

    kind: MarginKind
    margin: float
    weight_angles: np.ndarray  # (K,) directions of the class weight vectors, radians
    angles: np.ndarray  # (R,) feature directions on the circle, radians in [-pi, pi)
    winner: np.ndarray  # (R,) the class that wins there with its margin, -1 where none does
    nearest: np.ndarray  # (R,) the class with the largest plain cosine (margin 0: the Voronoi wedges)

    @property
    def covered(self) -> float:
        """The fraction of the circle where some class wins despite its margin."""
        return float((self.winner >= 0).mean())


def margin_logits(kind: MarginKind, cosines: np.ndarray, margin: float) -> np.ndarray:
    """The true-class logit the registered loss uses for each cosine (before the scale s).

    CosFace and MadaCos (whose m is set by the batch, see madacos_margin): cos(theta) - m. ArcFace:
    cos(theta + m), with the reference implementation's fallback cos(theta) - m sin(m) where theta + m > pi
    (keeps the logit falling in theta).
    """
    c = np.clip(np.asarray(cosines, np.float64), -1.0, 1.0)
    if kind in ("cosface", "madacos"):
        return c - margin
    if kind == "arcface":
        theta = np.arccos(c)
        return np.where(theta + margin < math.pi, np.cos(theta + margin), c - margin * math.sin(margin))
    raise ValueError(f"kind must be one of {list(MARGIN_KINDS)}, got {kind!r}")


def madacos_margin(n_classes: int, rho: float, *, resolution: int = 720) -> float:
    """The margin MadaCos (CFCD) sets for a batch spread evenly around the circle, each feature labelled with
    its nearest of K evenly spaced class weights: a batch the weights classify perfectly, not yet compact.

    MadaCos has no margin slider: m comes from the batch's median true-class cosine (losses.classification).
    """
    if not (isinstance(n_classes, int) and 2 <= n_classes <= 64):
        raise ValueError(f"n_classes must be an integer in [2, 64], got {n_classes!r}")
    losses.get("madacos").bind(rho=rho)  # a ValueError naming rho when it is out of range
    angles = -np.pi + 2 * np.pi * (np.arange(resolution) + 0.5) / resolution  # (R,)
    cosines = np.cos(angles[:, None] - 2 * np.pi * np.arange(n_classes)[None, :] / n_classes)  # (R, K)
    labels = torch.as_tensor(cosines.argmax(axis=1))
    return float(losses.classification.madacos_statistics(torch.as_tensor(cosines), labels, rho)[1])


def margin_wedges(
    kind: MarginKind,
    n_classes: int,
    margin: float,
    *,
    resolution: int = 720,
    weight_angles: np.ndarray | None = None,
) -> MarginWedges:
    """For K class weight vectors on the circle (evenly spaced unless given), which class wins at each feature
    direction once its logit carries the margin: margin_logit(cos theta_k) > cos theta_j for every j != k.

    The scale s > 0 does not move the regions. With m = 0 they are the Voronoi wedges; a margin carves a gap
    at every boundary where even a correctly placed feature keeps paying loss. For "madacos", pass the margin
    its batch sets (madacos_margin): its geometry is CosFace's.
    """
    if not (isinstance(n_classes, int) and 2 <= n_classes <= 64):
        raise ValueError(f"n_classes must be an integer in [2, 64], got {n_classes!r}")
    if not (isinstance(resolution, int) and 8 <= resolution <= 20000):
        raise ValueError(f"resolution must be an integer in [8, 20000], got {resolution!r}")
    if not (math.isfinite(margin) and 0.0 <= margin <= math.pi):
        raise ValueError(f"margin must be a number in [0, pi], got {margin!r}")
    if weight_angles is None:
        weights = 2 * np.pi * np.arange(n_classes) / n_classes
    else:
        weights = np.asarray(weight_angles, np.float64).reshape(-1)
        if weights.size != n_classes:
            raise ValueError(f"weight_angles must hold n_classes = {n_classes} angles, got {weights.size}")
    angles = -np.pi + 2 * np.pi * (np.arange(resolution) + 0.5) / resolution  # (R,)
    cosines = np.cos(angles[:, None] - weights[None, :])  # (R, K)
    adjusted = margin_logits(kind, cosines, margin)  # (R, K): class k's logit if it were the target
    rivals = np.empty_like(cosines)
    for k in range(n_classes):  # the best plain cosine among the other classes
        rivals[:, k] = np.delete(cosines, k, axis=1).max(axis=1)
    wins = adjusted > rivals  # (R, K): at most one class per direction (adjusted <= cosine)
    winner = np.where(wins.any(axis=1), wins.argmax(axis=1), -1)
    return MarginWedges(
        kind=kind,
        margin=float(margin),
        weight_angles=weights,
        angles=angles,
        winner=winner,
        nearest=cosines.argmax(axis=1),
    )
