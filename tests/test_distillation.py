"""Distillation end to end: experiment.run trains the teacher once (cross-entropy, a bigger model), hands its
logits of the training inputs to the student's loss through lossviz.context, and every loss of the experiment
starts from the same initial weights."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lossviz import context, losses
from lossviz import experiment as E
from lossviz.presets import DISTILLATION_PRESETS
from lossviz.train import fit

FAST = E.Experiment(
    data=E.DataSpec(source="blobs", n=160, n_classes=3, noise=0.5),
    model=E.ModelSpec(kind="mlp", width=16, depth=1),
    optim=E.OptimSpec(epochs=60, snapshots=3),
    teacher=E.ModelSpec(kind="mlp", width=32, depth=2),
)


def _outputs(model: torch.nn.Module, X: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32))


def _kd_by_hand(
    student: torch.Tensor, y: np.ndarray, teacher: np.ndarray, *, T: float, alpha: float
) -> float:
    """Hinton et al.'s loss from torch.nn.functional, averaged over the training set."""
    log_q = F.log_softmax(torch.as_tensor(teacher) / T, -1)
    soft = F.kl_div(F.log_softmax(student / T, -1), log_q, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student, torch.as_tensor(y))
    return float(alpha * T**2 * soft + (1 - alpha) * hard)


def test_the_teacher_is_the_experiment_with_the_teacher_model_and_cross_entropy() -> None:
    teaching = E.teacher_experiment(FAST)
    assert teaching.model == FAST.teacher and teaching.data == FAST.data and teaching.optim == FAST.optim
    assert [c.name for c in teaching.losses] == [E.TEACHER_LOSS] == ["cross_entropy"]
    assert E.teacher_experiment(dataclasses.replace(FAST, teacher=None)).model == E.DEFAULT_TEACHER
    assert (E.DEFAULT_TEACHER.width, E.DEFAULT_TEACHER.depth) == (128, 3)  # bigger than the 2 x 32 student


def test_teacher_logits_are_the_trained_teachers_outputs_on_the_training_inputs() -> None:
    data = E.dataset(FAST.data)
    logits = E.teacher_logits(FAST, data)
    teacher = E.teacher_run(FAST, data)
    assert logits.shape == (len(data.X_train), 3) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, _outputs(teacher.model, data.X_train).numpy(), rtol=1e-6)
    assert E.teacher_run(FAST, data) is teacher  # trained once, then remembered
    assert teacher.history.loss_name == "cross_entropy" and teacher.history.final["train_acc"] > 0.9
    # the teacher's weights are its own model: 32 wide, not the student's 16
    assert teacher.model.state_dict()["body.0.weight"].shape[0] == 32


def test_the_student_trains_on_the_teachers_logits_with_kd() -> None:
    data = E.dataset(FAST.data)
    teacher = E.teacher_logits(FAST, data)
    params = {"T": 4.0, "alpha": 0.7}
    run = E.run(FAST, "kd", data=data, **params)
    # the recorded training loss is KD against this teacher, at the first and at the last weights
    first = _outputs(run.initial_model, data.X_train)
    last = _outputs(run.model, data.X_train)
    by_hand = [_kd_by_hand(z, data.y_train, teacher, **params) for z in (first, last)]
    assert [run.history.train_loss[0], run.history.train_loss[-1]] == pytest.approx(by_hand, rel=1e-5)
    assert run.history.train_loss[-1] < 0.5 * run.history.train_loss[0]
    # and not against the uniform teacher the loss falls back to without one
    uniform = _kd_by_hand(last, data.y_train, np.zeros_like(teacher), **params)
    assert abs(run.history.train_loss[-1] - uniform) > 1e-2


def test_minibatches_read_the_teacher_rows_of_their_own_samples() -> None:
    exp = dataclasses.replace(FAST, optim=dataclasses.replace(FAST.optim, batch_size=16, epochs=5))
    data = E.dataset(exp.data)
    run = E.run(exp, "forward_kl", data=data, T=2.0)
    last = _outputs(run.model, data.X_train)
    teacher = torch.as_tensor(E.teacher_logits(exp, data))
    log_q = F.log_softmax(teacher / 2, -1)
    expected = F.kl_div(F.log_softmax(last / 2, -1), log_q, reduction="batchmean", log_target=True)
    assert run.history.train_loss[-1] == pytest.approx(float(expected), rel=1e-5)
    # the context hands each batch the rows of its indices
    bound = losses.make("forward_kl")
    ctx = context.TrainingContext(bound, torch.as_tensor(data.y_train), 3, {"teacher_logits": teacher})
    idx = torch.tensor([5, 0, 17])
    torch.testing.assert_close(ctx.batch(idx, last[idx], None)["teacher_logits"], teacher[idx])
    torch.testing.assert_close(ctx.full(None)["teacher_logits"], teacher)


def test_every_loss_of_a_distillation_experiment_starts_from_the_same_weights() -> None:
    names = ["cross_entropy", "kd", "forward_kl", "reverse_kl"]
    result = E.run_all(FAST.with_losses(names))
    assert list(result.runs) == names and not result.errors
    states = [r.initial_model.state_dict() for r in result.runs.values()]
    for state in states[1:]:
        assert all(torch.equal(state[k], states[0][k]) for k in states[0])
    # the teacher is good, and each student learnt the task from it
    teacher = E.teacher_run(FAST)
    assert teacher.history.final["test_acc"] > 0.9
    for name in names[1:]:
        assert result.runs[name].history.final["test_acc"] > 0.8, name


def test_a_student_trained_without_a_teacher_is_refused_with_the_way_to_get_one() -> None:
    data = E.dataset(FAST.data)
    init = E.initial_model(FAST, "kd", data)
    with pytest.raises(ValueError, match=r"needs teacher_logits for every training sample.*experiment\.run"):
        fit(init, "kd", data, epochs=2)
    with pytest.raises(ValueError, match=r"teacher_logits must have one row per training sample \(\d+\)"):
        fit(init, "kd", data, epochs=2, supplied={"teacher_logits": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match="valid: \\['teacher_logits'\\]"):
        fit(init, "kd", data, epochs=2, supplied={"class_counts": np.ones(3)})


def test_the_teacher_field_round_trips_and_leaves_digests_without_it_alone() -> None:
    again = E.Experiment.from_json(FAST.to_json())
    assert again == FAST and again.digest == FAST.digest
    assert json.loads(FAST.to_json())["teacher"] == {
        "kind": "mlp", "width": 32, "depth": 2, "activation": "relu", "residual": False, "batch_norm": False,
    }  # fmt: skip
    plain = dataclasses.replace(FAST, teacher=None)
    assert "teacher" not in json.loads(plain.to_json())  # an experiment without one keeps its old digest
    assert plain.digest != FAST.digest
    with pytest.raises(ValueError, match=r"teacher.width must be an integer >= 1"):
        E.Experiment.from_dict({"teacher": {"width": 0}})
    with pytest.raises(ValueError, match="teacher: unknown field"):
        E.Experiment.from_dict({"teacher": {"wide": 3}})


def test_distillation_losses_need_a_classification_dataset() -> None:
    exp = dataclasses.replace(FAST, data=E.DataSpec(source="sine", n=60))
    with pytest.raises(ValueError, match="is for multiclass but dataset"):
        E.run(exp, "kd")


def test_the_static_views_say_they_use_a_uniform_teacher() -> None:
    notes = context.approximations(losses.get("kd"))
    assert notes and "uniform teacher" in notes[0]
    assert context.static_context(losses.get("kd"), torch.tensor([0, 1, 2]), 3) == {}


def test_the_default_teacher_has_one_form_so_one_digest() -> None:
    explicit = dataclasses.replace(FAST, teacher=E.ModelSpec(width=128, depth=3))
    assert explicit.teacher is None and explicit == dataclasses.replace(FAST, teacher=None)
    assert explicit.digest == dataclasses.replace(FAST, teacher=None).digest


def _preset_runs(key: str, extra: tuple[E.LossChoice, ...] = ()) -> tuple[E.RunSet, E.Run]:
    experiment = DISTILLATION_PRESETS[key].experiment
    runs = E.run_all(experiment.with_losses([*experiment.losses, *extra]))
    assert not runs.errors
    return runs, E.teacher_run(experiment)


def test_circles_preset_a_tiny_student_distilled_at_t4_is_better_calibrated() -> None:
    kd_at_1 = E.LossChoice("forward_kl", (("T", 1.0),))  # KD at T = 1, alpha = 1: one loss appears once
    runs, teacher = _preset_runs("circles", (kd_at_1,))
    ece = {name: run.history.final["ece"] for name, run in runs.runs.items()}
    assert teacher.history.final["test_acc"] > 0.97 and teacher.history.final["ece"] < 0.03  # a good teacher
    assert ece["kd"] < 0.75 * ece["cross_entropy"]  # the claim: ECE (about) halves
    # at T = 1 the near-one-hot teacher's targets are the labels: matching them calibrates like the labels
    assert abs(ece["forward_kl"] - ece["cross_entropy"]) < 0.02


def test_noisy_moons_preset_the_student_takes_the_memorising_teachers_confidence() -> None:
    runs, teacher = _preset_runs("noisy_moons")
    ce, kd = (runs.runs[n].history.final for n in ("cross_entropy", "kd"))
    assert teacher.history.final["test_acc"] < ce["test_acc"]  # the teacher memorised flips
    assert kd["ece"] < 0.75 * ce["ece"]
    assert kd["test_acc"] <= ce["test_acc"]  # and the student gets no more accurate


def test_gradient_weights_of_a_distillation_loss_use_the_teacher_it_trained_with():
    """Train & compare's per-sample gradient weights: |d kd_i / d z_i| against the trained teacher's logits.
    With alpha = 1 that is T * |softmax(z/T) - softmax(t/T)| per row (T^2 times the softmax's 1/T)."""
    from lossviz import evaluate

    experiment = E.Experiment(
        FAST.data, FAST.model, FAST.optim, (E.LossChoice("kd", (("alpha", 1.0),)),), FAST.teacher
    )
    run = E.run(experiment, "kd")
    teacher = E.teacher_logits(experiment, run.dataset)
    got = evaluate.gradient_weights(
        run.initial_model, run.loss, run.dataset, run.history, teacher_logits=teacher
    )
    T = dict(run.experiment.losses[0].params)["T"]
    z = _outputs(run.model, run.dataset.X_train)
    expected = (T * (F.softmax(z / T, -1) - F.softmax(torch.as_tensor(teacher) / T, -1))).norm(dim=1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    uniform = evaluate.gradient_weights(run.initial_model, run.loss, run.dataset, run.history)
    assert np.abs(uniform - got).max() > 1e-3  # without the teacher the weights would be another loss's
