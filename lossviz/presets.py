"""One-click experiments reproducing the founding claims on small data: label noise, imbalance, outliers.

Claims from "Normalized Loss Functions for Deep Learning with Noisy Labels", "Label Distributionally Robust
Losses for Multi-class Classification", LDAM/VS-loss, "Dice Loss for Data-imbalanced NLP Tasks". Each preset
is an Experiment value: pages load it into their controls, tests and notebooks pass it to `run_all`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lossviz.experiment import DataSpec, Experiment, LossChoice, ModelSpec, OptimSpec, RunSet, run_all
from lossviz.rl import LIKELIHOOD_LOSSES
from lossviz.train import Progress


@dataclass(frozen=True)
class Preset:
    """An experiment with the claim it shows."""

    title: str  # the text of its button
    claim: str  # what the paper says, and what to look at
    experiment: Experiment
    metric: str = "test_acc"  # the History column the claim is about

    def with_seed(self, seed: int) -> Experiment:
        """The experiment with another seed for the data and the initial weights (for repeats)."""
        e = self.experiment
        return replace(e, data=replace(e.data, seed=seed), optim=replace(e.optim, seed=seed))


def _losses(*choices: tuple[str, dict[str, float]]) -> tuple[LossChoice, ...]:
    return tuple(LossChoice(name, tuple(params.items())) for name, params in choices)


PRESETS: dict[str, Preset] = {
    "label_noise": Preset(
        title="40% label noise: CE vs GCE vs NCE+RCE vs LDR-KL",
        claim=(
            "40% of the training labels are flipped to a random other class. Cross-entropy first learns the "
            "clean pattern, then memorises the noisy labels (its accuracy on the noisy subset keeps "
            "climbing) and its test accuracy falls; the bounded losses GCE and NCE+RCE, and LDR-KL with a "
            "large lambda, fit far fewer noisy labels and keep a higher test accuracy."
        ),
        experiment=Experiment(
            data=DataSpec(source="gaussian_quantiles", n=400, n_classes=3, label_noise=0.4),
            model=ModelSpec(kind="mlp", width=64, depth=3),
            optim=OptimSpec(optimizer="adam", lr=1e-2, epochs=200),
            losses=_losses(
                ("cross_entropy", {}),
                ("gce", {"q": 0.7}),
                ("apl_nce_rce", {"alpha": 1.0, "beta": 1.0}),
                ("ldr_kl", {"lam": 100.0}),
            ),
        ),
    ),
    "imbalance": Preset(
        title="1:20 imbalance: CE vs focal vs VS/LDAM vs Dice",
        claim=(
            "The training set keeps 20 majority samples per minority sample; the test set is balanced, so "
            "test accuracy is balanced accuracy. Cross-entropy pushes the boundary into the minority class."
            " The class-count-aware losses (VS, LDAM) and the batch-level soft Dice are built to move it "
            "back: compare how far each does (on this data VS moves it most; LDAM's margins were designed "
            "for normalised logits)."
        ),
        experiment=Experiment(
            data=DataSpec(source="moons", n=2000, noise=0.3, imbalance=20.0),
            model=ModelSpec(kind="mlp", width=64, depth=2),
            optim=OptimSpec(optimizer="adam", lr=1e-2, epochs=300),
            losses=_losses(
                ("cross_entropy", {}),
                ("focal", {"gamma": 2.0}),
                ("vs_loss", {"gamma": 0.2, "tau": 1.0}),
                ("ldam", {"max_margin": 0.5, "scale": 1.0}),
                ("soft_dice", {"smoothing": 1.0}),
            ),
        ),
    ),
    "digits": Preset(
        title="digits, 10 classes, real data",
        claim=(
            "scikit-learn's 8x8 handwritten digits (real data, 10 classes) with a small CNN. Compare test "
            "accuracy and calibration (ECE, test NLL): label smoothing caps confidence, focal loss down-"
            "weights easy samples, squentropy pins the wrong-class logits near zero."
        ),
        experiment=Experiment(
            data=DataSpec(source="digits", n=None),
            model=ModelSpec(kind="cnn", width=32),
            optim=OptimSpec(optimizer="adam", lr=3e-3, epochs=30, batch_size=128),
            losses=_losses(
                ("cross_entropy", {}),
                ("label_smoothing", {"eps": 0.1}),
                ("focal", {"gamma": 2.0}),
                ("squentropy", {}),
            ),
        ),
        metric="ece",
    ),
    "robust_regression": Preset(
        title="robust regression with outliers: squared vs Huber vs Cauchy",
        claim=(
            "A sine with 20% of the training targets pushed up by 2.5 to 5. The squared loss's unbounded "
            "influence drags the fit towards the outliers; Huber's bounded influence drags it less and "
            "Cauchy's redescending influence almost ignores them (test targets are the noise-free sine; "
            "metric R^2)."
        ),
        experiment=Experiment(
            data=DataSpec(source="sine", n=300, label_noise=0.2),
            model=ModelSpec(kind="mlp", width=64, depth=2, activation="tanh"),
            optim=OptimSpec(optimizer="adam", lr=1e-2, epochs=400),
            losses=_losses(("squared", {}), ("huber", {"delta": 1.0}), ("cauchy", {"c": 1.0})),
        ),
    ),
}


def preset(key: str) -> Preset:
    """The preset under key; ValueError listing the valid keys otherwise."""
    if key not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {key!r}")
    return PRESETS[key]


def run_preset(key: str, seed: int = 0, progress: Progress | None = None) -> RunSet:
    """Train every loss of a preset on identical data from an identical initialisation."""
    return run_all(preset(key).with_seed(seed), progress=progress)


# ----------------------------------------------------------------------------------------------------------
# Embedding presets (the Embeddings page): contrastive claims of "Understanding the Behaviour of Contrastive
# Loss" (Wang & Liu, 2021), "Understanding Contrastive Representation Learning through Alignment and
# Uniformity on the Hypersphere" (Wang & Isola, 2020) and "Supervised Contrastive Learning" (Khosla et al.,
# 2020), at toy size. Each claim says plainly what this small setting does and does not reproduce.

_FOUR_BLOBS = dict(source="blobs", n=400, n_classes=4, noise=0.5)

EMBEDDING_PRESETS: dict[str, Preset] = {
    "temperature": Preset(
        title="InfoNCE τ = 0.05 vs τ = 0.5",
        claim=(
            "Wang & Liu: InfoNCE's push on the negatives is softmax(s/τ), so a small τ puts nearly all of it "
            "on the hardest (most similar) negatives: uniform embeddings, but samples of the same class, "
            "which are the hardest negatives when only views of one instance are positives, get pushed apart "
            "(intolerance). Reproduced here: the weights and the effective number of negatives (exact), and "
            "on the trained circle the share of the push that lands on a sample's own class (about 0.9 at "
            "τ = 0.05 vs 0.65 at τ = 0.5, the table's 'own-class push'). Not reproduced at this toy size: "
            "the uniformity gap (both end up about equally uniform: L_uniform −1.57 vs −1.55 here, and with "
            "other seeds or on S² τ = 0.5 is often the more uniform) and a clear tolerance gap. The τ = 0.5 "
            "run is 'NT-Xent with additive margin' at m = 0, which is InfoNCE (one loss can appear only once "
            "per experiment)."
        ),
        experiment=Experiment(
            data=DataSpec(**_FOUR_BLOBS, positives="instance"),
            model=ModelSpec(embedding_dim=2),
            optim=OptimSpec(epochs=200),
            losses=_losses(
                ("info_nce", {"temperature": 0.05}),
                ("margin_info_nce", {"temperature": 0.5, "margin": 0.0}),
            ),
        ),
        metric="uniformity",
    ),
    "align_uniform": Preset(
        title="Alignment + uniformity vs InfoNCE",
        claim=(
            "Wang & Isola: optimising alignment (positives close) plus uniformity (spread over the sphere) "
            "directly trains representations about as good as InfoNCE's. Reproduced here on the sphere S² "
            "with instance positives: both reach about the same nearest-class-mean accuracy on held-out "
            "blobs (0.97 each at this setting), and alignment + uniformity is the more uniform (lower "
            "L_uniform). Not reproduced: the paper's linear-probe accuracy on image data."
        ),
        experiment=Experiment(
            data=DataSpec(**_FOUR_BLOBS, positives="instance"),
            model=ModelSpec(embedding_dim=3),
            optim=OptimSpec(epochs=200),
            losses=_losses(("align_uniform", {"lam": 1.0}), ("info_nce", {"temperature": 0.1})),
        ),
    ),
    "supcon": Preset(
        title="SupCon on the sphere",
        claim=(
            "Khosla et al.: with every view of the same label as a positive, SupCon pulls each class into "
            "one tight cap of the sphere. Reproduced here on S²: four compact clusters, nearest-class-mean "
            "accuracy and recall@1 above 0.9 on held-out points, same-class cosines near 1. Not reproduced: "
            "the paper's gain over cross-entropy on ImageNet (this page trains no classifier)."
        ),
        experiment=Experiment(
            data=DataSpec(**_FOUR_BLOBS, positives="class"),
            model=ModelSpec(embedding_dim=3),
            optim=OptimSpec(epochs=200),
            losses=_losses(("supcon", {"temperature": 0.1}), ("info_nce", {"temperature": 0.1})),
        ),
    ),
}


# ----------------------------------------------------------------------------------------------------------
# Distillation presets (the Distillation page): temperature-scaled KD of "Distilling the Knowledge in a Neural
# Network" (Hinton, Vinyals & Dean, 2015) from the default 3 x 128 teacher, trained with cross-entropy on the
# same data, to a small student. Each claim was measured over seeds 0-4 (data and initial weights) and says
# what this toy does and does not reproduce.

DISTILLATION_PRESETS: dict[str, Preset] = {
    "circles": Preset(
        title="Tiny 1×8 student on circles: KD at T = 4",
        claim=(
            "A good teacher (test accuracy 0.99, ECE 0.01) and a student of one hidden layer of 8 units. On "
            "the labels alone the student is miscalibrated (ECE about 0.07); distilled at T = 4 (alpha 0.9) "
            "its ECE halves (about 0.035, lower in 5 of 5 seeds) for about 2 points of test accuracy. At "
            "T = 1 KD is the same as the labels: the teacher's softmax on its training points is nearly "
            "one-hot, and only a higher T shows how it ranks the wrong class. Not reproduced: a smoother or "
            "more accurate student boundary."
        ),
        experiment=Experiment(
            data=DataSpec(source="circles", n=400),
            model=ModelSpec(kind="mlp", width=8, depth=1),
            optim=OptimSpec(optimizer="adam", lr=1e-2, epochs=200),
            losses=_losses(("cross_entropy", {}), ("kd", {"T": 4.0, "alpha": 0.9})),
        ),
        metric="ece",
    ),
    "noisy_moons": Preset(
        title="20% flipped labels on moons: KD from a teacher that memorised them",
        claim=(
            "With 20% of the training labels flipped, the big teacher memorises many flips (test accuracy "
            "about 0.80) while a 2×16 student on the labels alone stays accurate (0.92) but underconfident "
            "(mean confidence about 0.78, ECE about 0.15). Distilled at T = 4 the student takes on the "
            "teacher's confidence: ECE about 0.07 (lower in 5 of 5 seeds), at about 2.5 points of test "
            "accuracy. The student inherits some of the teacher's mistakes; it does not get more accurate."
        ),
        experiment=Experiment(
            data=DataSpec(source="moons", n=400, label_noise=0.2),
            model=ModelSpec(kind="mlp", width=16, depth=2),
            optim=OptimSpec(optimizer="adam", lr=1e-2, epochs=200),
            losses=_losses(("cross_entropy", {}), ("kd", {"T": 4.0, "alpha": 0.9})),
        ),
        metric="ece",
    ),
}


# The robust-loss comparison the Label-noise study runs by default: cross-entropy against GCE (Zhang & Sabuncu
# 2018), SCE (Wang et al. 2019), MAE on probabilities (Ghosh et al. 2017) and ELR (Liu et al. 2020).
NOISE_STUDY_LOSSES: tuple[str, ...] = ("cross_entropy", "gce", "sce", "mae_prob", "elr")


def shown_together() -> list[tuple[str, ...]]:
    """The loss sets the app draws side by side by default (every preset's, the label-noise study's, the RL
    page's likelihood view).

    The palette colours these first, so the losses a class sees together get the most distinct hues.
    """
    groups = [NOISE_STUDY_LOSSES, LIKELIHOOD_LOSSES]
    for presets in (PRESETS, EMBEDDING_PRESETS, DISTILLATION_PRESETS):
        groups += [tuple(c.name for c in preset.experiment.losses) for preset in presets.values()]
    return groups
