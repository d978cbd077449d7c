"""Layers: construction, shapes, forward values, initializers and configs."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer import activations, initializers
from multilayer.layers import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Rescaling,
    deserialize,
    serialize,
)
from multilayer.models import Sequential


def test_dense_forward_is_activation_of_affine_map():
    model = Sequential([Dense(3, activation="tanh", input_shape=(2,))], dtype="float64")
    kernel = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -0.5]])
    bias = np.array([0.1, 0.2, 0.3])
    model.set_weights([kernel, bias])
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(model.predict(x), np.tanh(x @ kernel + bias))


def test_dense_defaults_follow_keras():
    layer = Dense(4)
    assert layer.activation.name == "linear" and layer.use_bias
    assert layer.kernel_initializer.name == "glorot_uniform"
    assert layer.bias_initializer.name == "zeros"
    assert layer.kernel_regularizer is None


@pytest.mark.parametrize("units", [0, -3, 2.5, True, "8"])
def test_dense_units_must_be_a_positive_integer(units):
    with pytest.raises(ValueError, match="Dense: units must be a positive integer"):
        Dense(units)


def test_glorot_uniform_limits_and_zero_bias():
    model = Sequential([Dense(300, input_shape=(200,))], seed=0)
    kernel, bias = model.get_weights()
    limit = np.sqrt(6 / (200 + 300))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit  # uniform over the whole range
    assert kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert np.all(bias == 0)


@pytest.mark.parametrize(
    "name, std",
    [
        ("he_normal", np.sqrt(2 / 400)),
        ("glorot_normal", np.sqrt(2 / (400 + 300))),
        ("lecun_normal", np.sqrt(1 / 400)),
    ],
)
def test_normal_initializers_have_the_keras_variance(name, std):
    values = initializers.get(name)((400, 300), dtype="float64", rng=np.random.default_rng(0))
    assert values.std() == pytest.approx(std, rel=0.02)
    assert np.abs(values).max() <= 2 * std / 0.87962566 + 1e-12  # truncated at 2 sigma


def test_he_uniform_limit():
    values = initializers.get("he_uniform")((400, 300), rng=np.random.default_rng(0))
    assert np.abs(values).max() <= np.sqrt(6 / 400)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("relu", [0.0, 0.0, 2.0]),
        ("leaky_relu", [-0.4, 0.0, 2.0]),
        ("elu", [np.expm1(-2.0), 0.0, 2.0]),
        ("sigmoid", 1 / (1 + np.exp(-np.array([-2.0, 0.0, 2.0])))),
        ("tanh", np.tanh([-2.0, 0.0, 2.0])),
        ("softplus", np.log1p(np.exp([-2.0, 0.0, 2.0]))),
        ("linear", [-2.0, 0.0, 2.0]),
        ("softmax", np.exp([-2.0, 0.0, 2.0]) / np.exp([-2.0, 0.0, 2.0]).sum()),
    ],
)
def test_activation_values(name, expected):
    np.testing.assert_allclose(
        getattr(activations, name)(np.array([[-2.0, 0.0, 2.0]]))[0], expected, rtol=1e-12
    )


def test_gelu_exact_and_approximate():
    from math import erf, sqrt

    x = np.array([[-1.5, 0.3, 2.0]])
    exact = [v * 0.5 * (1 + erf(v / sqrt(2))) for v in x[0]]
    np.testing.assert_allclose(activations.gelu(x)[0], exact, rtol=1e-12)
    np.testing.assert_allclose(activations.gelu(x, approximate=True)[0], exact, atol=1e-3)


def test_sigmoid_and_softmax_do_not_overflow():
    assert np.all(np.isfinite(activations.sigmoid(np.array([[-1000.0, 1000.0]]))))
    np.testing.assert_allclose(activations.softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])


def test_flatten_rescaling_and_input():
    model = Sequential([Input(shape=(2, 3)), Flatten(), Rescaling(1 / 255, offset=-0.5)])
    x = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    out = model.predict(x)
    assert out.shape == (2, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out, x.reshape(2, 6) / 255 - 0.5, rtol=1e-6)


def test_dropout_is_inverted_and_only_active_in_training():
    layer = Dropout(0.25, seed=0)
    layer.build((10_000,))
    x = np.ones((2, 10_000), dtype=np.float32)
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert np.mean(y == 0) == pytest.approx(0.25, abs=0.02)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\), got 1.0"):
        Dropout(1.0)


def test_input_requires_a_shape():
    with pytest.raises(ValueError, match=r"Input: shape is required, e.g. Input\(shape=\(784,\)\)"):
        Input()
    with pytest.raises(ValueError, match="shape must be a tuple of positive integers"):
        Input(shape=(0,))


@pytest.mark.parametrize(
    "layer",
    [
        lambda: Dense(
            5,
            activation={"name": "leaky_relu", "negative_slope": 0.1},
            use_bias=False,
            kernel_regularizer="l2",
        ),
        lambda: Activation({"name": "gelu", "approximate": True}),
        lambda: Dropout(0.3, seed=4),
        lambda: Rescaling(0.5, offset=1.0),
        lambda: Flatten(),
        lambda: InputLayer(shape=(3, 4)),
    ],
)
def test_layer_config_round_trip(layer):
    original = layer()
    config = serialize(original)
    assert serialize(deserialize(config)) == config


def test_unknown_layer_type():
    with pytest.raises(ValueError, match=r"Unknown layer type 'Dens'\. Did you mean 'Dense'\?"):
        deserialize({"class_name": "Dens", "config": {}})
