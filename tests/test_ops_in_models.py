"""keras.ops on the symbolic tensors of functional models: the op becomes a layer with an exact
gradient (checked against finite differences through whole models), it saves and loads, and
what cannot be a layer is refused with a message."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import multilayer as keras
from helpers.gradients import model_gradients_match
from multilayer import layers, ops
from multilayer.errors import ModelFileError
from multilayer.layers import Dense
from multilayer.models import Model, load_model

RNG = np.random.default_rng(0)


W = RNG.normal(size=(5, 3))

HEADS = {
    "softmax": lambda h, g: ops.softmax(h),
    "log_softmax-axis": lambda h, g: ops.log_softmax(h, axis=-1),
    "scale-shift": lambda h, g: ops.add(ops.multiply(h, 0.5), 1.0),
    "relu-square": lambda h, g: ops.square(ops.relu(h)),
    "sigmoid-tanh": lambda h, g: ops.multiply(ops.sigmoid(h), ops.tanh(g)),
    "concatenate": lambda h, g: ops.concatenate([h, ops.exp(g)], axis=-1),
    "stack-reshape": lambda h, g: ops.reshape(ops.stack([h, g], axis=1), (-1, 10)),
    "matmul-constant": lambda h, g: ops.matmul(h, W),
    "norm": lambda h, g: ops.expand_dims(
        ops.sqrt(ops.add(ops.sum(ops.square(h), axis=-1), 1.0)), -1
    ),
    "mean-max": lambda h, g: ops.concatenate(
        [ops.mean(h, axis=-1, keepdims=True), ops.max(g, axis=-1, keepdims=True)], axis=-1
    ),
    "where": lambda h, g: ops.where(ops.greater(h, 0.0), h, ops.multiply(g, 0.1)),
    "clip-abs": lambda h, g: ops.clip(ops.abs(h), 0.1, 0.8),
    "divide-subtract": lambda h, g: ops.divide(ops.subtract(h, g), ops.add(ops.square(g), 1.0)),
    "transpose": lambda h, g: ops.reshape(
        ops.transpose(ops.reshape(h, (-1, 5, 1)), (0, 2, 1)), (-1, 5)
    ),
    "same-tensor-twice": lambda h, g: ops.multiply(h, h),
}


@pytest.mark.parametrize("head", list(HEADS), ids=list(HEADS))
def test_ops_in_a_model_have_exact_gradients(head):
    inputs = keras.Input(shape=(4,))
    h = Dense(5, activation="tanh")(inputs)
    g = Dense(5)(inputs)
    out = Dense(2)(HEADS[head](h, g))
    model = Model(inputs, out, dtype="float64", seed=0)
    model_gradients_match(model, RNG.normal(size=(6, 4)), RNG.normal(size=(6, 2)))


def test_a_model_with_ops_trains_and_round_trips(tmp_path):
    # The idiom of Keras 3 examples: ops between layers instead of Lambda layers.
    inputs = keras.Input(shape=(6,), name="features")
    hidden = Dense(16, activation="relu")(inputs)
    scaled = ops.divide(hidden, ops.add(ops.std(hidden, axis=-1, keepdims=True), 1e-3))
    logits = Dense(3)(ops.concatenate([scaled, inputs], axis=-1))
    model = Model(inputs, ops.softmax(logits), seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x = RNG.normal(size=(200, 6)).astype("float32")
    y = np.argmax(x[:, :3], axis=1)
    history = model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.8
    model.save(tmp_path / "ops.safetensors")
    loaded = load_model(tmp_path / "ops.safetensors")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(layer).__name__ for layer in loaded.layers].count("OpLayer") == 5
    assert loaded.get_config() == model.get_config()


def test_op_layer_configuration_keeps_constants():
    inputs = keras.Input(shape=(3,))
    out = ops.add(ops.matmul(inputs, np.eye(3, dtype="float32") * 2), np.array([1.0, 2.0, 3.0]))
    model = Model(inputs, out)
    config = model.get_config()
    matmul = next(entry for entry in config["layers"] if entry["config"].get("op") == "matmul")
    assert matmul["class_name"] == "OpLayer"
    assert matmul["config"]["args"][0] == {"__tensor__": 0}
    assert matmul["config"]["args"][1]["dtype"] == "float32"
    json.dumps(config)
    clone = Model.from_config(config)
    x = RNG.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(clone.predict(x), x * 2 + [1, 2, 3], rtol=1e-6)


def test_integer_ops_run_in_a_model_without_a_gradient_through_them():
    inputs = keras.Input(shape=(4,))
    logits = Dense(3)(inputs)
    predicted = ops.argmax(logits, axis=-1)
    encoded = ops.one_hot(predicted, 3)
    model = Model(inputs, [logits, encoded], seed=0)
    out_logits, out_one_hot = model.predict(RNG.normal(size=(5, 4)))
    np.testing.assert_array_equal(out_one_hot, np.eye(3)[np.argmax(out_logits, axis=-1)])


def test_shape_and_convert_to_tensor_on_symbolic_tensors():
    inputs = keras.Input(shape=(7,))
    assert ops.shape(inputs) == (None, 7)
    assert ops.convert_to_tensor(inputs) is inputs
    assert keras.backend.is_keras_tensor(ops.cast(inputs, "float64"))
    assert not keras.backend.is_keras_tensor(np.ones(2))


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda x: ops.mean(x),
            ValueError,
            "keras.ops.mean on tensors of shape (None, 4) does not keep the batch axis first "
            "(for 2 samples it gives shape ()), so it cannot be a layer: an op in a model must "
            "give one output per sample (reduce over axis=-1, say, not over the batch)",
        ),
        (
            lambda x: ops.sum(x, axis=0),
            ValueError,
            "keras.ops.sum on tensors of shape (None, 4) does not keep the batch axis first "
            "(for 2 samples it gives shape (4,)), so it cannot be a layer: an op in a model "
            "must give one output per sample (reduce over axis=-1, say, not over the batch)",
        ),
        (
            lambda x: ops.reshape(x, (2, -1)),
            ValueError,
            "keras.ops.reshape on tensors of shape (None, 4) does not keep the batch axis first "
            "(for 3 samples it gives shape (2, 6)), so it cannot be a layer: an op in a model "
            "must give one output per sample (reduce over axis=-1, say, not over the batch)",
        ),
        (
            lambda x: ops.where(x),
            ValueError,
            "keras.ops.where(condition) on a model's tensor gives data-dependent indices, so it "
            "cannot be a layer; use where(condition, x1, x2)",
        ),
        (
            lambda x: ops.add(x1=x, x2=1.0),
            ValueError,
            "keras.ops.add: pass a model's tensors as positional arguments (got one as ['x1'])",
        ),
        (
            lambda x: ops.matmul(x, np.ones((5, 2))),
            ValueError,
            "keras.ops.matmul on tensors of shape (None, 4): matmul: shapes (3, 4) and (5, 2) "
            "do not fit (4 != 5)",
        ),
        (
            lambda x: ops.add(x, np.ones((300, 300))),
            ValueError,
            "keras.ops.add: constant arrays in a model are limited to 65536 numbers, got one of "
            "shape (300, 300); use a layer with weights instead",
        ),
    ],
    ids=["mean-all", "sum-batch", "reshape-batch", "where-indices", "kwargs", "matmul", "const"],
)
def test_what_cannot_be_a_layer_is_refused(build, error, message):
    x = keras.Input(shape=(4,))
    with pytest.raises(error) as raised:
        build(x)
    assert str(raised.value) == message


def test_a_symbolic_tensor_has_no_values():
    x = keras.Input(shape=(4,))
    with pytest.raises(TypeError, match="is symbolic: it has no values to convert to an array"):
        ops.convert_to_numpy(x)


def _edited(tmp_path, model, edit):
    import safetensors.numpy as st_numpy

    from multilayer.models.saving import read_file

    model.save(tmp_path / "m.safetensors")
    metadata, tensors = read_file(tmp_path / "m.safetensors")
    config = json.loads(metadata["model"])
    edit(next(e for e in config["layers"] if e["class_name"] == "OpLayer")["config"])
    metadata["model"] = json.dumps(config)
    out = tmp_path / "edited.safetensors"
    out.write_bytes(st_numpy.save(tensors, metadata=metadata))
    return out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.update(op="system"),
            "OpLayer: keras.ops.system cannot be a layer of a model; the ops that can are ",
        ),
        (
            lambda c: c.update(op="one_hot", args=[{"__tensor__": 0}, 2**40]),
            "keras.ops.one_hot on tensors of shape (None, 4): its result could hold "
            "13194139533312 numbers for 3 samples, more than the 16777216 an op layer may",
        ),
        (
            lambda c: c.update(
                args=[{"__tensor__": 0}, {"__array__": [[1.0, 2.0], [3.0]], "dtype": "float32"}]
            ),
            "keras.ops.multiply: a constant array is not a regular array of numbers",
        ),
        (
            lambda c: c.update(args=[{"__tensor__": 0}, {"__array__": [1], "dtype": "object"}]),
            "keras.ops.multiply: invalid constant dtype 'object'",
        ),
        (
            lambda c: c.update(args=[{"__tensor__": 1}, 2.0]),
            "keras.ops.multiply: the tensor placeholders must be numbered 0..k-1",
        ),
        (
            lambda c: c.update(kwargs={"callback": {"__import__": "os"}}),
            "keras.ops.multiply: invalid argument {'__import__': 'os'}",
        ),
    ],
    ids=["unknown-op", "huge-one-hot", "ragged", "object-dtype", "placeholder", "object"],
)
def test_hostile_op_layer_configurations_are_refused(tmp_path, edit, message):
    import tracemalloc

    inputs = keras.Input(shape=(4,), name="x")
    model = Model(inputs, Dense(2, name="out")(ops.multiply(inputs, 2.0)), seed=0)
    path = _edited(tmp_path, model, edit)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as raised:
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(raised.value).startswith(f"{path}: invalid model configuration: " + message)
    assert peak < 16 * 2**20


def test_merge_function_forms_and_ops_combine():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    merged = layers.concatenate([layers.subtract([a, b]), ops.multiply(a, b)])
    model = Model([a, b], merged)
    xa, xb = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    np.testing.assert_allclose(
        model.predict([xa, xb]), np.concatenate([xa - xb, xa * xb], 1), rtol=1e-6
    )
    assert re.match(r"subtract(_\d+)?$", model.layers[2].name)
