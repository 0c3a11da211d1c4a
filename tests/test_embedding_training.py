"""Embedding losses trained through the experiment runner: the sphere head, views labelled by class or
by instance, nearest-class-mean accuracy, alignment and uniformity (Wang & Isola, 2020), shared initial
weights."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lossviz import experiment as E
from lossviz import losses
from lossviz.data import make_dataset
from lossviz.losses import register, unregister
from lossviz.models import make_model
from lossviz.train import Views, embed, fit

# well-separated blobs (seed 1): three clusters a few standard deviations apart
BLOBS = E.DataSpec(source="blobs", n=90, n_classes=3, noise=0.5, seed=1)
FAST = E.Experiment(
    data=BLOBS,
    model=E.ModelSpec(kind="mlp", width=16, depth=2),
    optim=E.OptimSpec(epochs=40, snapshots=4),
)


def _needs(*names: str) -> None:
    missing = [n for n in names if n not in losses.names("embedding")]
    if missing:
        pytest.skip(f"embedding losses {missing} are not registered yet")


@pytest.fixture
def probe():
    """A throwaway batch-level embedding loss that records what it is called with (unregistered after)."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    @register(title="probe", latex="", task="embedding", paper="", batch=True)
    def embedding_probe(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        calls.append((embeddings.detach().clone(), labels.clone()))
        return -torch.pdist(embeddings).pow(2).mean()  # spread the batch: a uniformity-like objective

    yield calls
    unregister("embedding_probe")


def test_embedding_losses_default_to_the_sphere_head_and_the_rest_do_not() -> None:
    for name in losses.names("embedding"):
        assert losses.get(name).head == "sphere", name
    assert losses.get("cross_entropy").head == "linear" and losses.get("arcface").head == "cosine"
    assert losses.n_outputs("embedding", 10) == 2  # the circle by default, whatever the class count
    assert losses.n_outputs("embedding", 10, embedding_dim=3) == 3
    assert losses.n_outputs("multiclass", 4, embedding_dim=3) == 4 and losses.n_outputs("binary", 2) == 1
    with pytest.raises(ValueError, match="embedding_dim must be an integer >= 2, got 1"):
        losses.n_outputs("embedding", 3, embedding_dim=1)


def test_each_step_sees_unit_views_labelled_by_instance_or_class(probe) -> None:
    data = make_dataset("blobs", n=60, n_classes=3, seed=1)
    model = make_model("mlp", 2, 3, width=8, head="sphere", seed=0)
    fit(model, "embedding_probe", data, epochs=1, batch_size=16, views=Views(3, 1.0, "instance"))
    # 42 training instances in batches of 16: epoch 0's record, epoch 1's steps, epoch 1's record
    assert [len(e) for e, _ in probe] == [48, 48, 30] * 3
    embeddings, labels = probe[3]  # the first training step
    assert embeddings.shape == (3 * 16, 3)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(48))
    assert torch.equal(labels, torch.arange(16).repeat(3))  # view-major: rows [16v, 16v + 16) are view v
    a, b = embeddings[:16], embeddings[16:32]
    assert not torch.allclose(a, b)  # the views differ...
    assert (a * b).sum(1).mean() > 0.5  # ...but stay near each other at strength 1 (from the same points)

    probe.clear()
    fit(model, "embedding_probe", data, epochs=1, views=Views(2, 0.5, "class"))  # full batch
    embeddings, labels = probe[1]
    n = len(data.y_train)
    assert embeddings.shape == (2 * n, 3)
    np.testing.assert_array_equal(labels.numpy(), np.tile(data.y_train, 2))


def test_embedding_run_records_finite_metrics_and_nan_calibration() -> None:
    _needs("supcon")
    run = E.run(FAST, "supcon")
    h = run.history
    assert not h.diverged, h.message
    for name in ("train_loss", "train_acc", "test_acc", "alignment", "uniformity"):
        values = getattr(h, name)
        assert values.shape == (41,) and np.isfinite(values).all(), name
    assert np.isnan(h.test_nll).all() and np.isnan(h.ece).all() and np.isnan(h.noisy_acc).all()
    assert ((h.alignment >= 0) & (h.alignment <= 4)).all()  # squared distances between unit vectors
    assert (h.uniformity <= 0).all() and (h.uniformity >= -4 - 1e-6).all()  # log of a mean of e^{-2 d^2}
    assert h.train_loss[-1] < h.train_loss[0]
    assert list(h.snapshot_epochs) == [0, 13, 27, 40] and len(h.snapshots) == 4
    assert set(h.final) >= {"alignment", "uniformity"}


def test_two_embedding_losses_start_from_identical_weights() -> None:
    _needs("supcon", "info_nce")
    runs = E.run_all(FAST.with_losses(["supcon", "info_nce"]))
    assert not runs.errors
    a, b = runs.runs["supcon"].history, runs.runs["info_nce"].history
    assert all(np.array_equal(a.snapshots[0][k], b.snapshots[0][k]) for k in a.snapshots[0])
    assert not np.allclose(a.final_state["head.weight"], b.final_state["head.weight"])  # then they part
    assert a.snapshots[0]["head.weight"].shape == (2, 16)  # embedding_dim 2: on the circle


def test_embeddings_lie_on_the_unit_sphere_and_embed_leaves_the_model_alone() -> None:
    _needs("supcon")
    exp = dataclasses.replace(FAST, model=dataclasses.replace(FAST.model, embedding_dim=3))
    run = E.run(exp, "supcon")
    with torch.no_grad():
        direct = run.model(torch.as_tensor(run.dataset.X_test))
    torch.testing.assert_close(direct.norm(dim=1), torch.ones(len(direct)))  # the head normalises itself
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    for state in (None, run.history.snapshots[0], run.history.snapshots[-1]):
        z = embed(run.model, run.dataset.X_test, state)
        assert z.shape == (len(run.dataset.X_test), 3) and z.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())
    np.testing.assert_allclose(embed(run.model, run.dataset.X_test), direct.numpy(), atol=1e-6)
    initial = embed(run.model, run.dataset.X_test, run.history.snapshots[0])
    np.testing.assert_allclose(initial, embed(run.initial_model, run.dataset.X_test), atol=1e-6)


def test_recorded_metrics_match_an_independent_evaluation() -> None:
    _needs("supcon")
    run = E.run(FAST, "supcon")
    d = run.dataset
    z_train, z_test = embed(run.model, d.X_train), embed(run.model, d.X_test)
    means = np.stack([z_train[d.y_train == k].mean(0) for k in range(3)])
    nearest = np.linalg.norm(z_test[:, None] - means[None], axis=-1).argmin(1)
    assert run.history.test_acc[-1] == pytest.approx((nearest == d.y_test).mean(), abs=1e-6)
    squared = ((z_test[:, None] - z_test[None]) ** 2).sum(-1)[~np.eye(len(z_test), dtype=bool)]
    uniformity = math.log(np.exp(-2 * squared).mean())
    assert run.history.uniformity[-1] == pytest.approx(uniformity, abs=1e-5)


def test_supcon_separates_blobs_by_nearest_class_mean() -> None:
    _needs("supcon")
    exp = dataclasses.replace(FAST, optim=E.OptimSpec(epochs=200, snapshots=2))
    h = E.run(exp, "supcon").history
    assert h.test_acc[-1] > 0.9, h.final
    assert h.test_acc[-1] > h.test_acc[0] or h.test_acc[0] > 0.9


def test_instance_positives_train_something_else_than_class_positives() -> None:
    """Class positives pull a class together; instance positives only pull views together and so keep the
    class spread out (SimCLR's uniformity) while SupCon's collapse each blob to a point."""
    _needs("supcon")
    exp = dataclasses.replace(FAST, optim=E.OptimSpec(epochs=150, snapshots=2))
    by_class = E.run(exp, "supcon")
    by_instance = E.run(
        dataclasses.replace(exp, data=dataclasses.replace(BLOBS, positives="instance")), "supcon"
    )
    assert not np.allclose(by_class.history.train_loss, by_instance.history.train_loss)

    def spread(run: E.Run) -> float:
        z, y = embed(run.model, run.dataset.X_test), run.dataset.y_test
        return float(np.mean([((z[y == k] - z[y == k].mean(0)) ** 2).sum(1).mean() for k in range(3)]))

    assert spread(by_class) < 0.5 * spread(by_instance)
    assert by_instance.history.uniformity[-1] < by_class.history.uniformity[-1]


def test_embedding_runs_are_deterministic_and_train_with_sam_minibatches_and_batch_norm(probe) -> None:
    exp = E.Experiment(
        data=dataclasses.replace(BLOBS, label_noise=0.2, views=3),
        model=E.ModelSpec(width=8, depth=2, batch_norm=True, embedding_dim=3),
        optim=E.OptimSpec(optimizer="sam", epochs=5, batch_size=16, snapshots=2),
    )
    a, b = E.run(exp, "embedding_probe").history, E.run(exp, "embedding_probe").history
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    np.testing.assert_array_equal(a.alignment, b.alignment)
    assert np.isfinite(a.noisy_acc).all()  # nearest-class-mean fit to the flipped labels
    other = E.run(dataclasses.replace(exp, optim=dataclasses.replace(exp.optim, seed=1)), "embedding_probe")
    assert not np.array_equal(a.train_loss, other.history.train_loss)


def test_digits_cnn_encoder_trains_on_affine_views(probe) -> None:
    exp = E.Experiment(
        data=E.DataSpec(source="digits", n=200),
        model=E.ModelSpec(kind="cnn", width=8, embedding_dim=3),
        optim=E.OptimSpec(epochs=3, batch_size=64, snapshots=2),
    )
    run = E.run(exp, "embedding_probe")
    assert (
        run.history.snapshots[0]["head.weight"].shape == (3, 64) and np.isfinite(run.history.alignment).all()
    )
    assert run.history.alignment[0] > 0  # the test pairs are two different affine views


def test_embedding_losses_need_a_classification_dataset_and_two_outputs(probe) -> None:
    runs = E.run_all(E.Experiment(data=E.DataSpec(source="sine", n=60)), ["embedding_probe"])
    assert "needs a classification dataset" in runs.errors["embedding_probe"]
    data = make_dataset("moons", n=60, seed=0)
    with pytest.raises(ValueError, match=r"needs \(N, D\) embeddings with D >= 2"):
        fit(make_model("mlp", 2, 1, width=4), "embedding_probe", data, epochs=1)
    assert E.initial_model(FAST, "embedding_probe").head.weight.shape == (2, 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "views.count must be an integer >= 1"),
        ({"count": 9}, r"views.count must be an integer in \[1, 8\]"),
        ({"strength": -0.1}, "views.strength must be a finite number >= 0"),
        ({"strength": 9.0}, r"views.strength must be in \[0, 4\]"),
        ({"positives": "pairs"}, r"views.positives must be one of \['class', 'instance'\]"),
        ({"count": 1, "positives": "instance"}, "views.count must be >= 2 for instance positives"),
    ],
)
def test_bad_views_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Views(**kwargs)
