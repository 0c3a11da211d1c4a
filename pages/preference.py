"""Preference: a toy tabular policy (softmax over a few answers per prompt) trained from one initial policy,
its reference, with each selected preference loss; what each does to pi(chosen) and pi(rejected), the implicit
reward, the KL to the reference and, for three answers, prompt 0's path on the simplex.

The ASFT paper (Wang et al., 2024) observes that DPO lowers the rejected answer faster than it raises the
chosen one; the page measures it on this policy (lossviz.preference, tests/test_preference_policy.py). One
view at a time, in tabs (widgets.views): a slider step redraws one chart, not four.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from lossviz import preference
from lossviz.figures import preference as figures
from lossviz.ui import charts, widgets
from lossviz.ui import preference as cached
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

DEFAULT_LOSSES = ("dpo", "ipo", "slic", "asft")
EPOCHS = Field(
    "epochs", "Epochs", "select_slider", 200, options=(20, 50, 100, 200, 300, 500, 1000),
    help="Full-batch Adam steps.",
)  # fmt: skip
LR = Field("lr", "Learning rate", "select_slider", 0.05, options=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5))
PROMPTS = Field(
    "prompts", "Prompts", "int", 8, low=1, high=64, help="One (chosen, rejected) pair per prompt."
)
ANSWERS = Field(
    "answers",
    "Answers per prompt",
    "int",
    3,
    low=2,
    high=8,
    help="Three draws prompt 0's path on the simplex.",
)
SEED = Field(
    "seed", "Seed", "int", 0, low=0, high=20, help="Fixes the initial policy and the preference pairs."
)
FIELDS = (EPOCHS, LR, PROMPTS, ANSWERS, SEED)
EARLY = 10  # epochs over which the early changes of log pi are measured
VIEWS = {
    "probability": "π(chosen) and π(rejected)",
    "margin": "Implicit reward margin",
    "kl": "KL to π_ref",
    "simplex": "Prompt 0 on the simplex",
}
VIEW = Field("view", "View", "tabs", "probability", options=tuple(VIEWS), format=VIEWS.get)

page = Page(
    "preference",
    "Preference",
    "A toy policy (tabular logits: a softmax over a few answers for each prompt) starts from the "
    "reference π_ref and is trained on one (chosen, rejected) pair per prompt with each loss, full-batch "
    "Adam. The ASFT paper (Wang et al., 2024) claims that **DPO pushes the rejected answer down faster "
    "than it lifts the chosen one**, since it only sees their difference; ASFT's absolute likelihood "
    "lifts the chosen.",
)
with st.sidebar:
    st.header("Preference")
    names = widgets.loss_picker("preference", page.state, DEFAULT_LOSSES)
    settings = widgets.loss_settings(names, page.state)
    values = {field.key: page.control(field) for field in FIELDS}
if not names:
    page.stop("Pick at least one loss in the sidebar.")

labels = {n: widgets.loss_label(n) for n in names}
arguments = dict(
    prompts=int(values["prompts"]), answers=int(values["answers"]), epochs=int(values["epochs"]),
    lr=float(values["lr"]), seed=int(values["seed"]),
)  # fmt: skip
valid = page.per_loss(labels, lambda n: preference.bind(n, settings[n]))  # a bad value: one error per loss
if not valid:
    page.stop()
selection = tuple((n, tuple(sorted(settings[n].items()))) for n in valid)
ahead = max(EPOCHS.options)  # trained in the background after drawing: the next Epochs step is ready
runs = {labels[n]: run for n, run in cached.runs(selection, **arguments, ahead=ahead).items()}

simplex = arguments["answers"] == 3  # prompt 0's path needs three answers
shown = tuple(VIEWS) if simplex else tuple(v for v in VIEWS if v != "simplex")
# One view at a time: a slider step then redraws one chart (see widgets.views).
view, tab = widgets.views(replace(VIEW, options=shown), page.state)
with tab:
    if view == "probability":
        charts.show(st, figures.probability_figure, key="preference.fig.probability", runs=runs)
        early = min(EARLY, arguments["epochs"])
        rows = []
        for label, run in runs.items():
            d_chosen = float(run.log_chosen[early] - run.log_chosen[0])
            d_rejected = float(run.log_rejected[early] - run.log_rejected[0])
            rows.append(
                {
                    "loss": label,
                    f"Δ log π(chosen), first {early} epochs": d_chosen,
                    f"Δ log π(rejected), first {early} epochs": d_rejected,
                    "rejected falls faster": abs(d_rejected) > abs(d_chosen) and d_rejected < 0,
                    "final π(chosen)": float(run.chosen[-1]),
                    "final π(rejected)": float(run.rejected[-1]),
                }
            )
        widgets.static_table(rows, decimals=3)
        st.caption(
            "Solid: mean π(chosen) over prompts; dashed: mean π(rejected). The claim, measured: with tabular "
            "logits, log π_w − log π_l = z_w − z_l, so a pairwise loss moves the two logits by equal and "
            "opposite steps and the shared normaliser then lowers both answers alike; once π_w > π_l this "
            "makes log π(rejected) fall faster than log π(chosen) rises (the table's first columns). For DPO "
            "it holds from the first step when the policy starts uniform, and on seeds 0–5 of this page's "
            "default random start, but not on every seed (it depends on the initial π_w − π_l). ASFT (and "
            "ORPO), which add the chosen answer's likelihood, lift log π(chosen) more and lower log "
            "π(rejected) less than DPO on every seed tested (0–9)."
        )
        if not simplex:
            st.info("Set three answers per prompt to see prompt 0's path on the simplex.")
    elif view == "margin":
        charts.show(st, figures.margin_figure, key="preference.fig.margin", runs=runs)
        st.caption(
            "Implicit reward margin β·[(log π_w − log π_ref,w) − (log π_l − log π_ref,l)] (β = the loss's β, "
            "or 1), averaged over prompts. DPO's margin grows without bound on separable preferences; IPO "
            "pulls it to 1/(2τ)."
        )
    elif view == "kl":
        charts.show(st, figures.kl_figure, key="preference.fig.kl", runs=runs)
        st.caption(
            "KL(π ‖ π_ref) averaged over prompts: how far each loss moves the policy from its reference. The "
            "reference-free losses (SLiC, ORPO, SimPO, ASFT) do not hold π near π_ref."
        )
    else:
        charts.show(st, figures.simplex_figure, key="preference.fig.simplex", runs=runs)
        st.caption(
            "Prompt 0's probabilities over its three answers, from π_ref (open circle) to the end (dots)."
        )
page.finish()
