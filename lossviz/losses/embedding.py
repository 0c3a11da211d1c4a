"""Embedding and contrastive losses on embeddings z (N, D) with int64 labels y (N,), plus the OPIS metric.

See CATALOGUE.md section 5: InfoNCE / NT-Xent, SupCon, alignment and uniformity, triplet, contrastive pairs,
multi-similarity, circle, TCM and the AUC retrieval loss (each cited on its entry below).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossviz.losses.registry import Param, register

# ----------------------------------------------------------------------------------------------------------
# Conventions shared by every loss of this module (pytorch-metric-learning's, "pml" below):
# - Embeddings may have any norm: each loss L2-normalises them first, so it lives on the unit sphere, with
#   cosine similarity s_ij = <z_i, z_j> and Euclidean distance d_ij = ||z_i - z_j|| = sqrt(2 - 2 s_ij).
# - Positives of anchor i: P(i) = {j != i : y_j = y_i} (two augmented views of one instance share its label);
#   negatives: N(i) = {j : y_j != y_i}.
# - Per-anchor losses return one value per sample (N,): the mean over the anchor's positives, or over its
#   (positive, negative) pairs for triplet-style losses. pml reduces over all pairs / triplets of the batch
#   instead; that equals the mean of these per-anchor values when every anchor has as many positives (and
#   negatives) as the others (equal class sizes), and their count-weighted mean in general.
# - An anchor with no positive in the batch contributes 0 (as pml's NT-Xent, SupCon, triplet and circle
#   losses do; pml's MultiSimilarity and Contrastive losses keep the negative term of such an anchor).
# ----------------------------------------------------------------------------------------------------------

# Floor on squared distances before sqrt or a fractional power: their slope is infinite at 0 (identical
# embeddings); 1e-12 moves a distance by at most 1e-6 and keeps every gradient finite.
DIST_EPS = 1e-12

_SIMCLR = "A Simple Framework for Contrastive Learning of Visual Representations (Chen et al., 2020)"
_BEHAVIOUR = "Understanding the Behaviour of Contrastive Loss (Wang & Liu, 2021)"
_WANG_ISOLA = (
    "Understanding Contrastive Representation Learning through Alignment and Uniformity on the Hypersphere "
    "(Wang & Isola, 2020)"
)
_FACENET = "FaceNet: A Unified Embedding for Face Recognition and Clustering (Schroff et al., 2015)"
_HERMANS = "In Defense of the Triplet Loss for Person Re-Identification (Hermans, Beyer & Leibe, 2017)"
_TCM = "Threshold-Consistent Margin Loss for Open-World Deep Metric Learning (Zhang et al., 2024)"


def _temperature(default_note: str) -> Param:
    return Param(
        "temperature", 0.01, 1.0, log=True, help=f"τ: small τ concentrates on hard negatives; {default_note}"
    )


_TRIPLET_MARGIN = Param("margin", 0.0, 1.0, help="m: the negative must be m farther than the positive")


def check_embeddings(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise ValueError unless embeddings is (N, D) and labels is (N,)."""
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {tuple(embeddings.shape)}")
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(
            f"labels must be (N,) = ({embeddings.shape[0]},) like the embeddings, got {tuple(labels.shape)}"
        )


def cosine_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of the L2-normalised embeddings.  # (N, N)"""
    z = F.normalize(embeddings, dim=-1)  # (N, D)
    return z @ z.T


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positives, negatives) as boolean (N, N) masks: same label off the diagonal, different label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _distances(sim: torch.Tensor) -> torch.Tensor:
    """Euclidean distances on the sphere from cosines, floored at sqrt(DIST_EPS).  # (N, N)"""
    return torch.sqrt(torch.clamp(2.0 - 2.0 * sim, min=DIST_EPS))


def _masked_logsumexp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """logsumexp of each row over its masked entries; 0 for an empty row (callers mask it out).  # (N,)"""
    empty = ~mask.any(-1, keepdim=True)  # (N, 1)
    # -inf entries get a zero weight in the backward pass; an all-empty row is zeroed so it stays finite
    filled = values.masked_fill(~mask, float("-inf")).masked_fill(empty, 0.0)
    return torch.where(empty.squeeze(-1), 0.0, torch.logsumexp(filled, dim=-1))


def _row_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each row over its masked entries; 0 for an empty row.  # (N,)"""
    count = mask.sum(-1).clamp_min(1)
    return torch.where(mask, values, 0.0).sum(-1) / count


def _triplet_mean(values: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean over each anchor's (positive, negative) pairs of values[a, p, n]; 0 without any.  # (N,)"""
    valid = pos[:, :, None] & neg[:, None, :]  # (N, N, N)
    count = valid.sum((1, 2)).clamp_min(1)
    return torch.where(valid, values, 0.0).sum((1, 2)) / count


def _pair_list(labels: torch.Tensor, i: int) -> tuple[list[int], list[int]]:
    """(positives, negatives) of anchor i as index lists, for the loop references."""
    pos = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
    neg = [j for j in range(len(labels)) if labels[j] != labels[i]]
    return pos, neg


def _ref_cos(x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    return torch.dot(x[i], x[j]) / (x[i].norm() * x[j].norm())


def _ref_dist(x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    return (x[i] / x[i].norm() - x[j] / x[j].norm()).norm()


def _ref_per_anchor(x: torch.Tensor, labels: torch.Tensor, term) -> torch.Tensor:
    """Stack term(i, positives, negatives) over anchors, 0 where the anchor has no positive."""
    values = []
    for i in range(len(x)):
        pos, neg = _pair_list(labels, i)
        values.append(term(i, pos, neg) if pos else x.new_zeros(()))
    return torch.stack(values)


# --- InfoNCE family ---


def _nt_xent_terms(
    sim: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, temperature: float, margin: float = 0.0
) -> torch.Tensor:
    """-log(e^{(s_ip - m)/τ} / (e^{(s_ip - m)/τ} + Σ_n e^{s_in/τ})) on positives, 0 elsewhere.  # (N, N)"""
    neg_lse = _masked_logsumexp(sim / temperature, neg)  # (N,) log Σ_n e^{s_in/τ}
    has_neg = neg.any(-1, keepdim=True)  # without negatives the ratio is 1: the term is 0
    terms = F.softplus(neg_lse[:, None] - (sim - margin) / temperature)  # = logaddexp(x, L) - x
    return torch.where(pos & has_neg, terms, 0.0)


def _ref_nt_xent_term(x, i, p, neg, temperature, margin=0.0):
    top = torch.exp((_ref_cos(x, i, p) - margin) / temperature)
    rest = sum((torch.exp(_ref_cos(x, i, n) / temperature) for n in neg), x.new_zeros(()))
    return -torch.log(top / (top + rest))


def _info_nce_reference(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    def term(i, pos, neg):
        return torch.stack([_ref_nt_xent_term(x, i, p, neg, temperature) for p in pos]).mean()

    return _ref_per_anchor(x, labels, term)


@register(
    title="InfoNCE / NT-Xent",
    latex=r"\frac{1}{|P(i)|}\sum_{p \in P(i)} -\log\frac{e^{s_{ip}/\tau}}"
    r"{e^{s_{ip}/\tau} + \sum_{n \in N(i)} e^{s_{in}/\tau}}",
    task="embedding",
    paper=f"{_SIMCLR}; {_BEHAVIOUR}; Representation Learning with Contrastive Predictive Coding "
    "(van den Oord et al., 2018)",
    params=[_temperature("SimCLR uses 0.1-0.5")],
    reference=_info_nce_reference,
    notes="Softmax cross-entropy picking the positive among the negatives. As τ falls the gradient's weight "
    "on a negative, softmax(s/τ), concentrates on the hardest ones: more uniform embeddings, less tolerance "
    "to semantically close negatives. Each positive is scored against the negatives only (pml's NTXentLoss); "
    "with two views per instance this is SimCLR's NT-Xent.",
)
def info_nce(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    return _row_mean(_nt_xent_terms(cosine_matrix(embeddings), pos, neg, temperature), pos)


def _margin_info_nce_reference(
    x: torch.Tensor, labels: torch.Tensor, temperature: float, margin: float
) -> torch.Tensor:
    def term(i, pos, neg):
        return torch.stack([_ref_nt_xent_term(x, i, p, neg, temperature, margin) for p in pos]).mean()

    return _ref_per_anchor(x, labels, term)


@register(
    title="NT-Xent with additive margin",
    latex=r"\frac{1}{|P(i)|}\sum_{p \in P(i)} -\log\frac{e^{(s_{ip} - m)/\tau}}"
    r"{e^{(s_{ip} - m)/\tau} + \sum_{n \in N(i)} e^{s_{in}/\tau}}",
    task="embedding",
    paper=f"{_SIMCLR}, with the additive cosine margin of CosFace (Wang et al., 2018)",
    params=[
        _temperature("0.1 by default"),
        Param("margin", 0.0, 1.0, help="m: subtracted from the positive's cosine; 0 is NT-Xent"),
    ],
    reference=_margin_info_nce_reference,
    notes="The positive must beat every negative by m in cosine before the loss lets go: tighter positives "
    "and a wider gap to the negatives. m = 0 is InfoNCE.",
)
def margin_info_nce(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1, margin: float = 0.2
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    return _row_mean(_nt_xent_terms(cosine_matrix(embeddings), pos, neg, temperature, margin), pos)


def _clip_views(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-view positives, cross-view negatives): view A is the batch's first half, view B the second."""
    n = len(labels)
    if n % 2:
        raise ValueError(f"clip_info_nce needs an even batch (view A then view B), got N={n}")
    view = torch.arange(n, device=labels.device) >= n // 2  # (N,) False: view A, True: view B
    cross = view[:, None] != view[None, :]
    same = labels[:, None] == labels[None, :]
    return same & cross, ~same & cross


def _clip_reference(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    half = len(x) // 2
    values = []
    for i in range(len(x)):
        others = range(half, len(x)) if i < half else range(half)
        pos = [j for j in others if labels[j] == labels[i]]
        neg = [j for j in others if labels[j] != labels[i]]
        values.append(
            torch.stack([_ref_nt_xent_term(x, i, p, neg, temperature) for p in pos]).mean()
            if pos
            else x.new_zeros(())
        )
    return torch.stack(values)


@register(
    title="Symmetric InfoNCE (CLIP)",
    latex=r"\frac{1}{|P_\times(i)|}\sum_{p \in P_\times(i)} -\log\frac{e^{s_{ip}/\tau}}"
    r"{e^{s_{ip}/\tau} + \sum_{n \in N_\times(i)} e^{s_{in}/\tau}}",
    task="embedding",
    paper="Learning Transferable Visual Models From Natural Language Supervision (Radford et al., 2021)",
    params=[_temperature("CLIP starts at 0.07")],
    reference=_clip_reference,
    notes="The batch is two views stacked: rows [0, N/2) are view A (images), rows [N/2, N) view B "
    "(captions); a pair is a cross-view couple with the same label. Each sample is scored only against "
    "the other view, so the batch mean is CLIP's (image->text + text->image) / 2. N must be even.",
)
def clip_info_nce(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = _clip_views(labels)
    return _row_mean(_nt_xent_terms(cosine_matrix(embeddings), pos, neg, temperature), pos)


def _decoupled_reference(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    def term(i, pos, neg):
        if not neg:
            return x.new_zeros(())
        rest = sum(torch.exp(_ref_cos(x, i, n) / temperature) for n in neg)
        return torch.stack([-_ref_cos(x, i, p) / temperature + torch.log(rest) for p in pos]).mean()

    return _ref_per_anchor(x, labels, term)


@register(
    title="Decoupled contrastive (DCL)",
    latex=r"\frac{1}{|P(i)|}\sum_{p \in P(i)} \Big(-\frac{s_{ip}}{\tau} + "
    r"\log\sum_{n \in N(i)} e^{s_{in}/\tau}\Big)",
    task="embedding",
    paper="Decoupled Contrastive Learning (Yeh et al., ECCV 2022)",
    params=[_temperature("0.1 by default")],
    reference=_decoupled_reference,
    notes="InfoNCE with the positive removed from the denominator: the push on negatives no longer fades as "
    "the positive wins (the negative-positive coupling that makes InfoNCE want large batches). Unbounded "
    "below. An anchor without negatives returns 0.",
)
def decoupled_contrastive(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    sim = cosine_matrix(embeddings)
    neg_lse = _masked_logsumexp(sim / temperature, neg)  # (N,)
    has_neg = neg.any(-1, keepdim=True)
    return _row_mean(neg_lse[:, None] - sim / temperature, pos & has_neg)


def _supcon_reference(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    def term(i, pos, neg):
        others = [j for j in range(len(x)) if j != i]
        denominator = sum(torch.exp(_ref_cos(x, i, a) / temperature) for a in others)
        return -torch.stack(
            [torch.log(torch.exp(_ref_cos(x, i, p) / temperature) / denominator) for p in pos]
        ).mean()

    return _ref_per_anchor(x, labels, term)


@register(
    title="Supervised contrastive (SupCon)",
    latex=r"-\frac{1}{|P(i)|}\sum_{p \in P(i)} \log\frac{e^{s_{ip}/\tau}}{\sum_{a \ne i} e^{s_{ia}/\tau}}",
    task="embedding",
    paper="Supervised Contrastive Learning (Khosla et al., 2020), the L_out form",
    params=[_temperature("the paper uses 0.1")],
    reference=_supcon_reference,
    notes="Every same-label sample is a positive; the denominator holds all other samples, positives "
    "included, and the log-probabilities are averaged outside the log (L_out), which the paper found best.",
)
def supcon(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, _ = pair_masks(labels)
    logits = cosine_matrix(embeddings) / temperature  # (N, N)
    others = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    log_prob = logits - _masked_logsumexp(logits, others)[:, None]
    return -_row_mean(log_prob, pos)


# --- alignment and uniformity (Wang & Isola, 2020) ---

_ALPHA = Param("alpha", 1.0, 4.0, help="α: power of the positive-pair distance; the paper uses 2")
_T = Param("t", 0.1, 10.0, log=True, help="t: Gaussian-potential sharpness; the paper uses 2")


def _squared_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """||z_i - z_j||² of the normalised embeddings, >= 0.  # (N, N)"""
    return torch.clamp(2.0 - 2.0 * cosine_matrix(embeddings), min=0.0)


def _alignment_pairs(embeddings: torch.Tensor, alpha: float) -> torch.Tensor:
    """||z_i - z_j||^α for every pair (floored so fractional powers keep a finite slope).  # (N, N)"""
    return torch.clamp(_squared_distances(embeddings), min=DIST_EPS) ** (alpha / 2)


def _alignment_reference(x: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    return _ref_per_anchor(
        x, labels, lambda i, pos, neg: torch.stack([_ref_dist(x, i, p) ** alpha for p in pos]).mean()
    )


@register(
    title="Alignment",
    latex=r"\frac{1}{|P(i)|}\sum_{p \in P(i)} \lVert z_i - z_p \rVert_2^{\alpha}",
    task="embedding",
    paper=_WANG_ISOLA,
    params=[_ALPHA],
    reference=_alignment_reference,
    notes="Pulls positives together on the sphere and nothing else: alone it collapses every embedding to "
    "one point; pair it with uniformity. Its batch mean is the paper's expectation over positive pairs when "
    "every anchor has as many positives.",
)
def alignment(embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, _ = pair_masks(labels)
    return _row_mean(_alignment_pairs(embeddings, alpha), pos)


def _uniformity(embeddings: torch.Tensor, t: float) -> torch.Tensor:
    """log of the mean Gaussian potential e^{-t ||z_i - z_j||²} over pairs i != j (a scalar)."""
    n = embeddings.shape[0]
    if n < 2:
        return (embeddings * 0.0).sum()  # no pairs: 0, kept in the graph
    others = ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    potentials = -t * _squared_distances(embeddings)[others]  # (N (N - 1),)
    return torch.logsumexp(potentials, dim=0) - torch.log(potentials.new_tensor(float(len(potentials))))


def _uniformity_reference(x: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    terms = [torch.exp(-t * _ref_dist(x, i, j) ** 2) for i in range(len(x)) for j in range(len(x)) if i != j]
    return torch.log(torch.stack(terms).mean())


@register(
    title="Uniformity",
    latex=r"\log \frac{1}{N(N-1)}\sum_{i \ne j} e^{-t \lVert z_i - z_j \rVert_2^2}",
    task="embedding",
    batch=True,
    paper=_WANG_ISOLA,
    params=[_T],
    reference=_uniformity_reference,
    notes="Spreads the whole batch over the sphere (labels are ignored): the log of the mean Gaussian "
    "potential, minimised by the uniform distribution. Only exists per batch.",
)
def uniformity(embeddings: torch.Tensor, labels: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    return _uniformity(embeddings, t)


def _align_uniform_reference(
    x: torch.Tensor, labels: torch.Tensor, alpha: float, t: float, lam: float
) -> torch.Tensor:
    pairs = [
        _ref_dist(x, i, p) ** alpha for i in range(len(x)) for p in _pair_list(labels, i)[0]
    ]  # every ordered positive pair
    align = torch.stack(pairs).mean() if pairs else x.new_zeros(())
    return align + lam * _uniformity_reference(x, labels, t)


@register(
    title="Alignment + λ uniformity",
    latex=r"\mathbb{E}_{(i,p)}\lVert z_i - z_p \rVert_2^{\alpha} + \lambda \log \frac{1}{N(N-1)}"
    r"\sum_{i \ne j} e^{-t \lVert z_i - z_j \rVert_2^2}",
    task="embedding",
    batch=True,
    paper=_WANG_ISOLA,
    params=[_ALPHA, _T, Param("lam", 0.0, 10.0, help="λ: weight of uniformity; the paper uses 1")],
    reference=_align_uniform_reference,
    notes="The paper's training objective: alignment averaged over all positive pairs of the batch plus λ "
    "times uniformity. λ trades tight positives against a spread-out sphere.",
)
def align_uniform(
    embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0, t: float = 2.0, lam: float = 1.0
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, _ = pair_masks(labels)
    align = torch.where(pos, _alignment_pairs(embeddings, alpha), 0.0).sum() / pos.sum().clamp_min(1)
    return align + lam * _uniformity(embeddings, t)


# --- triplet and pair losses on distances ---


def _triplet_gaps(embeddings: torch.Tensor, margin: float) -> torch.Tensor:
    """d_ap - d_an + m for every (anchor, positive, negative) index.  # (N, N, N)"""
    d = _distances(cosine_matrix(embeddings))  # (N, N)
    return d[:, :, None] - d[:, None, :] + margin


def _ref_triplet(x: torch.Tensor, labels: torch.Tensor, margin: float, link) -> torch.Tensor:
    def term(i, pos, neg):
        values = [link(_ref_dist(x, i, p) - _ref_dist(x, i, n) + margin) for p in pos for n in neg]
        return torch.stack(values).mean() if values else x.new_zeros(())

    return _ref_per_anchor(x, labels, term)


def _triplet_reference(x: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    return _ref_triplet(x, labels, margin, torch.relu)


@register(
    title="Triplet (all triplets)",
    latex=r"\frac{1}{|P(i)||N(i)|}\sum_{p \in P(i)}\sum_{n \in N(i)} \max(0,\ d_{ip} - d_{in} + m)",
    task="embedding",
    paper=_FACENET,
    params=[_TRIPLET_MARGIN],
    reference=_triplet_reference,
    notes="Every valid (positive, negative) pair of the anchor, with Euclidean distances between normalised "
    "embeddings (pml's default). The mean counts satisfied triplets as zeros; pml's default averages over "
    "the violated ones only. Memory grows as N³.",
)
def triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    return _triplet_mean(torch.relu(_triplet_gaps(embeddings, margin)), pos, neg)


def _batch_hard_reference(x: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    def term(i, pos, neg):
        if not neg:
            return x.new_zeros(())
        hardest_pos = max(_ref_dist(x, i, p) for p in pos)
        hardest_neg = min(_ref_dist(x, i, n) for n in neg)
        return torch.relu(hardest_pos - hardest_neg + margin)

    return _ref_per_anchor(x, labels, term)


@register(
    title="Triplet (batch hard)",
    latex=r"\max\big(0,\ \max_{p \in P(i)} d_{ip} - \min_{n \in N(i)} d_{in} + m\big)",
    task="embedding",
    paper=f"{_HERMANS}; {_FACENET}",
    params=[_TRIPLET_MARGIN],
    reference=_batch_hard_reference,
    notes="One triplet per anchor: its farthest positive against its closest negative (pml's BatchHardMiner "
    "with TripletMarginLoss). Focuses on the hardest cases; outliers can dominate.",
)
def triplet_batch_hard(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    d = _distances(cosine_matrix(embeddings))  # (N, N), in [0, 2]
    hardest_pos = torch.where(pos, d, -1.0).amax(-1)  # (N,) masked entries can never win
    hardest_neg = torch.where(neg, d, 3.0).amin(-1)
    valid = pos.any(-1) & neg.any(-1)
    return torch.where(valid, torch.relu(hardest_pos - hardest_neg + margin), 0.0)


def _soft_margin_triplet_reference(x: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    return _ref_triplet(x, labels, margin, F.softplus)


@register(
    title="Soft-margin triplet",
    latex=r"\frac{1}{|P(i)||N(i)|}\sum_{p \in P(i)}\sum_{n \in N(i)} "
    r"\log\big(1 + e^{d_{ip} - d_{in} + m}\big)",
    task="embedding",
    paper=_HERMANS,
    params=[Param("margin", 0.0, 1.0, help="m: shifts the softplus; 0 is the paper's soft margin")],
    reference=_soft_margin_triplet_reference,
    notes="The hinge of the triplet loss replaced by a softplus: never exactly zero, so satisfied triplets "
    "keep pulling a little; with m = 0 (the paper's choice) there is no margin to tune. Over all triplets "
    "(pml's TripletMarginLoss with smooth_loss=True).",
)
def soft_margin_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    return _triplet_mean(F.softplus(_triplet_gaps(embeddings, margin)), pos, neg)


def _contrastive_pair_reference(
    x: torch.Tensor, labels: torch.Tensor, pos_margin: float, neg_margin: float
) -> torch.Tensor:
    def term(i, pos, neg):
        pull = torch.stack([torch.relu(_ref_dist(x, i, p) - pos_margin) for p in pos]).mean()
        push = (
            torch.stack([torch.relu(neg_margin - _ref_dist(x, i, n)) for n in neg]).mean()
            if neg
            else x.new_zeros(())
        )
        return pull + push

    return _ref_per_anchor(x, labels, term)


@register(
    title="Contrastive (pairs)",
    latex=r"\frac{1}{|P(i)|}\sum_{p \in P(i)} [d_{ip} - m_+]_+ + "
    r"\frac{1}{|N(i)|}\sum_{n \in N(i)} [m_- - d_{in}]_+",
    task="embedding",
    paper="Dimensionality Reduction by Learning an Invariant Mapping (Hadsell, Chopra & LeCun, 2006)",
    params=[
        Param("pos_margin", 0.0, 1.0, help="m+: positives closer than this cost nothing"),
        Param("neg_margin", 0.0, 2.0, help="m-: negatives farther than this cost nothing"),
    ],
    reference=_contrastive_pair_reference,
    notes="Pulls positives within m+ and pushes negatives beyond m-, on distances between normalised "
    "embeddings, with unsquared hinges as pml's ContrastiveLoss (Hadsell et al. square them).",
)
def contrastive_pair(
    embeddings: torch.Tensor, labels: torch.Tensor, pos_margin: float = 0.0, neg_margin: float = 1.0
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    d = _distances(cosine_matrix(embeddings))  # (N, N)
    pull = _row_mean(torch.relu(d - pos_margin), pos)
    push = _row_mean(torch.relu(neg_margin - d), neg)
    return torch.where(pos.any(-1), pull + push, 0.0)


# --- weighted pair losses on similarities ---


def _log1p_sum_exp(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log(1 + Σ_masked e^v) per row, stable (softplus of a logsumexp); 0 for an empty row.  # (N,)"""
    return torch.where(mask.any(-1), F.softplus(_masked_logsumexp(values, mask)), 0.0)


def _multi_similarity_reference(
    x: torch.Tensor, labels: torch.Tensor, alpha: float, beta: float, lam: float
) -> torch.Tensor:
    def term(i, pos, neg):
        pull = torch.log(1 + sum(torch.exp(-alpha * (_ref_cos(x, i, p) - lam)) for p in pos)) / alpha
        push = torch.log(1 + sum((torch.exp(beta * (_ref_cos(x, i, n) - lam)) for n in neg), x.new_zeros(())))
        return pull + push / beta

    return _ref_per_anchor(x, labels, term)


@register(
    title="Multi-similarity",
    latex=r"\frac{1}{\alpha}\log\Big(1 + \sum_{p \in P(i)} e^{-\alpha(s_{ip} - \lambda)}\Big) + "
    r"\frac{1}{\beta}\log\Big(1 + \sum_{n \in N(i)} e^{\beta(s_{in} - \lambda)}\Big)",
    task="embedding",
    paper="Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning (Wang et al., 2019)",
    params=[
        Param("alpha", 0.1, 20.0, log=True, help="α: sharpness of the weighting of positives"),
        Param("beta", 1.0, 100.0, log=True, help="β: sharpness of the weighting of negatives"),
        Param("lam", 0.0, 1.0, help="λ: the similarity at which a pair switches from pushed to pulled"),
    ],
    reference=_multi_similarity_reference,
    notes="Soft-max weighting of pairs by their own and their relative similarity. The paper's pair-mining "
    "step (keep pairs within ε of the hardest opposite pair) is omitted: this is pml's MultiSimilarityLoss "
    "without a miner.",
)
def multi_similarity(
    embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 2.0, beta: float = 50.0, lam: float = 0.5
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    sim = cosine_matrix(embeddings)
    pull = _log1p_sum_exp(-alpha * (sim - lam), pos) / alpha
    push = _log1p_sum_exp(beta * (sim - lam), neg) / beta
    return torch.where(pos.any(-1), pull + push, 0.0)


def _circle_reference(
    x: torch.Tensor, labels: torch.Tensor, margin: float, gamma: float, frozen: torch.Tensor | None = None
) -> torch.Tensor:
    """The paper's formula pair by pair; the weights α come from `frozen` (default x), held constant."""
    weights_from = x if frozen is None else frozen

    def term(i, pos, neg):
        if not neg:
            return x.new_zeros(())
        pull = sum(
            torch.exp(-gamma * torch.relu(1 + margin - _ref_cos(weights_from, i, p)) * (s - (1 - margin)))
            for p, s in ((p, _ref_cos(x, i, p)) for p in pos)
        )
        push = sum(
            torch.exp(gamma * torch.relu(_ref_cos(weights_from, i, n) + margin) * (s - margin))
            for n, s in ((n, _ref_cos(x, i, n)) for n in neg)
        )
        return torch.log(1 + pull * push)

    return _ref_per_anchor(x, labels, term)


@register(
    title="Circle loss",
    latex=r"\log\Big(1 + \sum_{n \in N(i)} e^{\gamma \alpha_n (s_{in} - m)} "
    r"\sum_{p \in P(i)} e^{-\gamma \alpha_p (s_{ip} - 1 + m)}\Big),\ "
    r"\alpha_p = [1 + m - s_{ip}]_+,\ \alpha_n = [s_{in} + m]_+",
    task="embedding",
    paper="Circle Loss: A Unified Perspective of Pair Similarity Optimization (Sun et al., 2020)",
    params=[
        Param("margin", 0.0, 0.5, help="m: relaxation; optima at s_p = 1 - m, s_n = m"),
        Param("gamma", 1.0, 256.0, log=True, help="γ: scale (80 for retrieval, 256 for faces)"),
    ],
    reference=_circle_reference,
    notes="Each similarity is weighted by its distance from its own optimum, so the decision boundary is a "
    "circle in (s_n, s_p). As in the paper (and pml), the gradient does not flow through the weights α: "
    "they are held constant, so the gradient shown is the paper's, not the derivative of the plotted value. "
    "Anchors without a positive or a negative give 0.",
    stop_gradient="the pair weights α_p and α_n",
)
def circle(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.4, gamma: float = 80.0
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    sim = cosine_matrix(embeddings)
    # The paper's stop-gradient: alpha weighs each pair by its distance from its optimum, but is not optimised
    alpha_p = torch.relu(1.0 + margin - sim).detach()  # (N, N)
    alpha_n = torch.relu(sim + margin).detach()  # (N, N)
    pull = -gamma * alpha_p * (sim - (1.0 - margin))  # (N, N) logits of positives
    push = gamma * alpha_n * (sim - margin)  # (N, N) logits of negatives
    value = F.softplus(_masked_logsumexp(pull, pos) + _masked_logsumexp(push, neg))
    return torch.where(pos.any(-1) & neg.any(-1), value, 0.0)


# --- threshold consistency (TCM) and its metric (OPIS) ---


def _tcm_reference(
    x: torch.Tensor,
    labels: torch.Tensor,
    lambda_pos: float,
    lambda_neg: float,
    margin_pos: float,
    margin_neg: float,
) -> torch.Tensor:
    hard_pos, hard_neg = [], []
    for i in range(len(x)):
        pos, neg = _pair_list(labels, i)
        hard_pos += [margin_pos - s for s in (_ref_cos(x, i, p) for p in pos) if s <= margin_pos]
        hard_neg += [s - margin_neg for s in (_ref_cos(x, i, n) for n in neg) if s >= margin_neg]
    pos_term = torch.stack(hard_pos).mean() if hard_pos else x.new_zeros(())
    neg_term = torch.stack(hard_neg).mean() if hard_neg else x.new_zeros(())
    return lambda_pos * pos_term + lambda_neg * neg_term


@register(
    title="Threshold-consistent margin (TCM)",
    latex=r"\lambda^+\frac{\sum_{s \in S^+} (m^+ - s)\,[s \le m^+]}{\sum_{s \in S^+} [s \le m^+]} + "
    r"\lambda^-\frac{\sum_{s \in S^-} (s - m^-)\,[s \ge m^-]}{\sum_{s \in S^-} [s \ge m^-]}",
    task="embedding",
    batch=True,
    paper=_TCM,
    params=[
        Param("lambda_pos", 0.0, 2.0, help="λ+: weight of the positive-pair term"),
        Param("lambda_neg", 0.0, 2.0, help="λ-: weight of the negative-pair term"),
        Param("margin_pos", 0.0, 1.0, help="m+: positive pairs below this cosine are penalised"),
        Param("margin_neg", 0.0, 1.0, help="m-: negative pairs above this cosine are penalised"),
    ],
    reference=_tcm_reference,
    notes="A regulariser added to a base loss: only the hard pairs, positives below m+ and negatives above "
    "m-, are penalised, each term averaged over the hard pairs alone, so one cosine threshold fits every "
    "class (see opis). A term with no hard pair is 0. Over all pairs of the batch (pml's "
    "ThresholdConsistentMarginLoss).",
)
def tcm(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    lambda_pos: float = 1.0,
    lambda_neg: float = 1.0,
    margin_pos: float = 0.9,
    margin_neg: float = 0.5,
) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    sim = cosine_matrix(embeddings)
    hard_pos = pos & (sim <= margin_pos)
    hard_neg = neg & (sim >= margin_neg)
    pos_term = torch.where(hard_pos, margin_pos - sim, 0.0).sum() / hard_pos.sum().clamp_min(1)
    neg_term = torch.where(hard_neg, sim - margin_neg, 0.0).sum() / hard_neg.sum().clamp_min(1)
    return lambda_pos * pos_term + lambda_neg * neg_term


def _f1(accepted_pos: torch.Tensor, n_pos: torch.Tensor, accepted_neg: torch.Tensor) -> torch.Tensor:
    """F1 = 2TP / (2TP + FP + FN) of the accept decision; n_pos > 0 wherever it is used."""
    return 2 * accepted_pos / (accepted_pos + n_pos + accepted_neg).clamp_min(1)


def opis(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    far_range: tuple[float, float] = (0.01, 0.1),
    n_thresholds: int = 101,
) -> float:
    """Operating-Point-Inconsistency Score (Zhang et al., 2024): 0 when one threshold suits every class.

    A pair (i, j), i != j, is accepted at threshold t when its cosine s_ij >= t. For each class c with at
    least one positive pair, U_c(t) is the F1 of that decision over the pairs anchored in c (TP: accepted
    same-class pairs, FN: rejected ones, FP: accepted pairs with a sample of another class); U(t) is the F1
    over all pairs. The calibration range holds the thresholds at which the overall false-accept rate lies in
    far_range; OPIS is the mean over classes of the average of (U_c(t) - U(t))² over that range (trapezoid
    rule on n_thresholds evenly spaced thresholds). The F1 utility and the default far_range are this
    module's choices. Needs two classes; not differentiable (a metric).
    """
    check_embeddings(embeddings, labels)
    low, high = far_range
    if not 0.0 < low < high <= 1.0:
        raise ValueError(f"far_range must satisfy 0 < low < high <= 1, got {far_range}")
    if n_thresholds < 2:
        raise ValueError(f"n_thresholds must be >= 2, got {n_thresholds}")
    pos, neg = pair_masks(labels)
    if not neg.any() or not pos.any():
        raise ValueError("opis needs at least two classes and one same-class pair")
    with torch.no_grad():
        sim = cosine_matrix(embeddings).double()
        # FAR(t) = share of negative pairs with s >= t, so FAR = f at the (1 - f)-quantile of their cosines
        edges = torch.quantile(sim[neg], sim.new_tensor([1.0 - high, 1.0 - low]))
        thresholds = torch.linspace(float(edges[0]), float(edges[1]), n_thresholds, dtype=sim.dtype)  # (T,)
        accepted = sim[None] >= thresholds[:, None, None]  # (T, N, N)
        tp = (accepted & pos).sum(-1).double()  # (T, N) accepted positives per anchor
        fp = (accepted & neg).sum(-1).double()
        n_pos = pos.sum(-1).double()  # (N,)
        overall = _f1(tp.sum(-1), n_pos.sum(), fp.sum(-1))  # (T,)
        weights = torch.ones(n_thresholds, dtype=sim.dtype)
        weights[[0, -1]] = 0.5
        weights /= weights.sum()  # trapezoid rule divided by the range's width
        scores = []
        for c in labels.unique():
            rows = labels == c
            if n_pos[rows].sum() == 0:
                continue  # a singleton class has no same-class pair to accept
            utility = _f1(tp[:, rows].sum(-1), n_pos[rows].sum(), fp[:, rows].sum(-1))  # (T,)
            scores.append(((utility - overall) ** 2 * weights).sum())
        return float(torch.stack(scores).mean())


# --- ranking ---


def _auc_retrieval_reference(x: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    def term(i, pos, neg):
        values = [
            torch.log(1 + torch.exp(-(_ref_cos(x, i, p) - _ref_cos(x, i, n)) / temperature))
            for p in pos
            for n in neg
        ]
        return torch.stack(values).mean() if values else x.new_zeros(())

    return _ref_per_anchor(x, labels, term)


@register(
    title="AUC retrieval (Mann-Whitney)",
    latex=r"\frac{1}{|P(i)||N(i)|}\sum_{p \in P(i)}\sum_{n \in N(i)} "
    r"\log\big(1 + e^{-(s_{ip} - s_{in})/T}\big)",
    task="embedding",
    paper="Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval",
    params=[
        Param("temperature", 0.01, 1.0, log=True, help="T: small T approaches counting mis-ranked pairs")
    ],
    reference=_auc_retrieval_reference,
    notes="A smooth count of the (positive, negative) pairs the anchor ranks wrongly: it optimises the "
    "anchor's retrieval AUC (the Mann-Whitney statistic), not a fixed threshold. Memory grows as N³.",
)
def auc_retrieval(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    check_embeddings(embeddings, labels)
    pos, neg = pair_masks(labels)
    sim = cosine_matrix(embeddings)
    gaps = (sim[:, None, :] - sim[:, :, None]) / temperature  # (N, N, N): [a, p, n] = (s_an - s_ap) / T
    return _triplet_mean(F.softplus(gaps), pos, neg)
