"""Neural collapse over a run's snapshots (lossviz.evaluate.collapse_over_training) against the same computed
by hand, the model left untouched, the heads without class rows, and the class-mean view with its fitted
simplex ETF (class_mean_geometry)."""

from __future__ import annotations

import copy
import math
from itertools import combinations

import numpy as np
import pytest
import torch

from lossviz import evaluate, metrics
from lossviz import experiment as ex
from lossviz.train import with_state

TINY = ex.Experiment(
    ex.DataSpec(source="blobs", n=120, n_classes=3),
    ex.ModelSpec(width=8, depth=1),
    ex.OptimSpec(epochs=20, snapshots=5),
)
FIELDS = ("nc1", "nc2_equinorm", "nc2_equiangular", "nc2_max_angle", "nc3", "nc4")


@pytest.fixture(scope="module")
def run() -> ex.Run:
    return ex.run(TINY, "cross_entropy")


def _by_hand(run: ex.Run, state: dict[str, np.ndarray], **kwargs) -> metrics.NeuralCollapse:
    """The measures of one snapshot from a model copy carrying its weights (no functional_call)."""
    trained = with_state(run.initial_model, state)
    with torch.no_grad():
        h = trained.features(torch.as_tensor(run.dataset.X_train, dtype=torch.float32)).double().numpy()
    W, b = np.asarray(state["head.weight"], np.float64), np.asarray(state["head.bias"], np.float64)
    return metrics.neural_collapse(h, run.dataset.y_train, W, b, n_classes=run.dataset.n_classes, **kwargs)


def _assert_same(found: metrics.NeuralCollapse, expected: metrics.NeuralCollapse) -> None:
    for name in FIELDS:
        assert getattr(found, name) == pytest.approx(getattr(expected, name), rel=1e-6, abs=1e-9), name
    np.testing.assert_allclose(found.class_means, expected.class_means, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(found.class_counts, expected.class_counts)


def test_every_snapshot_is_measured_and_one_matches_the_hand_computation(run: ex.Run) -> None:
    found = evaluate.collapse_over_training(run.initial_model, run.dataset, run.history)
    history = run.history
    np.testing.assert_array_equal(found.epochs, history.snapshot_epochs)
    assert len(found.collapse) == len(history.snapshots) == 5
    middle = len(history.snapshots) // 2
    _assert_same(found.collapse[middle], _by_hand(run, history.snapshots[middle]))
    _assert_same(found.final, _by_hand(run, history.snapshots[-1]))
    np.testing.assert_allclose(found.classifier, history.snapshots[-1]["head.weight"])
    assert found.series("nc1").shape == (5,) and np.isfinite(found.series("nc4")).all()
    assert found.series("nc1")[-1] != found.series("nc1")[0]  # the snapshots' own weights, not one state


def test_the_centre_reaches_the_metrics(run: ex.Run) -> None:
    found = evaluate.collapse_over_training(run.initial_model, run.dataset, run.history, centre="classes")
    assert found.final.centre == "classes"
    _assert_same(found.final, _by_hand(run, run.history.snapshots[-1], centre="classes"))


def test_the_model_is_untouched(run: ex.Run) -> None:
    model = run.initial_model
    before = copy.deepcopy(model.state_dict())
    training = model.training
    evaluate.collapse_over_training(model, run.dataset, run.history)
    assert model.training == training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_a_run_without_snapshots_uses_its_final_weights() -> None:
    bare = ex.run(ex.Experiment(TINY.data, TINY.model, ex.OptimSpec(epochs=20, snapshots=0)), "cross_entropy")
    found = evaluate.collapse_over_training(bare.initial_model, bare.dataset, bare.history)
    np.testing.assert_array_equal(found.epochs, [20])
    _assert_same(found.final, _by_hand(bare, bare.history.final_state))


def test_a_cosine_head_has_no_class_rows_and_uses_its_own_argmax() -> None:
    cos = ex.run(TINY, "cosface")
    found = evaluate.collapse_over_training(cos.initial_model, cos.dataset, cos.history)
    assert found.classifier is None and math.isnan(found.final.nc3)
    trained = with_state(cos.initial_model, cos.history.snapshots[-1])
    X = torch.as_tensor(cos.dataset.X_train, dtype=torch.float32)
    with torch.no_grad():
        h, predicted = trained.features(X).double().numpy(), trained(X).argmax(1).numpy()
    expected = metrics.neural_collapse(h, cos.dataset.y_train, predicted=predicted, n_classes=3)
    assert found.final.nc4 == pytest.approx(expected.nc4)
    assert found.final.nc1 == pytest.approx(expected.nc1, rel=1e-6)


def test_one_binary_logit_becomes_a_two_row_classifier() -> None:
    binary = ex.run(ex.Experiment(ex.DataSpec(source="moons", n=120), TINY.model, TINY.optim), "logistic")
    found = evaluate.collapse_over_training(binary.initial_model, binary.dataset, binary.history)
    state = binary.history.snapshots[-1]
    w = np.asarray(state["head.weight"], np.float64)  # (1, D)
    np.testing.assert_allclose(found.classifier, np.concatenate([-w / 2, w / 2]))
    trained = with_state(binary.initial_model, state)
    X = torch.as_tensor(binary.dataset.X_train, dtype=torch.float32)
    with torch.no_grad():
        h, logit = trained.features(X).double().numpy(), trained(X).reshape(-1).numpy()
    expected = metrics.neural_collapse(h, binary.dataset.y_train, predicted=(logit > 0).astype(int))
    assert found.final.nc4 == pytest.approx(expected.nc4)
    assert math.isfinite(found.final.nc3)


def test_regression_data_is_refused() -> None:
    sine = ex.run(ex.Experiment(ex.DataSpec(source="sine", n=60), TINY.model, TINY.optim), "squared")
    with pytest.raises(ValueError, match="classification dataset"):
        evaluate.collapse_over_training(sine.initial_model, sine.dataset, sine.history)


# ------------------------------------------------------------------------------------------- the ETF view


def _collapse(k: int, d: int, seed: int = 0, exact: bool = False) -> metrics.NeuralCollapse:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), 10)
    means = metrics.simplex_etf(k, d, scale=3.0, seed=seed) if exact else rng.normal(size=(k, d))
    spread = 0.0 if exact else 0.3
    return metrics.neural_collapse(means[labels] + spread * rng.normal(size=(len(labels), d)), labels)


def _pairwise_cosines(v: np.ndarray) -> list[float]:
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    return [float(unit[a] @ unit[b]) for a, b in combinations(range(len(v)), 2)]


@pytest.mark.parametrize("k, dims", [(2, 2), (3, 2), (4, 3), (6, 3)])
def test_the_fitted_reference_is_a_simplex_etf(k: int, dims: int) -> None:
    found = evaluate.class_mean_geometry(_collapse(k, 8, seed=k))
    assert found.means.shape == found.etf.shape == (k, dims)
    if k <= 4:  # K - 1 <= dims: the view is exact
        norms = np.linalg.norm(found.etf, axis=1)
        np.testing.assert_allclose(norms, norms.mean(), rtol=1e-10)
        np.testing.assert_allclose(_pairwise_cosines(found.etf), -1.0 / (k - 1), atol=1e-10)
        assert found.explained == pytest.approx(1.0)
        # the view keeps the centred means' norms and angles
        centred = _collapse(k, 8, seed=k).centred_means
        np.testing.assert_allclose(np.linalg.norm(found.means, axis=1), np.linalg.norm(centred, axis=1))
    else:
        assert 0.0 < found.explained < 1.0


def test_procrustes_puts_an_exact_etf_on_itself() -> None:
    found = evaluate.class_mean_geometry(_collapse(4, 8, exact=True))
    np.testing.assert_allclose(found.etf, found.means, atol=1e-10)


def test_procrustes_beats_other_rotations_and_scales() -> None:
    found = evaluate.class_mean_geometry(_collapse(3, 8, seed=3))
    best = np.linalg.norm(found.etf - found.means)
    rng = np.random.default_rng(0)
    for _ in range(50):
        angle, scale = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        assert np.linalg.norm(scale * found.etf @ rotation - found.means) >= best - 1e-12


def test_classifier_rows_share_the_axes_and_the_means_scale() -> None:
    nc = _collapse(3, 8, seed=1)
    found = evaluate.class_mean_geometry(nc, classifier=2.0 * nc.centred_means)
    np.testing.assert_allclose(found.classifier, found.means, atol=1e-10)  # W ∝ M lands on the means
    np.testing.assert_allclose(found.classifier_norms, 2.0 * np.linalg.norm(nc.centred_means, axis=1))
    bare = evaluate.class_mean_geometry(nc)
    assert bare.classifier is None and bare.classifier_norms is None


def test_too_few_feature_dimensions_get_no_etf() -> None:
    found = evaluate.class_mean_geometry(_collapse(4, 2, seed=2))  # 4 means in 2-D: no 3-D simplex fits
    assert found.etf is None and found.means.shape == (4, 3)
    with pytest.raises(ValueError, match="dims must be 2 or 3"):
        evaluate.class_mean_geometry(_collapse(3, 8), dims=4)


def test_an_encoder_is_measured_on_its_unit_embeddings_without_a_classifier() -> None:
    from lossviz import train

    experiment = ex.Experiment(
        ex.DataSpec(source="blobs", n=90, n_classes=3, noise=0.5, seed=1),
        ex.ModelSpec(width=8, depth=1, embedding_dim=3),
        ex.OptimSpec(epochs=12, snapshots=3, seed=2),
    )
    trained = ex.run(experiment, ex.LossChoice("supcon"))
    data = ex.dataset(experiment.data)
    found = evaluate.collapse_over_training(trained.model, data, trained.history)
    assert found.classifier is None and len(found.collapse) == len(trained.history.snapshot_epochs)
    snapshots = zip(trained.history.snapshot_epochs, trained.history.snapshots, strict=True)
    for (epoch, state), measured in zip(snapshots, found.collapse, strict=True):
        z = train.embed(trained.model, data.X_train, state)  # (N, 3) on the unit sphere
        expected = metrics.neural_collapse(z, data.y_train, n_classes=data.n_classes)
        assert measured.nc1 == pytest.approx(expected.nc1, rel=1e-6), epoch
        assert measured.nc2_equiangular == pytest.approx(expected.nc2_equiangular, rel=1e-6, abs=1e-9)
        assert math.isnan(measured.nc3) and math.isnan(measured.nc4)  # no classifier: nothing to align
