"""Embedding losses against pytorch-metric-learning (pml), closed forms, hand cases and the family identities.

pml reduces to a scalar; the per-anchor values here are compared with pml's unreduced terms (its
DoNothingReducer) gathered per anchor, and the batch means with pml's default reducers, reduced the same way.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning import miners, reducers

from lossviz import losses
from lossviz.losses.embedding import opis, pair_masks
from tests.losses.conftest import make_inputs, numerical_jacobian

EMBEDDING = losses.names("embedding")
PER_ANCHOR = [n for n in EMBEDDING if not losses.get(n).batch]
TOL = {"rtol": 1e-5, "atol": 1e-5}  # float64 throughout; the implementations agree far closer than this
RAW = reducers.DoNothingReducer  # pml's reducer returning the unreduced terms with their indices


def _balanced(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """N=12, D=3, labels arange(12) % 4: every anchor has 2 positives and 9 negatives."""
    return make_inputs("embedding", seed=seed)


def _uneven(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """N=10, D=4, class sizes 4, 3, 2, 1 (shuffled): counts differ and one anchor has no positive."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])[torch.randperm(10, generator=g)]
    return 2.0 * torch.randn(10, 4, generator=g, dtype=torch.float64), labels


def _singleton(labels: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the anchors without a positive."""
    pos, _ = pair_masks(labels)
    return ~pos.any(-1)


def _gather(values: torch.Tensor, anchors: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-anchor mean of pml's terms, number of terms per anchor); 0 for an anchor without terms."""
    values = values.reshape(-1)
    total = torch.zeros(n, dtype=values.dtype).index_add_(0, anchors, values)
    count = torch.zeros(n, dtype=values.dtype).index_add_(0, anchors, torch.ones_like(values))
    return total / count.clamp_min(1), count


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected.to(actual.dtype), **TOL)


def test_sixteen_embedding_losses_registered():
    assert len(EMBEDDING) == 16, EMBEDDING


# ------------------------------------------------------------------------------------------------------------
# pytorch-metric-learning
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5])
def test_info_nce_matches_pml_ntxent(make, temperature):
    x, y = make(seed=1)
    ours = losses.get("info_nce")(x, y, temperature=temperature)
    raw = pml.NTXentLoss(temperature=temperature, reducer=RAW())(x, y)["loss"]
    per_anchor, n_pairs = _gather(raw["losses"], raw["indices"][0], len(x))
    _close(ours, per_anchor)
    # pml's default (MeanReducer) averages over all positive pairs: our anchors weighted by their positives
    _close((ours * n_pairs).sum() / n_pairs.sum(), pml.NTXentLoss(temperature=temperature)(x, y))


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5])
def test_supcon_matches_pml(make, temperature):
    x, y = make(seed=2)
    ours = losses.get("supcon")(x, y, temperature=temperature)
    _close(ours, pml.SupConLoss(temperature=temperature, reducer=RAW())(x, y)["loss"]["losses"])
    # pml's default (AvgNonZeroReducer) averages over the anchors with a non-zero loss
    _close(ours[ours > 0].mean(), pml.SupConLoss(temperature=temperature)(x, y))


@pytest.mark.parametrize("temperature", [0.07, 0.3])
def test_clip_info_nce_matches_pml_ntxent_across_views(temperature):
    x, y = _balanced(seed=3)
    half = len(x) // 2
    ours = losses.get("clip_info_nce")(x, y, temperature=temperature)
    loss = pml.NTXentLoss(temperature=temperature, reducer=RAW())
    for rows, others in [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]:
        raw = loss(x[rows], y[rows], ref_emb=x[others], ref_labels=y[others])["loss"]
        _close(ours[rows], _gather(raw["losses"], raw["indices"][0], half)[0])


def _normalised_distances(x: torch.Tensor) -> torch.Tensor:
    z = x / x.norm(dim=1, keepdim=True)
    return (z[:, None, :] - z[None, :, :]).norm(dim=-1)


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("margin", [0.05, 0.2, 0.6])
def test_triplet_matches_pml_all_triplets(make, margin):
    x, y = make(seed=4)
    ours = losses.get("triplet")(x, y, margin=margin)
    raw = pml.TripletMarginLoss(margin=margin, reducer=RAW())(x, y)["loss"]
    per_anchor, n_triplets = _gather(raw["losses"], raw["indices"][0], len(x))
    _close(ours, per_anchor)
    # pml's default (AvgNonZeroReducer) divides the sum over all triplets by the number of violated ones
    d = _normalised_distances(x)
    pos, neg = pair_masks(y)
    violated = (pos[:, :, None] & neg[:, None, :] & (d[:, :, None] - d[:, None, :] + margin > 0)).sum()
    _close((ours * n_triplets).sum() / violated, pml.TripletMarginLoss(margin=margin)(x, y))


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_soft_margin_triplet_matches_pml_smooth_loss(make, margin):
    x, y = make(seed=5)
    ours = losses.get("soft_margin_triplet")(x, y, margin=margin)
    raw = pml.TripletMarginLoss(margin=margin, smooth_loss=True, reducer=RAW())(x, y)["loss"]
    per_anchor, n_triplets = _gather(raw["losses"], raw["indices"][0], len(x))
    _close(ours, per_anchor)
    # a softplus is never 0, so pml's AvgNonZero default is the mean over all triplets
    _close(
        (ours * n_triplets).sum() / n_triplets.sum(),
        pml.TripletMarginLoss(margin=margin, smooth_loss=True)(x, y),
    )


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("margin", [0.05, 0.2, 0.6])
def test_triplet_batch_hard_matches_pml_batch_hard_miner(make, margin):
    x, y = make(seed=6)
    ours = losses.get("triplet_batch_hard")(x, y, margin=margin)
    mined = miners.BatchHardMiner()(x, y)  # one (anchor, farthest positive, closest negative) per anchor
    raw = pml.TripletMarginLoss(margin=margin, reducer=RAW())(x, y, mined)["loss"]
    _close(ours, _gather(raw["losses"], raw["indices"][0], len(x))[0])
    # pml's default: mean over the anchors whose hardest triplet is violated
    _close(ours[ours > 0].mean(), pml.TripletMarginLoss(margin=margin)(x, y, mined))


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("pos_margin, neg_margin", [(0.0, 1.0), (0.1, 0.8), (0.3, 1.5)])
def test_contrastive_pair_matches_pml(make, pos_margin, neg_margin):
    x, y = make(seed=7)
    ours = losses.get("contrastive_pair")(x, y, pos_margin=pos_margin, neg_margin=neg_margin)
    raw = pml.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, reducer=RAW())(x, y)
    pull, _ = _gather(raw["pos_loss"]["losses"], raw["pos_loss"]["indices"][0], len(x))
    push, _ = _gather(raw["neg_loss"]["losses"], raw["neg_loss"]["indices"][0], len(x))
    alone = _singleton(y)
    _close(ours[~alone], (pull + push)[~alone])
    # documented difference: pml keeps the push of an anchor without positives, we return 0
    assert (ours[alone] == 0).all()


@pytest.mark.parametrize("pos_margin, neg_margin", [(0.0, 1.0), (0.1, 0.8)])
def test_contrastive_pair_batch_mean_is_pml_mean_reduction(pos_margin, neg_margin):
    # pml sums two reductions: over positive pairs and over negative pairs. With equal class sizes every
    # anchor has as many of each, so the mean of our per-anchor values is pml's with MeanReducer.
    x, y = _balanced(seed=8)
    ours = losses.get("contrastive_pair")(x, y, pos_margin=pos_margin, neg_margin=neg_margin)
    loss = pml.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, reducer=reducers.MeanReducer())
    _close(ours.mean(), loss(x, y))


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("alpha, beta, lam", [(2.0, 50.0, 0.5), (5.0, 20.0, 0.3), (0.5, 2.0, 0.9)])
def test_multi_similarity_matches_pml_without_miner(make, alpha, beta, lam):
    x, y = make(seed=9)
    ours = losses.get("multi_similarity")(x, y, alpha=alpha, beta=beta, lam=lam)
    theirs = pml.MultiSimilarityLoss(alpha=alpha, beta=beta, base=lam, reducer=RAW())(x, y)["loss"]["losses"]
    theirs = theirs.reshape(-1)
    alone = _singleton(y)
    _close(ours[~alone], theirs[~alone])
    assert (ours[alone] == 0).all()  # documented: pml keeps the push term of an anchor without positives
    if not alone.any():  # pml's default (MeanReducer) averages over all anchors
        _close(ours.mean(), pml.MultiSimilarityLoss(alpha=alpha, beta=beta, base=lam)(x, y))


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("margin, gamma", [(0.4, 80.0), (0.25, 256.0), (0.1, 8.0)])
def test_circle_matches_pml(make, margin, gamma):
    x, y = make(seed=10)
    ours = losses.get("circle")(x, y, margin=margin, gamma=gamma)
    theirs = pml.CircleLoss(m=margin, gamma=gamma, reducer=RAW())(x, y)["loss"]["losses"]
    _close(ours, theirs.reshape(-1))
    # pml's default (AvgNonZeroReducer): mean over the anchors with a non-zero loss
    _close(ours[ours > 0].mean(), pml.CircleLoss(m=margin, gamma=gamma)(x, y))


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize("margin, gamma", [(0.4, 80.0), (0.25, 256.0), (0.1, 8.0)])
def test_circle_gradient_matches_pml_which_stops_it_at_the_weights(make, margin, gamma):
    # pml detaches α_p and α_n, as the paper does: the Jacobians of every anchor's loss must agree
    x, y = make(seed=25)
    loss = pml.CircleLoss(m=margin, gamma=gamma, reducer=RAW())
    ours = torch.autograd.functional.jacobian(
        lambda e: losses.get("circle")(e, y, margin=margin, gamma=gamma), x
    )
    theirs = torch.autograd.functional.jacobian(lambda e: loss(e, y)["loss"]["losses"].reshape(-1), x)
    _close(ours, theirs)
    # and that is not the derivative of the value: with the weights differentiated the gradient would differ
    value = numerical_jacobian(lambda e: losses.get("circle")(e, y, margin=margin, gamma=gamma), x)
    assert (ours.reshape(value.shape) - value).abs().max() > 1e-2 * value.abs().max()


@pytest.mark.parametrize("make", [_balanced, _uneven], ids=["balanced", "uneven"])
@pytest.mark.parametrize(
    "lambda_pos, lambda_neg, margin_pos, margin_neg", [(1.0, 1.0, 0.9, 0.5), (0.5, 2.0, 0.7, 0.1)]
)
def test_tcm_matches_pml(make, lambda_pos, lambda_neg, margin_pos, margin_neg):
    x, y = make(seed=11)
    params = dict(lambda_pos=lambda_pos, lambda_neg=lambda_neg, margin_pos=margin_pos, margin_neg=margin_neg)
    theirs = pml.ThresholdConsistentMarginLoss(
        lambda_plus=lambda_pos, lambda_minus=lambda_neg, margin_plus=margin_pos, margin_minus=margin_neg
    )(x, y)  # already a batch value: pml averages each term over its hard pairs
    _close(losses.get("tcm")(x, y, **params), theirs)


# ------------------------------------------------------------------------------------------------------------
# identities and closed forms
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.7])
def test_margin_info_nce_with_zero_margin_is_info_nce(temperature):
    x, y = _uneven(seed=12)
    torch.testing.assert_close(
        losses.get("margin_info_nce")(x, y, temperature=temperature, margin=0.0),
        losses.get("info_nce")(x, y, temperature=temperature),
    )


def test_margin_info_nce_grows_with_the_margin():
    x, y = _balanced(seed=13)
    values = [losses.get("margin_info_nce")(x, y, margin=m) for m in (0.0, 0.2, 0.5, 1.0)]
    assert all((a < b).all() for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.7])
def test_decoupled_is_info_nce_without_the_positive_in_the_denominator(temperature):
    # per pair: InfoNCE = -x_p + log(e^{x_p} + Σ_n e^{x_n}), DCL = -x_p + log Σ_n e^{x_n}, x = s / τ
    x, y = _uneven(seed=14)
    z = F.normalize(x, dim=1)
    logits = z @ z.T / temperature
    pos, neg = pair_masks(y)
    expected = []
    for i in range(len(x)):
        positives = pos[i].nonzero().flatten()
        lse_neg = torch.logsumexp(logits[i, neg[i]], dim=0)
        expected.append((lse_neg - logits[i, positives]).mean() if len(positives) else x.new_zeros(()))
    dcl = losses.get("decoupled_contrastive")(x, y, temperature=temperature)
    _close(dcl, torch.stack(expected))
    # and the gap to InfoNCE is the mean of log(1 + e^{x_p} / Σ_n e^{x_n}) >= 0
    gap = []
    for i in range(len(x)):
        positives = pos[i].nonzero().flatten()
        ratio = logits[i, positives] - torch.logsumexp(logits[i, neg[i]], dim=0)
        gap.append(F.softplus(ratio).mean() if len(positives) else x.new_zeros(()))
    _close(losses.get("info_nce")(x, y, temperature=temperature) - dcl, torch.stack(gap))


def _two_views(seed: int, n: int = 6, dim: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views of n instances stacked (view A, then view B), labels arange(n) twice."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, dim, generator=g, dtype=torch.float64)
    b = a + 0.5 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    return torch.cat([a, b]), torch.arange(n).repeat(2)


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_clip_info_nce_is_the_symmetric_cross_entropy_of_clip(temperature):
    x, y = _two_views(seed=15)
    n = len(x) // 2
    z = F.normalize(x, dim=1)
    logits = z[:n] @ z[n:].T / temperature  # (n, n): view A rows against view B columns
    target = torch.arange(n)
    clip = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    _close(losses.get("clip_info_nce")(x, y, temperature=temperature).mean(), clip)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_info_nce_with_two_views_is_simclr_nt_xent(temperature):
    # SimCLR: cross-entropy over every other sample of the 2n, the partner view being the target
    x, y = _two_views(seed=16)
    n = len(x) // 2
    z = F.normalize(x, dim=1)
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    simclr = F.cross_entropy(logits, partner, reduction="none")
    _close(losses.get("info_nce")(x, y, temperature=temperature), simclr)
    # with one positive per anchor SupCon's denominator is InfoNCE's: the two coincide
    _close(losses.get("supcon")(x, y, temperature=temperature), simclr)


def _on_circle(angles_deg, norms) -> torch.Tensor:
    a = torch.deg2rad(torch.tensor(angles_deg, dtype=torch.float64))
    r = torch.tensor(norms, dtype=torch.float64)
    return torch.stack([r * torch.cos(a), r * torch.sin(a)], dim=1)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_closed_form(alpha):
    # two pairs at angles 40° and 100° apart, any norms: ||z_i - z_p|| = 2 sin(θ/2)
    x = _on_circle([0.0, 40.0, 200.0, 300.0], [3.0, 0.5, 7.0, 1.0])
    y = torch.tensor([0, 0, 1, 1])
    chord = [2 * math.sin(math.radians(40) / 2), 2 * math.sin(math.radians(100) / 2)]
    expected = torch.tensor([chord[0], chord[0], chord[1], chord[1]], dtype=torch.float64) ** alpha
    _close(losses.get("alignment")(x, y, alpha=alpha), expected)


@pytest.mark.parametrize("t", [0.5, 2.0, 5.0])
def test_uniformity_closed_forms(t):
    y = torch.tensor([0, 1, 2, 3])
    square = _on_circle([10.0, 100.0, 190.0, 280.0], [1.0, 2.0, 3.0, 4.0])  # 2 neighbours at d²=2, 1 at d²=4
    expected = math.log((2 * math.exp(-2 * t) + math.exp(-4 * t)) / 3)
    _close(losses.get("uniformity")(square, y, t=t), torch.tensor(expected))
    antipodal = _on_circle([30.0, 210.0], [1.0, 5.0])
    _close(losses.get("uniformity")(antipodal, y[:2], t=t), torch.tensor(-4.0 * t))


def test_alignment_and_uniformity_match_the_papers_formulas():
    # Wang & Isola's definitions on two views x, y: E||x - y||^α and log E_{i<j} e^{-t ||z_i - z_j||²}
    emb, labels = _two_views(seed=17)
    n = len(emb) // 2
    z = F.normalize(emb, dim=1)
    align = (z[:n] - z[n:]).norm(dim=1).pow(2).mean()
    unif = torch.pdist(z, p=2).pow(2).mul(-2.0).exp().mean().log()
    _close(losses.get("alignment")(emb, labels).mean(), align)
    _close(losses.get("uniformity")(emb, labels), unif)
    _close(losses.get("align_uniform")(emb, labels, lam=0.7), align + 0.7 * unif)


@pytest.mark.parametrize("lam", [0.0, 1.0, 3.5])
def test_align_uniform_is_pair_mean_alignment_plus_lambda_uniformity(lam):
    x, y = _uneven(seed=18)
    pos, _ = pair_masks(y)
    d = _normalised_distances(x)
    expected = d[pos].pow(3.0).mean() + lam * losses.get("uniformity")(x, y, t=1.5)
    _close(losses.get("align_uniform")(x, y, alpha=3.0, t=1.5, lam=lam), expected)


def test_auc_retrieval_hand_case():
    # on the unit circle: anchor 0 at 0°, its positive 1 at 60°, negatives 2 at 90° and 3 at 180°
    x = _on_circle([0.0, 60.0, 90.0, 180.0], [1.0, 2.0, 0.5, 3.0])
    y = torch.tensor([0, 0, 1, 2])
    c30 = math.cos(math.radians(30))

    def sp(v):
        return math.log1p(math.exp(v))

    for temperature in (1.0, 0.1):
        expected = [
            0.5 * (sp((0.0 - 0.5) / temperature) + sp((-1.0 - 0.5) / temperature)),  # s_ap = 0.5
            0.5 * (sp((c30 - 0.5) / temperature) + sp((-0.5 - 0.5) / temperature)),
            0.0,  # anchors 2 and 3 have no positive
            0.0,
        ]
        _close(losses.get("auc_retrieval")(x, y, temperature=temperature), torch.tensor(expected))


def test_soft_margin_triplet_bounds_the_hinge():
    x, y = _balanced(seed=19)
    for m in (0.0, 0.3):
        assert (
            losses.get("soft_margin_triplet")(x, y, margin=m) >= losses.get("triplet")(x, y, margin=m)
        ).all()


def test_batch_hard_triplet_bounds_the_mean_over_triplets():
    x, y = _uneven(seed=20)
    for m in (0.05, 0.5):
        hard = losses.get("triplet_batch_hard")(x, y, margin=m)
        assert (hard >= losses.get("triplet")(x, y, margin=m) - 1e-12).all()


# ------------------------------------------------------------------------------------------------------------
# properties every embedding loss keeps
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EMBEDDING)
def test_invariant_to_the_norm_of_each_embedding(name):
    spec = losses.get(name)
    x, y = _balanced(seed=21)
    scales = torch.linspace(0.1, 50.0, len(x), dtype=x.dtype)[:, None]
    torch.testing.assert_close(spec(x * scales, y), spec(x, y))


@pytest.mark.parametrize("name", EMBEDDING)
def test_equivariant_to_reordering_within_each_half(name):
    # within each half, so that the two views of clip_info_nce stay where they are
    spec = losses.get(name)
    x, y = _balanced(seed=22)
    g = torch.Generator().manual_seed(0)
    half = len(x) // 2
    perm = torch.cat([torch.randperm(half, generator=g), half + torch.randperm(half, generator=g)])
    expected = spec(x, y) if spec.batch else spec(x, y)[perm]
    torch.testing.assert_close(spec(x[perm], y[perm]), expected)


@pytest.mark.parametrize("name", [n for n in PER_ANCHOR if n != "clip_info_nce"])
def test_an_anchor_without_positive_gives_zero(name):
    x, y = _uneven(seed=23)
    out = losses.get(name)(x, y)
    alone = _singleton(y)
    assert alone.sum() == 1
    assert (out[alone] == 0).all()
    assert (out[~alone] != 0).any()


@pytest.mark.parametrize("name", [n for n in EMBEDDING if n != "uniformity"])
def test_prefers_embeddings_that_follow_the_labels(name):
    # four tight clusters on the sphere: scored with their own labels, then with labels that cut across them
    g = torch.Generator().manual_seed(24)
    centres = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    labels = torch.arange(12) % 4
    x = centres[labels] + 0.15 * torch.randn(12, 3, generator=g, dtype=torch.float64)
    wrong = torch.tensor([0, 1, 2, 3, 1, 2, 3, 0, 2, 3, 0, 1])
    spec = losses.get(name)
    assert spec(x, labels).mean() < spec(x, wrong).mean()


def test_clip_info_nce_needs_an_even_batch():
    x, y = make_inputs("embedding")
    with pytest.raises(ValueError, match="even batch"):
        losses.get("clip_info_nce")(x[:11], y[:11])


@pytest.mark.parametrize("name", EMBEDDING)
def test_shapes_are_checked(name):
    x, y = make_inputs("embedding")
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        losses.get(name)(x[:, 0], y)
    with pytest.raises(ValueError, match="labels must be"):
        losses.get(name)(x, y[:-2])


# ------------------------------------------------------------------------------------------------------------
# OPIS
# ------------------------------------------------------------------------------------------------------------


def _opis_reference(x: torch.Tensor, y: torch.Tensor, far_range, n_thresholds: int) -> float:
    """The definition with explicit loops over pairs (numbers as Python floats).

    The cosines come from one matrix product, as the metric's do: the calibration range's ends are quantiles,
    which land exactly on some pair's cosine, and a per-pair dot product can differ from it in the last bit
    (it did on an AMD EPYC), flipping that pair's `s >= t`.
    """
    z = F.normalize(x, dim=1)
    cosines = z @ z.T
    n = len(x)
    pairs = [(i, j, float(cosines[i, j]), bool(y[i] == y[j])) for i in range(n) for j in range(n) if i != j]
    neg_sims = torch.tensor([s for *_, s, same in pairs if not same], dtype=torch.float64)
    lo = float(torch.quantile(neg_sims, 1 - far_range[1]))
    hi = float(torch.quantile(neg_sims, 1 - far_range[0]))
    ts = [lo + (hi - lo) * k / (n_thresholds - 1) for k in range(n_thresholds)]

    def f1(selected, t):
        tp = sum(1 for *_, s, same in selected if same and s >= t)
        fn = sum(1 for *_, s, same in selected if same and s < t)
        fp = sum(1 for *_, s, same in selected if not same and s >= t)
        return 2 * tp / (2 * tp + fp + fn)

    overall = [f1(pairs, t) for t in ts]
    scores = []
    for c in sorted(set(y.tolist())):
        mine = [p for p in pairs if int(y[p[0]]) == c]
        if not any(same for *_, same in mine):
            continue
        sq = [(f1(mine, t) - u) ** 2 for t, u in zip(ts, overall, strict=True)]
        scores.append(sum((a + b) / 2 for a, b in itertools.pairwise(sq)) / (n_thresholds - 1))
    return sum(scores) / len(scores)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_opis_matches_its_definition(seed):
    x, y = _uneven(seed=seed)
    for far_range, n_thresholds in [((0.01, 0.1), 101), ((0.05, 0.5), 17)]:
        assert opis(x, y, far_range, n_thresholds) == pytest.approx(
            _opis_reference(x, y, far_range, n_thresholds), abs=1e-12
        )


def test_opis_is_zero_when_every_class_is_a_rotated_copy():
    # four classes, each the first one turned by a multiple of 90° ((a, b) -> (-b, a) is exact in floating
    # point, so every class sees bit-identical cosines): one threshold fits all of them
    base = _on_circle([-15.0, 0.0, 20.0], [1.0, 2.0, 0.5])
    classes = [base]
    for _ in range(3):
        classes.append(torch.stack([-classes[-1][:, 1], classes[-1][:, 0]], dim=1))
    x = torch.cat(classes)
    y = torch.arange(12) // 3
    assert opis(x, y, (0.05, 0.6)) == 0.0


def test_opis_is_positive_when_classes_need_different_thresholds():
    # a tight class (±2°), a loose one (±40°) and a third (±5°): across the calibration range the thresholds
    # reject the loose class's positives while accepting the tight class's, so their F1 curves part
    x = _on_circle([0.0, 2.0, -2.0, 50.0, 90.0, 130.0, 200.0, 205.0, 195.0], [1.0] * 9)
    y = torch.arange(9) // 3
    assert opis(x, y, (0.05, 0.5)) > 0.01


def test_opis_checks_its_arguments():
    x, y = _balanced()
    with pytest.raises(ValueError, match="far_range"):
        opis(x, y, (0.2, 0.1))
    with pytest.raises(ValueError, match="n_thresholds"):
        opis(x, y, n_thresholds=1)
    with pytest.raises(ValueError, match="two classes"):
        opis(x, torch.zeros(12, dtype=torch.long))
