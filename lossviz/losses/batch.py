"""Batch-level losses (need the whole batch, return a scalar): Dice, Tversky, AnyLoss, pairwise AUC, Lovász.

See CATALOGUE.md section 3: Dice Loss for Data-imbalanced NLP Tasks (Li et al., 2020); AnyLoss (Han et al.,
2024); Optimizing What Matters: AUC-Driven Learning; The Lovász-Softmax loss (Berman et al., 2018).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, register

# Added to the denominators of AnyLoss's rates so a batch without positives (or negatives) gives a rate of 0,
# not 0/0; it is far below one sample's count, so it changes no value visibly.
RATE_EPS = 1e-7

_DICE_PAPER = "Dice Loss for Data-imbalanced NLP Tasks (Li et al., 2020); V-Net (Milletari et al., 2016)"
_ANYLOSS_PAPER = (
    "AnyLoss: Transforming Classification Metrics into Loss Functions (Han, Moniz & Chawla, 2024)"
)
_SMOOTHING = Param(
    "smoothing", 1e-6, 10.0, log=True, help="added to numerator and denominator (empty batches)"
)
_AMPLIFIER = Param(
    "amplifier", 1.0, 200.0, log=True, help="L in A(p) = sigmoid(L (p - 1/2)); the paper uses 73"
)


def _soft_counts(
    logit: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(soft TP, sum of p, number of positives) with p = sigmoid(logit).  # three scalars"""
    y = target.to(logit.dtype)
    p = torch.sigmoid(logit)  # (N,)
    return (p * y).sum(), p.sum(), y.sum()


def _soft_dice_reference(logit: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    y = target.to(logit.dtype)
    p = torch.sigmoid(logit)
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    return 1 - (2 * tp + smoothing) / (2 * tp + fp + fn + smoothing)


@register(
    title="Soft Dice",
    latex=r"1 - \frac{2\sum_i p_i y_i + s}{\sum_i p_i + \sum_i y_i + s}",
    task="binary",
    batch=True,
    paper=_DICE_PAPER,
    params=[_SMOOTHING],
    reference=_soft_dice_reference,
    notes="1 - soft F1 of the batch: ignores true negatives, so the many easy negatives of imbalanced data "
    "do not dominate.",
)
def soft_dice(logit: torch.Tensor, target: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    tp, p_sum, y_sum = _soft_counts(logit, target)
    return 1.0 - (2.0 * tp + smoothing) / (p_sum + y_sum + smoothing)


def _tversky_reference(
    logit: torch.Tensor, target: torch.Tensor, alpha: float, beta: float, smoothing: float
) -> torch.Tensor:
    y = target.to(logit.dtype)
    p = torch.sigmoid(logit)
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    return 1 - (tp + smoothing) / (tp + alpha * fp + beta * fn + smoothing)


@register(
    title="Tversky",
    latex=r"1 - \frac{TP + s}{TP + \alpha FP + \beta FN + s}",
    task="binary",
    batch=True,
    paper="Tversky loss function for image segmentation using 3D fully convolutional deep networks "
    "(Salehi et al., 2017); " + _DICE_PAPER,
    params=[
        Param("alpha", 0.0, 1.0, help="weight of soft false positives"),
        Param("beta", 0.0, 1.0, help="weight of soft false negatives (raise it to favour recall)"),
        _SMOOTHING,
    ],
    reference=_tversky_reference,
    notes="Dice with separate weights on false positives and false negatives. alpha = beta = 1/2 equals soft "
    "Dice only with doubled smoothing (Tversky with s is Dice with 2s, as Dice counts TP twice); "
    "alpha = beta = 1 is Jaccard.",
)
def tversky(
    logit: torch.Tensor, target: torch.Tensor, alpha: float = 0.3, beta: float = 0.7, smoothing: float = 1.0
) -> torch.Tensor:
    tp, p_sum, y_sum = _soft_counts(logit, target)
    fp, fn = p_sum - tp, y_sum - tp  # soft counts: sum p(1-y) and sum (1-p)y
    return 1.0 - (tp + smoothing) / (tp + alpha * fp + beta * fn + smoothing)


@register(
    title="Self-adjusting Dice",
    latex=r"1 - \frac{2\sum_i (1-p_i)^\alpha p_i y_i + s}{\sum_i (1-p_i)^\alpha p_i + \sum_i y_i + s}",
    task="binary",
    batch=True,
    paper=_DICE_PAPER,
    params=[
        Param(
            "alpha",
            0.0,
            3.0,
            help="self-adjusting exponent: weight (1-p)^alpha fades out confident positives",
        ),
        _SMOOTHING,
    ],
    notes="Dice on probabilities re-weighted by (1-p)^alpha, so easy (confident) samples stop dominating; "
    "batch sums as in the authors' code; alpha = 0 is soft Dice. Keep alpha small: the weight (1-p)^alpha p "
    "also fades confident right positives (at alpha = 1 it is symmetric in p and 1 - p).",
)
def self_adjusting_dice(
    logit: torch.Tensor, target: torch.Tensor, alpha: float = 0.1, smoothing: float = 1.0
) -> torch.Tensor:
    y = target.to(logit.dtype)
    # (1-p)^alpha p in log space: no 0^alpha (inf gradient for alpha < 1) at saturated logits
    weighted = torch.exp(alpha * F.logsigmoid(-logit) + F.logsigmoid(logit))  # (N,)
    return 1.0 - (2.0 * (weighted * y).sum() + smoothing) / (weighted.sum() + y.sum() + smoothing)


def _soft_jaccard_reference(logit: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    y = target.to(logit.dtype)
    p = torch.sigmoid(logit)
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    return 1 - (tp + smoothing) / (tp + fp + fn + smoothing)


@register(
    title="Soft Jaccard",
    latex=r"1 - \frac{\sum_i p_i y_i + s}{\sum_i p_i + \sum_i y_i - \sum_i p_i y_i + s}",
    task="binary",
    batch=True,
    paper="Optimizing intersection-over-union in deep neural networks for image segmentation "
    "(Rahman & Wang, 2016)",
    params=[_SMOOTHING],
    reference=_soft_jaccard_reference,
    notes="1 - soft intersection-over-union of the batch; Tversky with alpha = beta = 1.",
)
def soft_jaccard(logit: torch.Tensor, target: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    tp, p_sum, y_sum = _soft_counts(logit, target)
    return 1.0 - (tp + smoothing) / (p_sum + y_sum - tp + smoothing)


# --- AnyLoss: a differentiable confusion matrix from amplified probabilities ---


def soft_confusion(
    logit: torch.Tensor, target: torch.Tensor, amplifier: float = 73.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """AnyLoss's (TP, FN, FP, TN) with A(p) = sigmoid(L (p - 1/2)), p = sigmoid(logit).  # four scalars"""
    y = target.to(logit.dtype)
    shifted = amplifier * (torch.sigmoid(logit) - 0.5)  # (N,)
    a, not_a = torch.sigmoid(shifted), torch.sigmoid(-shifted)  # A and 1 - A, each accurate near 0
    return (y * a).sum(), (y * not_a).sum(), ((1 - y) * a).sum(), ((1 - y) * not_a).sum()


@register(
    title="AnyLoss: accuracy",
    latex=r"1 - \frac{TP + TN}{N},\ \text{counts from } A(p) = \sigma(L(p - \tfrac12))",
    task="binary",
    batch=True,
    paper=_ANYLOSS_PAPER,
    params=[_AMPLIFIER],
    notes="1 - accuracy of amplified probabilities: near the real accuracy once predictions are confident.",
)
def anyloss_accuracy(logit: torch.Tensor, target: torch.Tensor, amplifier: float = 73.0) -> torch.Tensor:
    tp, fn, fp, tn = soft_confusion(logit, target, amplifier)
    return 1.0 - (tp + tn) / (tp + fn + fp + tn)


@register(
    title="AnyLoss: F1",
    latex=r"1 - \frac{2TP}{2TP + FN + FP}",
    task="binary",
    batch=True,
    paper=_ANYLOSS_PAPER,
    params=[_AMPLIFIER],
    notes="1 - F1 of the amplified confusion matrix: optimises F1 directly, which suits imbalanced data.",
)
def anyloss_f1(logit: torch.Tensor, target: torch.Tensor, amplifier: float = 73.0) -> torch.Tensor:
    tp, fn, fp, _ = soft_confusion(logit, target, amplifier)
    return 1.0 - 2.0 * tp / (2.0 * tp + fn + fp + RATE_EPS)


@register(
    title="AnyLoss: F-beta",
    latex=r"1 - \frac{(1+\beta^2)TP}{(1+\beta^2)TP + \beta^2 FN + FP}",
    task="binary",
    batch=True,
    paper=_ANYLOSS_PAPER,
    params=[
        Param("beta", 0.1, 10.0, log=True, help="recall is beta times as important as precision"),
        _AMPLIFIER,
    ],
    notes="1 - F-beta of the amplified confusion matrix; beta > 1 favours recall.",
)
def anyloss_fbeta(
    logit: torch.Tensor, target: torch.Tensor, beta: float = 2.0, amplifier: float = 73.0
) -> torch.Tensor:
    tp, fn, fp, _ = soft_confusion(logit, target, amplifier)
    b2 = beta**2
    return 1.0 - (1.0 + b2) * tp / ((1.0 + b2) * tp + b2 * fn + fp + RATE_EPS)


@register(
    title="AnyLoss: G-mean",
    latex=r"1 - \frac{TP}{TP + FN} \cdot \frac{TN}{TN + FP} = 1 - \frac{TP \cdot TN}{P \cdot N}",
    task="binary",
    batch=True,
    paper=_ANYLOSS_PAPER,
    params=[_AMPLIFIER],
    notes="As in the authors' code: 1 - TP TN / (P N) = 1 - sensitivity * specificity, the squared G-mean "
    "(anyloss_gmean_sqrt keeps the square root). Zero recall on either class costs everything.",
)
def anyloss_gmean(logit: torch.Tensor, target: torch.Tensor, amplifier: float = 73.0) -> torch.Tensor:
    tp, fn, fp, tn = soft_confusion(logit, target, amplifier)
    # TP + FN = P and TN + FP = N exactly (A + (1 - A) = 1 per sample): the authors' TP TN / (y1 y0)
    return 1.0 - tp * tn / ((tp + fn) * (tn + fp) + RATE_EPS)


@register(
    title="AnyLoss: G-mean (square root)",
    latex=r"1 - \sqrt{\frac{TP}{TP + FN} \cdot \frac{TN}{TN + FP}}",
    task="binary",
    batch=True,
    paper=_ANYLOSS_PAPER,
    params=[_AMPLIFIER],
    notes="1 - the G-mean itself, sqrt(sensitivity * specificity), as the metric is defined; the authors' "
    "code (anyloss_gmean) drops the square root. Same minimiser; the root is steeper where the product is "
    "small.",
)
def anyloss_gmean_sqrt(logit: torch.Tensor, target: torch.Tensor, amplifier: float = 73.0) -> torch.Tensor:
    tp, fn, fp, tn = soft_confusion(logit, target, amplifier)
    product = tp / (tp + fn + RATE_EPS) * tn / (tn + fp + RATE_EPS)
    # sqrt has an infinite slope at 0: the clamp keeps the gradient finite (zero) when a class is all missed
    return 1.0 - torch.sqrt(torch.clamp(product, min=1e-20))


@register(
    title="AnyLoss: balanced accuracy",
    latex=r"1 - \frac12\left(\frac{TP}{TP + FN} + \frac{TN}{TN + FP}\right)",
    task="binary",
    batch=True,
    paper=_ANYLOSS_PAPER,
    params=[_AMPLIFIER],
    notes="1 - mean of sensitivity and specificity: each class counts the same whatever its size.",
)
def anyloss_balanced_accuracy(
    logit: torch.Tensor, target: torch.Tensor, amplifier: float = 73.0
) -> torch.Tensor:
    tp, fn, fp, tn = soft_confusion(logit, target, amplifier)
    return 1.0 - 0.5 * (tp / (tp + fn + RATE_EPS) + tn / (tn + fp + RATE_EPS))


# --- ranking ---


def _pairwise_auc_reference(logit: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    # the defining double loop over (positive, negative) pairs
    terms = []
    for i in range(len(logit)):
        for j in range(len(logit)):
            if target[i] > 0.5 and target[j] < 0.5:
                terms.append(F.softplus(-(logit[i] - logit[j]) / temperature))
    return torch.stack(terms).mean() if terms else (logit * 0).sum()


@register(
    title="Pairwise AUC",
    latex=r"\frac{1}{|P||N|}\sum_{i \in P}\sum_{j \in N} \log\left(1 + e^{-(s_i - s_j)/T}\right)",
    task="binary",
    batch=True,
    paper="Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval; "
    "Mann-Whitney / RankNet surrogate of the AUC",
    params=[
        Param(
            "temperature", 0.01, 10.0, log=True, help="T: small T approaches the hinge on mis-ordered pairs"
        )
    ],
    reference=_pairwise_auc_reference,
    notes="A smooth count of mis-ordered (positive, negative) pairs, so it optimises the ranking, not the "
    "threshold. A batch with a single class has no pairs: the loss is 0 with a zero gradient.",
)
def pairwise_auc(logit: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    is_pos = target > 0.5
    pos, neg = logit[is_pos], logit[~is_pos]  # (P,), (M,)
    if pos.numel() == 0 or neg.numel() == 0:
        return (logit * 0.0).sum()  # no pairs: 0, kept in the graph so backward gives a zero gradient
    gaps = pos[:, None] - neg[None, :]  # (P, M) score differences s_pos - s_neg
    return F.softplus(-gaps / temperature).mean()


def lovasz_jaccard_gradient(sorted_target: torch.Tensor) -> torch.Tensor:
    """Increments of the Jaccard loss along errors sorted descending (Berman et al., Algorithm 1).  # (N,)"""
    positives = sorted_target.sum()
    intersection = positives - sorted_target.cumsum(0)
    union = positives + (1.0 - sorted_target).cumsum(0)
    jaccard = 1.0 - intersection / union  # Jaccard loss of the first k mistakes (N,)
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def _lovasz_hinge_reference(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # Lovász extension from its definition: integrate the set function Delta_J(M) = |M| / |P u M| over the
    # level sets M_t = {i : e_i >= t} of the hinge errors e.
    y = target > 0.5
    errors = torch.relu(1.0 - (2.0 * target.to(logit.dtype) - 1.0) * logit)
    levels = torch.sort(torch.unique(torch.cat([errors, errors.new_zeros(1)]))).values
    total = logit.new_zeros(())
    for low, high in itertools.pairwise(levels):
        mistakes = errors >= high
        total = total + (high - low) * mistakes.sum() / (y | mistakes).sum()
    return total


@register(
    title="Lovász hinge",
    latex=r"\overline{\Delta_J}\big(\max(0, 1 - m)\big) = \sum_k \max(0, 1-m)_{\pi(k)}\, g_k(\pi)",
    task="binary",
    batch=True,
    paper="The Lovász-Softmax loss: a tractable surrogate for the optimization of the "
    "intersection-over-union measure in neural networks (Berman, Rannen Triki & Blaschko, 2018)",
    reference=_lovasz_hinge_reference,
    notes="The tight convex extension of the Jaccard (IoU) loss applied to hinge errors: optimises "
    "intersection-over-union of the batch directly.",
)
def lovasz_hinge(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    y = target.to(logit.dtype)
    errors = 1.0 - (2.0 * y - 1.0) * logit  # hinge errors before the relu (N,)
    errors_sorted, order = torch.sort(errors, descending=True)
    weights = lovasz_jaccard_gradient(y[order])  # piecewise constant in the logits: no gradient through it
    return torch.dot(F.relu(errors_sorted), weights)
