"""Plotly builders for the RL page: the training reward, the entropy of pi (entropy collapse, with the uniform
policy's log K marked), pass@1 and pass@k over prompts, where each prompt's probability mass sits at one step,
and the pass@N loss against plain likelihood (entropy, pass@1, pass@N side by side).

Runs are read by attribute (lossviz.rl's TabularRun and LikelihoodRun: `entropy`, `p_correct`,
`pass_at(k)`, ...), so this module imports no compute; builders are keyword-only and send float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lossviz.figures.palette import BASE, TEMPLATE, color_for, lean, legend_below, styled_figure

MAX_POINTS = 300  # per curve: steps beyond that are thinned evenly (first and last kept)
PLAIN_SUFFIX = " · no diversity terms"
UNIFORM_COLOR = "#6b6b6b"

# The RL page's objectives are not registered losses: each gets a fixed hue of the shared palette here (tests
# check that every lossviz.rl.VARIANTS name has one); anything else falls back to palette.color_for.
VARIANT_COLORS: dict[str, str] = {
    "reinforce": BASE[0], "rloo": BASE[7], "grpo": BASE[1], "ppo_clip": BASE[2], "ppo_clip_higher": BASE[4],
    "majority_vote": BASE[3],
}  # fmt: skip


def variant_color(key: str) -> str:
    """The colour of an RL objective (a lossviz.rl.VARIANTS name) or, failing that, of a loss."""
    return VARIANT_COLORS.get(key) or color_for(key)


@dataclass(frozen=True)
class RunPanel:
    """One objective's curves: its run and, when the diversity terms are on, the same run without them."""

    key: str  # the lossviz.rl.VARIANTS name (its colour)
    label: str
    run: Any  # a TabularRun
    plain: Any | None = None  # the TabularRun without entropy bonus, EPO band and novelty (drawn dotted)


def _thin(n: int) -> np.ndarray:
    """Indices of at most MAX_POINTS of n records, first and last kept."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, MAX_POINTS)).astype(int))


def _steps(x: np.ndarray) -> np.ndarray:
    """Step numbers as int16 when they fit (lossviz.rl.MAX_STEPS does): 2 bytes each in the figure JSON."""
    return x.astype(np.int16 if x.size == 0 or x.max() < 2**15 else np.int32)


def _line(x: np.ndarray, y: np.ndarray, name: str, color: str, *, dash: str = "solid", width: float = 2.0,
          group: str | None = None, show: bool = True) -> go.Scatter:  # fmt: skip
    index = _thin(len(x))
    return go.Scatter(
        x=_steps(np.asarray(x)[index]), y=lean(np.asarray(y)[index]), mode="lines", name=name,
        legendgroup=group or name, showlegend=show, line=dict(color=color, dash=dash, width=width),
        hovertemplate=f"{name}<br>step %{{x}}: %{{y:.3f}}<extra></extra>",
    )  # fmt: skip


def _series(fig: go.Figure, panels: Sequence[RunPanel], values, per_step: bool = True) -> list[str]:
    """One line per panel (and a dotted one for its plain run); values(run) -> (x, y). The legend labels."""
    labels = []
    for panel in panels:
        color = variant_color(panel.key)
        x, y = values(panel.run)
        fig.add_trace(_line(x, y, panel.label, color, group=panel.label))
        labels.append(panel.label)
        if panel.plain is not None:
            x, y = values(panel.plain)
            name = panel.label + PLAIN_SUFFIX
            fig.add_trace(_line(x, y, name, color, dash="dot", width=1.5, group=panel.label))
            labels.append(name)
    return labels


def smoothing_window(steps: int) -> int:
    """The moving-average window of the reward curve: about a fiftieth of the run, at least one step."""
    return max(1, steps // 50)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` values (fewer at the start), same length."""
    c = np.cumsum(np.concatenate([[0.0], np.asarray(values, np.float64)]))
    n = np.arange(1, len(values) + 1)
    lo = np.maximum(0, n - window)
    return (c[n] - c[lo]) / (n - lo)


def reward_figure(*, panels: Sequence[RunPanel]) -> go.Figure:
    """The mean training reward of each step's groups (what the objective is paid), a trailing average."""
    steps = max((len(p.run.reward) for p in panels), default=1)
    window = smoothing_window(steps)
    fig = styled_figure(
        "Training reward", "step", "mean reward" + (f" ({window}-step average)" if window > 1 else ""), 360
    )

    def values(run):
        return np.arange(1, len(run.reward) + 1), _moving_average(run.reward, window)

    legend_below(fig, _series(fig, panels, values))
    return fig


def entropy_figure(*, panels: Sequence[RunPanel], K: int) -> go.Figure:
    """Mean entropy of pi over prompts; a dotted line at the uniform policy's log K."""
    fig = styled_figure("Entropy of π (mean over prompts)", "step", "nats", 360)
    labels = _series(fig, panels, lambda run: (np.arange(len(run.entropy)), run.entropy))
    fig.add_hline(
        y=math.log(K), line=dict(color=UNIFORM_COLOR, dash="dash", width=1),
        annotation=dict(
            text=f"uniform: log {K} = {math.log(K):.2f}", font=dict(size=11, color=UNIFORM_COLOR)
        ),
        annotation_position="top right",
    )  # fmt: skip
    fig.update_yaxes(range=[0, math.log(K) * 1.12])
    legend_below(fig, labels)
    return fig


def pass_at_k_figure(*, panels: Sequence[RunPanel], k: int) -> go.Figure:
    """pass@1 (solid) and pass@k (dashed) over prompts; pass@1 is the mean mass on the correct answers."""
    fig = styled_figure(f"pass@1 and pass@{k} (mean over prompts)", "step", "probability", 380)
    labels = []
    for panel in panels:
        color = variant_color(panel.key)
        x = np.arange(len(panel.run.entropy))
        fig.add_trace(_line(x, panel.run.pass_at(1), f"{panel.label}: pass@1", color, group=panel.label))
        fig.add_trace(
            _line(x, panel.run.pass_at(k), f"{panel.label}: pass@{k}", color, dash="dash", group=panel.label)
        )
        labels += [f"{panel.label}: pass@1", f"{panel.label}: pass@{k}"]
        if panel.plain is not None:
            name = f"{panel.label}: pass@{k}{PLAIN_SUFFIX}"
            fig.add_trace(
                _line(x, panel.plain.pass_at(k), name, color, dash="dot", width=1.5, group=panel.label)
            )
            labels.append(name)
    fig.update_yaxes(range=[0, 1.03])
    legend_below(fig, labels)
    return fig


def policy_figure(*, run: Any, frame: int, title: str) -> go.Figure:
    """pi at one stored step as a prompts x answers heat map; a ring marks each prompt's correct answers."""
    pi = np.asarray(run.policy[frame])  # (P, K)
    P, K = pi.shape
    step = int(run.policy_steps[frame])
    height = int(min(560, max(260, 90 + 22 * P)))
    fig = styled_figure(f"{title}: π at step {step}", "answer", "prompt", height)
    fig.add_trace(
        go.Heatmap(
            z=lean(pi), x=np.arange(K, dtype=np.int32), y=np.arange(P, dtype=np.int32), zmin=0, zmax=1,
            colorscale="Blues", colorbar=dict(title=dict(text="π", side="right"), thickness=12),
            hovertemplate="prompt %{y}, answer %{x}: π = %{z:.3f}<extra></extra>", name="π",
        )
    )  # fmt: skip
    rows, cols = np.nonzero(np.asarray(run.correct))
    fig.add_trace(
        go.Scatter(
            x=cols.astype(np.int32), y=rows.astype(np.int32), mode="markers", name="correct answer",
            marker=dict(symbol="circle-open", size=max(6, min(14, 300 // max(P, K))), color="#d62728",
                        line=dict(width=2)),
            hoverinfo="skip",
        )
    )  # fmt: skip
    fig.update_xaxes(showgrid=False, zeroline=False, range=[-0.5, K - 0.5], dtick=1 if K <= 20 else None)
    fig.update_yaxes(showgrid=False, zeroline=False, range=[P - 0.5, -0.5], dtick=1 if P <= 20 else None)
    legend_below(fig, ["correct answer"])
    return fig


LIKELIHOOD_PANELS = ("Entropy of π (nats)", "pass@1", "pass@{n}")


def likelihood_figure(*, runs: Mapping[str, Any], n: int, K: int) -> go.Figure:
    """Entropy, pass@1 and pass@N over training, side by side, one colour per loss (runs: {label: run})."""
    titles = [t.format(n=n) for t in LIKELIHOOD_PANELS]
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.07)
    fig.update_layout(
        template=TEMPLATE, height=360, title=dict(text=f"pass@N loss (N = {n}) vs plain likelihood")
    )
    for label, run in runs.items():
        x = np.arange(len(run.entropy))
        color = color_for(run.loss)
        for col, y in enumerate((run.entropy, run.pass_at(1), run.pass_at(n)), start=1):
            fig.add_trace(_line(x, y, label, color, group=label, show=col == 1), row=1, col=col)
    fig.add_hline(
        y=math.log(K), line=dict(color=UNIFORM_COLOR, dash="dash", width=1), row=1, col=1,
        annotation=dict(text=f"log {K}", font=dict(size=11, color=UNIFORM_COLOR)),
        annotation_position="bottom right",
    )  # fmt: skip
    fig.update_yaxes(range=[0, math.log(K) * 1.05], row=1, col=1)
    for col in (2, 3):
        fig.update_yaxes(range=[0, 1.03], row=1, col=col)
    fig.update_xaxes(title_text="step")
    for annotation in fig.layout.annotations:  # the subplot titles: smaller than the figure's
        annotation.font = dict(size=13)
    legend_below(fig, list(runs))
    return fig
