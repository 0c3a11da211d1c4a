"""Tests for lossviz.train.fit: accuracy on moons, recorded metrics against independent evaluation, SAM,
divergence, determinism, task checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, r2_score

from lossviz import losses
from lossviz.data import make_dataset
from lossviz.metrics import ece
from lossviz.models import make_model
from lossviz.train import OPTIMIZERS, embed, fit, predict_proba, with_state


@pytest.fixture(scope="module")
def moons():
    return make_dataset("moons", n=1000, noise=0.2, seed=0)


@pytest.fixture(scope="module")
def noisy_blobs():
    return make_dataset("blobs", n=300, n_classes=3, seed=0, label_noise=0.3)


def test_cross_entropy_reaches_95_percent_on_moons(moons) -> None:
    model = make_model("mlp", 2, 2, seed=0)
    history = fit(model, "cross_entropy", moons, optimizer="adam", lr=1e-2, epochs=300)
    assert history.test_acc[-1] >= 0.95, history.final
    assert not history.diverged
    assert history.train_loss[-1] < history.train_loss[0]


def test_history_layout_and_model_untouched(noisy_blobs) -> None:
    model = make_model("mlp", 2, 3, width=16, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(model, "cross_entropy", noisy_blobs, epochs=30, snapshots=7)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    np.testing.assert_array_equal(history.epochs, np.arange(31))
    for name in ("train_loss", "train_acc", "noisy_acc", "test_acc", "test_nll", "ece"):
        values = getattr(history, name)
        assert values.shape == (31,) and np.isfinite(values).all(), name
    assert history.snapshot_epochs[0] == 0 and history.snapshot_epochs[-1] == 30
    assert len(history.snapshots) == len(history.snapshot_epochs) == 7
    assert list(history.snapshots[0]) == [n for n, _ in model.named_parameters()]
    np.testing.assert_array_equal(history.snapshots[0]["head.weight"], model.head.weight.detach().numpy())
    np.testing.assert_array_equal(history.snapshots[-1]["head.weight"], history.final_state["head.weight"])
    assert set(history.final_state) == set(model.state_dict())
    assert history.loss_name == "cross_entropy" and history.optimizer == "adam" and history.seconds > 0
    for name in ("alignment", "uniformity"):  # embedding metrics: NaN columns for the other tasks
        assert getattr(history, name).shape == (31,) and np.isnan(getattr(history, name)).all(), name


def test_recorded_metrics_match_independent_evaluation(noisy_blobs) -> None:
    data = noisy_blobs
    model = make_model("mlp", 2, 3, width=16, seed=1)
    history = fit(model, "cross_entropy", data, epochs=40, lr=3e-2)
    trained = with_state(model, history.final_state)
    p_train = predict_proba(trained, data.X_train, "multiclass")
    p_test = predict_proba(trained, data.X_test, "multiclass")
    hits = p_train.argmax(1) == data.y_train
    assert history.train_acc[-1] == pytest.approx(hits.mean(), abs=1e-6)
    assert history.noisy_acc[-1] == pytest.approx(hits[data.noisy_mask].mean(), abs=1e-6)
    assert history.test_acc[-1] == pytest.approx(np.mean(p_test.argmax(1) == data.y_test), abs=1e-6)
    assert history.test_nll[-1] == pytest.approx(log_loss(data.y_test, p_test, labels=[0, 1, 2]), rel=1e-4)
    assert history.ece[-1] == pytest.approx(ece(p_test, data.y_test), abs=1e-5)
    with torch.no_grad():
        logits = trained(torch.as_tensor(data.X_train))
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(data.y_train))
    assert history.train_loss[-1] == pytest.approx(float(ce), rel=1e-5)


def test_noisy_acc_is_nan_without_noise(moons) -> None:
    history = fit(make_model("linear", 2, 2), "cross_entropy", moons, epochs=3)
    assert np.isnan(history.noisy_acc).all() and np.isfinite(history.test_acc).all()


def test_binary_loss_with_one_logit_and_multiclass_loss_with_two(moons) -> None:
    one = fit(make_model("mlp", 2, 1, seed=0), "logistic", moons, epochs=100)
    two = fit(make_model("mlp", 2, 2, seed=0), "cross_entropy", moons, epochs=100)
    assert one.test_acc[-1] > 0.9 and two.test_acc[-1] > 0.9
    trained = with_state(make_model("mlp", 2, 1, seed=0), one.final_state)
    p = predict_proba(trained, moons.X_test, "binary")
    assert one.test_acc[-1] == pytest.approx(np.mean(p.argmax(1) == moons.y_test), abs=1e-6)
    assert one.test_nll[-1] == pytest.approx(log_loss(moons.y_test, p[:, 1]), rel=1e-4)


def test_regression_records_r2_and_mse() -> None:
    data = make_dataset("sine", n=200, seed=0)
    model = make_model("mlp", 1, 1, width=32, activation="tanh", seed=0)
    history = fit(model, "squared", data, epochs=200)
    pred = predict_proba(with_state(model, history.final_state), data.X_test, "regression")
    assert history.test_acc[-1] == pytest.approx(r2_score(data.y_test, pred), abs=1e-4)
    assert history.test_nll[-1] == pytest.approx(np.mean((pred - data.y_test) ** 2), rel=1e-4)
    assert history.test_acc[-1] > 0.9
    assert np.isnan(history.ece).all() and np.isnan(history.noisy_acc).all()


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(optimizer: str, moons) -> None:
    lr = 1e-2 if optimizer.startswith("adam") else 0.1
    history = fit(make_model("mlp", 2, 2, width=16, seed=0), "cross_entropy", moons, optimizer, lr, epochs=60)
    assert history.train_loss[-1] < 0.8 * history.train_loss[0]


def test_sam_step_matches_hand_computation() -> None:
    # One full-batch SAM step with no momentum: w <- w - lr * grad L(w + rho g / ||g||), g = grad L(w)
    data = make_dataset("moons", n=40, seed=0)
    model = make_model("linear", 2, 2, seed=0)
    lr, rho = 0.5, 0.3
    history = fit(model, "cross_entropy", data, "sam", lr, epochs=1, rho=rho, momentum=0.0, snapshots=0)
    X, y = torch.as_tensor(data.X_train), torch.as_tensor(data.y_train)
    W = model.head.weight.detach().clone().requires_grad_(True)
    b = model.head.bias.detach().clone().requires_grad_(True)
    gW, gb = torch.autograd.grad(torch.nn.functional.cross_entropy(X @ W.T + b, y), (W, b))
    scale = rho / torch.sqrt(gW.pow(2).sum() + gb.pow(2).sum())
    W2 = (W + scale * gW).detach().requires_grad_(True)
    b2 = (b + scale * gb).detach().requires_grad_(True)
    hW, hb = torch.autograd.grad(torch.nn.functional.cross_entropy(X @ W2.T + b2, y), (W2, b2))
    np.testing.assert_allclose(history.final_state["head.weight"], (W - lr * hW).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(history.final_state["head.bias"], (b - lr * hb).detach().numpy(), rtol=1e-5)


def test_adamw_decouples_weight_decay(moons) -> None:
    model = make_model("mlp", 2, 2, width=8, seed=0)
    adam = fit(model, "cross_entropy", moons, "adam", 1e-2, weight_decay=0.1, epochs=5)
    adamw = fit(model, "cross_entropy", moons, "adamw", 1e-2, weight_decay=0.1, epochs=5)
    assert not np.allclose(adam.final_state["head.weight"], adamw.final_state["head.weight"])


def test_divergence_stops_and_reports(moons) -> None:
    model = make_model("mlp", 2, 2, seed=0)
    calls: list[tuple[float, str]] = []
    history = fit(
        model, "cross_entropy", moons, "sgd", 1e6, epochs=200, progress=lambda f, m: calls.append((f, m))
    )
    assert history.diverged
    assert "at epoch" in history.message and "smaller learning rate" in history.message
    assert "diverged" not in history.message  # the UI writes "<loss> diverged: <message>"
    assert len(history.epochs) < 201
    assert np.isfinite(history.train_loss).all()
    assert all(np.isfinite(v).all() for v in history.final_state.values())
    assert all(np.isfinite(v).all() for s in history.snapshots for v in s.values())
    assert calls[-1][0] == 1.0 and calls[-1][1] == history.message


def test_non_finite_loss_at_initialisation_is_reported(moons) -> None:
    @losses.register(title="always inf", latex="\\infty", task="multiclass", paper="test")
    def _test_infinite(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logits[:, 0] * math.inf

    try:
        history = fit(make_model("linear", 2, 2), "_test_infinite", moons, epochs=5)
    finally:
        losses.unregister("_test_infinite")
    assert history.diverged and "at initialisation" in history.message
    assert len(history.epochs) == 1


def test_minibatches_are_deterministic_per_seed(noisy_blobs) -> None:
    model = make_model("mlp", 2, 3, width=16, batch_norm=True, seed=0)
    a = fit(model, "cross_entropy", noisy_blobs, epochs=5, batch_size=32, seed=1)
    b = fit(model, "cross_entropy", noisy_blobs, epochs=5, batch_size=32, seed=1)
    c = fit(model, "cross_entropy", noisy_blobs, epochs=5, batch_size=32, seed=2)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    assert not np.array_equal(a.train_loss, c.train_loss)
    assert a.batch_size == 32


def test_progress_is_called_at_most_about_100_times(moons) -> None:
    calls: list[float] = []
    fit(make_model("linear", 2, 2), "cross_entropy", moons, epochs=300, progress=lambda f, m: calls.append(f))
    assert 10 <= len(calls) <= 101
    assert calls == sorted(calls) and calls[-1] == 1.0


@pytest.mark.parametrize(
    ("loss", "kwargs"),
    [
        ("elr", {"batch_size": 64}),
        ("elr", {}),
        ("vs_loss", {}),
        ("ldam", {"batch_size": 50}),
        ("soft_dice", {}),
        ("soft_dice", {"batch_size": 64}),
        ("pairwise_auc", {}),
    ],
)
def test_context_and_batch_level_losses_train(loss: str, kwargs: dict) -> None:
    data = make_dataset("moons", n=400, seed=0, imbalance=4.0, label_noise=0.1)
    bound = losses.make(loss)
    model = make_model("mlp", 2, losses.n_outputs(bound.task, 2), width=16, seed=0)
    history = fit(model, bound, data, epochs=60, lr=1e-2, **kwargs)
    assert not history.diverged and np.isfinite(history.train_loss).all()
    assert history.test_acc[-1] > 0.75, history.final


def test_cnn_on_digits_runs() -> None:
    data = make_dataset("digits", n=300, seed=0)
    model = make_model("cnn", 64, 10, width=16, seed=0)
    history = fit(model, "cross_entropy", data, epochs=15, batch_size=64, lr=3e-3)
    assert history.test_acc[-1] > 0.5


def test_harmonic_head_with_harmonic_loss_learns_class_centres() -> None:
    data = make_dataset("blobs", n=300, n_classes=4, seed=0)
    model = make_model("linear", 2, 4, head="harmonic", seed=0)
    history = fit(model, "harmonic", data, epochs=100, lr=0.2)
    assert history.test_acc[-1] > 0.7  # these blobs overlap: cross-entropy reaches about the same
    # the harmonic loss's weights become class centres: each class mean lies nearest its own weight
    centres = history.final_state["head.weight"]  # (K, 2)
    means = np.stack([data.X_train[data.y_train == k].mean(0) for k in range(4)])
    nearest = np.linalg.norm(means[:, None] - centres[None], axis=-1).argmin(1)
    np.testing.assert_array_equal(nearest, np.arange(4))


@pytest.mark.parametrize(
    ("loss", "data_kwargs", "n_out", "message"),
    [
        (
            "logistic",
            {"name": "blobs", "n_classes": 3},
            1,
            "loss 'logistic' is binary but dataset 'blobs' has 3",
        ),
        ("squared", {"name": "moons"}, 1, "loss 'squared' is for regression but dataset 'moons' is binary"),
        ("cross_entropy", {"name": "sine"}, 2, "is for multiclass but dataset 'sine' is regression"),
        ("cross_entropy", {"name": "moons"}, 1, r"needs \(N, 2\); build the model with n_outputs=2"),
        ("cross_entropy", {"name": "iris"}, 3, r"cannot take dataset 'iris'.s inputs of shape \(N, 4\)"),
        ("supcon", {"name": "sine"}, 2, "embedding loss 'supcon' needs a classification dataset"),
        ("supcon", {"name": "moons"}, 1, r"embedding loss 'supcon' needs \(N, D\) embeddings with D >= 2"),
    ],
)
def test_incompatible_task_or_model(loss: str, data_kwargs: dict, n_out: int, message: str) -> None:
    data = make_dataset(seed=0, **data_kwargs)
    model = make_model("linear", 2 if data.name == "iris" else data.n_features, n_out)
    with pytest.raises(ValueError, match=message):
        fit(model, loss, data, epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be"),
        ({"weight_decay": -1.0}, "weight_decay must be"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1 or None"),
        ({"snapshots": -1}, "snapshots must be"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str, moons) -> None:
    with pytest.raises(ValueError, match=message):
        fit(make_model("linear", 2, 2), "cross_entropy", moons, **kwargs)


def test_embed_normalises_with_a_state_and_never_mutates_the_model() -> None:
    model = make_model("mlp", 2, 3, width=8, seed=0)  # a linear head: embed still returns unit rows
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    z = embed(model, X)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-6)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model(torch.as_tensor(X)), dim=1).numpy()
    np.testing.assert_allclose(z, expected, atol=1e-6)
    other = {k: np.zeros_like(v.numpy()) for k, v in model.state_dict().items()}
    other["head.bias"] = np.array([0.0, 3.0, 4.0], np.float32)  # every input maps to the bias direction
    np.testing.assert_allclose(embed(model, X, other, batch=7), np.tile([0.0, 0.6, 0.8], (20, 1)), atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="batch must be an integer >= 1, got 0"):
        embed(model, X, batch=0)
