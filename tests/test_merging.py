"""Merge layers: outputs against their definitions, backward against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.engine.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)

RNG = np.random.default_rng(0)


def numeric_gradients(layer, inputs, upstream, eps=1e-6):
    """d(sum(upstream * layer(inputs))) / d(inputs), by central differences."""
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            saved = x[index]
            x[index] = saved + eps
            plus = np.sum(upstream * layer.forward(inputs))
            x[index] = saved - eps
            minus = np.sum(upstream * layer.forward(inputs))
            x[index] = saved
            g[index] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def check(layer, shapes, expected=None):
    inputs = [RNG.normal(size=s) for s in shapes]
    layer.build([s[1:] for s in shapes])
    y = layer.forward(inputs)
    assert y.shape[1:] == layer.output_shape
    if expected is not None:
        np.testing.assert_allclose(y, expected(*inputs), rtol=1e-12)
    upstream = RNG.normal(size=y.shape)
    analytic = layer.backward(upstream.copy())
    numeric = numeric_gradients(layer, inputs, upstream)
    assert len(analytic) == len(inputs)
    for a, n, x in zip(analytic, numeric, inputs, strict=True):
        assert a.shape == x.shape
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("layer", "shapes", "expected"),
    [
        (Add(), [(4, 3)] * 3, lambda a, b, c: a + b + c),
        (Add(), [(4, 3), (4, 1)], lambda a, b: a + b),  # broadcast input
        (Subtract(), [(4, 3)] * 2, lambda a, b: a - b),
        (Multiply(), [(4, 3)] * 3, lambda a, b, c: a * b * c),
        (Multiply(), [(4, 3), (4, 1)], lambda a, b: a * b),
        (Average(), [(4, 3)] * 2, lambda a, b: (a + b) / 2),
        (Maximum(), [(4, 3)] * 3, lambda *xs: np.maximum.reduce(xs)),
        (Minimum(), [(4, 3)] * 2, lambda a, b: np.minimum(a, b)),
        (Concatenate(), [(4, 3), (4, 2)], lambda a, b: np.concatenate([a, b], -1)),
        (Concatenate(axis=1), [(4, 2, 3), (4, 1, 3)], lambda a, b: np.concatenate([a, b], 1)),
        (Dot(axes=1), [(4, 3)] * 2, lambda a, b: (a * b).sum(1, keepdims=True)),
        (Dot(axes=(2, 1)), [(4, 2, 3), (4, 3, 5)], lambda a, b: a @ b),
        (Dot(axes=-1), [(4, 2, 3), (4, 5, 3)], lambda a, b: a @ b.transpose(0, 2, 1)),
        (
            Dot(axes=1, normalize=True),
            [(4, 3)] * 2,
            lambda a, b: (
                (a / np.linalg.norm(a, axis=1, keepdims=True))
                * (b / np.linalg.norm(b, axis=1, keepdims=True))
            ).sum(1, keepdims=True),
        ),
    ],
    ids=lambda v: type(v).__name__ if not callable(v) or isinstance(v, type) else "",
)
def test_forward_and_backward_against_finite_differences(layer, shapes, expected):
    check(layer, shapes, expected)


def test_ties_send_the_gradient_to_the_first_input():
    layer = Maximum()
    a = np.array([[1.0, 2.0]])
    layer.build([(2,), (2,)])
    np.testing.assert_array_equal(layer.forward([a, a.copy()]), a)
    g1, g2 = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(g1, [[1, 1]])
    np.testing.assert_array_equal(g2, [[0, 0]])


def test_output_shapes():
    layer = Concatenate()
    layer.build([(3,), (5,)])
    assert layer.output_shape == (8,)
    dot = Dot(axes=(2, 1))
    dot.build([(2, 3), (3, 7)])
    assert dot.output_shape == (2, 7)


@pytest.mark.parametrize(
    ("layer", "shapes", "message"),
    [
        (
            Subtract(),
            [(3,)] * 3,
            "A Subtract layer should be called on exactly 2 inputs. Received: 3 inputs",
        ),
        (
            Add(),
            [(3,)],
            "A Add layer should be called on a list of at least 2 inputs. Received: 1 input",
        ),
        (
            Add(),
            [(3,), (4,)],
            "A Add layer needs inputs of one shape (or shapes that broadcast). Received: input_shape=[(3,), (4,)]",
        ),
        (
            Concatenate(),
            [(3, 2), (4, 3)],
            "A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis. Received: input_shape=[(3, 2), (4, 3)]",
        ),
        (
            Concatenate(axis=0),
            [(3,), (3,)],
            "Concatenate: axis=0 is not an axis of samples with 1 axes (the batch axis 0 cannot be concatenated)",
        ),
        (
            Dot(axes=1),
            [(3,), (4,)],
            "Incompatible input shapes for Dot: axis 1 of (3,) has 3 entries and axis 1 of (4,) has 4",
        ),
        (
            Dot(axes=0),
            [(3,), (3,)],
            "Dot: axes=(0, 0) is not valid for inputs with 1 and 1 axes per sample (axis 0 is the batch)",
        ),
    ],
)
def test_bad_inputs_are_refused_with_a_message(layer, shapes, message):
    with pytest.raises(ValueError) as error:
        layer.build(shapes)
    assert str(error.value) == message


def test_dot_axes_argument():
    with pytest.raises(
        ValueError,
        match=r"Invalid format for argument `axes`: expected an int or a list/tuple of 2 ints. Received: axes=\(1, 2, 3\)",
    ):
        Dot(axes=(1, 2, 3))
    assert Dot(axes=[1, 2], normalize=True).get_config()["axes"] == [1, 2]
