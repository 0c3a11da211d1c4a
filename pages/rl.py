"""RL with verifiable rewards on a tabular task: several prompts, each a softmax over K answers with its own
correct set, trained with REINFORCE, RLOO, GRPO, PPO's clip (symmetric or clip-higher) or a label-free
majority vote, plus a KL penalty, an entropy bonus, EPO's entropy band and a novelty bonus; then the pass@N
loss against plain likelihood. The math is lossviz.rl; its presets' claims are measured there. One view at a
time, in tabs (widgets.views): a slider step redraws one chart, not five.
"""

from __future__ import annotations

import streamlit as st

from lossviz import rl
from lossviz.figures import rl as figures
from lossviz.ui import charts, widgets
from lossviz.ui import rl as cached
from lossviz.ui.fields import Field
from lossviz.ui.page import Page

LABELS = {
    "reinforce": "REINFORCE", "rloo": "REINFORCE + baseline (RLOO)", "grpo": "GRPO",
    "ppo_clip": "PPO clip (ε = 0.2)", "ppo_clip_higher": "PPO clip-higher (0.2 / 0.28)",
    "majority_vote": "Majority vote (label-free)",
}  # fmt: skip
S = rl.SETTINGS
VARIANTS = Field(
    "variants", "Objectives", "multiselect", ("reinforce", "grpo", "majority_vote"),
    options=tuple(rl.VARIANTS), format=LABELS.get,
)  # fmt: skip
TASK = (
    Field("prompts", "Prompts", "int", S["prompts"], low=1, high=64,
          help="Each its own softmax and correct set."),
    Field("answers", "Answers per prompt (K)", "int", S["answers"], low=2, high=64),
    Field("n_correct", "Correct answers per prompt", "int", S["n_correct"], low=1, high=16,
          help="Drawn at random for each prompt; must not exceed K."),
    Field("group", "Group size G", "select_slider", S["group"], options=(2, 4, 8, 16, 32, 64),
          help="Answers sampled per prompt per step."),
    Field("steps", "Steps", "select_slider", S["steps"], options=(50, 100, 200, 300, 500, 1000, 2000)),
    Field("lr", "Learning rate", "select_slider", S["lr"], options=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
          help="Plain gradient ascent on the logits."),
    Field("init_scale", "Initial logit spread", "slider", S["init_scale"], low=0.0, high=4.0, step=0.1,
          help="Std of the initial logits: 0 is uniform, larger makes a few answers likely from the start."),
    Field("seed", "Seed", "int", S["seed"], low=0, high=20,
          help="Fixes the start, the correct sets and the samples."),
)  # fmt: skip
TERMS = (
    Field("kl", "KL coefficient β", "select_slider", S["kl"], options=(0.0, 0.01, 0.03, 0.1, 0.3, 1.0),
          help="Weight of KL(π ‖ π_ref), π_ref the initial policy."),
    Field("entropy", "Entropy bonus", "select_slider", S["entropy"], options=(0.0, 0.01, 0.03, 0.1, 0.3, 1.0),
          help="Weight of H(π) added to the objective."),
    Field("band", "EPO entropy band", "toggle", S["band"],
          help="Penalise leaving [0.9, 1.1] × the moving average of the entropy (weight 1)."),
    Field("novelty", "Novelty bonus (majority vote)", "select_slider", S["novelty"],
          options=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
          help="Majority vote only: weight × the share of the group's other samples that differ from "
               "this one."),
)  # fmt: skip
PLAIN = Field("plain", "Dotted: each objective without the diversity terms", "toggle", True)
VIEWS = {
    "entropy": "Entropy",
    "reward": "Reward",
    "pass_at_k": "pass@k",
    "policy": "π per prompt",
    "likelihood": "pass@N loss vs likelihood",
}
VIEW = Field("view", "View", "tabs", "entropy", options=tuple(VIEWS), format=VIEWS.get)
PRESET_FIELDS = (VARIANTS, *TASK, *TERMS, PLAIN, cached.K_VIEW, cached.N_FIELD)
PRESET_TITLES = {
    "entropy_collapse": "Entropy collapse",
    "entropy_bonus": "Entropy bonus",
    "epo_band": "EPO entropy band",
    "clip_higher": "Clip-higher vs clip",
    "majority_vote": "Majority vote (no labels)",
    "novelty": "Majority vote + novelty",
    "pass_at_n": "pass@N vs likelihood",
}
PRESET_VIEWS = {"pass_at_n": "likelihood"}  # the view a preset's claim is read in; the others: the entropy

page = Page(
    "rl",
    "RL with verifiable rewards",
    "A tabular policy: each of several prompts has its own softmax over K answers and its own correct set "
    "(the verifier). Every step samples a group of G answers per prompt and takes one gradient step on the "
    "chosen objective. Claimed in the literature: policy-gradient RL **collapses the entropy** of π (the "
    "policy settles on one answer, and sampling k times stops helping); an **entropy bonus**, **EPO's "
    "entropy band** or **clip-higher** (DAPO, EVOL-RL) resists it; a **label-free majority vote** (TTRL) "
    "locks onto the majority answer, right or wrong, unless **novelty** (EVOL-RL) keeps answers apart; the "
    "**pass@N loss** keeps more diversity than plain likelihood. Measured here: all of it but clip-higher "
    "(see the presets).",
)


def load_preset(name: str) -> None:
    """A preset button's on_click: every control from lossviz.rl's SETTINGS and the preset, then train."""
    settings = {**rl.SETTINGS, "plain": True, "k": cached.K_VIEW.default, "N": cached.N_FIELD.default,
                **rl.PRESETS[name]}  # fmt: skip
    for field in PRESET_FIELDS:
        page.state.set(field, tuple(settings[field.key]) if field is VARIANTS else settings[field.key])
    cached.reset_policy_view(page)
    page.state.set(VIEW, PRESET_VIEWS.get(name, "entropy"))


st.markdown("**Presets** (seed 0, one click sets every control and trains; the captions say what they show):")
columns = st.columns(4)
for i, name in enumerate(PRESET_TITLES):
    columns[i % 4].button(
        PRESET_TITLES[name], key=f"rl.preset.{name}", on_click=load_preset, args=(name,), width="stretch"
    )
with st.sidebar:
    st.header("RL with verifiable rewards")
    chosen = list(page.control(VARIANTS))
    st.subheader("Task")
    task = {field.key: page.control(field) for field in TASK}
    st.subheader("Terms")
    terms = {field.key: page.control(field) for field in TERMS}
    show_plain = bool(page.control(PLAIN))

settings = dict(
    prompts=int(task["prompts"]), answers=int(task["answers"]), n_correct=int(task["n_correct"]),
    group=int(task["group"]), steps=int(task["steps"]), lr=float(task["lr"]),
    init_scale=float(task["init_scale"]), seed=int(task["seed"]), kl=float(terms["kl"]),
    entropy=float(terms["entropy"]), band=bool(terms["band"]), novelty=float(terms["novelty"]),
)  # fmt: skip
if settings["n_correct"] > settings["answers"]:
    page.stop(
        f"Correct answers per prompt ({settings['n_correct']}) must not exceed the answers per prompt "
        f"(K = {settings['answers']}).",
        level="error",
    )
if not chosen:
    page.stop("Pick at least one objective in the sidebar.")

# One view at a time: a slider step then redraws one chart (see widgets.views).
in_views = {"pass_at_k": (cached.K_VIEW.url_name,), "policy": (cached.OBJECTIVE_URL, cached.STEP_URL),
            "likelihood": (cached.N_FIELD.url_name,)}  # fmt: skip
view, tab = widgets.views(VIEW, page.state, controls=in_views)  # a closed view's controls stay in the URL


def trained_panels() -> list[figures.RunPanel]:
    """Every chosen objective's run (and its dotted run without the diversity terms), cached per setting."""
    plain_settings = rl.without_diversity(settings)
    jobs = [(key, False) for key in chosen]  # (objective, without the diversity terms)
    if show_plain:  # the dotted comparison runs, where the diversity terms change anything for that objective
        jobs += [(key, True) for key in chosen if rl.uses_diversity(key, settings)]
    bar = st.progress(0.0, text="Training…")
    runs = {}
    try:
        for i, (key, plain) in enumerate(jobs):
            bar.progress(i / len(jobs), text=f"Training {LABELS[key]} ({i + 1}/{len(jobs)})…")
            runs[key, plain] = cached.variant_run(key, **(plain_settings if plain else settings))
    except ValueError as err:
        bar.empty()
        page.stop(f"Could not train: {err}", level="error")
    bar.empty()
    return [figures.RunPanel(key, LABELS[key], runs[key, False], runs.get((key, True))) for key in chosen]


DOTTED = "Dotted: the same objective with the entropy bonus, the EPO band and novelty switched off."
with tab:
    if view == "likelihood":  # needs none of the RL runs
        st.markdown(
            "The same initial policy fine-tuned on every (prompt, correct answer) pair, by gradient descent "
            "on cross-entropy or on the registered **pass@N** loss −log(1 − (1 − π_y)^N) (Chen et al., 2025, "
            "*Rethinking Fine-Tuning when Scaling Test-Time Compute*), whose gradient fades once π_y ≫ 1/N."
        )
        cached.likelihood_view(page, settings)
        st.caption(
            "Measured (preset, one correct answer per prompt, N = 16, seeds 0–4): cross-entropy drives the "
            "entropy to 0.05 and pass@1 to 0.99; the pass@N loss keeps 1.90–2.06 nats and pass@1 0.42. Both "
            "reach pass@16 = 1.00 (cross-entropy first): a tabular policy can fit every prompt, so limiting "
            "confidence buys diversity here, not a higher pass@N."
        )
    else:
        panels = trained_panels()
        if view == "entropy":
            charts.show(
                st, figures.entropy_figure, key="rl.fig.entropy", panels=panels, K=settings["answers"]
            )
            st.caption(
                "The mean over prompts of the policy's entropy H(π); it starts below log K unless the "
                "initial spread is 0. Collapse is the fall towards 0: the policy settles on one answer. "
                + DOTTED
            )
        elif view == "reward":
            charts.show(st, figures.reward_figure, key="rl.fig.reward", panels=panels)
            st.caption(
                "What each objective is paid per sample, averaged over the step's groups (majority vote: "
                "agreement with the group's majority, plus novelty; everything else: the verifier's 0/1). "
                + DOTTED
            )
        elif view == "pass_at_k":
            cached.pass_at_k_view(page, panels)
            st.caption(
                "pass@1 is the mean mass on the correct answers. With the verifier, measured on the default "
                "task (seeds 0–4): the entropy collapses (GRPO 1.8–2.2 → 0.03–0.14 nats) while pass@1 climbs "
                "to meet pass@16; no prompt's pass@16 fell — the prompts share no parameters, so sharpening "
                "one cannot cost another its coverage (the literature's drop of pass@k at large k needs a "
                "shared model). An entropy bonus of 0.3 keeps GRPO at 0.24–0.44 nats with pass@1 0.96–0.98; "
                "the EPO band slows the fall (0.17–0.28). Clip-higher keeps no more entropy than the "
                "symmetric clip here: an answer drawn c times in a group gets c times the push, so the clip "
                "binds first on the frequent answer. Majority vote collapses every prompt onto one answer, "
                "right or wrong (pass@16 0.56–0.80 → 0.07–0.19); a novelty weight above 1 keeps it open "
                "(entropy 1.6–1.7, pass@16 0.49–0.69) but cannot make the right answer win without a label."
            )
        else:
            cached.policy_view(page, panels)
            st.caption(
                "Each row is a prompt, each column an answer; rings mark the correct ones. Collapse is one "
                "dark cell per row; majority vote's dark cells sit wherever the majority started."
            )
page.finish()
