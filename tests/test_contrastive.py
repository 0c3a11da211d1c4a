"""lossviz.contrastive: the (s_n, s_p) plane of one anchor and InfoNCE's weights over negatives, against
closed forms (Sun et al. 2020; Wang & Liu 2021)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossviz import contrastive as C
from lossviz import losses


def _at(surface, s_n: float, s_p: float) -> float:
    j, i = int(np.argmin(np.abs(surface.xs - s_n))), int(np.argmin(np.abs(surface.ys - s_p)))
    return float(surface.z[i, j]), float(surface.xs[j]), float(surface.ys[i])


def test_triplet_embeddings_have_the_requested_cosines():
    s_p, s_n = torch.tensor([0.3, -0.9, 1.0]), torch.tensor([-0.2, 0.5, -1.0])
    x = C.triplet_embeddings(s_p, s_n)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(3, 3))
    torch.testing.assert_close((x[:, 0] * x[:, 1]).sum(-1), s_p)
    torch.testing.assert_close((x[:, 0] * x[:, 2]).sum(-1), s_n)


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_info_nce_plane_is_the_two_term_softmax(tau):
    surface = C.pair_loss_surface("info_nce", {"temperature": tau}, 21)
    gx, gy = np.meshgrid(surface.xs, surface.ys)  # z[i, j] at (s_n = xs[j], s_p = ys[i])
    expected = np.logaddexp(gy / tau, gx / tau) - gy / tau
    np.testing.assert_allclose(surface.z, expected, rtol=1e-9, atol=1e-12)


def test_circle_loss_plane_matches_sun_et_al():
    m, gamma = 0.25, 64.0
    surface = C.pair_loss_surface("circle", {"margin": m, "gamma": gamma}, 21)
    gx, gy = np.meshgrid(surface.xs, surface.ys)
    a_p, a_n = np.maximum(1 + m - gy, 0), np.maximum(gx + m, 0)
    expected = np.logaddexp(0, gamma * (a_n * (gx - m) - a_p * (gy - (1 - m))))
    np.testing.assert_allclose(surface.z, expected, rtol=1e-9, atol=1e-9)


def test_triplet_plane_uses_distances_on_the_sphere():
    surface = C.pair_loss_surface("triplet", {"margin": 0.2}, 21)
    gx, gy = np.meshgrid(surface.xs, surface.ys)
    d_p, d_n = np.sqrt(np.maximum(2 - 2 * gy, 0)), np.sqrt(np.maximum(2 - 2 * gx, 0))
    np.testing.assert_allclose(surface.z, np.maximum(d_p - d_n + 0.2, 0), atol=1e-6)


def test_every_per_anchor_embedding_loss_draws_a_finite_plane():
    for name in losses.names("embedding"):
        if losses.get(name).batch:
            with pytest.raises(ValueError, match="only per batch"):
                C.pair_loss_surface(name)
            continue
        if name == "clip_info_nce":  # pairs view A with view B: no single-anchor triple exists
            with pytest.raises(ValueError, match="cannot be drawn for one anchor"):
                C.pair_loss_surface(name)
            continue
        assert np.isfinite(C.pair_loss_surface(name, resolution=9).z).all(), name


def test_the_vectorised_plane_equals_one_batch_at_a_time(monkeypatch):
    """pair_loss_surface batches its grid with vmap; the loss called once per (anchor, positive, negative)
    batch, as the registry's contract tests call it, gives the same values."""
    drawable = [n for n in losses.names("embedding") if not losses.get(n).batch and n != "clip_info_nce"]
    fast = {n: C.pair_loss_surface(n, None, 9).z for n in drawable}
    monkeypatch.setattr(C, "_per_batch", lambda value, batches: torch.stack([value(b) for b in batches]))
    for n in drawable:
        np.testing.assert_allclose(
            fast[n], C.pair_loss_surface(n, None, 9).z, rtol=1e-12, atol=1e-12, err_msg=n
        )


def test_plane_refuses_other_tasks_and_bad_grids():
    with pytest.raises(ValueError, match="embedding losses"):
        C.pair_loss_surface("cross_entropy")
    with pytest.raises(ValueError, match="resolution"):
        C.pair_loss_surface("info_nce", resolution=1)


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
def test_negative_weights_are_softmax_of_similarity_over_tau(tau):
    sims = np.linspace(-0.8, 0.9, 9)
    weights = C.negative_weights(sims, tau).y
    expected = np.exp(sims / tau) / np.exp(sims / tau).sum()
    np.testing.assert_allclose(weights, expected, rtol=1e-8)


def test_small_temperature_concentrates_on_the_hardest_negative():
    sims = np.array([-0.5, 0.0, 0.5, 0.8])
    assert C.negative_weights(sims, 0.02).y[-1] > 0.99
    assert C.negative_weights(sims, 1.0).y[-1] < 0.5


def test_negative_weights_refuse_non_cosines():
    with pytest.raises(ValueError, match="cosines"):
        C.negative_weights(np.array([1.5]), 0.1)


# ------------------------------------------------------------------------ the InfoNCE family and temperature


@pytest.mark.parametrize("name", [n for n in C.SOFTMAX_FAMILY if n != "clip_info_nce"])
def test_the_softmax_family_pushes_its_negatives_by_softmax_over_tau(name):
    """clip_info_nce pairs view A with view B, so no single anchor exists to draw; the others are checked."""
    sims = np.linspace(-0.7, 0.8, 7)
    weights = C.negative_weights(sims, 0.2, name=name).y
    np.testing.assert_allclose(weights, np.exp(sims / 0.2) / np.exp(sims / 0.2).sum(), rtol=1e-7)


def test_softmax_family_members_have_a_temperature():
    for name in C.SOFTMAX_FAMILY:
        assert "temperature" in {p.name for p in losses.get(name).params}, name


def test_effective_negatives_run_from_one_to_all():
    sims = np.linspace(-1, 1, 41)
    curve = C.effective_negatives(sims, np.array([1e-3, 0.05, 0.5, 1e4]))
    w = np.exp(sims / 0.05) / np.exp(sims / 0.05).sum()
    assert curve.y[0] == pytest.approx(1.0, abs=1e-6)  # all of the push on the hardest negative
    assert curve.y[1] == pytest.approx(1 / (w**2).sum())
    assert curve.y[-1] == pytest.approx(41, rel=1e-3)  # an equal share each
    assert np.all(np.diff(curve.y) > 0)
    with pytest.raises(ValueError, match="temperatures"):
        C.effective_negatives(sims, np.array([0.0]))


def test_same_class_push_grows_as_the_temperature_falls():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    centres = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    z = centres[labels] + 0.3 * rng.normal(size=(60, 3))  # three loose clusters
    shares = [C.same_class_push(z, labels, t) for t in (0.02, 0.1, 0.5, 1e4)]
    assert shares[0] > 0.95 and np.all(np.diff(shares) < 0)
    assert shares[-1] == pytest.approx(19 / 59, rel=1e-3)  # tau -> inf: the class's share of the others


def test_same_class_push_checks_its_arguments():
    with pytest.raises(ValueError, match="temperature"):
        C.same_class_push(np.eye(3), np.arange(3), 0.0)
    with pytest.raises(ValueError, match="labels"):
        C.same_class_push(np.eye(3), np.arange(2), 0.1)


# ------------------------------------------------------------------------ angular-margin wedges


@pytest.mark.parametrize("kind", ["cosface", "arcface"])
def test_zero_margin_gives_the_voronoi_wedges(kind):
    wedges = C.margin_wedges(kind, 4, 0.0, resolution=400)
    assert wedges.covered == 1.0
    np.testing.assert_array_equal(wedges.winner, wedges.nearest)
    assert np.bincount(wedges.winner).tolist() == [100] * 4


def test_two_class_wedges_match_the_closed_forms():
    m = 0.4
    cos = C.margin_wedges("cosface", 2, m, resolution=20000)
    arc = C.margin_wedges("arcface", 2, m, resolution=20000)
    # class 0 at angle 0, class 1 at pi. CosFace: cos t - m > -cos t  <=>  |t| < arccos(m / 2).
    assert np.mean(cos.winner == 0) == pytest.approx(np.arccos(m / 2) / np.pi, abs=1e-3)
    # ArcFace: cos(|t| + m) > cos(pi - |t|)  <=>  |t| < (pi - m) / 2.
    assert np.mean(arc.winner == 0) == pytest.approx((np.pi - m) / 2 / np.pi, abs=1e-3)
    assert arc.covered == pytest.approx(1 - m / np.pi, abs=1e-3)  # a gap of m radians at each boundary


@pytest.mark.parametrize("kind", ["cosface", "arcface"])
def test_margin_logits_are_the_registered_losses(kind):
    cosines = torch.tensor([[0.9, 0.2, -0.3], [-0.95, 0.1, 0.4], [0.3, 0.99, -0.999]], dtype=torch.float64)
    target = torch.tensor([0, 0, 2])
    m, s = 0.45, 8.0
    true = C.margin_logits(kind, cosines[torch.arange(3), target].numpy(), m)
    logits = cosines.clone().numpy()
    logits[np.arange(3), target.numpy()] = true
    expected = -torch.log_softmax(s * torch.as_tensor(logits), -1)[torch.arange(3), target]
    got = losses.get(kind).fn(cosines, target, scale=s, margin=m)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_madacos_wedge_margin_holds_the_median_sample_of_its_batch_at_rho():
    # the batch: directions spread evenly, each labelled with its nearest of K weights; MadaCos's m must give
    # the batch's median sample (true-class cosine c) probability rho at its own scale s
    k, rho, resolution = 4, 0.02, 720
    m = C.madacos_margin(k, rho, resolution=resolution)
    assert isinstance(m, float)  # a plain number: the page caches views by it
    angles = -np.pi + 2 * np.pi * (np.arange(resolution) + 0.5) / resolution
    cosines = np.cos(angles[:, None] - 2 * np.pi * np.arange(k)[None, :] / k)
    true = np.sort(cosines.max(axis=1))
    c = true[(resolution - 1) // 2]  # the lower median, as torch.median
    s = np.log(9999999 * (1 - rho) / rho) / (1 - c)
    assert s > 32  # the floor does not bind: the scale is the formula's
    i = int(np.argmin(np.abs(cosines.max(axis=1) - c)))
    rivals = np.delete(cosines[i], cosines[i].argmax())
    p = np.exp(s * (c - m)) / (np.exp(s * (c - m)) + np.exp(s * rivals).sum())
    assert p == pytest.approx(rho, rel=1e-6)
    # its wedges are CosFace's at that margin; more classes, a tighter batch in cosine, a smaller margin
    np.testing.assert_array_equal(
        C.margin_wedges("madacos", k, m).winner, C.margin_wedges("cosface", k, m).winner
    )
    assert [C.madacos_margin(n, rho) for n in (2, 4, 8)] == sorted(
        (C.madacos_margin(n, rho) for n in (2, 4, 8)), reverse=True
    )
    with pytest.raises(ValueError, match="rho"):
        C.madacos_margin(4, 0.9)


def test_margin_wedges_shrink_as_the_margin_grows_and_check_arguments():
    covered = [C.margin_wedges("arcface", 3, m).covered for m in (0.0, 0.2, 0.5, 0.8)]
    assert np.all(np.diff(covered) < 0)
    with pytest.raises(ValueError, match="n_classes"):
        C.margin_wedges("cosface", 1, 0.1)
    with pytest.raises(ValueError, match="kind"):
        C.margin_logits("sphereface", np.zeros(2), 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight_angles"):
        C.margin_wedges("cosface", 3, 0.1, weight_angles=np.zeros(2))
