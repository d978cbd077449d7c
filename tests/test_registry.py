"""The one registry: every kind of object round-trips through one config shape, old shapes
still load, unknown names get exact "did you mean" errors, one positive-integer check, and
the engine imports nothing from the rest of the package."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from multilayer.engine import (
    activations,
    constraints,
    initializers,
    losses,
    metrics,
    optimizers,
    regularizers,
    schedules,
)
from multilayer.engine import layers as layer_module
from multilayer.engine.registry import Registry, positive_int, unknown_name_error
from multilayer.errors import DataError

DATA = Path(__file__).parent / "data"
SRC = Path(__file__).parents[1] / "src" / "multilayer"

# One instance of every registered class, with non-default arguments where there are any.
SAMPLES = {
    activations.REGISTRY: [
        activations.Linear(),
        activations.ReLU(),
        activations.LeakyReLU(0.1),
        activations.ELU(0.5),
        activations.GELU(approximate=True),
        activations.Sigmoid(),
        activations.Tanh(),
        activations.Softplus(),
        activations.Softmax(),
    ],
    initializers.REGISTRY: [
        initializers.Zeros(),
        initializers.Ones(),
        initializers.RandomNormal(0.5, 2.0),
        initializers.RandomUniform(-1.0, 3.0),
        initializers.GlorotUniform(),
        initializers.GlorotNormal(),
        initializers.HeUniform(),
        initializers.HeNormal(),
        initializers.LecunNormal(),
    ],
    regularizers.REGISTRY: [
        regularizers.Regularizer(l1=0.1, l2=0.2),
        regularizers.L1(0.3),
        regularizers.L2(0.4),
        regularizers.L1L2(l1=0.5, l2=0.6),
    ],
    losses.REGISTRY: [
        losses.MeanSquaredError(),
        losses.MeanAbsoluteError(),
        losses.Hinge(),
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        losses.SparseCategoricalCrossentropy(label_smoothing=0.2),
        losses.BinaryCrossentropy(from_logits=True),
        losses.SquaredHinge(),
        losses.CategoricalHinge(),
        losses.Huber(delta=0.5),
        losses.LogCosh(),
        losses.KLDivergence(),
        losses.Poisson(),
        losses.MeanAbsolutePercentageError(),
        losses.MeanSquaredLogarithmicError(),
    ],
    metrics.REGISTRY: [
        metrics.CategoricalAccuracy(name="acc"),
        metrics.SparseCategoricalAccuracy(),
        metrics.BinaryAccuracy(threshold=0.3),
        metrics.TopKCategoricalAccuracy(k=3),
        metrics.SparseTopKCategoricalAccuracy(k=2, name="top2"),
        metrics.MeanSquaredError(),
        metrics.MeanAbsoluteError(name="mae"),
        metrics.RootMeanSquaredError(),
        metrics.MeanAbsolutePercentageError(name="mape"),
        metrics.MeanSquaredLogarithmicError(),
        metrics.LogCoshError(),
        metrics.R2Score(class_aggregation=None, num_regressors=2),
        metrics.Hinge(),
        metrics.SquaredHinge(),
        metrics.CategoricalHinge(),
        metrics.KLDivergence(),
        metrics.Poisson(),
        metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics.CategoricalCrossentropy(label_smoothing=0.2),
        metrics.SparseCategoricalCrossentropy(from_logits=True),
        metrics.Precision(thresholds=[0.3, 0.7], class_id=1),
        metrics.Recall(top_k=2),
        metrics.AUC(num_thresholds=50, curve="PR", summation_method="majoring", from_logits=True),
        metrics.AUC(thresholds=[0.2, 0.5, 0.9], name="auc_custom"),
        metrics.TruePositives(thresholds=0.3),
        metrics.FalsePositives(thresholds=[0.1, 0.9]),
        metrics.TrueNegatives(),
        metrics.FalseNegatives(name="fn"),
        metrics.FBetaScore(average="weighted", beta=2.0, threshold=0.4),
        metrics.F1Score(average="macro"),
    ],
    optimizers.REGISTRY: [
        optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=1.0),
        optimizers.Adam(
            schedules.CosineDecay(0.0, 100, warmup_target=0.01, warmup_steps=5), amsgrad=True
        ),
        optimizers.AdamW(0.002, weight_decay=0.01, global_clipnorm=2.0),
        optimizers.RMSprop(momentum=0.5, centered=True),
        optimizers.Adagrad(initial_accumulator_value=0.2),
        optimizers.Nadam(0.002, beta_1=0.8, clipvalue=0.5, use_ema=True),
        optimizers.Adamax(beta_2=0.99, weight_decay=0.01, ema_overwrite_frequency=None),
        optimizers.Adadelta(
            1.0, rho=0.9, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5
        ),
        optimizers.Lion(schedules.PolynomialDecay(0.01, 100, power=2.0), beta_2=0.98),
        optimizers.Lamb(epsilon=1e-6, global_clipnorm=1.0),
    ],
    schedules.REGISTRY: [
        schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True),
        schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]),
        schedules.CosineDecay(0.1, 100, alpha=0.1),
        schedules.OneCycle(0.1, 1000, pct_start=0.25),
        schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
        schedules.PolynomialDecay(0.1, 100, end_learning_rate=0.01, power=0.5, cycle=True),
        schedules.CosineDecayRestarts(0.1, 20, t_mul=1.5, m_mul=0.8, alpha=0.05),
    ],
    layer_module.REGISTRY: [
        layer_module.InputLayer(shape=(4, 2)),
        layer_module.Flatten(input_shape=(4, 2)),
        layer_module.Rescaling(1 / 255, offset=-0.5),
        layer_module.Dense(
            3,
            activation=activations.LeakyReLU(0.1),
            use_bias=False,
            kernel_initializer=initializers.RandomNormal(0.0, 0.1),
            kernel_regularizer="l2",
            kernel_constraint=constraints.MaxNorm(3.0),
            bias_constraint="non_neg",
        ),
        layer_module.Activation("softmax"),
        layer_module.Dropout(0.3, seed=4),
        layer_module.Add(name="sum"),
        layer_module.Average(),
        layer_module.Multiply(),
        layer_module.Concatenate(axis=-2),
        layer_module.Softmax(axis=[1, 2]),
        layer_module.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5),
        layer_module.LeakyReLU(alpha=0.1),
        layer_module.PReLU(
            alpha_initializer=initializers.Ones(),
            alpha_regularizer="l1",
            alpha_constraint=constraints.NonNeg(),
            shared_axes=[1],
        ),
        layer_module.ELU(alpha=0.5),
        layer_module.BatchNormalization(
            axis=1,
            momentum=0.9,
            epsilon=1e-5,
            center=False,
            gamma_initializer=initializers.RandomUniform(0.5, 1.5),
            moving_variance_initializer="zeros",
            gamma_regularizer="l2",
            gamma_constraint=constraints.UnitNorm(),
        ),
        layer_module.LayerNormalization(axis=[1, 2], epsilon=1e-6, scale=False),
        layer_module.Normalization(axis=None, mean=2.0, variance=4.0, invert=True),
        layer_module.GaussianNoise(0.1, seed=3),
        layer_module.GaussianDropout(0.2),
        layer_module.AlphaDropout(0.1, noise_shape=[None, 1], seed=7),
        layer_module.ActivityRegularization(l1=0.01, l2=0.02),
        layer_module.Reshape((2, -1)),
        layer_module.Identity(name="passthrough"),
        layer_module.Subtract(),
        layer_module.Embedding(10, 3, embeddings_initializer="he_normal"),
        layer_module.IntegerLookup(vocabulary=[7, 3, 12], num_oov_indices=2, mask_token=0),
        layer_module.StringLookup(vocabulary=["a", "b"], output_mode="one_hot"),
        layer_module.CategoryEncoding(num_tokens=5, output_mode="count"),
        layer_module.Discretization(bin_boundaries=[0.0, 1.5]),
        layer_module.Discretization(num_bins=4, output_mode="multi_hot"),
        layer_module.Hashing(5, mask_value="", output_mode="count"),
        layer_module.RobustScaling(
            [1.0, 2.0], [0.5, 0.0], clip=None, missing_indicator=[True, False]
        ),
        layer_module.Maximum(),
        layer_module.Minimum(),
        layer_module.Dot(axes=(1, 2), normalize=True),
        layer_module.OpLayer("softmax", [{"__tensor__": 0}], {"axis": -1}),
        layer_module.OpLayer(
            "add", [{"__tensor__": 0}, np.array([1.0, 2.0], dtype="float32")], name="shift"
        ),
    ],
    constraints.REGISTRY: [
        constraints.MaxNorm(3.0, axis=[0, 1]),
        constraints.MinMaxNorm(0.5, 2.0, rate=0.5, axis=1),
        constraints.UnitNorm(axis=1),
        constraints.NonNeg(),
    ],
}


def _cases():
    return [
        pytest.param(registry, obj, id=f"{registry.kind}-{type(obj).__name__}")
        for registry, objects in SAMPLES.items()
        for obj in objects
    ]


@pytest.mark.parametrize("registry", list(SAMPLES), ids=lambda r: r.kind)
def test_every_registered_class_has_a_round_trip_sample(registry):
    assert {type(obj) for obj in SAMPLES[registry]} == set(registry.classes())


@pytest.mark.parametrize(("registry", "obj"), _cases())
def test_round_trip_through_the_one_config_shape_and_json(registry, obj):
    config = registry.serialize(obj)
    assert set(config) == {"class_name", "config"}
    assert config["class_name"] == type(obj).__name__
    restored = registry.deserialize(json.loads(json.dumps(config)))
    assert type(restored) is type(obj)
    assert registry.serialize(restored) == config
    assert registry.get(config).get_config() == obj.get_config()
    assert registry.get(obj) is obj


@pytest.mark.parametrize(
    ("module", "obj"),
    [
        (activations, activations.ELU(0.5)),
        (initializers, initializers.RandomUniform(-1.0, 3.0)),
        (regularizers, regularizers.L2(0.4)),
        (losses, losses.BinaryCrossentropy(from_logits=True)),
        (metrics, metrics.TopKCategoricalAccuracy(k=3)),
        (schedules, schedules.ExponentialDecay(0.1, 10, 0.9)),
        (optimizers, optimizers.Adam(learning_rate=0.01, amsgrad=True)),
        (layer_module, layer_module.Dropout(0.3, seed=4)),
    ],
    ids=lambda v: getattr(v, "__name__", type(v).__name__),
)
def test_module_serialize_functions_write_the_one_shape(module, obj):
    config = module.serialize(obj)
    assert config == {"class_name": type(obj).__name__, "config": obj.get_config()}
    assert type(module.deserialize(config)) is type(obj)


def test_a_model_config_nests_the_one_shape():
    dense = layer_module.Dense(3, activation="relu", kernel_regularizer="l2")
    config = layer_module.serialize(dense)["config"]
    assert config["activation"] == {"class_name": "ReLU", "config": {}}
    assert config["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {}}
    assert config["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert config["bias_regularizer"] is None


@pytest.mark.parametrize(
    ("resolve", "identifier", "expected"),
    [
        (activations.get, "relu", activations.ReLU),
        (activations.get, "ReLU", activations.ReLU),
        (activations.get, "RELU", activations.ReLU),
        (activations.get, None, activations.Linear),
        (initializers.get, "GlorotUniform", initializers.GlorotUniform),
        (losses.get, "mse", losses.MeanSquaredError),
        (losses.get, "MAE", losses.MeanAbsoluteError),
        (optimizers.get, "Adam", optimizers.Adam),
        (metrics.get, "mse", metrics.MeanSquaredError),
    ],
)
def test_get_by_name_class_name_or_alias(resolve, identifier, expected):
    assert type(resolve(identifier)) is expected


# -- older shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("resolve", "old", "expected"),
    [
        (activations.deserialize, "tanh", activations.Tanh().get_config()),
        (activations.get, {"name": "leaky_relu", "negative_slope": 0.1}, {"negative_slope": 0.1}),
        (initializers.get, {"name": "random_normal", "mean": 0.0, "stddev": 0.3}, None),
        (regularizers.get, {"name": "l1_l2", "l1": 0.0001, "l2": 0.001}, None),
        (losses.get, {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1}, None),
        (
            optimizers.get,
            {
                "name": "adam",
                "config": {
                    "learning_rate": {
                        "class_name": "ExponentialDecay",
                        "config": {
                            "initial_learning_rate": 0.01,
                            "decay_steps": 10,
                            "decay_rate": 0.9,
                        },
                    },
                    "amsgrad": True,
                },
            },
            None,
        ),
    ],
)
def test_older_config_shapes_still_load(resolve, old, expected):
    obj = resolve(old)
    if expected is not None:
        assert obj.get_config() == expected
    if isinstance(old, dict) and "config" not in old:
        arguments = {k: v for k, v in old.items() if k != "name"}
        assert {k: obj.get_config()[k] for k in arguments} == arguments


def test_model_files_written_in_the_old_shapes_load_and_predict_the_same():
    pytest.importorskip("safetensors")
    from multilayer.models import load_model

    model = load_model(DATA / "legacy_v1_adam_schedule.safetensors")
    x = np.load(DATA / "legacy_v1_inputs.npy")
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), np.load(DATA / "legacy_v1_predictions.npy")
    )
    dense = model.layers[1]
    assert dense.activation.get_config() == {"negative_slope": 0.1}
    assert dense.kernel_initializer.get_config() == {"mean": 0.0, "stddev": 0.3}
    assert dense.kernel_regularizer.get_config() == {"l1": 0.0001, "l2": 0.001}
    assert type(model.loss) is losses.SparseCategoricalCrossentropy
    assert model.loss.label_smoothing == 0.1
    assert model.optimizer.amsgrad and model.optimizer.iterations == 8
    assert model.optimizer.learning_rate == pytest.approx(0.01 * 0.9 ** (8 / 10))
    # saved again, it is written in the one shape
    config = model.get_config()["layers"][1]["config"]
    assert config["activation"] == {"class_name": "LeakyReLU", "config": {"negative_slope": 0.1}}

    plain = load_model(DATA / "legacy_v1_sgd_mse.safetensors")
    assert type(plain.optimizer) is optimizers.SGD and plain.optimizer.momentum == 0.9
    assert type(plain.loss) is losses.MeanSquaredError


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: activations.get("rleu"),
            ValueError,
            "Unknown activation 'rleu'. Did you mean 'relu'? Known: elu, gelu, leaky_relu, "
            "linear, relu, sigmoid, softmax, softplus, tanh.",
        ),
        (
            lambda: losses.get("msee"),
            ValueError,
            "Unknown loss 'msee'. Did you mean 'mse'? Known: bce, binary_crossentropy, "
            "categorical_crossentropy, categorical_hinge, hinge, huber, huber_loss, "
            "kl_divergence, kld, kullback_leibler_divergence, log_cosh, logcosh, mae, mape, "
            "mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, "
            "mean_squared_logarithmic_error, mse, msle, poisson, "
            "sparse_categorical_crossentropy, squared_hinge.",
        ),
        (
            lambda: regularizers.get({"class_name": "L22", "config": {}}),
            ValueError,
            "Unknown regularizer 'L22'. Did you mean 'l2'? Known: l1, l1_l2, l2.",
        ),
        (
            lambda: schedules.deserialize({"class_name": "StepDecay", "config": {}}),
            ValueError,
            "Unknown learning-rate schedule 'StepDecay'. Did you mean 'CosineDecay'? Known: "
            "CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay, "
            "OneCycle, PiecewiseConstantDecay, PolynomialDecay.",
        ),
        (
            lambda: metrics.get("acuracy"),
            ValueError,
            "Unknown metric 'acuracy'. Did you mean 'accuracy'? Known: accuracy, auc, bce, "
            "binary_accuracy, binary_crossentropy, categorical_accuracy, "
            "categorical_crossentropy, categorical_hinge, crossentropy, f1_score, f_beta_score, "
            "false_negatives, false_positives, fbeta_score, hinge, kl_divergence, "
            "log_cosh_error, logcosh, mae, mape, mean_absolute_error, "
            "mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error, "
            "mse, msle, poisson, precision, r2_score, recall, root_mean_squared_error, "
            "sparse_categorical_accuracy, sparse_categorical_crossentropy, "
            "sparse_top_k_categorical_accuracy, squared_hinge, top_k_categorical_accuracy, "
            "true_negatives, true_positives.",
        ),
        (
            lambda: optimizers.get(3),
            TypeError,
            "optimizer must be a name or an Optimizer, or a config dict; got int",
        ),
        (
            lambda: activations.get(1.5),
            TypeError,
            "activation must be a name or an Activation, or a config dict; got float",
        ),
        (
            lambda: optimizers.get({"class_name": "Adam", "config": {"learning_rat": 0.1}}),
            ValueError,
            "invalid configuration for optimizer Adam: Optimizer.__init__() got an unexpected "
            "keyword argument 'learning_rat'",
        ),
        (
            lambda: losses.get({"class_name": "Hinge", "config": {}, "module": "keras.losses"}),
            ValueError,
            "a loss config must be {'class_name': ..., 'config': {...}}, got "
            "{'class_name': 'Hinge', 'config': {}, 'module': 'keras.losses'}",
        ),
        (
            lambda: layer_module.deserialize("Dense"),
            ValueError,
            "a layer config must be {'class_name': ..., 'config': {...}}, got 'Dense'",
        ),
        (
            lambda: layer_module.deserialize({"class_name": "Dens", "config": {}}),
            ValueError,
            "Unknown layer type 'Dens'. Did you mean 'Dense'? Known: Activation, "
            "ActivityRegularization, Add, AlphaDropout, Average, BatchNormalization, "
            "CategoryEncoding, Concatenate, Dense, Discretization, Dot, Dropout, ELU, Embedding, "
            "Flatten, GaussianDropout, GaussianNoise, Hashing, Identity, InputLayer, IntegerLookup, "
            "LayerNormalization, LeakyReLU, Maximum, Minimum, Multiply, Normalization, OpLayer, PReLU, "
            "ReLU, Rescaling, Reshape, RobustScaling, Softmax, StringLookup, Subtract.",
        ),
        (
            lambda: metrics.deserialize({"name": "mse"}),
            ValueError,
            "a metric config must be {'class_name': ..., 'config': {...}}, got {'name': 'mse'}",
        ),
    ],
)
def test_exact_error_messages(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert str(info.value) == message


def test_registering_a_second_class_under_a_taken_name_is_refused():
    registry: Registry[activations.Activation] = Registry("activation", activations.Activation)
    registry.register(activations.ReLU)

    class OtherReLU(activations.Activation):
        name = "relu"

    with pytest.raises(ValueError, match="^activation 'relu' is already registered$"):
        registry.register(OtherReLU)
    with pytest.raises(TypeError, match="is not a Activation"):
        registry.register(losses.Hinge)  # type: ignore[arg-type]
    registry.register(activations.ReLU)  # the same class again is harmless


def test_an_unregistered_subclass_is_not_serialized_under_another_name():
    class Custom(activations.ReLU):
        pass

    with pytest.raises(ValueError, match="^activation 'Custom' is not registered$"):
        activations.serialize(Custom())


def test_unknown_name_error_without_a_close_match():
    error = unknown_name_error("colour", "zzz", ["red", "blue"])
    assert str(error) == "Unknown colour 'zzz'. Known: blue, red."


# -- the one positive-integer check ---------------------------------------------------------
@pytest.mark.parametrize("value", [0, -3, True, 2.0, 2.5, "3", None, np.float32(4)])
def test_positive_int_refuses(value):
    with pytest.raises(ValueError) as info:
        positive_int(value, "epochs")
    assert str(info.value) == f"epochs must be a positive integer, got {value!r}"


def test_positive_int_accepts_python_and_numpy_integers():
    assert positive_int(3, "epochs") == 3
    value = positive_int(np.int64(7), "epochs")
    assert value == 7 and type(value) is int
    with pytest.raises(DataError):
        positive_int(0, "n", error=DataError)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: layer_module.Dense(0), "Dense: units must be a positive integer, got 0"),
        (
            lambda: __import__("multilayer").Perceptron(max_epochs=1.5),
            "max_epochs must be a positive integer, got 1.5",
        ),
        (
            lambda: __import__("multilayer").utils.to_categorical([1], 0),
            "to_categorical: num_classes must be a positive integer, got 0",
        ),
        (
            lambda: schedules.ExponentialDecay(0.1, 0, 0.5),
            "ExponentialDecay: decay_steps must be a positive integer, got 0",
        ),
        (
            lambda: schedules.CosineDecay(0.1, 2.5),
            "CosineDecay: decay_steps must be a positive integer, got 2.5",
        ),
    ],
)
def test_callers_use_the_one_check(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# -- layering -----------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "multilayer"}


def test_the_engine_imports_nothing_outside_the_engine():
    """multilayer.utils re-exports engine functions, so an engine module importing
    multilayer.utils would close an import cycle (engine -> utils -> engine)."""
    outside = {
        f"{path.relative_to(SRC)}: {name}"
        for path in (SRC / "engine").rglob("*.py")
        for name in _imports(path)
        if not name.startswith("multilayer.engine")
    }
    assert outside == set()
