"""What an embedding loss asks of one anchor: its value over the (s_n, s_p) plane of one negative and one
positive cosine, and how InfoNCE spreads its push over the negatives as the temperature moves.

Views of "Circle Loss: A Unified Perspective of Pair Similarity Optimization" (Sun et al., 2020) and
"Understanding the Behaviour of Contrastive Loss" (Wang & Liu, 2021). Every value comes from the registered
function: the plane is drawn by placing an anchor, a positive and a negative on the sphere.
"""

from __future__ import annotations

from collections.abc import Mapping

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
            values = torch.stack([spec.fn(b, labels, **bound)[0] for b in batches])
    except ValueError as err:  # e.g. a loss over paired views needs two views per instance
        raise ValueError(
            f"{spec.title} cannot be drawn for one anchor, one positive, one negative: {err}"
        ) from None
    z = values.reshape(resolution, resolution).numpy()
    return Surface(xs=axis.numpy(), ys=axis.numpy(), z=z, label=spec.title)


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
