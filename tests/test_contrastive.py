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
