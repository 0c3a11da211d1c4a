"""Tests for lossviz.models: shapes, options, deterministic initialisation, the harmonic head."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from lossviz.models import MLP, DigitsCNN, HarmonicHead, SphereHead, make_model


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.parametrize(
    ("kind", "in_features", "n_outputs", "head"),
    [
        ("linear", 2, 1, "linear"),
        ("linear", 4, 3, "harmonic"),
        ("mlp", 2, 2, "linear"),
        ("mlp", 30, 1, "linear"),
        ("mlp", 2, 5, "harmonic"),
        ("cnn", 64, 10, "linear"),
        ("cnn", 64, 10, "harmonic"),
    ],
    ids=lambda v: str(v),
)
def test_output_shape(kind: str, in_features: int, n_outputs: int, head: str) -> None:
    model = make_model(kind, in_features, n_outputs, head=head)
    out = model(torch.randn(7, in_features))
    assert out.shape == (7, n_outputs)
    assert torch.isfinite(out).all()


def test_mlp_default_architecture_is_2_64_64_2() -> None:
    model = MLP(2, 2)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 64), (64, 64), (64, 2)]
    assert sum(p.numel() for p in model.parameters()) == 2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2


@pytest.mark.parametrize(
    ("activation", "residual", "batch_norm"),
    list(itertools.product(["relu", "tanh", "gelu", "silu"], [False, True], [False, True])),
)
def test_mlp_options(activation: str, residual: bool, batch_norm: bool) -> None:
    options = {"activation": activation, "residual": residual, "batch_norm": batch_norm}
    model = make_model("mlp", 3, 4, width=8, depth=3, **options)
    assert model(torch.randn(6, 3)).shape == (6, 4)
    has_bn = any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert has_bn == batch_norm
    names = [type(m).__name__.lower() for m in model.modules()]
    assert activation in "".join(names)


def test_residual_block_adds_identity() -> None:
    # With the residual layer's weights zeroed (relu(0) = 0), the block is exactly the identity.
    model = make_model("mlp", 2, 2, width=8, depth=2, residual=True)
    block = model.body[2]
    with torch.no_grad():
        block.linear.weight.zero_()
        block.linear.bias.zero_()
    h = torch.randn(5, 8)
    assert torch.equal(block(h), h)
    plain = make_model("mlp", 2, 2, width=8, depth=2, residual=False)
    assert not any(type(m).__name__ == "_ResidualBlock" for m in plain.modules())


def test_depth_zero_is_linear() -> None:
    model = make_model("mlp", 3, 2, depth=0)
    assert [type(m) for m in model.modules() if not isinstance(m, (nn.Sequential, MLP))] == [nn.Linear]


def test_cnn_accepts_flat_and_image_inputs() -> None:
    model = DigitsCNN(10, channels=4)
    x = torch.randn(3, 64)
    torch.testing.assert_close(model(x), model(x.reshape(3, 1, 8, 8)))
    with pytest.raises(ValueError, match="N, 64"):
        model(torch.randn(3, 10))


@pytest.mark.parametrize("kind", ["linear", "mlp", "cnn"])
def test_initialisation_deterministic_and_no_global_rng_leak(kind: str) -> None:
    in_features = 64 if kind == "cnn" else 2
    state = torch.random.get_rng_state()
    a = _params(make_model(kind, in_features, 3, seed=5))
    assert torch.equal(state, torch.random.get_rng_state()), "make_model changed the global RNG"
    torch.manual_seed(123)  # global state must not matter
    b = _params(make_model(kind, in_features, 3, seed=5))
    c = _params(make_model(kind, in_features, 3, seed=6))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_harmonic_head_matches_cdist() -> None:
    head = HarmonicHead(5, 4, exponent=2.0)
    h = torch.randn(9, 5, dtype=torch.float64)
    head = head.double()
    expected = -2.0 * torch.log(torch.cdist(h, head.weight))
    torch.testing.assert_close(head(h), expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(head.distances(h), torch.cdist(h, head.weight), rtol=1e-9, atol=1e-9)


def test_harmonic_head_predicts_nearest_centre_and_is_finite_on_a_centre() -> None:
    head = HarmonicHead(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]))
    x = torch.tensor([[0.0, 0.0], [4.0, 1.0], [1.0, 4.5]], requires_grad=True)
    logits = head(x)
    assert logits.argmax(1).tolist() == [0, 1, 2]
    logits.sum().backward()
    assert torch.isfinite(logits).all() and torch.isfinite(x.grad).all()
    # softmax of harmonic logits with exponent n is d^-n / sum d^-n
    d = torch.cdist(x.detach()[1:], head.weight.detach())
    torch.testing.assert_close(torch.softmax(logits[1:].detach(), 1), (1 / d) / (1 / d).sum(1, keepdim=True))


def test_harmonic_head_supports_double_backward() -> None:
    head = HarmonicHead(3, 3).double()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (x,))
    assert torch.autograd.gradgradcheck(head, (x,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "rnn"}, "kind must be one of"),
        ({"activation": "sigmoid"}, "activation must be one of"),
        ({"head": "arc"}, "head must be one of"),
        ({"width": 0}, "width must be"),
        ({"depth": -1}, "depth must be"),
        ({"kind": "cnn"}, "in_features=64"),
        ({"head": "harmonic", "n_outputs": 1}, "n_outputs must be"),
        ({"head": "sphere", "n_outputs": 1}, "n_outputs must be an integer >= 2, got 1"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    args = {"kind": "mlp", "in_features": 2, "n_outputs": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_model(**args)


@pytest.mark.parametrize(
    ("kind", "in_features", "dim"),
    [("linear", 2, 2), ("mlp", 2, 2), ("mlp", 4, 3), ("mlp", 2, 8), ("cnn", 64, 3)],
    ids=lambda v: str(v),
)
def test_sphere_head_puts_every_output_on_the_unit_sphere(kind: str, in_features: int, dim: int) -> None:
    model = make_model(kind, in_features, dim, head="sphere", width=16, seed=0)
    out = model(100 * torch.randn(9, in_features))
    assert out.shape == (9, dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(9))
    assert isinstance(model.head, SphereHead) and not isinstance(model.head, nn.Linear)  # not class weights


def test_sphere_head_is_a_normalised_linear_layer_with_its_initialisation() -> None:
    sphere = make_model("mlp", 2, 3, head="sphere", width=8, seed=4)
    linear = make_model("mlp", 2, 3, head="linear", width=8, seed=4)
    assert [n for n, _ in sphere.named_parameters()] == [n for n, _ in linear.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(sphere.parameters(), linear.parameters(), strict=True))
    x = torch.randn(6, 2)
    torch.testing.assert_close(sphere(x), nn.functional.normalize(linear(x), dim=1))
    head = SphereHead(3, 2).double()
    h = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (h,))
