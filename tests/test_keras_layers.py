"""The Keras layers of issue 10 (item 1) and the weight constraints: definitions, exact errors,
moving statistics out of the optimizer's reach, save/load and checkpoint round trips,
reproducible noise, and (where Keras is installed) outputs equal to Keras 3's.

Gradients are checked against finite differences in tests/test_gradients.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import multilayer.layers as L
from multilayer import constraints
from multilayer.initializers import RandomUniform
from multilayer.models import Sequential, load_model
from multilayer.models.checkpoint import CheckpointConfig
from multilayer.optimizers import SGD, AdamW

RNG = np.random.default_rng(0)


def x_data(n=8, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def built(layers, input_shape=(4,), dtype="float64", seed=0, loss="mse", optimizer=None):
    model = Sequential(layers, dtype=dtype, seed=seed)
    model.build(input_shape)
    model.compile(optimizer=optimizer or SGD(0.1), loss=loss)
    model._build_optimizer()  # as fit does, so that train_step can be called directly
    return model


# -- activation layers: definitions ------------------------------------------------------------


X5 = np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [  # the examples of Keras' relu docstring
        ({}, [0, 0, 0, 5, 10]),
        ({"negative_slope": 0.5}, [-5, -2.5, 0, 5, 10]),
        ({"max_value": 5.0}, [0, 0, 0, 5, 5]),
        ({"threshold": 5.0}, [0, 0, 0, 0, 10]),
        ({"negative_slope": 0.5, "threshold": 5.0, "max_value": 8.0}, [-7.5, -5, -2.5, 0, 8]),
    ],
    ids=str,
)
def test_relu_layer_matches_keras_docstring_examples(kwargs, expected):
    model = built([L.ReLU(**kwargs)], (5,))
    np.testing.assert_array_equal(model.predict(X5)[0], expected)


def test_leaky_relu_default_slope_is_keras3s_and_alpha_is_accepted():
    assert L.LeakyReLU().negative_slope == 0.3
    assert L.LeakyReLU(alpha=0.1).get_config()["negative_slope"] == 0.1
    model = built([L.LeakyReLU()], (5,))
    np.testing.assert_allclose(model.predict(X5)[0], [-3, -1.5, 0, 5, 10])
    # slopes above 1 (Keras allows them) are not max(x, a*x)
    model = built([L.LeakyReLU(negative_slope=2.0)], (5,))
    np.testing.assert_allclose(model.predict(X5)[0], [-20, -10, 0, 5, 10])


def test_elu_and_prelu_definitions():
    model = built([L.ELU(alpha=0.5)], (5,))
    np.testing.assert_allclose(
        model.predict(X5)[0], [0.5 * np.expm1(-10), 0.5 * np.expm1(-5), 0, 5, 10]
    )
    prelu = L.PReLU(alpha_initializer=RandomUniform(0.1, 0.5))
    model = built([prelu], (5,))
    alpha = prelu.weights["alpha"]
    assert alpha.shape == (5,) and model.count_params() == 5
    np.testing.assert_allclose(model.predict(X5)[0], np.where(X5[0] > 0, X5[0], alpha * X5[0]))
    assert L.PReLU().get_config()["alpha_initializer"] == {"class_name": "Zeros", "config": {}}


def test_softmax_layer_over_axes():
    x = x_data(3, 6).reshape(3, 2, 3)
    model = built([L.Softmax(axis=1)], (2, 3))
    out = model.predict(x)
    expected = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    model = built([L.Softmax(axis=[1, 2])], (2, 3))
    np.testing.assert_allclose(
        model.predict(x), np.exp(x) / np.exp(x).sum(axis=(1, 2), keepdims=True), rtol=1e-12
    )


def test_softmax_layer_with_sparse_crossentropy_trains():
    x, y = x_data(64, 4), np.random.default_rng(1).integers(0, 3, 64)
    model = Sequential(
        [L.Input((4,)), L.Dense(16, activation="relu"), L.Dense(3), L.Softmax()], seed=0
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    np.testing.assert_allclose(model.predict(x).sum(axis=1), 1.0, rtol=1e-5)


# -- BatchNormalization ---------------------------------------------------------------------------


def test_batch_normalization_weights_order_and_counts():
    bn = L.BatchNormalization()
    model = built([L.Dense(3), bn], (4,))
    names = [spec.name for spec in bn.parameter_specs]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.shape for w in model.get_weights()] == [(4, 3), (3,), (3,), (3,), (3,), (3,)]
    assert model.count_params() == 15 + 12
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert " Total params: 27 (216.00 B)" in text
    assert " Trainable params: 21 (168.00 B)" in text
    assert " Non-trainable params: 6 (48.00 B)" in text


def test_batch_normalization_training_and_inference_follow_the_definition():
    bn = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    model = built([bn], (4,))
    gamma, beta = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.0, -1.0, 1.0, 0.5])
    bn.weights["gamma"][...], bn.weights["beta"][...] = gamma, beta
    x = x_data(16, 4) * 3 + 1
    out = bn.forward(x, training=True)
    mean, var = x.mean(axis=0), x.var(axis=0)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta, rtol=1e-12)
    np.testing.assert_allclose(bn.weights["moving_mean"], 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.weights["moving_variance"], 0.9 + 0.1 * var, rtol=1e-12)
    mm, mv = bn.weights["moving_mean"].copy(), bn.weights["moving_variance"].copy()
    np.testing.assert_allclose(
        model.predict(x), gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta, rtol=1e-12
    )
    np.testing.assert_array_equal(bn.weights["moving_mean"], mm)  # inference changes nothing


def test_moving_statistics_are_out_of_the_optimizers_reach():
    """AdamW decays every trainable weight; the moving statistics follow only their own
    update rule (Keras' optimizers never see non-trainable weights)."""
    bn = L.BatchNormalization(momentum=0.5)
    model = built([bn], (4,), optimizer=AdamW(0.1, weight_decay=0.5))
    x, y = x_data(8, 4), x_data(8, 4, seed=1)
    expected_mean = np.zeros(4)
    expected_var = np.ones(4)
    for _ in range(3):
        model.train_step(x, y)
        expected_mean = 0.5 * expected_mean + 0.5 * x.mean(axis=0)
        expected_var = 0.5 * expected_var + 0.5 * x.var(axis=0)
    np.testing.assert_allclose(bn.weights["moving_mean"], expected_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.weights["moving_variance"], expected_var, rtol=1e-12)
    assert model.parameters.size == 8 and model.parameters.state.size == 8


def test_frozen_batch_normalization_uses_moving_statistics_while_training():
    bn = L.BatchNormalization()
    model = built([bn], (4,))
    bn.trainable = False
    x = x_data(8, 4)
    model.train_step(x, x)
    np.testing.assert_array_equal(bn.weights["moving_mean"], 0.0)
    np.testing.assert_array_equal(bn.weights["moving_variance"], 1.0)


def test_batch_normalization_errors():
    with pytest.raises(ValueError) as info:
        L.BatchNormalization(renorm=True)
    assert (
        str(info.value)
        == "BatchNormalization: renorm=True (batch renormalization) is not supported"
    )
    with pytest.raises(ValueError) as info:
        L.BatchNormalization(momentum=float("nan"))
    assert str(info.value) == "BatchNormalization: momentum must be a finite number, got nan"
    with pytest.raises(ValueError) as info:
        built([L.BatchNormalization(axis=2, name="bn")], (4,))
    assert str(info.value) == (
        "BatchNormalization layer 'bn': axis 2 is out of range for inputs of rank 2 "
        "(a batch of samples of rank 1)"
    )
    with pytest.raises(ValueError) as info:
        built([L.BatchNormalization(axis=0, name="bn0")], (4,))
    assert str(info.value) == (
        "BatchNormalization layer 'bn0': axis 0 is the batch axis; give the feature axis "
        "(-1 for the last one)"
    )


# -- LayerNormalization ------------------------------------------------------------------------


def test_layer_normalization_definition():
    ln = L.LayerNormalization(epsilon=1e-3)
    model = built([ln], (5,))
    ln.weights["gamma"][...] = [1, 2, 3, 4, 5]
    ln.weights["beta"][...] = [0, 1, 0, 1, 0]
    x = x_data(3, 5) * 4
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * ln.weights["gamma"] + ln.weights["beta"]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-12)
    with pytest.raises(ValueError) as info:
        L.LayerNormalization(rms_scaling=True)
    assert str(info.value) == (
        "LayerNormalization: rms_scaling=True (deprecated in Keras) is not supported"
    )


# -- Normalization ------------------------------------------------------------------------------


def test_normalization_adapt_equals_numpy_mean_and_variance():
    x = x_data(10000, 3) * [1, 10, 100] + [5, -5, 0]  # more than one adapt chunk
    norm = L.Normalization()
    norm.adapt(x)
    model = Sequential([norm], dtype="float64")
    model.build()  # the input shape comes from adapt, as in Keras
    np.testing.assert_allclose(norm.weights["mean"], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.weights["variance"], x.var(axis=0), rtol=1e-10)
    out = model.predict(x)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-10)


def test_normalization_adapt_from_batches_and_axis_none():
    x = x_data(30, 4)
    norm = L.Normalization()
    norm.adapt([x[:7], x[7:19], (x[19:], None)])
    built([norm], (4,))
    np.testing.assert_allclose(norm.weights["mean"], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.weights["variance"], x.var(axis=0), rtol=1e-12)
    scalar = L.Normalization(axis=None)
    scalar.adapt(x)
    built([scalar], (4,))
    assert scalar.weights["mean"].shape == ()
    np.testing.assert_allclose(scalar.weights["mean"], x.mean(), rtol=1e-12)


def test_normalization_given_mean_and_variance_and_invert():
    x = x_data(5, 3)
    norm = built([L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.0])], (3,))
    std = np.maximum(np.sqrt([4.0, 1.0, 0.0]), 1e-7)
    np.testing.assert_allclose(norm.predict(x), (x - [1, 2, 3]) / std, rtol=1e-12)
    assert norm.count_params() == 0  # constants, not weights (as Keras)
    inverse = built(
        [L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 9.0], invert=True)], (3,)
    )
    np.testing.assert_allclose(inverse.predict(x), x * [2, 1, 3] + [1, 2, 3], rtol=1e-12)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: L.Normalization(mean=1.0),
            "Normalization: give both mean and variance, or neither",
        ),
        (
            lambda: L.Normalization(mean=[1.0, float("nan")], variance=[1.0, 1.0]),
            "Normalization: mean must be finite",
        ),
        (
            lambda: L.Normalization(mean=[0.0], variance=[-1.0]),
            "Normalization: variance must be >= 0",
        ),
        (
            lambda: L.Normalization().adapt(np.zeros((0, 3))),
            "Normalization.adapt: data must be a non-empty batch of samples",
        ),
        (lambda: L.Normalization().adapt([]), "Normalization.adapt: no data (an empty iterable)"),
        (
            lambda: L.Normalization().adapt(np.array([[1.0, np.inf]])),
            "Normalization.adapt: data contains NaN or infinite values",
        ),
        (
            lambda: L.Normalization().adapt([np.zeros((2, 3)), np.zeros((2, 4))]),
            "Normalization.adapt: a batch has samples of shape (4,), the first had (3,)",
        ),
        (lambda: L.Normalization(mean=1.0, variance=1.0).adapt(np.zeros((2, 3))), None),
    ],
    ids=range(8),
)
def test_normalization_errors(make, message):
    with pytest.raises(ValueError) as info:
        make()
    if message is not None:
        assert str(info.value) == message


def test_normalization_adapted_shape_must_match_the_model():
    norm = L.Normalization(name="norm")
    norm.adapt(np.zeros((4, 3)))
    with pytest.raises(ValueError) as info:
        built([L.Input((5,)), norm], (5,))
    # adapt() declared the layer's input shape; the model core refuses the mismatch
    assert str(info.value) == (
        "layer 'norm' (Normalization) was declared with input_shape=(3,), but it is called on "
        "inputs of shape (None, 5)"
    )


# -- noise, activity regularization, reshaping -------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: L.GaussianNoise(0.5), lambda: L.GaussianDropout(0.4), lambda: L.AlphaDropout(0.3)],
    ids=["GaussianNoise", "GaussianDropout", "AlphaDropout"],
)
def test_noise_layers_are_identity_at_inference_and_reproducible_in_training(make):
    def train(seed):
        model = Sequential([L.Input((4,)), L.Dense(8), make(), L.Dense(2)], seed=seed)
        model.compile(SGD(0.05), "mse")
        model.fit(x_data(32, 4), x_data(32, 2, seed=1), epochs=2, batch_size=8, verbose=0)
        return model

    a, b, c = train(1), train(1), train(2)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    x = x_data(5, 4).astype(np.float32)
    layer = a.layers[2]
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    assert not np.allclose(layer.forward(x, training=True), x)


def test_noise_layer_statistics():
    x = np.full((200000, 1), 2.0)
    noise = L.GaussianNoise(0.5, seed=0)
    noise.build((1,))
    y = noise.forward(x, training=True)
    assert abs(y.mean() - 2.0) < 0.01 and abs(y.std() - 0.5) < 0.01
    drop = L.GaussianDropout(0.2, seed=0)
    drop.build((1,))
    y = drop.forward(x, training=True)
    assert abs(y.mean() - 2.0) < 0.01 and abs(y.std() - 2.0 * np.sqrt(0.25)) < 0.01
    # AlphaDropout keeps zero mean and unit variance of standardized inputs
    alpha = L.AlphaDropout(0.3, seed=0)
    alpha.build((1,))
    z = np.random.default_rng(3).normal(size=(200000, 1))
    y = alpha.forward(z, training=True)
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1.0) < 0.02


def test_alpha_dropout_noise_shape_drops_whole_samples():
    layer = L.AlphaDropout(0.5, noise_shape=[None, 1], seed=0)
    layer.build((6,))
    x = np.ones((50, 6))
    y = layer.forward(x, training=True)
    assert all(len(set(row)) == 1 for row in np.round(y, 12))  # one decision per sample
    with pytest.raises(ValueError) as info:
        L.AlphaDropout(0.5, noise_shape=[None, 2], name="ad").build((6,))
    assert str(info.value) == (
        "AlphaDropout layer 'ad': noise_shape [None, 2] does not broadcast to inputs of shape (batch, 6)"
    )


def test_noise_and_rate_errors():
    with pytest.raises(ValueError) as info:
        L.GaussianNoise(1.5)
    assert str(info.value) == "GaussianNoise: stddev must be in [0, 1], got 1.5"
    with pytest.raises(ValueError) as info:
        L.GaussianDropout(1.0)
    assert str(info.value) == "GaussianDropout: rate must be in [0, 1), got 1.0"
    with pytest.raises(ValueError) as info:
        L.AlphaDropout(float("inf"))
    assert str(info.value) == "AlphaDropout: rate must be a finite number, got inf"


def test_activity_regularization_in_fit_and_evaluate():
    """Keras 3 adds (l1*sum|a| + l2*sum a^2) / batch_size to the loss, in evaluate too."""
    x, y = x_data(10, 4), x_data(10, 4, seed=1)
    model = built([L.ActivityRegularization(l1=0.1, l2=0.2)], (4,))
    penalty = lambda a: (0.1 * np.abs(a).sum() + 0.2 * np.square(a).sum()) / len(a)  # noqa: E731
    mse = np.mean((x - y) ** 2)
    assert model.train_step(x, y) == pytest.approx(mse + penalty(x), rel=1e-12)
    result = model.evaluate(x, y, batch_size=4, verbose=0)
    batches = [x[:4], x[4:8], x[8:]]
    expected = mse + sum(penalty(b) * len(b) for b in batches) / 10
    assert result == pytest.approx(expected, rel=1e-12)


def test_reshape_and_identity():
    model = built([L.Reshape((2, -1)), L.Identity(), L.Reshape((6,))], (3, 2))
    assert model.layers[0].output_shape == (2, 3)
    x = x_data(4, 6).reshape(4, 3, 2)
    np.testing.assert_array_equal(model.predict(x), x.reshape(4, 6))
    with pytest.raises(ValueError) as info:
        built([L.Reshape((4, -1), name="r")], (6,))
    assert (
        str(info.value)
        == "Reshape layer 'r': samples of shape (6,) (6 values) cannot be reshaped to (4, -1)"
    )
    with pytest.raises(ValueError) as info:
        L.Reshape((-1, -1))
    assert str(info.value) == "Reshape: at most one -1 in target_shape, got (-1, -1)"


def test_activation_layer_argument_errors():
    for make, message in [
        (lambda: L.ReLU(max_value=-1.0), "ReLU: max_value must be >= 0, got -1.0"),
        (
            lambda: L.ReLU(threshold=float("nan")),
            "ReLU: threshold must be a finite number, got nan",
        ),
        (
            lambda: L.LeakyReLU(negative_slope=-0.1),
            "LeakyReLU: negative_slope must be >= 0, got -0.1",
        ),
        (
            lambda: L.Softmax(axis="last"),
            "Softmax: axis must be an integer or a list of integers, got 'last'",
        ),
    ]:
        with pytest.raises(ValueError) as info:
            make()
        assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        built([L.PReLU(shared_axes=[2], name="p")], (4,))
    assert (
        str(info.value)
        == "PReLU layer 'p': shared axis 2 is not a sample axis (1 to 1 for samples of shape (4,))"
    )


# -- constraints --------------------------------------------------------------------------------------


def test_constraint_definitions():
    w = np.array([[3.0, 0.1], [4.0, -0.2]])  # column norms 5 and ~0.2236
    eps = 1e-7
    norms = np.sqrt((w**2).sum(axis=0, keepdims=True))
    np.testing.assert_allclose(
        constraints.MaxNorm(2.0)(w), w * np.minimum(norms, 2) / (eps + norms)
    )
    np.testing.assert_allclose(constraints.UnitNorm()(w), w / (eps + norms))
    np.testing.assert_array_equal(constraints.NonNeg()(w), [[3.0, 0.1], [4.0, 0.0]])
    np.testing.assert_allclose(
        constraints.MinMaxNorm(1.0, 2.0, rate=0.5)(w),
        w * (0.5 * np.clip(norms, 1, 2) + 0.5 * norms) / (eps + norms),
    )
    rows = np.sqrt((w**2).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(constraints.UnitNorm(axis=1)(w), w / (eps + rows))
    assert constraints.get("max_norm").get_config() == {"max_value": 2.0, "axis": 0}
    assert constraints.get(None) is None
    with pytest.raises(ValueError) as info:
        constraints.get("max_nrom")
    assert str(info.value).startswith("Unknown constraint 'max_nrom'. Did you mean 'max_norm'?")


def test_dense_constraints_are_applied_after_each_optimizer_step():
    dense = L.Dense(3, kernel_constraint=constraints.MaxNorm(0.5), bias_constraint="non_neg")
    model = built([dense], (4,), optimizer=SGD(1.0))
    x, y = x_data(8, 4), x_data(8, 3, seed=1) * 10
    before = [w.copy() for w in model.get_weights()]
    model.train_step(x, y)
    kernel_grad, bias_grad = dense.grads["kernel"].copy(), dense.grads["bias"].copy()
    np.testing.assert_allclose(
        dense.weights["kernel"], constraints.MaxNorm(0.5)(before[0] - kernel_grad), rtol=1e-12
    )
    np.testing.assert_allclose(
        dense.weights["bias"], np.maximum(before[1] - bias_grad, 0), rtol=1e-12
    )
    assert np.all(np.linalg.norm(dense.weights["kernel"], axis=0) <= 0.5 + 1e-9)
    assert np.any(before[1] - bias_grad < 0)  # the constraint really acted


def test_a_constraint_axis_out_of_range_fails_when_the_model_is_built():
    with pytest.raises(ValueError) as info:
        built([L.Dense(3, kernel_constraint=constraints.UnitNorm(axis=2))], (4,))
    assert str(info.value) == "constraint axis 2 is out of range for a weight of shape (4, 3)"


# -- saving, loading, checkpoints ----------------------------------------------------------------------


def everything_model(seed=0):
    return Sequential(
        [
            L.Input((6,)),
            L.Normalization(mean=0.5, variance=2.0),
            L.Dense(8, kernel_constraint="max_norm"),
            L.BatchNormalization(momentum=0.8),
            L.PReLU(alpha_initializer=RandomUniform(0.1, 0.3)),
            L.GaussianNoise(0.1),
            L.Reshape((2, 4)),
            L.LayerNormalization(axis=[1, 2]),
            L.Flatten(),
            L.ReLU(max_value=6.0),
            L.LeakyReLU(),
            L.ELU(),
            L.GaussianDropout(0.1, seed=5),  # its own generator, checkpointed too
            L.AlphaDropout(0.1),
            L.ActivityRegularization(l2=1e-3),
            L.Identity(),
            L.Dense(3),
            L.Softmax(),
        ],
        seed=seed,
    )


def test_save_and_load_round_trip_keeps_every_weight_and_prediction(tmp_path):
    model = everything_model()
    model.compile("adam", "categorical_crossentropy")
    x, y = x_data(40, 6), np.eye(3)[np.arange(40) % 3]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    bn = model.layers[3]
    assert not np.allclose(bn.weights["moving_mean"], 0)  # the statistics moved
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_adapted_normalization_is_saved_as_weights(tmp_path):
    x = x_data(50, 3) * 5 + 2
    norm = L.Normalization()
    norm.adapt(x)
    model = Sequential([norm, L.Dense(2)], seed=0)
    model.compile("sgd", "mse")
    model.save(tmp_path / "n.safetensors")
    loaded = load_model(tmp_path / "n.safetensors")
    np.testing.assert_allclose(loaded.layers[0].weights["mean"], x.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_checkpoint_resume_restores_moving_statistics_and_noise(tmp_path):
    """Two epochs straight equal one epoch, a checkpoint, and a resumed second epoch, bit for
    bit: the moving statistics are in the checkpoint, the noise comes from the model's
    checkpointed generator."""
    x, y = x_data(48, 6), np.eye(3)[np.arange(48) % 3]

    def model():
        m = everything_model(seed=3)
        m.compile("adam", "categorical_crossentropy")
        return m

    straight = model()
    straight.fit(x, y, epochs=2, batch_size=8, verbose=0)
    first = model()
    first.fit(x, y, epochs=1, batch_size=8, verbose=0, checkpoint=CheckpointConfig(tmp_path))
    resumed = model()
    resumed.fit(
        x, y, epochs=2, batch_size=8, verbose=0, checkpoint=CheckpointConfig(tmp_path, resume=True)
    )
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_moving_statistics_too():
    from multilayer.callbacks import EarlyStopping

    model = Sequential([L.Input((4,)), L.Dense(4), L.BatchNormalization(), L.Dense(1)], seed=0)
    model.compile(SGD(0.5), "mse")
    stop = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    x, y = x_data(16, 4), x_data(16, 1, seed=1)
    best = {}

    class Spy(__import__("multilayer").callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            best[epoch] = (logs["loss"], [w.copy() for w in model.get_weights()])

    model.fit(x, y, epochs=6, verbose=0, callbacks=[stop, Spy()])
    best_epoch = min(best, key=lambda e: best[e][0])
    for a, b in zip(model.get_weights(), best[best_epoch][1], strict=True):
        np.testing.assert_array_equal(a, b)


# -- Keras 3 as an oracle (skipped where Keras is not installed) -----------------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as error:  # not installed, or installed without a usable backend
        pytest.skip(f"Keras 3 is not usable here: {error}")
    return keras


def _keras_outputs(keras, layer, x, weights=None, training=False):
    layer.build(x.shape)
    if weights is not None:
        layer.set_weights(weights)
    return np.asarray(layer(x, training=training))


ORACLE_CASES = [
    ("Softmax", {"axis": -1}, (6,)),
    ("Softmax", {"axis": 1}, (2, 3)),
    ("ReLU", {"max_value": 0.8, "negative_slope": 0.2, "threshold": 0.3}, (6,)),
    ("LeakyReLU", {}, (6,)),
    ("ELU", {"alpha": 0.7}, (6,)),
    ("PReLU", {"shared_axes": [1]}, (2, 3)),
    ("BatchNormalization", {"momentum": 0.9, "epsilon": 1e-3}, (6,)),
    ("BatchNormalization", {"axis": 1}, (2, 3)),
    ("LayerNormalization", {}, (6,)),
    ("LayerNormalization", {"axis": [1, 2], "epsilon": 1e-5}, (2, 3)),
    ("Normalization", {"mean": [0.5, 1.0, -1.0], "variance": [2.0, 0.5, 1.0]}, (3,)),
    ("Normalization", {"mean": 0.5, "variance": 2.0, "invert": True}, (3,)),
    ("Reshape", {"target_shape": (3, -1)}, (6,)),
    ("Identity", {}, (6,)),
    ("ActivityRegularization", {"l1": 0.1}, (6,)),
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), ORACLE_CASES, ids=lambda v: str(v))
def test_forward_equals_keras(keras, name, kwargs, shape):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, *shape)).astype(np.float32)
    ours = getattr(L, name)(**kwargs)
    model = Sequential([ours], seed=0)
    model.build(shape)
    for spec in ours.parameter_specs:  # non-trivial weights in both
        ours.weights[spec.name][...] = rng.uniform(0.5, 1.5, size=spec.shape)
    theirs = getattr(keras.layers, name)(**kwargs)
    expected = _keras_outputs(keras, theirs, x, [w.copy() for w in model.get_weights()])
    np.testing.assert_allclose(model.predict(x), expected, rtol=2e-6, atol=2e-6)
    if name == "BatchNormalization":  # training mode: batch statistics and the moving update
        got = ours.forward(x, training=True)
        expected = np.asarray(theirs(x, training=True))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        for ours_w, theirs_w in zip(model.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_allclose(ours_w, theirs_w, rtol=1e-6, atol=1e-6)
    # our configuration builds the same Keras layer as the Keras arguments do
    config = {k: v for k, v in ours.get_config().items() if k not in ("name", "input_shape")}
    rebuilt = getattr(keras.layers, name).from_config(config).get_config()
    fresh = getattr(keras.layers, name)(**kwargs).get_config()
    rebuilt.pop("name"), fresh.pop("name")
    assert rebuilt == fresh


def test_normalization_adapt_equals_keras(keras):
    x = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32) * 3 + 1
    theirs = keras.layers.Normalization()
    theirs.adapt(x)
    ours = L.Normalization()
    ours.adapt(x)
    model = Sequential([ours])
    model.build()
    np.testing.assert_allclose(model.predict(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["MaxNorm", "UnitNorm", "NonNeg", "MinMaxNorm"])
def test_constraints_equal_keras(keras, name):
    w = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    ours = getattr(constraints, name)()
    theirs = getattr(keras.constraints, name)()
    np.testing.assert_allclose(ours(w), np.asarray(theirs(w)), rtol=1e-6, atol=1e-7)
    assert ours.get_config() == {
        k: (float(v) if isinstance(v, (int, float)) and k != "axis" else v)
        for k, v in theirs.get_config().items()
    }


# -- hostile configurations (model files are hostile input) ------------------------------------------

HOSTILE_VALUES = [
    None,
    float("nan"),
    float("inf"),
    -1,
    0,
    10**30,
    -(10**30),
    "x",
    [],
    [None],
    {},
    True,
    [[1, 2], [3]],
]
HOSTILE_LAYERS = [
    L.Softmax(axis=[1, 2]),
    L.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5),
    L.LeakyReLU(0.1),
    L.PReLU(shared_axes=[1], alpha_constraint="non_neg"),
    L.ELU(0.5),
    L.BatchNormalization(axis=1, gamma_constraint="max_norm"),
    L.LayerNormalization(axis=[1, 2]),
    L.Normalization(axis=None, mean=2.0, variance=4.0),
    L.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 1.0, 1.0]),
    L.GaussianNoise(0.1, seed=3),
    L.GaussianDropout(0.2),
    L.AlphaDropout(0.1, noise_shape=[None, 1, 3], seed=7),
    L.ActivityRegularization(l1=0.01, l2=0.02),
    L.Reshape((3, -1)),
    L.Identity(),
    L.Dense(3, kernel_constraint="max_norm", bias_constraint="unit_norm"),
]


@pytest.mark.parametrize("layer", HOSTILE_LAYERS, ids=lambda layer: type(layer).__name__)
def test_hostile_layer_configs_are_refused_with_value_errors(layer):
    """Every configuration value replaced by nonsense: the layer is built and run, or a
    ValueError says why not; never another exception."""
    config = L.serialize(layer)
    x = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    for key in config["config"]:
        if key == "name" or (isinstance(layer, L.Dense) and "constraint" not in key):
            continue  # Dense's other arguments are checked elsewhere (the model-file cap)
        for value in HOSTILE_VALUES:
            bad = {"class_name": config["class_name"], "config": {**config["config"], key: value}}
            bad["config"].pop("name", None)
            try:
                model = Sequential([L.deserialize(bad)], seed=0)
                if isinstance(model.layers[0], L.Dense):
                    model = Sequential([L.Flatten(input_shape=(2, 3)), model.layers[0]], seed=0)
                model.build((2, 3))
                model.compile(SGD(0.1), "mse")
                model.fit(x, model.predict(x), epochs=1, verbose=0)
            except ValueError:
                pass


def test_functional_and_nested_models_keep_moving_statistics(tmp_path):
    """BatchNormalization in a functional model nested in another: the moving statistics are
    views of the outer model's state buffer, saved and loaded with it."""
    import multilayer as keras

    inner_in = keras.Input(shape=(4,))
    hidden = L.BatchNormalization(momentum=0.5)(L.Dense(6)(inner_in))
    inner = keras.Model(inner_in, hidden, name="inner")
    outer_in = keras.Input(shape=(4,))
    outputs = L.Dense(2)(L.LayerNormalization()(inner(outer_in)))
    model = keras.Model(outer_in, outputs)
    model.compile(SGD(0.1), "mse")
    x, y = x_data(32, 4), x_data(32, 2, seed=1)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    bn = inner.layers[-1]
    assert isinstance(bn, L.BatchNormalization)
    assert not np.allclose(bn.weights["moving_mean"], 0)
    assert model.count_params() == (4 * 6 + 6) + 4 * 6 + 2 * 6 + (6 * 2 + 2)
    model.save(tmp_path / "f.safetensors")
    loaded = load_model(tmp_path / "f.safetensors")
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
