"""Tests for lossviz.experiment: the frozen spec, its JSON and digest, and run / run_all with the heads and
context the registry declares."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from lossviz import experiment as E
from lossviz import losses

FAST = E.Experiment(
    data=E.DataSpec(source="blobs", n=120, n_classes=3),
    model=E.ModelSpec(kind="mlp", width=8, depth=1),
    optim=E.OptimSpec(epochs=40, snapshots=3),
)


def test_json_round_trip_keeps_every_field() -> None:
    exp = E.Experiment(
        data=E.DataSpec(source="spirals", n=200, noise=0.2, n_classes=4, label_noise=0.3, noise_kind="pair"),
        model=E.ModelSpec(kind="mlp", width=16, depth=3, activation="tanh", residual=True),
        optim=E.OptimSpec(optimizer="sam", lr=0.03, batch_size=32, epochs=7, seed=3),
        losses=(E.LossChoice("focal", (("gamma", 1.5),)), E.LossChoice("cross_entropy")),
    )
    again = E.Experiment.from_json(exp.to_json())
    assert again == exp and again.digest == exp.digest
    assert json.loads(exp.to_json())["losses"][0] == {"name": "focal", "params": {"gamma": 1.5}}


def test_view_and_embedding_fields_round_trip_and_leave_older_digests_alone() -> None:
    exp = E.Experiment(
        data=E.DataSpec(source="blobs", views=3, augment=0.5, positives="instance"),
        model=E.ModelSpec(embedding_dim=3),
        losses=(E.LossChoice("cross_entropy"),),
    )
    again = E.Experiment.from_json(exp.to_json())
    assert again == exp and again.digest == exp.digest
    raw = json.loads(exp.to_json())
    assert (
        raw["data"]["views"] == 3 and raw["data"]["augment"] == 0.5 and raw["data"]["positives"] == "instance"
    )
    assert raw["model"]["embedding_dim"] == 3
    # at their defaults the added fields are left out of the JSON: earlier experiments keep their digests
    plain = json.loads(E.Experiment().to_json())
    assert (
        not {"views", "augment", "positives"} & set(plain["data"]) and "embedding_dim" not in plain["model"]
    )
    assert (
        E.Experiment.from_dict({"data": {"views": 2, "augment": 1.0, "positives": "class"}}) == E.Experiment()
    )
    for changed in (E.DataSpec(views=3), E.DataSpec(augment=0.0), E.DataSpec(positives="instance")):
        assert E.Experiment(data=changed).digest != E.Experiment().digest
    assert E.DataSpec(augment=2).augment == 2.0 and isinstance(E.DataSpec(augment=2).augment, float)
    assert (
        E.Experiment(data=E.DataSpec(augment=2)).digest
        == E.Experiment.from_dict({"data": {"augment": 2.0}}).digest
    )
    assert E.view_settings(exp.data) == E.Views(count=3, strength=0.5, positives="instance")


def test_defaults_are_made_explicit_so_equal_experiments_share_a_digest() -> None:
    implicit = E.Experiment(losses=(E.LossChoice("focal"),))
    explicit = E.Experiment.from_dict({"losses": [{"name": "focal", "params": {"gamma": 2.0}}]})
    assert implicit == explicit and implicit.digest == explicit.digest
    assert dataclasses.replace(implicit, optim=E.OptimSpec(lr=0.1)).digest != implicit.digest
    assert E.Experiment.from_dict({}) == E.Experiment()


def test_digest_is_stable_across_processes() -> None:
    """A golden value: a change here means every stored result and shared link is invalidated; bump SCHEMA."""
    assert E.Experiment().digest == "8db782cf14961b8d"
    assert E.Experiment().digest == E.Experiment.from_json(E.Experiment().to_json()).digest


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model": {"kind": "rnn"}}, r"model.kind must be one of \['linear', 'mlp', 'cnn'\]"),
        ({"optim": {"optimizer": "lbfgs"}}, r"optim.optimizer must be one of"),
        ({"optim": {"lr": -1}}, r"optim.lr must be in"),
        ({"optim": {"epochs": 2.5}}, r"optim.epochs must be an integer"),
        ({"data": {"source": "mnist"}}, r"data.source must be one of \['moons'"),
        ({"data": {"noise_kind": "random"}}, r"data.noise_kind must be one of"),
        ({"data": {"label_noise": float("nan")}}, r"data.label_noise must be a finite number"),
        ({"data": {"n": "many"}}, r"data.n must be an integer"),
        ({"model": {"residual": "yes"}}, r"model.residual must be true or false"),
        ({"dat": {}}, r"unknown field\(s\) \['dat'\]; valid fields"),
        ({"optim": {"learning_rate": 1}}, r"optim: unknown field\(s\) \['learning_rate'\]"),
        ({"losses": ["nope"]}, r"unknown loss 'nope'"),
        ({"losses": [{"name": "focal", "params": {"gamma": 99}}]}, r"gamma must be in"),
        ({"losses": ["focal", "focal"]}, r"each loss may appear once"),
        ({"losses": "focal"}, r"losses must be a list"),
        ({"data": {"views": 0}}, r"data.views must be an integer >= 1, got 0"),
        ({"data": {"views": 9}}, r"data.views must be an integer in \[1, 8\], got 9"),
        ({"data": {"views": 2.5}}, r"data.views must be an integer, got 2.5"),
        ({"data": {"augment": -0.5}}, r"data.augment must be in \[0, 4\], got -0.5"),
        ({"data": {"augment": "strong"}}, r"data.augment must be a number, got 'strong'"),
        ({"data": {"positives": "pairs"}}, r"data.positives must be one of \['class', 'instance'\]"),
        ({"data": {"positives": "instance", "views": 1}}, r"data.views must be >= 2 when data.positives"),
        ({"model": {"embedding_dim": 1}}, r"model.embedding_dim must be an integer >= 2, got 1"),
        ({"model": {"embedding_dim": 65}}, r"model.embedding_dim must be an integer in \[2, 64\]"),
    ],
)
def test_bad_specs_name_the_field(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        E.Experiment.from_dict(raw)


def test_malformed_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        E.Experiment.from_json("{data: }")


def test_constructing_a_bad_spec_in_code_fails_too() -> None:
    with pytest.raises(ValueError, match=r"model\.activation must be one of"):
        E.ModelSpec(activation="sigmoid")  # type: ignore[arg-type]


def test_every_loss_starts_from_identical_weights() -> None:
    runs = E.run_all(FAST.with_losses(["cross_entropy", "focal", "gce"])).runs
    first = runs["cross_entropy"].history.snapshots[0]
    for run in runs.values():
        assert all(np.array_equal(first[k], run.history.snapshots[0][k]) for k in first)
        assert run.experiment.losses[0].name == run.loss.name


def test_run_is_deterministic_and_keeps_the_initial_model_untouched() -> None:
    a, b = E.run(FAST, "cross_entropy"), E.run(FAST, "cross_entropy")
    np.testing.assert_array_equal(a.history.train_loss, b.history.train_loss)
    init = a.initial_model.state_dict()
    np.testing.assert_array_equal(init["head.weight"].numpy(), a.history.snapshots[0]["head.weight"])


def test_run_all_reports_a_loss_that_cannot_train() -> None:
    regression = dataclasses.replace(FAST, data=E.DataSpec(source="sine", n=60))
    runs = E.run_all(regression, ["squared", "cross_entropy"])
    assert list(runs.runs) == ["squared"]
    assert "regression" in runs.errors["cross_entropy"]


def test_arcface_trains_on_a_cosine_head_so_every_logit_is_bounded_by_its_scale() -> None:
    run = E.run(dataclasses.replace(FAST, optim=dataclasses.replace(FAST.optim, epochs=100)), "arcface")
    assert losses.get("arcface").head == "cosine"
    with torch.no_grad():
        cosines = run.model(torch.as_tensor(run.dataset.X_test))
    assert cosines.abs().max() <= 1.0 + 1e-6  # the loss multiplies by s: logits within [-s, s]
    assert run.history.test_acc[-1] > 0.6  # three classes: chance is 1/3


def test_harmonic_loss_gets_voronoi_regions() -> None:
    """With a linear body the harmonic head's prediction is the nearest class centre: Voronoi cells."""
    exp = dataclasses.replace(FAST, model=E.ModelSpec(kind="linear"), optim=E.OptimSpec(epochs=100))
    run = E.run(exp, "harmonic")
    centres = run.model.head.weight.detach().numpy()  # (K, D)
    grid = np.random.default_rng(0).uniform(-8, 8, size=(2000, 2)).astype(np.float32)
    with torch.no_grad():
        predicted = run.model(torch.as_tensor(grid)).argmax(1).numpy()
    nearest = ((grid[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(predicted, nearest)
    assert run.history.test_acc[-1] > 0.6


def test_adaface_receives_feature_norms() -> None:
    """With feature norms supplied, AdaFace's 'quality' stand-in has no effect on training."""
    exp = dataclasses.replace(FAST, optim=dataclasses.replace(FAST.optim, epochs=10))
    low = E.run(exp, "adaface", quality=-1.0).history
    high = E.run(exp, "adaface", quality=1.0).history
    np.testing.assert_allclose(low.train_loss, high.train_loss, rtol=1e-6)


def test_elr_momentum_is_a_real_slider() -> None:
    exp = dataclasses.replace(FAST, data=dataclasses.replace(FAST.data, label_noise=0.3))
    slow = E.run(exp, "elr", beta=0.9).history
    fast = E.run(exp, "elr", beta=0.1).history
    assert not np.allclose(slow.train_loss, fast.train_loss)


def test_class_counts_reach_vs_loss() -> None:
    exp = dataclasses.replace(FAST, data=dataclasses.replace(FAST.data, imbalance=10.0))
    counts = E.run(exp, "vs_loss").history
    balanced = E.run(exp, "vs_loss", gamma=0.0, tau=0.0).history  # VS with no adjustment is CE
    ce = E.run(exp, "cross_entropy").history
    np.testing.assert_allclose(balanced.train_loss, ce.train_loss, rtol=1e-5)
    assert not np.allclose(counts.train_loss, ce.train_loss)


def test_csv_experiments_rebuild_from_the_registered_bytes() -> None:
    content = b"x1,x2,label\n" + b"".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n".encode() for i in range(60))
    digest = E.register_csv(content)
    spec = E.DataSpec(source="csv", csv=digest, csv_target="label")
    assert E.dataset(spec).n_features == 2
    with pytest.raises(ValueError, match="upload it again"):
        E.dataset(dataclasses.replace(spec, csv="0" * 40))


def test_shared_starts_groups_the_losses_that_share_initial_weights():
    experiment = E.Experiment(
        data=E.DataSpec(source="blobs", n=60, n_classes=3),
        losses=tuple(E.LossChoice(n) for n in ("cross_entropy", "arcface", "gce", "focal")),
    )
    groups = E.shared_starts(experiment)
    assert groups == [("cross_entropy", "gce", "focal"), ("arcface",)]  # selection order; cosine head apart
    data = E.dataset(experiment.data)
    states = {n: E.initial_model(experiment, n, data).state_dict() for n in ("cross_entropy", "gce", "focal")}
    for name in ("gce", "focal"):  # what the grouping promises: one model per group
        assert all(torch.equal(states["cross_entropy"][k], v) for k, v in states[name].items())
