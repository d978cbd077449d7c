"""Finite-difference gradient checks, in float64, of every layer, activation, loss and regularizer.

Two kinds of check:

* model level: the gradient that `Sequential.train_step` leaves in the flat buffer
  ``model.parameters.grads`` (after the real forward, loss-gradient and backward path, fused or
  not) against central differences of ``mean(loss) + regularization`` with respect to every
  parameter;
* layer level: ``layer.backward(g)`` of the weightless layers against central differences of
  ``sum(g * layer.forward(x))`` with respect to their input.

Kinks (relu at 0, |.| at 0, the hinge at 1) are avoided by construction: the tests assert that
no pre-activation or residual lies within a safe distance of a kink.
"""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.engine import losses as loss_module
from multilayer.layers import Activation, Dense, Dropout, Flatten, Rescaling
from multilayer.models import Sequential
from multilayer.optimizers import SGD
from multilayer.regularizers import L1, L1L2, L2

STEP = 1e-6
TOLERANCE = 1e-6
#: activations with a kink at 0 (or a second-derivative jump there, elu with alpha != 1 ...)
KINKED = {"relu", "leaky_relu", "elu"}


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def build(layers, loss, input_dim: int, seed: int = 0) -> Sequential:
    model = Sequential(layers, dtype="float64", seed=seed)
    model.build((input_dim,))
    # SGD without momentum or clipping leaves the gradient buffer untouched.
    model.compile(optimizer=SGD(learning_rate=1e-3), loss=loss)
    model._build_optimizer()
    return model


def reset_dropout(model: Sequential) -> None:
    """Give every seeded noise layer (Dropout, GaussianNoise, ...) a fresh generator with its
    seed: the same noise every forward."""
    for layer in model.layers:
        if getattr(layer, "seed", None) is not None:
            layer.rng = np.random.default_rng(layer.seed)


def objective(model: Sequential, x: np.ndarray, y: np.ndarray) -> float:
    reset_dropout(model)
    outputs = model._forward(x, training=True)
    return float(np.mean(model.loss.per_sample(y, outputs))) + model._regularization_loss()


def model_gradient(model: Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The gradient the real training step computes (the update is undone afterwards)."""
    before = model.parameters.values.copy()
    reset_dropout(model)
    model.train_step(x, y)
    grads = model.parameters.grads.copy()
    model.parameters.values[...] = before
    return grads


def numerical_gradient(model: Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    values = model.parameters.values
    grads = np.empty_like(values)
    for i in range(values.size):
        original = values[i]
        values[i] = original + STEP
        plus = objective(model, x, y)
        values[i] = original - STEP
        minus = objective(model, x, y)
        values[i] = original
        grads[i] = (plus - minus) / (2 * STEP)
    return grads


def assert_away_from_kinks(model: Sequential, x: np.ndarray, margin: float = 1e-3) -> None:
    """Every pre-activation of a kinked activation is at least ``margin`` from 0."""
    reset_dropout(model)
    model._forward(x, training=True)
    for layer in model.layers:
        if isinstance(layer, Dense) and layer.activation.name in KINKED:
            # layer._z may have been overwritten by the output: recompute z from the input
            z = layer._x @ layer.weights["kernel"] + layer.weights["bias"]
            assert np.min(np.abs(z)) > margin, f"{layer.name}: a pre-activation is near 0"


def check(model: Sequential, x: np.ndarray, y: np.ndarray) -> None:
    assert_away_from_kinks(model, x)
    analytic = model_gradient(model, x, y)
    numeric = numerical_gradient(model, x, y)
    assert np.any(analytic != 0)
    error = relative_error(analytic, numeric)
    assert error < TOLERANCE, f"relative error {error:.2e}"


RNG_SEED = 1234


def data(n: int = 6, d: int = 4, seed: int = RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


LABELS = np.array([0, 2, 1, 2, 0, 1])

# -- Dense with each activation (hidden layer), behind a fused softmax + cross-entropy head ------


@pytest.mark.parametrize(
    "activation",
    [
        "linear",
        "relu",
        "leaky_relu",
        "elu",
        {"name": "gelu", "approximate": False},
        {"name": "gelu", "approximate": True},
        "sigmoid",
        "tanh",
        "softplus",
        "softmax",
    ],
    ids=str,
)
def test_dense_with_each_activation(activation):
    from multilayer.engine import activations

    act = activations.get(activation)
    model = build(
        [Dense(5, activation=act), Dense(3, activation="softmax")],
        "categorical_crossentropy",
        input_dim=4,
    )
    check(model, data(), one_hot(LABELS, 3))


@pytest.mark.parametrize("activation", ["linear", "tanh", "sigmoid", "softplus", "softmax", "elu"])
def test_dense_output_activation_with_mse(activation):
    """The activation's own backward (no fusion) on the output layer."""
    model = build([Dense(5, activation="tanh"), Dense(3, activation=activation)], "mse", 4)
    y = np.random.default_rng(7).uniform(size=(6, 3))
    check(model, data(), y)


def test_dense_without_bias():
    model = build([Dense(5, activation="tanh", use_bias=False), Dense(2)], "mse", 4)
    check(model, data(), np.random.default_rng(3).normal(size=(6, 2)))


# -- weightless layers between two Dense layers ---------------------------------------------


@pytest.mark.parametrize(
    "middle",
    [
        lambda: Activation("tanh"),
        lambda: Activation("gelu"),
        lambda: Rescaling(0.5, offset=0.25),
        lambda: Flatten(),
        lambda: Dropout(0.4, seed=3),
    ],
    ids=["activation", "activation_gelu", "rescaling", "flatten", "dropout"],
)
def test_weightless_layer_between_dense_layers(middle):
    model = build(
        [Dense(6, activation="tanh"), middle(), Dense(3, activation="softmax")],
        "categorical_crossentropy",
        4,
    )
    check(model, data(), one_hot(LABELS, 3))


def test_dropout_mask_is_really_applied():
    """The dropout check above is meaningful only if the mask zeroes something."""
    layer = Dropout(0.5, seed=0)
    layer.build((50,))
    y = layer.forward(np.ones((4, 50)), training=True)
    assert np.any(y == 0) and np.allclose(y[y != 0], 2.0)
    assert layer.forward(np.ones((4, 50)), training=False) is not None
    np.testing.assert_array_equal(layer.forward(np.ones((4, 50)), training=False), 1.0)


def test_activation_layer_fused_with_softmax_loss():
    """Dense(linear) -> Activation("softmax") with cross-entropy takes the fused path."""
    model = build(
        [Dense(5, activation="tanh"), Dense(3), Activation("softmax")],
        "categorical_crossentropy",
        4,
    )
    assert model._fused()
    check(model, data(), one_hot(LABELS, 3))


# -- layer-level input gradients ----------------------------------------------------------


def input_gradient_check(layer, x: np.ndarray, training: bool = False) -> None:
    seed = getattr(layer, "seed", None)

    def forward(inputs):
        if seed is not None:
            layer.rng = np.random.default_rng(seed)
        return layer.forward(inputs, training=training).copy()

    g = np.random.default_rng(5).normal(size=forward(x).shape)
    forward(x)
    analytic = layer.backward(g.copy(), need_input_grad=True).copy()
    numeric = np.empty_like(x)
    flat, out = x.reshape(-1), numeric.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + STEP
        plus = np.sum(g * forward(x))
        flat[i] = original - STEP
        minus = np.sum(g * forward(x))
        flat[i] = original
        out[i] = (plus - minus) / (2 * STEP)
    assert analytic.shape == x.shape
    assert relative_error(analytic, numeric) < TOLERANCE


@pytest.mark.parametrize(
    "name",
    ["linear", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus", "softmax"],
)
def test_activation_layer_input_gradient(name):
    x = data(5, 4, seed=11)
    x[np.abs(x) < 1e-2] = 0.5  # away from the kinks at 0
    layer = Activation(name, dtype="float64")
    layer.build((4,))
    input_gradient_check(layer, x)


def test_gelu_approximate_input_gradient():
    from multilayer.engine.activations import GELU

    layer = Activation(GELU(approximate=True), dtype="float64")
    layer.build((4,))
    input_gradient_check(layer, data(5, 4, seed=12))


def test_rescaling_input_gradient():
    layer = Rescaling(1 / 255, offset=-0.5, dtype="float64")
    layer.build((4,))
    input_gradient_check(layer, data(5, 4, seed=13))


def test_flatten_input_gradient_restores_the_sample_shape():
    layer = Flatten(dtype="float64")
    layer.build((3, 4))
    assert layer.output_shape == (12,)
    input_gradient_check(layer, np.random.default_rng(0).normal(size=(2, 3, 4)))


def test_dropout_input_gradient_with_fixed_mask():
    layer = Dropout(0.3, seed=9, dtype="float64")
    layer.build((8,))
    input_gradient_check(layer, data(5, 8, seed=14), training=True)


# -- losses -------------------------------------------------------------------------------


def classification_case(loss, output_activation, sparse=False, binary=False):
    if binary:
        y = np.random.default_rng(2).integers(0, 2, size=(6, 3)).astype(np.float64)
        units = 3
    else:
        y = LABELS if sparse else one_hot(LABELS, 3)
        units = 3
    model = build(
        [Dense(5, activation="tanh"), Dense(units, activation=output_activation)], loss, 4
    )
    return model, y


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize(
    "from_logits, activation", [(False, "softmax"), (True, "linear"), (False, "softplus")]
)
def test_categorical_crossentropy(from_logits, activation, smoothing):
    loss = loss_module.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    model, y = classification_case(loss, activation)
    assert model._fused() == (activation == "softmax")
    check(model, data(), y)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize(
    "from_logits, activation", [(False, "softmax"), (True, "linear"), (False, "sigmoid")]
)
def test_sparse_categorical_crossentropy(from_logits, activation, smoothing):
    loss = loss_module.SparseCategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=smoothing
    )
    model, y = classification_case(loss, activation, sparse=True)
    assert model._fused() == (activation == "softmax")
    check(model, data(), y)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize(
    "from_logits, activation", [(False, "sigmoid"), (True, "linear"), (False, "softmax")]
)
def test_binary_crossentropy(from_logits, activation, smoothing):
    loss = loss_module.BinaryCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    model, y = classification_case(loss, activation, binary=True)
    assert model._fused() == (activation == "sigmoid")
    check(model, data(), y)


def test_binary_crossentropy_single_output_with_flat_targets():
    """(n,) targets against an (n, 1) output, the usual binary-classifier layout."""
    model = build(
        [Dense(4, activation="tanh"), Dense(1, activation="sigmoid")], "binary_crossentropy", 4
    )
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0]).reshape(-1, 1)
    check(model, data(), y)


def test_mean_squared_error():
    model = build([Dense(5, activation="relu"), Dense(2)], "mean_squared_error", 4)
    check(model, data(), np.random.default_rng(4).normal(size=(6, 2)))


def test_mean_absolute_error():
    model = build([Dense(5, activation="tanh"), Dense(2)], "mae", 4)
    y = np.random.default_rng(4).normal(size=(6, 2))
    outputs = model.predict(data())
    assert np.min(np.abs(outputs - y)) > 1e-3  # away from the kink of |.|
    check(model, data(), y)


def test_hinge():
    model = build([Dense(5, activation="tanh"), Dense(2)], "hinge", 4)
    y = np.where(np.random.default_rng(6).uniform(size=(6, 2)) > 0.5, 1.0, -1.0)
    margins = 1.0 - y * model.predict(data())
    assert np.min(np.abs(margins)) > 1e-3  # away from the hinge's kink
    assert np.any(margins > 0)  # some samples contribute a gradient
    check(model, data(), y)


@pytest.mark.parametrize(
    ("loss", "activation", "targets"),
    [
        ("huber", None, "regression"),
        (loss_module.Huber(delta=0.2), None, "regression"),
        ("log_cosh", None, "regression"),
        ("poisson", "softplus", "counts"),
        ("mape", None, "regression"),
        ("msle", "softplus", "counts"),
        ("kl_divergence", "softmax", "distribution"),
        ("squared_hinge", None, "signed"),
        ("categorical_hinge", None, "one_hot"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_keras_losses_end_to_end(loss, activation, targets):
    """The losses added for Keras compatibility, through the real training step (their kinks,
    where they have one, are far from these data: checked below)."""
    model = build([Dense(5, activation="tanh"), Dense(3, activation=activation)], loss, 4)
    rng = np.random.default_rng(11)
    y = {
        "regression": rng.normal(size=(6, 3)),
        "counts": rng.uniform(0.5, 3.0, size=(6, 3)),
        "distribution": rng.dirichlet(np.ones(3), size=6),
        "signed": np.where(rng.uniform(size=(6, 3)) > 0.5, 1.0, -1.0),
        "one_hot": np.eye(3)[rng.integers(0, 3, size=6)],
    }[targets]
    outputs = model.predict(data())
    if targets == "signed":
        assert np.min(np.abs(1.0 - y * outputs)) > 1e-3
    check(model, data(), y)


# -- regularizers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "regularizer", [L1(0.01), L2(0.02), L1L2(l1=0.01, l2=0.03)], ids=["l1", "l2", "l1_l2"]
)
def test_regularizers(regularizer):
    model = build(
        [
            Dense(
                5, activation="tanh", kernel_regularizer=regularizer, bias_regularizer=regularizer
            ),
            Dense(3, activation="softmax", kernel_regularizer=regularizer),
        ],
        "categorical_crossentropy",
        4,
    )
    # non-zero biases: the default zero biases would sit on L1's kink
    model.layers[0].weights["bias"][...] = np.random.default_rng(8).uniform(0.1, 0.3, size=5)
    assert model._regularization_loss() > 0
    check(model, data(), one_hot(LABELS, 3))


def test_regularization_changes_the_gradient():
    """Guard against a check that passes because the penalty is ignored on both sides."""
    plain = build([Dense(3, activation="softmax")], "categorical_crossentropy", 4, seed=1)
    penalised = build(
        [Dense(3, activation="softmax", kernel_regularizer=L2(0.5))],
        "categorical_crossentropy",
        4,
        seed=1,
    )
    np.testing.assert_array_equal(plain.parameters.values, penalised.parameters.values)
    difference = model_gradient(penalised, data(), one_hot(LABELS, 3)) - model_gradient(
        plain, data(), one_hot(LABELS, 3)
    )
    kernel = penalised.layers[0].weights["kernel"].reshape(-1)
    np.testing.assert_allclose(difference[: kernel.size], 2 * 0.5 * kernel, rtol=1e-10)


# -- three layers deep, everything together -----------------------------------------------------


def test_deep_network_float64_end_to_end():
    model = build(
        [
            Dense(6, activation="gelu"),
            Dense(5, activation="elu"),
            Dense(4, activation="sigmoid"),
            Dense(3, activation="softmax"),
        ],
        "categorical_crossentropy",
        4,
    )
    assert model.parameters.values.dtype == np.float64
    check(model, data(), one_hot(LABELS, 3))


def test_set_floatx_makes_float64_models():
    from multilayer.utils import floatx, set_floatx

    assert floatx() == "float32"
    set_floatx("float64")
    try:
        model = Sequential([Dense(2, input_shape=(3,))])
        assert model.get_weights()[0].dtype == np.float64
        assert model.predict(np.ones((1, 3), dtype=np.float32)).dtype == np.float64
    finally:
        set_floatx("float32")
    assert Sequential([Dense(2, input_shape=(3,))]).get_weights()[0].dtype == np.float32


# -- Keras layers (issue 10): activation layers, normalization, noise, reshaping ---------------


def keras_layer_model(middle, loss="categorical_crossentropy", head="softmax", seed=0):
    """Dense(6, tanh) -> middle layers -> Dense(3, head): the middle layers' parameter and
    input gradients both enter the checked gradient."""
    return build([Dense(6, activation="tanh"), *middle, Dense(3, activation=head)], loss, 4, seed)


def test_prelu_parameter_and_input_gradient():
    from multilayer.initializers import RandomUniform
    from multilayer.layers import PReLU

    model = keras_layer_model(
        [Dense(5), PReLU(alpha_initializer=RandomUniform(0.1, 0.5), alpha_regularizer=L2(0.1))]
    )
    model._forward(data(), training=True)
    assert np.min(np.abs(model.layers[2]._x)) > 1e-3  # away from the kink at 0
    check(model, data(), one_hot(LABELS, 3))


def test_prelu_shared_axes_gradient():
    from multilayer.initializers import RandomUniform
    from multilayer.layers import PReLU, Reshape

    prelu = PReLU(alpha_initializer=RandomUniform(0.1, 0.5), shared_axes=[1])
    model = keras_layer_model([Dense(6), Reshape((2, 3)), prelu, Flatten()])
    assert model.layers[3].weights["alpha"].shape == (1, 3)
    check(model, data(), one_hot(LABELS, 3))


@pytest.mark.parametrize(
    "options",
    [{}, {"center": False}, {"scale": False}, {"momentum": 0.5, "epsilon": 0.1}],
    ids=str,
)
def test_batch_normalization_training_mode_gradient(options):
    """The exact backward through the batch statistics (they depend on every sample)."""
    from multilayer.initializers import RandomUniform
    from multilayer.layers import BatchNormalization

    bn = BatchNormalization(
        gamma_initializer=RandomUniform(0.5, 1.5),
        beta_initializer=RandomUniform(-0.5, 0.5),
        gamma_regularizer=L2(0.05),
        **options,
    )
    check(keras_layer_model([bn]), data(), one_hot(LABELS, 3))


def test_batch_normalization_on_a_middle_axis_gradient():
    from multilayer.layers import BatchNormalization, Reshape

    model = keras_layer_model([Dense(6), Reshape((2, 3)), BatchNormalization(axis=1), Flatten()])
    assert model.layers[3].weights["gamma"].shape == (2,)
    check(model, data(), one_hot(LABELS, 3))


def test_batch_normalization_inference_mode_gradient():
    """A non-trainable BatchNormalization normalizes with its moving statistics even in
    training (Keras 3), so its input gradient is the plain affine one."""
    from multilayer.layers import BatchNormalization

    bn = BatchNormalization()
    model = keras_layer_model([bn, Dense(4, activation="tanh")])
    bn.weights["moving_mean"][...] = [0.1, -0.2, 0.3, 0.0, 0.2, -0.1]
    bn.weights["moving_variance"][...] = [0.5, 1.5, 2.0, 0.7, 1.0, 0.3]
    bn.trainable = False
    check(model, data(), one_hot(LABELS, 3))


@pytest.mark.parametrize("axis", [-1, [1, 2], 1], ids=str)
def test_layer_normalization_gradient(axis):
    from multilayer.initializers import RandomUniform
    from multilayer.layers import LayerNormalization, Reshape

    ln = LayerNormalization(
        axis=axis,
        gamma_initializer=RandomUniform(0.5, 1.5),
        beta_initializer=RandomUniform(-0.5, 0.5),
    )
    model = keras_layer_model([Dense(6), Reshape((2, 3)), ln, Flatten()])
    check(model, data(), one_hot(LABELS, 3))


@pytest.mark.parametrize("axis", [-1, (1, 2), 1], ids=str)
def test_softmax_layer_gradient_without_fusion(axis):
    """Softmax layers in the middle (any axes) and as the output under MSE (not fused)."""
    from multilayer.layers import Reshape, Softmax

    model = build(
        [
            Dense(6, activation="tanh"),
            Reshape((2, 3)),
            Softmax(axis=axis),
            Flatten(),
            Dense(3),
            Softmax(),
        ],
        "mse",
        4,
    )
    assert not model._fused()
    check(model, data(), one_hot(LABELS, 3))


def test_softmax_layer_fuses_with_cross_entropy():
    from multilayer.layers import Softmax

    model = build([Dense(5, activation="tanh"), Dense(3), Softmax()], "categorical_crossentropy", 4)
    assert model._fused()
    check(model, data(), one_hot(LABELS, 3))


def test_activity_regularization_gradient():
    from multilayer.layers import ActivityRegularization

    model = keras_layer_model([ActivityRegularization(l1=0.05, l2=0.1)])
    check(model, data(), one_hot(LABELS, 3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("multilayer.layers", fromlist=["GaussianNoise"]).GaussianNoise(
            0.3, seed=1
        ),
        lambda: __import__("multilayer.layers", fromlist=["x"]).GaussianDropout(0.3, seed=2),
        lambda: __import__("multilayer.layers", fromlist=["x"]).AlphaDropout(0.3, seed=3),
    ],
    ids=["GaussianNoise", "GaussianDropout", "AlphaDropout"],
)
def test_noise_layers_gradient_with_fixed_noise(make):
    model = keras_layer_model([make()])
    check(model, data(), one_hot(LABELS, 3))


def keras_input_check(layer, shape, x, training=False):
    layer.dtype = np.dtype("float64")
    layer.build(shape)
    input_gradient_check(layer, x, training=training)


@pytest.mark.parametrize(
    "make",
    [
        lambda L: L.ReLU(),
        lambda L: L.ReLU(max_value=0.8, negative_slope=0.2, threshold=0.3),
        lambda L: L.LeakyReLU(),
        lambda L: L.LeakyReLU(negative_slope=1.5),
        lambda L: L.ELU(alpha=0.7),
        lambda L: L.Softmax(axis=1),
        lambda L: L.Identity(),
        lambda L: L.Reshape((2, 2)),
        lambda L: L.Normalization(mean=[0.5, -1, 2, 0], variance=[4, 1, 0.25, 2]),
        lambda L: L.Normalization(mean=0.5, variance=4, invert=True),
    ],
    ids=[
        "ReLU",
        "ReLU-options",
        "LeakyReLU",
        "LeakyReLU-steep",
        "ELU",
        "Softmax",
        "Identity",
        "Reshape",
        "Normalization",
        "Normalization-invert",
    ],
)
def test_weightless_keras_layer_input_gradient(make):
    import multilayer.layers as L

    x = data(5, 4, seed=21)
    # away from every kink: 0, the threshold 0.3 and the cap 0.8
    for kink in (0.0, 0.3, 0.8):
        x[np.abs(x - kink) < 1e-2] = 0.55
    keras_input_check(make(L), (4,), x)
