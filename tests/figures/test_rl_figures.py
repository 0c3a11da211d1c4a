"""RL page figures: one colour per objective, float32 curves thinned to MAX_POINTS, pass@k against its closed
form, the log K line, the policy heat map and the pass@N-vs-likelihood panels, and small specs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lossviz import rl
from lossviz.figures import rl as figures
from lossviz.figures.palette import color_distance


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_rl.py: a (P, K) softmax split over threads is slow when loaded
    yield
    torch.set_num_threads(threads)


SMALL = {**rl.SETTINGS, "prompts": 5, "answers": 6, "steps": 30}


def _panel(variant: str = "grpo", plain: bool = False, **settings) -> figures.RunPanel:
    s = {**SMALL, **settings}
    run = rl.train_variant(variant, **s)
    base = rl.train_variant(variant, **rl.without_diversity(s)) if plain else None
    return figures.RunPanel(variant, variant.upper(), run, base)


def _synthetic(steps: int, P: int, K: int, seed: int = 0) -> rl.TabularRun:
    """A TabularRun of the page's largest size without training it (only its shapes matter here)."""
    g = np.random.default_rng(seed)
    policy = g.dirichlet(np.ones(K), size=(61, P))
    return rl.TabularRun(
        objective="grpo", params=(), P=P, K=K, G=8, correct=(g.random((P, K)) < 0.2).astype(float),
        reward=g.random(steps), accuracy=g.random(steps), entropy=g.random(steps + 1) * math.log(K),
        kl=g.random(steps + 1), p_correct=g.random((steps + 1, P)), policy_steps=np.linspace(0, steps, 61),
        policy=policy,
    )  # fmt: skip


def test_every_objective_has_its_own_distinct_colour():
    assert set(figures.VARIANT_COLORS) == set(rl.VARIANTS)
    colours = [figures.variant_color(v) for v in rl.VARIANTS]
    assert all(color_distance(a, b) > 0.08 for a, b in itertools.combinations(colours, 2))


def test_plain_runs_are_dotted_in_their_objectives_colour():
    panel = _panel("majority_vote", plain=True, novelty=2.0)
    fig = figures.entropy_figure(panels=[panel], K=SMALL["answers"])
    solid, dotted = fig.data
    assert solid.line.color == dotted.line.color == figures.variant_color("majority_vote")
    assert (
        solid.line.dash == "solid" and dotted.line.dash == "dot" and solid.legendgroup == dotted.legendgroup
    )
    assert np.allclose(dotted.y, panel.plain.entropy, atol=1e-6)
    assert np.asarray(solid.y).dtype == np.float32


def test_entropy_figure_marks_the_uniform_policy():
    fig = figures.entropy_figure(panels=[_panel()], K=6)
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == pytest.approx(math.log(6))
    assert "log 6" in fig.layout.annotations[0].text
    assert fig.layout.yaxis.range[1] > math.log(6)


def test_pass_at_k_figure_follows_the_closed_form():
    panel = _panel(n_correct=2)
    fig = figures.pass_at_k_figure(panels=[panel], k=8)
    one, eight = fig.data
    assert np.allclose(
        one.y, panel.run.p_correct.mean(1), atol=1e-6
    )  # pass@1 = mean mass on the correct ones
    assert np.allclose(eight.y, (1 - (1 - panel.run.p_correct) ** 8).mean(1), atol=1e-6)
    assert eight.line.dash == "dash" and "pass@8" in fig.layout.title.text


def test_reward_figure_is_a_trailing_moving_average():
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert np.allclose(figures._moving_average(values, 3), [0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    run = _synthetic(steps=500, P=3, K=4)
    (trace,) = figures.reward_figure(panels=[figures.RunPanel("grpo", "GRPO", run)]).data
    window = figures.smoothing_window(500)
    assert window == 10 and trace.x[0] == 1 and trace.x[-1] == 500
    assert trace.y[-1] == pytest.approx(run.reward[-window:].mean(), rel=1e-6)


def test_long_runs_are_thinned_keeping_both_ends():
    run = _synthetic(steps=2000, P=4, K=4)
    (trace,) = figures.entropy_figure(panels=[figures.RunPanel("grpo", "GRPO", run)], K=4).data
    assert len(trace.x) <= figures.MAX_POINTS and trace.x[0] == 0 and trace.x[-1] == 2000
    assert trace.y[-1] == pytest.approx(run.entropy[-1], rel=1e-6)


def test_policy_figure_shows_pi_and_rings_the_correct_answers():
    panel = _panel(n_correct=2)
    run = panel.run
    fig = figures.policy_figure(run=run, frame=len(run.policy_steps) - 1, title="GRPO")
    heat, rings = fig.data
    assert np.asarray(heat.z).dtype == np.float32 and np.allclose(heat.z, run.policy[-1], atol=1e-6)
    rows, cols = np.nonzero(run.correct)
    assert list(rings.x) == list(cols) and list(rings.y) == list(rows) and len(rings.x) == 2 * run.P
    assert f"step {run.policy_steps[-1]}" in fig.layout.title.text
    assert list(fig.layout.yaxis.range) == [run.P - 0.5, -0.5]  # prompt 0 on top, no empty row


def test_likelihood_figure_has_three_panels_with_one_legend_entry_per_loss():
    kwargs = dict(prompts=4, answers=6, n_correct=1, steps=20, lr=0.5, init_scale=1.0, seed=0)
    runs = {
        "CE": rl.train_likelihood("cross_entropy", **kwargs),
        "pass@N": rl.train_likelihood("pass_at_n", {"n": 8}, **kwargs),
    }
    fig = figures.likelihood_figure(runs=runs, n=8, K=6)
    assert [a.text for a in fig.layout.annotations][:3] == ["Entropy of π (nats)", "pass@1", "pass@8"]
    assert len(fig.data) == 6 and [t.name for t in fig.data if t.showlegend] == ["CE", "pass@N"]
    third = [t for t in fig.data if t.xaxis == "x3"]
    assert np.allclose(third[1].y, runs["pass@N"].pass_at(8), atol=1e-6)
    assert third[0].line.color != third[1].line.color


def test_each_chart_stays_small_at_the_pages_largest_settings():
    panels = [
        figures.RunPanel(v, v, _synthetic(2000, 64, 64, i), _synthetic(2000, 64, 64, i + 10))
        for i, v in enumerate(rl.VARIANTS)
    ]
    g = np.random.default_rng(0)
    likelihood = {
        name: rl.LikelihoodRun(
            loss=loss,
            params=(),
            P=64,
            K=64,
            correct=np.zeros((64, 64)),
            loss_value=g.random(2001),
            entropy=g.random(2001),
            p_correct=g.random((2001, 64)),
        )
        for name, loss in (("CE", "cross_entropy"), ("pass@N", "pass_at_n"))
    }
    figs = [
        figures.reward_figure(panels=panels),
        figures.entropy_figure(panels=panels, K=64),
        figures.pass_at_k_figure(panels=panels, k=256),
        figures.policy_figure(run=panels[0].run, frame=60, title="x"),
        figures.likelihood_figure(runs=likelihood, n=256, K=64),
    ]
    sizes = [len(f.to_json()) for f in figs]
    assert max(sizes) < 100 * 1024 and sum(sizes) < 400 * 1024, sizes  # room under 150 KB / 500 KB
