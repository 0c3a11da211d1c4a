"""One-click experiments reproducing the founding claims on small data: label noise, imbalance, outliers.

Claims from "Normalized Loss Functions for Deep Learning with Noisy Labels", "Label Distributionally Robust
Losses for Multi-class Classification", LDAM/VS-loss, "Dice Loss for Data-imbalanced NLP Tasks".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from lossviz.data import make_dataset
from lossviz.losses import BoundLoss, make, n_outputs
from lossviz.models import make_model
from lossviz.results import Dataset, PresetResult
from lossviz.train import fit


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Preset:
    """A dataset, a model and a training recipe shared by several losses (each with fixed hyperparameters)."""

    name: str  # the title shown on the button
    description: str  # the claim, and what to look at
    dataset: Mapping[str, Any]  # make_dataset keyword arguments (the seed is run_preset's)
    model: Mapping[str, Any]  # make_model keyword arguments besides in_features, n_outputs and seed
    training: Mapping[str, Any]  # fit keyword arguments besides seed, progress and device
    losses: tuple[tuple[str, Mapping[str, float]], ...]  # (registry name, hyperparameters)
    metric: str = "test_acc"  # the History field the claim is about
    extra: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def bound_losses(self) -> list[BoundLoss]:
        """The preset's losses with their hyperparameters bound (checked against the registry)."""
        return [make(name, **params) for name, params in self.losses]


def loss_label(loss: BoundLoss) -> str:
    """A legend label: the registry name with its hyperparameters, e.g. "gce (q=0.7)"."""
    if not loss.params:
        return loss.name
    return f"{loss.name} ({', '.join(f'{k}={v:g}' for k, v in loss.params.items())})"


PRESETS: dict[str, Preset] = {
    "label_noise": Preset(
        name="40% label noise: CE vs GCE vs NCE+RCE vs LDR-KL",
        description=(
            "40% of the training labels are flipped to a random other class. Cross-entropy first learns the "
            "clean pattern, then memorises the noisy labels (its accuracy on the noisy subset keeps "
            "climbing) and its test accuracy falls; the bounded losses GCE and NCE+RCE, and LDR-KL with a "
            "large lambda, fit far fewer noisy labels and keep a higher test accuracy."
        ),
        dataset=_frozen({"name": "gaussian_quantiles", "n": 400, "n_classes": 3, "label_noise": 0.4}),
        model=_frozen({"kind": "mlp", "width": 64, "depth": 3}),
        training=_frozen({"optimizer": "adam", "lr": 1e-2, "epochs": 200, "snapshots": 20}),
        losses=(
            ("cross_entropy", _frozen({})),
            ("gce", _frozen({"q": 0.7})),
            ("apl_nce_rce", _frozen({"alpha": 1.0, "beta": 1.0})),
            ("ldr_kl", _frozen({"lam": 100.0})),
        ),
    ),
    "imbalance": Preset(
        name="1:20 imbalance: CE vs focal vs VS/LDAM vs Dice",
        description=(
            "The training set keeps 20 majority samples per minority sample; the test set is balanced, so "
            "test accuracy is balanced accuracy. Cross-entropy pushes the boundary into the minority class."
            " The class-count-aware losses (VS, LDAM) and the batch-level soft Dice are built to move it "
            "back: compare how far each does (on this data VS moves it most; LDAM's margins were designed "
            "for normalised logits)."
        ),
        dataset=_frozen({"name": "moons", "n": 2000, "noise": 0.3, "imbalance": 20.0}),
        model=_frozen({"kind": "mlp", "width": 64, "depth": 2}),
        training=_frozen({"optimizer": "adam", "lr": 1e-2, "epochs": 300, "snapshots": 20}),
        losses=(
            ("cross_entropy", _frozen({})),
            ("focal", _frozen({"gamma": 2.0})),
            ("vs_loss", _frozen({"gamma": 0.2, "tau": 1.0})),
            ("ldam", _frozen({"max_margin": 0.5, "scale": 1.0})),
            ("soft_dice", _frozen({"smoothing": 1.0})),
        ),
    ),
    "digits": Preset(
        name="digits, 10 classes, real data",
        description=(
            "scikit-learn's 8x8 handwritten digits (real data, 10 classes) with a small CNN. Compare test "
            "accuracy and calibration (ECE, test NLL): label smoothing caps confidence, focal loss down-"
            "weights easy samples, squentropy pins the wrong-class logits near zero."
        ),
        dataset=_frozen({"name": "digits"}),
        model=_frozen({"kind": "cnn", "width": 32}),
        training=_frozen({"optimizer": "adam", "lr": 3e-3, "epochs": 30, "batch_size": 128, "snapshots": 10}),
        losses=(
            ("cross_entropy", _frozen({})),
            ("label_smoothing", _frozen({"eps": 0.1})),
            ("focal", _frozen({"gamma": 2.0})),
            ("squentropy", _frozen({})),
        ),
        metric="ece",
    ),
    "robust_regression": Preset(
        name="robust regression with outliers: squared vs Huber vs Cauchy",
        description=(
            "A sine with 20% of the training targets pushed up by 2.5 to 5. The squared loss's unbounded "
            "influence drags the fit towards the outliers; Huber's bounded influence drags it less and "
            "Cauchy's redescending influence almost ignores them (test targets are the noise-free sine; "
            "metric R^2)."
        ),
        dataset=_frozen({"name": "sine", "n": 300, "label_noise": 0.2}),
        model=_frozen({"kind": "mlp", "width": 64, "depth": 2, "activation": "tanh"}),
        training=_frozen({"optimizer": "adam", "lr": 1e-2, "epochs": 400, "snapshots": 20}),
        losses=(
            ("squared", _frozen({})),
            ("huber", _frozen({"delta": 1.0})),
            ("cauchy", _frozen({"c": 1.0})),
        ),
    ),
}


def build_model(preset: Preset, dataset: Dataset, loss: BoundLoss, seed: int = 0) -> nn.Module:
    """The preset's model for one loss, freshly initialised from seed (the same weights for every loss)."""
    return make_model(
        in_features=dataset.n_features,
        n_outputs=n_outputs(loss.task, dataset.n_classes),
        seed=seed,
        **preset.model,
    )


def run_preset(
    preset: Preset | str,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    device: str | torch.device | None = None,
) -> PresetResult:
    """Train every loss of the preset on identical data from an identical initialisation."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
        key, preset = preset, PRESETS[preset]
    else:
        key = next((k for k, v in PRESETS.items() if v == preset), preset.name)
    dataset = make_dataset(seed=seed, **preset.dataset)
    bound = preset.bound_losses()
    histories = []
    for i, loss in enumerate(bound):
        label = loss_label(loss)

        def report(fraction: float, message: str, i: int = i, label: str = label) -> None:
            if progress is not None:
                progress((i + fraction) / len(bound), f"{label}: {message}")

        model = build_model(preset, dataset, loss, seed)
        histories.append(
            fit(model, loss, dataset, seed=seed, device=device, progress=report, **preset.training)
        )
    return PresetResult(
        preset=key,
        seed=seed,
        dataset=dataset,
        labels=tuple(loss_label(b) for b in bound),
        histories=tuple(histories),
    )
