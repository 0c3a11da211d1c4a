"""The registry's own rules: what register() refuses and what get()/names()/bind() promise."""

from __future__ import annotations

import pytest

from lossviz import losses
from lossviz.losses.registry import Param, register, unregister


def test_names_filters_by_task():
    for task in ("multiclass", "binary", "regression"):
        names = losses.names(task)
        assert names and all(losses.get(n).task == task for n in names)
    assert set(losses.names()) >= set(losses.names("binary"))


def test_unknown_task_is_a_value_error():
    with pytest.raises(ValueError, match="bogus"):
        losses.names("bogus")


def test_unknown_loss_suggests_close_match():
    with pytest.raises(KeyError, match="cross_entropy"):
        losses.get("cross_entrpy")


def test_register_takes_default_from_signature_and_key_from_name():
    @register(title="t", latex="x", task="regression", paper="p", params=[Param("scale", 0.0, 2.0)])
    def _scaled_test_loss(pred, target, scale=0.5):
        return scale * (pred - target)

    try:
        spec = losses.get("_scaled_test_loss")
        assert spec.param("scale").default == 0.5
        assert spec.defaults == {"scale": 0.5}
    finally:
        unregister("_scaled_test_loss")


@pytest.mark.parametrize(
    "params, signature_default, message",
    [
        ([Param("scale", 0.0, 1.0)], 5.0, "outside"),
        ([Param("other", 0.0, 1.0)], 0.5, "not an argument"),
        ([], 0.5, "no Param spec"),
    ],
    ids=["default-outside-range", "param-not-an-argument", "argument-without-param"],
)
def test_register_refuses_inconsistent_specs(params, signature_default, message):
    def _bad_test_loss(pred, target, scale=signature_default):
        return pred

    with pytest.raises(ValueError, match=message):
        register(title="t", latex="x", task="regression", paper="p", params=params)(_bad_test_loss)
    assert "_bad_test_loss" not in losses.names()


def test_register_refuses_a_stop_gradient_without_a_frozen_reference():
    # the contract checks such a loss's gradient through reference(..., frozen=x0): it must exist
    def _stopped_test_loss(pred, target):
        return pred.detach() * pred

    def _plain_reference(pred, target):
        return pred**2

    for reference in (None, _plain_reference):
        with pytest.raises(ValueError, match="frozen"):
            register(
                title="t", latex="x", task="regression", paper="p", reference=reference, stop_gradient="w"
            )(_stopped_test_loss)
    assert "_stopped_test_loss" not in losses.names()


def test_register_refuses_duplicate_name():
    def cross_entropy(pred, target):
        return pred

    with pytest.raises(ValueError, match="already registered"):
        register(title="t", latex="x", task="multiclass", paper="p")(cross_entropy)


def test_param_refuses_bad_ranges():
    with pytest.raises(ValueError, match="low"):
        Param("a", 1.0, 0.0)
    with pytest.raises(ValueError, match="log"):
        Param("a", 0.0, 1.0, log=True)


def test_bind_names_the_bad_value():
    spec = next(losses.get(n) for n in losses.names() if losses.get(n).params)
    p = spec.params[0]
    with pytest.raises(ValueError, match="nan"):
        spec.bind(**{p.name: float("nan")})
    with pytest.raises(ValueError, match=str(p.high + 1e6)):
        spec.bind(**{p.name: p.high + 1e6})
    with pytest.raises(ValueError, match="no parameter"):
        spec.bind(not_a_param=1.0)
