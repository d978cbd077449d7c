"""Softmax, log-sum-exp, sigmoid and the cross-entropies at logits of +-1e4, in float32 and
float64: finite, no floating-point warnings, and equal to the closed-form values.

With logits (a, b) = (1e4, -1e4): softmax = (1, e^-2e4) = (1, 0) in floating point, and the
cross-entropy of class b is a - b + log(1 + e^(b - a)) = 2e4 exactly in floating point."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer import activations, losses
from multilayer.engine.layers import Dense, Input
from multilayer.engine.losses import EPSILON, _log_softmax
from multilayer.models.sequential import Sequential

pytestmark = pytest.mark.filterwarnings("error")  # an overflow warning fails the test
DTYPES = [np.float32, np.float64]
BIG = 1e4


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(dtype):
    z = np.array([[BIG, -BIG, 0.0], [BIG, BIG, BIG], [-BIG, -BIG, -BIG]], dtype=dtype)
    p = activations.softmax(z)
    assert p.dtype == dtype
    assert np.array_equal(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1:], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_sum_exp_through_log_softmax(dtype):
    z = np.array([[BIG, -BIG, 0.0], [BIG, BIG - 1, BIG - 2]], dtype=dtype)
    log_p = _log_softmax(z)
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(log_p[0], [0.0, -2 * BIG, -BIG], rtol=1e-7, atol=0)
    # log-sum-exp of (0, -1, -2) shifted by 1e4: closed form, computed in Python floats
    lse = np.log(1 + np.exp(-1.0) + np.exp(-2.0))
    np.testing.assert_allclose(log_p[1], [-lse, -1 - lse, -2 - lse], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus(dtype):
    z = np.array([BIG, -BIG, 0.0, 20.0], dtype=dtype)
    s = activations.sigmoid(z)
    assert s.dtype == dtype
    np.testing.assert_array_equal(s[:3], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(s[3], 1 / (1 + np.exp(-20.0)), rtol=1e-7)
    np.testing.assert_allclose(activations.softplus(z[:3]), [BIG, 0.0, np.log(2.0)], rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_crossentropy_from_logits(dtype):
    z = np.array([[BIG, -BIG], [BIG, -BIG], [-BIG, -BIG]], dtype=dtype)
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=dtype)
    loss = losses.categorical_crossentropy(y, z, from_logits=True)
    np.testing.assert_allclose(loss, [0.0, 2 * BIG, np.log(2.0)], rtol=1e-7)
    sparse = losses.sparse_categorical_crossentropy([0, 1, 1], z, from_logits=True)
    np.testing.assert_allclose(sparse, loss, rtol=1e-7)
    grad = losses.CategoricalCrossentropy(from_logits=True).gradient(y, z)
    np.testing.assert_allclose(grad * 3, [[0, 0], [1, -1], [0.5, -0.5]], atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_crossentropy_of_saturated_probabilities(dtype):
    p = activations.softmax(np.array([[BIG, -BIG]], dtype=dtype))
    loss = losses.categorical_crossentropy(np.array([[0.0, 1.0]], dtype=dtype), p)
    # Keras' clip to [1e-7, 1 - 1e-7]: the loss is bounded by -log(1e-7), not infinite
    np.testing.assert_allclose(loss, [-np.log(EPSILON)], rtol=1e-5)
    grad = losses.CategoricalCrossentropy().gradient(np.array([[0.0, 1.0]], dtype=dtype), p)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_crossentropy(dtype):
    z = np.array([[BIG], [BIG], [-BIG], [-BIG]], dtype=dtype)
    y = np.array([[1.0], [0.0], [1.0], [0.0]], dtype=dtype)
    np.testing.assert_allclose(
        losses.binary_crossentropy(y, z, from_logits=True), [0.0, BIG, BIG, 0.0], rtol=1e-7
    )
    grad = losses.BinaryCrossentropy(from_logits=True).gradient(y, z)
    np.testing.assert_allclose(grad * 4, [[0.0], [1.0], [-1.0], [0.0]], atol=1e-7)
    probabilities = losses.binary_crossentropy(y, activations.sigmoid(z))
    # Probabilities are clipped to [1e-7, 1 - 1e-7] as stored in ``dtype`` (Keras' bound).
    low, high = -np.log(float(dtype(1.0) - dtype(1.0 - EPSILON))), -np.log(EPSILON)
    np.testing.assert_allclose(probabilities, [0.0, low, high, 0.0], rtol=1e-5, atol=2e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("activation", "loss", "targets"),
    [
        ("softmax", "categorical_crossentropy", np.array([[0.0, 1.0], [1.0, 0.0]])),
        ("softmax", "sparse_categorical_crossentropy", np.array([1, 0])),
        ("sigmoid", "binary_crossentropy", np.array([[0.0, 1.0], [1.0, 0.0]])),
    ],
)
def test_a_model_with_extreme_logits_has_a_finite_loss_and_update(dtype, activation, loss, targets):
    """The fused softmax/sigmoid + cross-entropy path of training, fed logits of +-1e4."""
    model = Sequential([Input(shape=(1,)), Dense(2, activation=activation)], dtype=dtype, seed=0)
    model.compile(optimizer="sgd", loss=loss)
    model.set_weights([np.array([[BIG, -BIG]]), np.zeros(2)])
    x = np.array([[1.0], [1.0]])
    value = model.evaluate(x, targets, verbose=0)
    assert np.isfinite(value) and value > 1.0  # one of the two samples is confidently wrong
    model.fit(x, targets, epochs=1, verbose=0)
    assert np.isfinite(model.parameters.values).all()
