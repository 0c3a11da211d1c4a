"""Small models for the explorer: linear, an MLP with options, a CNN for 8x8 digits, and their heads.

The harmonic head follows "Harmonic Loss Trains Interpretable AI Models" (distance-based logits); the sphere
head puts embeddings on the unit hypersphere, as in "Understanding Contrastive Representation Learning
through Alignment and Uniformity on the Hypersphere" (Wang & Isola, 2020).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from lossviz.losses.registry import HEADS, Head  # the registry says which head a loss needs

ModelKind = Literal["linear", "mlp", "cnn"]
Activation = Literal["relu", "tanh", "gelu", "silu"]

MODEL_KINDS: tuple[str, ...] = ("linear", "mlp", "cnn")
ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "gelu", "silu")

_ACTIVATION_CLASSES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class HarmonicHead(nn.Module):
    """Distance-based logits z_k = -exponent * log ||h - w_k||: the class centres w_k are the weights.

    softmax(z) then gives d_k^-n / sum_j d_j^-n (n = exponent), so cross-entropy on these logits is the
    harmonic loss. The distance is smoothed as sqrt(||h - w_k||^2 + eps^2), which equals ||h - w_k|| + O(eps)
    and keeps the gradient finite when h sits exactly on a centre.
    """

    def __init__(self, in_features: int, n_outputs: int, exponent: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("n_outputs", n_outputs, 2)
        if not (math.isfinite(exponent) and exponent > 0):
            raise ValueError(f"exponent must be a finite number > 0, got {exponent!r}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.in_features, self.n_outputs = in_features, n_outputs
        self.exponent, self.eps = float(exponent), float(eps)
        # centres spread like the features they attract: unit-ish scale in each direction
        self.weight = nn.Parameter(torch.randn(n_outputs, in_features))

    def distances(self, h: torch.Tensor) -> torch.Tensor:
        """Smoothed Euclidean distances (N, K) from each feature vector to each class centre."""
        # (N, 1, D) - (1, K, D) -> (N, K); explicit form so double backward (Hessians) works
        squared = (h.unsqueeze(1) - self.weight.unsqueeze(0)).pow(2).sum(-1)
        return (squared + self.eps**2).sqrt()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        squared = (h.unsqueeze(1) - self.weight.unsqueeze(0)).pow(2).sum(-1)  # (N, K)
        return -0.5 * self.exponent * torch.log(squared + self.eps**2)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_outputs={self.n_outputs}, exponent={self.exponent}"


class CosineHead(nn.Module):
    """Cosine logits z_k = <h/||h||, w_k/||w_k||> in [-1, 1], the input CosFace, ArcFace, AdaFace expect."""

    def __init__(self, in_features: int, n_outputs: int) -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("n_outputs", n_outputs, 2)
        self.weight = nn.Parameter(torch.randn(n_outputs, in_features))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = nn.functional.normalize(h, dim=1)  # (N, D)
        return h @ nn.functional.normalize(self.weight, dim=1).T  # (N, K)


class SphereHead(nn.Module):
    """A linear projection to D outputs, L2-normalised: embeddings on the circle S¹ (D = 2), the sphere S²
    (D = 3) or a higher sphere. Parameters and initialisation are nn.Linear's (weight (D, in), bias (D,)),
    but it is not a Linear: nothing should read its rows as class weights."""

    def __init__(self, in_features: int, n_outputs: int) -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("n_outputs", n_outputs, 2)  # one output normalised is only ±1
        linear = nn.Linear(in_features, n_outputs)  # nn.Linear's initialisation
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(nn.functional.linear(h, self.weight, self.bias), dim=1)  # (N, D)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, n_outputs={self.weight.shape[0]}"


def _head(in_features: int, n_outputs: int, head: Head) -> nn.Module:
    if head == "sphere":
        return SphereHead(in_features, n_outputs)
    if head == "harmonic":
        return HarmonicHead(in_features, n_outputs)
    if head == "cosine":
        return CosineHead(in_features, n_outputs)
    return nn.Linear(in_features, n_outputs)


class _ResidualBlock(nn.Module):
    """h + act(bn(W h)): a width-preserving hidden layer with a skip connection."""

    def __init__(self, width: int, activation: Activation, batch_norm: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width) if batch_norm else nn.Identity()
        self.act = _ACTIVATION_CLASSES[activation]()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.act(self.norm(self.linear(h)))


class MLP(nn.Module):
    """in -> width (x depth hidden layers) -> n_outputs; MLP(2, 2) is 2-64-64-2.

    residual=True adds skip connections around every hidden layer after the first (the first changes
    the width); batch_norm=True puts BatchNorm1d between each hidden Linear and its activation.
    """

    def __init__(
        self,
        in_features: int,
        n_outputs: int,
        width: int = 64,
        depth: int = 2,
        activation: Activation = "relu",
        residual: bool = False,
        batch_norm: bool = False,
        head: Head = "linear",
    ) -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("n_outputs", n_outputs)
        _check_positive("width", width)
        _check_positive("depth", depth, 0)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("head", head, HEADS)
        act = _ACTIVATION_CLASSES[activation]
        layers: list[nn.Module] = []
        features = in_features
        for i in range(depth):
            if residual and i > 0:
                layers.append(_ResidualBlock(width, activation, batch_norm))
            else:
                layers.append(nn.Linear(features, width))
                if batch_norm:
                    layers.append(nn.BatchNorm1d(width))
                layers.append(act())
            features = width
        self.body = nn.Sequential(*layers)
        self.head = _head(features, n_outputs, head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation (N, width) the head reads (for neural-collapse views)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (N, n_outputs)


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 digits: two 3x3 convs, one 2x2 max-pool, a hidden layer, then the head.

    Accepts flat (N, 64) rows (sklearn's digits layout) or images (N, 1, 8, 8).
    """

    def __init__(self, n_outputs: int = 10, channels: int = 16, head: Head = "linear") -> None:
        super().__init__()
        _check_positive("n_outputs", n_outputs)
        _check_positive("channels", channels)
        _check_choice("head", head, HEADS)
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),  # (N, C, 8, 8)
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),  # (N, 2C, 8, 8)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 2C, 4, 4)
            nn.Flatten(),  # (N, 32C)
            nn.Linear(2 * channels * 16, 64),
            nn.ReLU(),
        )
        self.head = _head(64, n_outputs, head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation (N, 64)."""
        if x.dim() == 2:
            if x.shape[1] != 64:
                raise ValueError(f"DigitsCNN takes (N, 64) or (N, 1, 8, 8) inputs, got {tuple(x.shape)}")
            x = x.reshape(-1, 1, 8, 8)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, n_outputs)


class Linear(nn.Module):
    """A linear model (logistic / softmax regression, or least squares), optionally with a harmonic head."""

    def __init__(self, in_features: int, n_outputs: int, head: Head = "linear") -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("n_outputs", n_outputs)
        _check_choice("head", head, HEADS)
        self.head = _head(in_features, n_outputs, head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The input itself: a linear model has no hidden representation."""
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)  # (N, n_outputs)


def make_model(
    kind: ModelKind,
    in_features: int,
    n_outputs: int,
    *,
    width: int = 64,
    depth: int = 2,
    activation: Activation = "relu",
    residual: bool = False,
    batch_norm: bool = False,
    head: Head = "linear",
    seed: int = 0,
) -> nn.Module:
    """A freshly initialised model, identical for the same arguments and seed (global RNG untouched).

    kind="cnn" needs in_features=64 and uses width // 4 conv channels (16 at the default width).
    head="sphere" makes the model an encoder whose n_outputs-dimensional output lies on the unit sphere.
    """
    _check_choice("kind", kind, MODEL_KINDS)
    _check_choice("head", head, HEADS)
    _check_choice("activation", activation, ACTIVATIONS)
    if kind == "cnn" and in_features != 64:
        raise ValueError(f"kind='cnn' takes 8x8 images (in_features=64), got in_features={in_features}")
    # torch's default initialisers draw from the global generator: fork it so nothing leaks out
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if kind == "linear":
            model: nn.Module = Linear(in_features, n_outputs, head=head)
        elif kind == "mlp":
            model = MLP(in_features, n_outputs, width, depth, activation, residual, batch_norm, head=head)
        else:
            model = DigitsCNN(n_outputs, channels=max(1, width // 4), head=head)
    return model
