"""lossviz.jobs: job specs and digests, sweep expansion and validation, and what run_job computes (checked
against closed forms, an independently built model, and the exact Hessian)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re

import numpy as np
import pytest
import torch
from torch.func import functional_call

from lossviz import experiment as ex
from lossviz import planes
from lossviz.jobs import SCHEMA, Job, Sweep, deterministic, run_job, varying_fields

TINY = {"data": {"n": 100}, "model": {"width": 8}, "optim": {"epochs": 20, "snapshots": 3}}


def tiny(losses=("cross_entropy",), **data) -> ex.Experiment:
    raw = json.loads(json.dumps(TINY))
    raw["data"].update(data)
    return ex.Experiment.from_dict({**raw, "losses": list(losses)})


# ----------------------------------------------------------------------------------------------- jobs


def test_digest_is_the_documented_sha256_of_the_canonical_spec():
    job = Job("landscape", tiny(), (("grid", 5),))
    body = {"kind": "landscape", "experiment": job.experiment.to_dict(), "options": dict(job.options)}
    salt = f"lossviz-job-v{SCHEMA}-experiment-v{ex.SCHEMA}:"
    text = salt + json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert job.digest == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_equal_jobs_share_a_digest_and_different_ones_do_not():
    a = Job("landscape", tiny(), (("span", 1.0), ("grid", 21)))
    b = Job("landscape", tiny(), {"grid": 21})  # defaults made explicit; order does not matter
    assert a.digest == b.digest and a == b
    assert Job.from_json(a.to_json()) == a
    assert Job("landscape", tiny(), {"grid": 23}).digest != a.digest
    assert Job("train", tiny(label_noise=0.2)).digest != Job("train", tiny()).digest
    assert Job("curvature", tiny()).digest != Job("train", tiny()).digest


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"kind": "fit", "experiment": {}}, "kind must be one of"),
        ({"kind": "train", "experiment": {"losses": ["cross_entropy", "focal"]}}, "experiment.losses"),
        ({"kind": "train", "experiment": {"losses": []}}, "exactly one loss"),
        ({"kind": "landscape", "experiment": {"losses": ["focal"]}, "options": {"gridd": 3}}, "gridd"),
        ({"kind": "landscape", "experiment": {"losses": ["focal"]}, "options": {"grid": 1}}, "options.grid"),
        ({"kind": "landscape", "experiment": {"losses": ["focal"]}, "options": {"span": -1}}, "options.span"),
        ({"kind": "train", "experiment": {"losses": ["focal"]}, "options": {"grid": 5}}, "for a train job"),
        ({"schema": 99, "kind": "train", "experiment": {"losses": ["focal"]}}, "schema"),
        ({"kind": "train", "experiment": {"data": {"label_noise": 2}, "losses": ["focal"]}}, "label_noise"),
        ({"kind": "train", "experimnt": {}}, "unknown field(s) ['experimnt']"),
    ],
)
def test_bad_job_specs_name_the_field(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Job.from_dict(raw)


# ----------------------------------------------------------------------------------------------- sweeps


def test_a_sweep_is_the_product_of_its_axes_in_axis_order():
    noise, names, seeds = [0.0, 0.2], ["cross_entropy", "gce"], [0, 3]
    sweep = Sweep(tiny(), (("data.label_noise", noise), ("loss", names), ("seed", seeds)))
    jobs = sweep.jobs()
    got = [(j.experiment.data.label_noise, j.loss.name, j.experiment.data.seed) for j in jobs]
    assert got == list(itertools.product(noise, names, seeds))
    # a seed draws new flips and new initial weights: it sets both seeds
    assert all(j.experiment.data.seed == j.experiment.optim.seed for j in jobs)
    assert len({j.digest for j in jobs}) == 8
    assert varying_fields(jobs) == ["loss", "data.label_noise", "seed"]


def test_axes_as_an_object_or_a_list_of_pairs_and_json_round_trip():
    as_object = Sweep.from_dict({"base": tiny().to_dict(), "axes": {"optim.lr": [0.01, 0.1], "seed": [0, 1]}})
    as_list = Sweep.from_dict(
        {"base": tiny().to_dict(), "axes": [["optim.lr", [0.01, 0.1]], ["seed", [0, 1]]]}
    )
    assert as_object == as_list
    assert Sweep.from_json(as_object.to_json()).jobs() == as_object.jobs()
    assert [j.experiment.optim.lr for j in as_object.jobs()] == [0.01, 0.01, 0.1, 0.1]


def test_without_a_loss_axis_the_base_losses_are_the_outer_axis():
    sweep = Sweep(tiny(("cross_entropy", "focal")), (("model.width", [4, 8]),))
    assert [(j.loss.name, j.experiment.model.width) for j in sweep.jobs()] == [
        ("cross_entropy", 4),
        ("cross_entropy", 8),
        ("focal", 4),
        ("focal", 8),
    ]


def test_a_loss_parameter_axis_applies_to_the_losses_that_have_it_without_duplicates():
    sweep = Sweep(tiny(), (("loss", ["cross_entropy", "gce"]), ("loss.q", [0.3, 0.7])))
    jobs = sweep.jobs()
    assert [(j.loss.name, dict(j.loss.params).get("q")) for j in jobs] == [
        ("cross_entropy", None),
        ("gce", 0.3),
        ("gce", 0.7),
    ]
    assert varying_fields(jobs) == ["loss", "loss.q"]  # cross-entropy lacking q does not make it vary


def test_repeated_values_add_no_jobs_and_loss_values_take_params():
    sweep = Sweep(
        tiny(), (("data.label_noise", [0, 0.0]), ("loss", [{"name": "focal", "params": {"gamma": 1}}]))
    )
    (job,) = sweep.jobs()
    assert dict(job.loss.params) == {"gamma": 1.0}
    assert json.loads(sweep.to_json())["axes"]["loss"] == [{"name": "focal", "params": {"gamma": 1.0}}]


def test_options_apply_to_every_job_and_can_be_an_axis():
    sweep = Sweep(tiny(), (("options.span", [0.5, 2]),), kind="landscape", options={"grid": 5})
    assert [dict(j.options) for j in sweep.jobs()] == [
        {"grid": 5, "span": 0.5, "directions_seed": 0},
        {"grid": 5, "span": 2.0, "directions_seed": 0},
    ]


@pytest.mark.parametrize(
    "axes, message",
    [
        (
            {"data.labelnoise": [0.1]},
            r"axes.data.labelnoise: unknown field 'labelnoise' of data \(did you mean",
        ),
        ({"data.label_noise": []}, r"axes.data.label_noise: an axis needs at least one value"),
        ({"data.label_noise": [0.1, 2]}, r"axes.data.label_noise\[1\]: data.label_noise must be in"),
        ({"data.label_noise": 0.1}, r"axes.data.label_noise must be a list"),
        ({"loss": ["cross_entropyy"]}, r"axes.loss\[0\]: .*unknown loss 'cross_entropyy'"),
        ({"loss.gama": [1]}, r"axes.loss.gama: no loss of the sweep has a parameter 'gama'"),
        ({"loss": ["gce"], "loss.q": [5]}, r"axes.loss.q\[0\]: gce: q must be in"),
        ({"seed": [0, -1]}, r"axes.seed\[1\]: data.seed must be an integer >= 0"),
        ({"model.kind": ["transformer"]}, r"axes.model.kind\[0\]: model.kind must be one of"),
        ({"options.grid": [5]}, r"axes.options.grid: unknown option 'grid' of a train job"),
        ({"colour": [1]}, r"axes.colour: unknown axis"),
    ],
)
def test_bad_axes_name_the_axis_and_the_value(axes, message):
    with pytest.raises(ValueError, match=message):
        Sweep.from_dict({"base": tiny().to_dict(), "axes": axes})


def test_a_sweep_without_losses_and_an_invalid_combination_are_refused():
    with pytest.raises(ValueError, match=r"base\.losses: give at least one loss"):
        Sweep(tiny(()), (("seed", [0]),))
    # each value is valid alone; together they are not (instance positives need two views)
    sweep = Sweep(tiny(), (("data.views", [1]), ("data.positives", ["instance"])))
    with pytest.raises(ValueError, match=r"axes: the combination .*data.views=1.*is invalid"):
        sweep.jobs()


# ----------------------------------------------------------------------------------------------- run_job


@pytest.fixture(scope="module")
def noisy_job() -> tuple[Job, object]:
    job = Job("train", tiny(label_noise=0.3))
    return job, run_job(job)


def test_train_job_summary_matches_an_independent_run(noisy_job):
    job, result = noisy_job
    run = ex.run(job.experiment, job.loss, device="cpu")  # the same experiment trained again here
    for key in ("test_acc", "train_acc", "noisy_acc", "test_nll", "ece"):
        assert result.summary[key] == pytest.approx(run.history.final[key], abs=1e-6), key
    assert result.summary["final_train_loss"] == pytest.approx(run.history.train_loss[-1], abs=1e-6)
    assert result.summary["diverged"] == 0.0 and result.summary["epochs_run"] == 20.0
    assert result.summary["seconds"] > 0
    assert set(deterministic(result.summary)) == set(result.summary) - {"seconds", "train_seconds"}
    np.testing.assert_allclose(result.arrays["test_acc"], run.history.test_acc, atol=1e-6)
    np.testing.assert_array_equal(result.arrays["snapshot_epochs"], [0, 10, 20])
    np.testing.assert_array_equal(result.arrays["noisy_mask"], run.dataset.noisy_mask)


def test_train_predictions_reproduce_the_recorded_accuracies(noisy_job):
    _, result = noisy_job
    a = result.arrays
    predictions, y, noisy = a["train_predictions"], a["y_train"], a["noisy_mask"]
    assert predictions.dtype == np.int16 and predictions.shape == (3, len(y))
    assert noisy.sum() == round(0.3 * len(y))
    epochs = a["snapshot_epochs"]
    # History records accuracy on the given labels and on the noisy subset every epoch, inside the loop
    np.testing.assert_allclose((predictions == y).mean(1), a["train_acc"][epochs], atol=1e-6)
    np.testing.assert_allclose((predictions[:, noisy] == y[noisy]).mean(1), a["noisy_acc"][epochs], atol=1e-6)


def test_gradient_weights_are_the_softmax_residual_norm_at_every_snapshot(noisy_job):
    job, result = noisy_job
    run = ex.run(job.experiment, job.loss, device="cpu")
    X = torch.as_tensor(run.dataset.X_train)
    y = torch.as_tensor(run.dataset.y_train)
    weights = result.arrays["train_gradient_weights"]
    assert weights.dtype == np.float32 and weights.shape == (3, len(y))
    for s, snapshot in enumerate(run.history.snapshots):
        params = {k: torch.as_tensor(v) for k, v in snapshot.items()}
        with torch.no_grad():
            p = torch.softmax(functional_call(run.model, params, (X,)), dim=1)
        # d CE / d logits = softmax - one_hot(y): its norm per sample
        expected = (p - torch.nn.functional.one_hot(y, 2)).norm(dim=1).numpy()
        np.testing.assert_allclose(weights[s], expected, rtol=1e-5, atol=1e-7)


def test_regression_job_has_gradient_weights_but_no_predictions():
    job = Job("train", tiny(("squared",), source="sine"))
    result = run_job(job)
    run = ex.run(job.experiment, job.loss, device="cpu")
    assert "train_predictions" not in result.arrays
    X = torch.as_tensor(run.dataset.X_train)
    final = {k: torch.as_tensor(v) for k, v in run.history.snapshots[-1].items()}
    with torch.no_grad():
        pred = functional_call(run.model, final, (X,)).reshape(-1)
    expected = (2 * (pred - torch.as_tensor(run.dataset.y_train))).abs().numpy()  # d r^2 / d pred
    np.testing.assert_allclose(result.arrays["train_gradient_weights"][-1], expected, rtol=1e-5, atol=1e-6)


def test_landscape_job_values_at_grid_points_match_a_hand_shifted_model():
    job = Job("landscape", tiny(), {"grid": 5, "span": 0.5, "directions_seed": 3})
    result = run_job(job)
    a = result.arrays
    np.testing.assert_allclose(a["xcoordinates"], np.linspace(-0.5, 0.5, 5))
    np.testing.assert_allclose(a["ycoordinates"], np.linspace(-0.5, 0.5, 5))
    assert a["train_loss"].shape == a["test_loss"].shape == a["train_acc"].shape == (5, 5)
    # the centre is the trained model: its loss is the last epoch's training loss
    assert result.summary["train_loss_centre"] == pytest.approx(result.summary["final_train_loss"], rel=1e-5)
    run = ex.run(job.experiment, job.loss, device="cpu")
    plane = planes.view_plane(run.model, run.history, "random", 3, 0.5)
    X, y = torch.as_tensor(run.dataset.X_train), torch.as_tensor(run.dataset.y_train)
    for i, j in [(0, 4), (4, 0), (1, 3)]:  # off the diagonal: z[i, j] is at (x[j], y[i])
        shifted = planes.shifted_state(run.model, plane, a["xcoordinates"][j], a["ycoordinates"][i])
        with torch.no_grad():
            logits = functional_call(run.model, {k: torch.as_tensor(v) for k, v in shifted.items()}, (X,))
        loss = torch.nn.functional.cross_entropy(logits, y).item()
        assert a["train_loss"][i, j] == pytest.approx(loss, rel=1e-5)
        assert a["train_acc"][i, j] == pytest.approx((logits.argmax(1) == y).float().mean().item(), abs=1e-6)


def test_curvature_job_matches_the_exact_hessian():
    job = Job("curvature", tiny(), {"k": 2, "trace_samples": 8})
    result = run_job(job)
    run = ex.run(job.experiment, job.loss, device="cpu")
    X, y = torch.as_tensor(run.dataset.X_train), torch.as_tensor(run.dataset.y_train)
    names = [n for n, _ in run.model.named_parameters()]
    shapes = [p.shape for _, p in run.model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for _, p in run.model.named_parameters()]).double()

    def mean_loss(theta: torch.Tensor) -> torch.Tensor:
        params, at = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = theta[at : at + shape.numel()].reshape(shape)
            at += shape.numel()
        logits = functional_call(run.model.double(), params, (X.double(),))
        return torch.nn.functional.cross_entropy(logits, y)

    H = torch.autograd.functional.hessian(mean_loss, flat, vectorize=True)  # (P, P)
    eigenvalues = torch.linalg.eigvalsh(H).flip(0)[:2].numpy()
    np.testing.assert_allclose(result.arrays["eigenvalues"], eigenvalues, rtol=1e-3)
    assert result.summary["trace"] == pytest.approx(torch.trace(H).item(), rel=1e-3)  # exact for 114 params
    assert result.summary["n_params"] == flat.numel()
    lr = job.experiment.optim.lr
    assert result.summary["lambda_max_vs_2_over_lr"] == pytest.approx(eigenvalues[0] * lr / 2, rel=1e-3)


def test_a_job_that_cannot_run_raises_value_error():
    with pytest.raises(ValueError, match="regression"):
        run_job(Job("train", tiny(("squared",))))  # a regression loss on a classification set
