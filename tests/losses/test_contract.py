"""The contract every registered loss keeps, parametrized over the whole registry."""

from __future__ import annotations

import inspect

import pytest
import torch

from lossviz import losses
from tests.losses.conftest import N_SAMPLES, extreme_inputs, make_inputs, numerical_jacobian

ALL = losses.names()


def _param_settings(spec):
    """Defaults, then each Param at its low and at its high with the others at their defaults."""
    yield "defaults", {}
    for p in spec.params:
        yield f"{p.name}=low", {p.name: p.low}
        yield f"{p.name}=high", {p.name: p.high}


def test_at_least_fifty_losses_registered():
    assert len(ALL) >= 50, f"only {len(ALL)} losses registered"


@pytest.mark.parametrize("name", ALL)
def test_metadata_is_complete(name):
    spec = losses.get(name)
    assert spec.title and spec.latex and spec.paper, f"{name} lacks title, latex or paper"
    assert spec.task in losses.TASKS


@pytest.mark.parametrize("name", ALL)
def test_signature_agrees_with_params(name):
    spec = losses.get(name)
    sig = list(inspect.signature(spec.fn).parameters.values())[2:]
    hyper = {p.name: p.default for p in sig if p.name not in spec.context}
    assert hyper == {p.name: p.default for p in spec.params}
    for p in spec.params:
        assert p.contains(p.default)


@pytest.mark.parametrize("name", ALL)
def test_output_shape_and_dtype(name):
    spec = losses.get(name)
    pred, target = make_inputs(spec.task)
    out = spec(pred, target)
    expected = () if spec.batch else (N_SAMPLES,)
    assert out.shape == expected
    assert out.dtype == pred.dtype


@pytest.mark.parametrize("name", ALL)
def test_finite_values_and_gradients_everywhere(name):
    spec = losses.get(name)
    for setting, params in _param_settings(spec):
        for kind, (pred, target) in {
            "moderate": make_inputs(spec.task, dtype=torch.float32),
            "extreme": extreme_inputs(spec.task),
        }.items():
            pred = pred.clone().requires_grad_(True)
            out = spec(pred, target, **params)
            assert torch.isfinite(out).all(), f"{name} [{setting}, {kind}] value {out}"
            (grad,) = torch.autograd.grad(out.sum(), pred)
            assert torch.isfinite(grad).all(), f"{name} [{setting}, {kind}] gradient {grad}"


@pytest.mark.parametrize("name", [n for n in ALL if not losses.get(n).stop_gradient])
def test_float64_gradcheck(name):
    spec = losses.get(name)
    pred, target = make_inputs(spec.task, scale=1.5, seed=1)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: spec(x, target), (pred,), eps=1e-6, atol=1e-5)


STOP_GRADIENT = [n for n in ALL if losses.get(n).stop_gradient]


@pytest.mark.parametrize("name", STOP_GRADIENT)
def test_stop_gradient_is_the_gradient_of_the_reference_with_frozen_statistics(name):
    # What gradcheck checks for the other losses, with the detached quantities held at the evaluation point:
    # autograd through the loss must equal finite differences of x -> reference(x, frozen=x0) at x0.
    # Scale 0.5 keeps cosine logits inside [-1, 1], where no clamp hides the statistics.
    spec = losses.get(name)
    pred, target = make_inputs(spec.task, scale=0.5, seed=1)
    autograd = torch.autograd.functional.jacobian(lambda x: spec(x, target), pred)  # (*out, *pred)
    numerical = numerical_jacobian(lambda x: spec.reference(x, target, **spec.defaults, frozen=pred), pred)
    torch.testing.assert_close(autograd.reshape(numerical.shape), numerical, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", [n for n in ALL if losses.get(n).reference is not None])
def test_matches_independent_reference(name):
    spec = losses.get(name)
    pred, target = make_inputs(spec.task, seed=2)
    torch.testing.assert_close(spec(pred, target), spec.reference(pred, target, **spec.defaults))
