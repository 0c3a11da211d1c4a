"""The RL page's cached runs (lossviz.rl.train_variant, train_likelihood) keyed by their primitive arguments,
and the fragments that redraw one view when its own control moves (pass@k's k, the policy's step, pass@N's
N). The page shows one view at a time (widgets.views), which keeps the settings of the closed views in the
URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from lossviz import rl
from lossviz.figures import rl as figures
from lossviz.ui import charts, widgets
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

OBJECTIVE_URL, STEP_URL = "objective", "step"  # the policy view's controls, drawn from its runs
K_VIEW = Field(
    "k", "k of pass@k", "select_slider", 16, options=(2, 4, 8, 16, 32, 64, 128, 256),
    help="pass@k: the chance that k samples for a prompt contain a correct one, 1 − (1 − p)^k, averaged over "
    "the prompts (p: the prompt's mass on its correct answers). Redraws only this chart.",
)  # fmt: skip
N_FIELD = Field(
    "N", "N of the pass@N loss", "select_slider", 16, options=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    help="The pass@N loss −log(1 − (1 − π_y)^N): N = 1 is cross-entropy.",
)  # fmt: skip
LIKELIHOOD_LABELS = {"cross_entropy": "plain likelihood (cross-entropy)", "pass_at_n": "pass@N loss"}


@st.cache_data(max_entries=256, show_spinner=False)
def variant_run(
    variant: str,
    prompts: int,
    answers: int,
    n_correct: int,
    group: int,
    steps: int,
    lr: float,
    init_scale: float,
    seed: int,
    kl: float,
    entropy: float,
    band: bool,
    novelty: float,
) -> rl.TabularRun:
    """One objective on the tabular task (lossviz.rl.train_variant)."""
    return rl.train_variant(
        variant, prompts=prompts, answers=answers, n_correct=n_correct, group=group, steps=steps, lr=lr,
        init_scale=init_scale, seed=seed, kl=kl, entropy=entropy, band=band, novelty=novelty,
    )  # fmt: skip


@st.cache_data(max_entries=64, show_spinner=False)
def likelihood_run(
    loss: str,
    params: tuple[tuple[str, float], ...],
    prompts: int,
    answers: int,
    n_correct: int,
    steps: int,
    lr: float,
    init_scale: float,
    seed: int,
) -> rl.LikelihoodRun:
    """Supervised training of the same initial policy with one loss (lossviz.rl.train_likelihood)."""
    return rl.train_likelihood(
        loss, dict(params), prompts=prompts, answers=answers, n_correct=n_correct, steps=steps, lr=lr,
        init_scale=init_scale, seed=seed,
    )  # fmt: skip


def summary_rows(panels: Sequence[figures.RunPanel], k: int) -> list[dict[str, Any]]:
    """The table under pass@k: start and end of each objective's entropy, pass@1 and pass@k."""
    rows = []
    for panel in panels:
        run = panel.run
        row = {
            "objective": panel.label,
            "entropy: start → end": f"{run.entropy[0]:.2f} → {run.entropy[-1]:.2f}",
            "pass@1: start → end": f"{run.pass_at(1)[0]:.2f} → {run.pass_at(1)[-1]:.2f}",
            f"pass@{k}: start → end": f"{run.pass_at(k)[0]:.2f} → {run.pass_at(k)[-1]:.2f}",
        }
        if panel.plain is not None:
            row["without the diversity terms: entropy, pass@k at the end"] = (
                f"{panel.plain.entropy[-1]:.2f}, {panel.plain.pass_at(k)[-1]:.2f}"
            )
        rows.append(row)
    return rows


@st.fragment
def pass_at_k_view(page: Page, panels: Sequence[figures.RunPanel]) -> None:
    """pass@1 and pass@k over training with the k slider, and the start/end table, rerun on their own."""
    k = int(page.control(K_VIEW))
    charts.show(st, figures.pass_at_k_figure, key="rl.fig.pass_at_k", panels=panels, k=k)
    widgets.static_table(summary_rows(panels, k))
    page.finish_fragment()


def objective_field(labels: Mapping[str, str]) -> Field:
    """The policy view's objective picker: the selected objectives ({key: label}), the last one by default.
    Not `view`, which names the page's open tab."""
    keys = tuple(labels)
    return Field(OBJECTIVE_URL, "Objective shown", "select", keys[-1], options=keys, format=labels.get)


def step_field(steps: Sequence[int]) -> Field:
    """The policy view's step slider over the stored steps, the last one by default."""
    return Field(STEP_URL, "Step", "select_slider", steps[-1], options=tuple(steps))


def reset_policy_view(page: Page) -> None:
    """Back to the defaults (the last objective, the last step), e.g. when a preset loads."""
    for name in (OBJECTIVE_URL, STEP_URL):
        page.state.reset(name)


@st.fragment
def policy_view(page: Page, panels: Sequence[figures.RunPanel]) -> None:
    """One objective's pi over prompts and answers at one stored step, with its picker and step slider."""
    by_key = {panel.key: panel for panel in panels}
    left, right = st.columns([1, 2])
    shown = page.control(objective_field({panel.key: panel.label for panel in panels}), container=left)
    run = by_key[shown].run
    steps = tuple(int(s) for s in run.policy_steps)
    step = page.control(step_field(steps), container=right)
    frame, title = steps.index(int(step)), by_key[shown].label
    charts.show(st, figures.policy_figure, key="rl.fig.policy", run=run, frame=frame, title=title)
    page.finish_fragment()


@st.fragment
def likelihood_view(page: Page, task: Mapping[str, Any]) -> None:
    """Cross-entropy and the pass@N loss from the same start, with the N slider; reruns on its own."""
    n = int(page.control(N_FIELD))
    arguments = {k: task[k] for k in ("prompts", "answers", "n_correct", "steps", "lr", "init_scale", "seed")}
    try:
        with st.spinner("Training with cross-entropy and pass@N (or loading the cached runs)…"):
            runs = {
                LIKELIHOOD_LABELS["cross_entropy"]: likelihood_run("cross_entropy", (), **arguments),
                LIKELIHOOD_LABELS["pass_at_n"]: likelihood_run("pass_at_n", (("n", float(n)),), **arguments),
            }
    except ValueError as err:
        st.error(f"Could not train: {err}")
        page.finish_fragment()
        return
    charts.show(
        st, figures.likelihood_figure, key="rl.fig.likelihood", runs=runs, n=n, K=int(task["answers"])
    )
    ce, pn = runs.values()
    st.caption(
        f"At the end: entropy {ce.entropy[-1]:.2f} (cross-entropy) vs {pn.entropy[-1]:.2f} (pass@{n}); "
        f"pass@1 {ce.pass_at(1)[-1]:.2f} vs {pn.pass_at(1)[-1]:.2f}; pass@{n} {ce.pass_at(n)[-1]:.3f} vs "
        f"{pn.pass_at(n)[-1]:.3f}."
    )
    page.finish_fragment()
