"""The contract every registered loss keeps, parametrized over the whole registry."""

from __future__ import annotations

import inspect

import pytest
import torch

from lossviz import losses
from tests.losses.conftest import N_SAMPLES, extreme_inputs, make_inputs

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


@pytest.mark.parametrize("name", ALL)
def test_float64_gradcheck(name):
    spec = losses.get(name)
    pred, target = make_inputs(spec.task, scale=1.5, seed=1)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: spec(x, target), (pred,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in ALL if losses.get(n).reference is not None])
def test_matches_independent_reference(name):
    spec = losses.get(name)
    pred, target = make_inputs(spec.task, seed=2)
    torch.testing.assert_close(spec(pred, target), spec.reference(pred, target, **spec.defaults))
