"""The functional API: keras.Input, layers called on tensors, keras.Model as a graph of layers.

Gradients of the merge layers against finite differences, two-input and two-output models
that learn, a functional model bitwise equal to a Sequential one, nesting, saving, traced
subclasses, resume from checkpoints, and the errors for graphs that cannot work.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import multilayer as keras
from helpers.gradients import central_differences
from multilayer.engine.optimizers import SGD
from multilayer.layers import (
    Activation,
    Add,
    Average,
    Concatenate,
    Dense,
    Dropout,
    Flatten,
    InputLayer,
    Multiply,
    concatenate,
)
from multilayer.models import Model, Sequential, load_model
from multilayer.models.checkpoint import CheckpointConfig, read_checkpoint

STEP = 1e-6


# -- helpers ------------------------------------------------------------------------------------
def numerical_gradient(model, x, y) -> np.ndarray:
    values = model.parameters.values
    grads = np.empty_like(values)
    for i in range(values.size):
        original = values[i]
        values[i] = original + STEP
        plus = _objective(model, x, y)
        values[i] = original - STEP
        minus = _objective(model, x, y)
        values[i] = original
        grads[i] = (plus - minus) / (2 * STEP)
    return grads


def _objective(model, x, y) -> float:
    outputs = model._forward(x, training=True)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    targets = y if isinstance(y, list) else [y]
    return sum(
        w * float(np.mean(loss.per_sample(t, o)))
        for loss, w, t, o in zip(model._losses, model._loss_weights, targets, outputs, strict=True)
    )


def analytic_gradient(model, x, y) -> np.ndarray:
    model._build_optimizer()
    before = model.parameters.values.copy()
    model.train_step(x, y)
    grads = model.parameters.grads.copy()
    model.parameters.values[...] = before
    return grads


def assert_gradients_match(model, x, y):
    analytic = analytic_gradient(model, x, y)
    numeric = numerical_gradient(model, x, y)
    assert np.any(analytic != 0)
    error = np.linalg.norm(analytic - numeric) / max(
        np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12
    )
    assert error < 1e-7, f"relative error {error:.2e}"


def two_branch_model(merge, seed=0, activation="tanh"):
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(4,), name="b")
    left = Dense(5, activation=activation, name="left")(a)
    right = Dense(5, activation=activation, name="right")(b)
    merged = merge([left, right])
    out = Dense(2, name="out")(merged)
    return Model([a, b], out, dtype="float64", seed=seed)


def two_inputs(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 3)), rng.normal(size=(n, 4))], rng.normal(size=(n, 2))


# -- gradients ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "merge",
    [Concatenate, Add, Multiply, Average, lambda: Concatenate(axis=1)],
    ids=["concatenate", "add", "multiply", "average", "concatenate-axis1"],
)
def test_merge_layer_gradients_match_finite_differences(merge):
    model = two_branch_model(merge())
    model.compile(optimizer=SGD(learning_rate=1e-3), loss="mse")
    x, y = two_inputs()
    assert_gradients_match(model, x, y)


def test_three_inputs_and_a_tensor_used_twice_match_finite_differences():
    """Fan-out (one tensor feeding three layers) sums the gradients it receives."""
    inputs = keras.Input(shape=(3,))
    hidden = Dense(4, activation="tanh")(inputs)
    product = Multiply()([hidden, Dense(4, activation="tanh")(inputs), hidden_copy(hidden)])
    out = Dense(2)(Add()([product, hidden]))
    model = Model(inputs, out, dtype="float64", seed=1)
    model.compile(optimizer=SGD(learning_rate=1e-3), loss="mse")
    rng = np.random.default_rng(3)
    assert_gradients_match(model, rng.normal(size=(6, 3)), rng.normal(size=(6, 2)))


def hidden_copy(tensor):
    return Activation("linear")(tensor)


@pytest.mark.parametrize("merge", [Concatenate, Add, Multiply, Average])
def test_merge_layer_input_gradients_match_finite_differences(merge):
    layer = merge()
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))]
    layer.build([x.shape[1:] for x in xs])
    weights = rng.normal(size=(4, *layer.output_shape))

    def value():
        return float(np.sum(layer.forward([x.copy() for x in xs]) * weights))

    layer.forward(xs)
    grads = [g.copy() for g in layer.backward(weights.copy())]
    for x, grad in zip(xs, grads, strict=True):
        numeric = central_differences(x, value, STEP)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_fused_softmax_is_used_at_a_graph_output():
    inputs = keras.Input(shape=(3,))
    out = Dense(3, activation="softmax")(Dense(4, activation="tanh")(inputs))
    model = Model(inputs, out, dtype="float64", seed=0)
    model.compile(optimizer=SGD(learning_rate=1e-3), loss="categorical_crossentropy")
    assert model._fused()
    rng = np.random.default_rng(0)
    y = np.eye(3)[rng.integers(0, 3, 8)]
    assert_gradients_match(model, rng.normal(size=(8, 3)), y)


def test_a_softmax_output_also_consumed_inside_the_graph_is_not_fused():
    inputs = keras.Input(shape=(3,))
    probabilities = Dense(3, activation="softmax", name="p")(inputs)
    other = Dense(3, name="q")(probabilities)
    model = Model(inputs, [probabilities, other], dtype="float64", seed=0)
    model.compile(optimizer=SGD(learning_rate=1e-3), loss=["categorical_crossentropy", "mse"])
    assert not model._fused()
    rng = np.random.default_rng(0)
    y = [np.eye(3)[rng.integers(0, 3, 8)], rng.normal(size=(8, 3))]
    assert_gradients_match(model, rng.normal(size=(8, 3)), y)


def test_two_outputs_with_loss_weights_match_finite_differences():
    inputs = keras.Input(shape=(4,))
    hidden = Dense(6, activation="tanh")(inputs)
    model = Model(
        inputs,
        {"label": Dense(3, activation="softmax")(hidden), "value": Dense(1)(hidden)},
        dtype="float64",
        seed=2,
    )
    model.compile(
        optimizer=SGD(learning_rate=1e-3),
        loss={"label": "sparse_categorical_crossentropy", "value": "mse"},
        loss_weights={"label": 1.0, "value": 0.25},
    )
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4))
    assert_gradients_match(model, x, [rng.integers(0, 3, 8), rng.normal(size=(8, 1))])


# -- learning -------------------------------------------------------------------------------------
def test_wide_and_deep_two_input_model_learns():
    """Label = a product of two deep features (needs the hidden layers) plus a linear term
    in the wide ones (enough for the wide path straight into the output layer)."""
    rng = np.random.default_rng(0)
    n = 2000
    deep = rng.normal(size=(n, 8)).astype("float32")
    wide = rng.normal(size=(n, 4)).astype("float32")
    y = (deep[:, 0] * deep[:, 1] + 1.5 * wide[:, 0] > 0).astype("int64")
    deep_in = keras.Input(shape=(8,), name="deep")
    wide_in = keras.Input(shape=(4,), name="wide")
    x = Dense(32, activation="relu")(deep_in)
    x = Dense(16, activation="relu")(x)
    out = Dense(2, activation="softmax")(Concatenate()([x, wide_in]))
    model = Model({"deep": deep_in, "wide": wide_in}, out, seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit({"deep": deep[:1600], "wide": wide[:1600]}, y[:1600], epochs=40, verbose=0)
    _, accuracy = model.evaluate({"deep": deep[1600:], "wide": wide[1600:]}, y[1600:], verbose=0)
    assert accuracy >= 0.9


def test_two_output_model_learns_both_tasks_and_logs_each():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 6)).astype("float32")
    label = (x[:, 0] + x[:, 1] > 0).astype("int64")
    value = (x[:, 2] - 0.5 * x[:, 3])[:, None].astype("float32")
    inputs = keras.Input(shape=(6,))
    hidden = Dense(32, activation="relu")(inputs)
    model = Model(
        inputs,
        [Dense(2, activation="softmax", name="cls")(hidden), Dense(1, name="reg")(hidden)],
        seed=0,
    )
    model.compile(
        optimizer="adam",
        loss=["sparse_categorical_crossentropy", "mse"],
        metrics=[["accuracy"], ["mae"]],
        loss_weights=[1.0, 0.5],
    )
    history = model.fit(x[:1200], [label[:1200], value[:1200]], epochs=30, verbose=0)
    assert set(history.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    logs = history.history
    assert logs["loss"][-1] == pytest.approx(
        logs["cls_loss"][-1] + 0.5 * logs["reg_loss"][-1], rel=1e-3
    )
    results = model.evaluate(x[1200:], [label[1200:], value[1200:]], verbose=0, return_dict=True)
    assert results["cls_accuracy"] >= 0.95
    assert results["reg_mae"] < 0.15
    assert results["loss"] == pytest.approx(results["cls_loss"] + 0.5 * results["reg_loss"])
    predictions = model.predict(x[:5])
    assert [p.shape for p in predictions] == [(5, 2), (5, 1)]


def test_functional_model_equal_to_a_sequential_one_trains_to_identical_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 10)).astype("float32")
    y = x[:, :4].argmax(axis=1)

    def layers():
        return [Dense(16, activation="relu"), Dropout(0.2), Dense(4, activation="softmax")]

    sequential = Sequential([keras.Input(shape=(10,)), *layers()], seed=3)
    inputs = keras.Input(shape=(10,))
    tensor = inputs
    for layer in layers():
        tensor = layer(tensor)
    functional = Model(inputs, tensor, seed=3)
    for model in (sequential, functional):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    h1 = sequential.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_split=0.2)
    h2 = functional.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_split=0.2)
    assert sequential.parameters.values.tobytes() == functional.parameters.values.tobytes()
    assert h1.history == h2.history


# -- nesting ----------------------------------------------------------------------------------------
def test_a_model_nested_in_a_sequential_one_trains_its_own_weights():
    inputs = keras.Input(shape=(5,))
    base = Model(inputs, Dense(3, name="logits")(Dense(8, activation="relu")(inputs)), seed=0)
    before = base.get_weights()
    model = Sequential([base, Activation("softmax")], seed=1)
    assert model.input_shape == (5,)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in before]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    assert model._fused()  # the nested model's Dense, then a softmax: fused
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = x[:, :3].argmax(axis=1)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    # the base model sees the trained weights (they live in the outer model's buffer)
    assert all(
        np.array_equal(a, b) for a, b in zip(base.get_weights(), model.get_weights(), strict=True)
    )
    logits = base.predict(x)
    np.testing.assert_allclose(
        model.predict(x), np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5
    )


def test_a_model_called_inside_another_model():
    encoder_in = keras.Input(shape=(6,))
    encoder = Model(encoder_in, Dense(3, activation="tanh")(encoder_in), name="encoder", seed=0)
    a, b = keras.Input(shape=(6,)), keras.Input(shape=(4,))
    out = Dense(1)(concatenate([encoder(a), b]))
    model = Model([a, b], out, seed=1)
    assert model.count_params() == encoder.count_params() + (3 + 4) + 1
    model.compile(optimizer=SGD(learning_rate=1e-3), loss="mse")
    x = [np.ones((2, 6), "float32"), np.ones((2, 4), "float32")]
    model.fit(x, np.zeros((2, 1)), epochs=1, verbose=0)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "encoder (Functional)" in text and "Connected to" in text


# -- saving -------------------------------------------------------------------------------------------
def _trained_two_input_model():
    model = two_branch_model(Concatenate(), activation="relu")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = two_inputs(n=64)
    model.fit(x, y, epochs=2, verbose=0)
    return model, x


def test_functional_model_save_load_round_trip_is_exact(tmp_path):
    model, x = _trained_two_input_model()
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded) is Model
    assert loaded.get_config() == model.get_config()
    assert loaded.compile_config == model.compile_config
    assert all(
        np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True)
    )
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_nested_model_save_load_round_trip_is_exact(tmp_path):
    inputs = keras.Input(shape=(4,))
    base = Model(inputs, Dense(3)(Dense(5, activation="relu")(inputs)), name="base", seed=0)
    model = Sequential([base, Dropout(0.1), Activation("softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    model.fit(x, rng.integers(0, 3, 40), epochs=2, verbose=0)
    model.save(tmp_path / "nested.safetensors")
    loaded = load_model(tmp_path / "nested.safetensors")
    assert loaded.get_config() == model.get_config()
    assert loaded.get_config()["layers"][0]["class_name"] == "Functional"
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert sorted(loaded.named_weights()) == [
        "layers.0.layers.1.bias", "layers.0.layers.1.kernel",
        "layers.0.layers.2.bias", "layers.0.layers.2.kernel",
    ]  # fmt: skip


def test_multi_output_dict_model_round_trip(tmp_path):
    inputs = keras.Input(shape=(3,), name="features")
    hidden = Dense(4, activation="relu")(inputs)
    model = Model(
        {"features": inputs},
        {"p": Dense(2, activation="softmax")(hidden), "v": Dense(1)(hidden)},
        seed=0,
    )
    model.compile(
        optimizer="adam",
        loss={"p": "sparse_categorical_crossentropy", "v": "mse"},
        metrics={"p": "accuracy"},
        loss_weights={"p": 1.0, "v": 2.0},
    )
    x = {"features": np.ones((4, 3), "float32")}
    model.fit(x, {"p": np.array([0, 1, 0, 1]), "v": np.zeros((4, 1))}, epochs=1, verbose=0)
    model.save(tmp_path / "dict.safetensors")
    loaded = load_model(tmp_path / "dict.safetensors")
    out, expected = loaded.predict(x), model.predict(x)
    assert set(out) == {"p", "v"}
    assert all(np.array_equal(out[k], expected[k]) for k in out)
    assert loaded.compile_config == model.compile_config
    assert loaded.compile_config["loss_weights"] == [1.0, 2.0]


# -- subclassing --------------------------------------------------------------------------------------
class TwoLayers(Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = Dense(8, activation="relu")
        self.dropout = Dropout(0.0)
        self.out = Dense(3, activation="softmax")

    def call(self, inputs, training=None):  # Keras' signature; fit decides the mode
        return self.out(self.dropout(self.hidden(inputs), training=training))


def test_a_subclassed_model_is_traced_into_the_same_graph(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype("float32")
    y = x[:, :3].argmax(axis=1)
    subclassed = TwoLayers(seed=4)
    assert not subclassed.built
    subclassed.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    subclassed.fit(x, y, epochs=2, verbose=0)
    assert subclassed.built and [type(layer) for layer in subclassed.layers] == [
        InputLayer,
        Dense,
        Dropout,
        Dense,
    ]
    assert subclassed._fused()
    inputs = keras.Input(shape=(5,))
    hidden = Dropout(0.0)(Dense(8, activation="relu")(inputs))
    functional = Model(inputs, Dense(3, activation="softmax")(hidden), seed=4)
    functional.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    functional.fit(x, y, epochs=2, verbose=0)
    assert subclassed.parameters.values.tobytes() == functional.parameters.values.tobytes()
    subclassed.save(tmp_path / "sub.safetensors")
    loaded = load_model(tmp_path / "sub.safetensors")  # loads as the graph it traced to
    assert type(loaded) is Model
    assert np.array_equal(loaded.predict(x), subclassed.predict(x))


class ArithmeticInCall(Model):
    def __init__(self):
        super().__init__()
        self.dense = Dense(2)

    def call(self, inputs):
        return self.dense(inputs) * 2.0


class ReusesALayer(Model):
    def __init__(self):
        super().__init__()
        self.dense = Dense(3)

    def call(self, inputs):
        return self.dense(self.dense(inputs))


def test_a_subclass_that_does_more_than_compose_layers_gets_a_clear_error():
    supported = (
        "ArithmeticInCall.call() could not be traced into a graph of layers: a subclassed Model "
        "is supported when call() only calls layers on its inputs and on the tensors they "
        "return (each layer once), and returns tensors. The trace failed with: "
    )
    with pytest.raises(TypeError, match=re.escape(supported) + "unsupported operand"):
        ArithmeticInCall().predict(np.ones((2, 3)))
    with pytest.raises(TypeError, match="layer 'dense_.*' .Dense. is already connected"):
        ReusesALayer().predict(np.ones((2, 3)))
    with pytest.raises(TypeError, match=re.escape("Model needs inputs and outputs")):
        Model()


# -- resume -------------------------------------------------------------------------------------------
def _wide_deep(seed=0):
    a, b = keras.Input(shape=(6,)), keras.Input(shape=(3,))
    hidden = Dropout(0.3)(Dense(16, activation="relu")(a))
    out = Dense(3, activation="softmax")(Concatenate()([hidden, Dense(4)(b)]))
    model = Model([a, b], out, seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _wide_deep_data(n=200):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(n, 6)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")
    return [a, b], (a[:, :3] + b).argmax(axis=1)


class _StopAfter(keras.callbacks.Callback):
    """Simulates a crash: raises after ``steps`` optimizer steps."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if self.model.optimizer.iterations == self.steps:
            raise RuntimeError("crash")


def test_functional_model_resumes_mid_epoch_bitwise(tmp_path):
    x, y = _wide_deep_data()
    reference = _wide_deep()
    expected = reference.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2)
    crashed = _wide_deep()
    config = CheckpointConfig(tmp_path, every=4, unit="step", resume=True)
    with pytest.raises(RuntimeError, match="crash"):
        crashed.fit(
            x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2,
            callbacks=[_StopAfter(18)], checkpoint=config,
        )  # fmt: skip
    checkpoint = read_checkpoint(tmp_path / "checkpoint-000000016.safetensors")
    assert (checkpoint.state.epoch, checkpoint.state.step) == (1, 6)  # 10 steps per epoch
    resumed = _wide_deep(seed=99)  # other initial weights and generator: all restored
    history = resumed.fit(
        x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2, checkpoint=config
    )
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()
    assert history.history == expected.history


def test_multi_output_model_resumes_mid_epoch_with_its_per_output_running_losses(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype("float32")
    y = [x[:, :2].argmax(axis=1), x[:, 2:3]]

    def make():
        inputs = keras.Input(shape=(4,))
        hidden = Dense(8, activation="relu")(inputs)
        outputs = [Dense(2, activation="softmax", name="p")(hidden), Dense(1, name="v")(hidden)]
        model = Model(inputs, outputs, seed=1)
        model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"])
        return model

    expected = make().fit(x, y, batch_size=10, epochs=2, verbose=0)
    config = CheckpointConfig(tmp_path, every=3, unit="step", resume=True)
    with pytest.raises(RuntimeError):
        make().fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[_StopAfter(14)],
                   checkpoint=config)  # fmt: skip
    assert len(read_checkpoint(tmp_path / "checkpoint-000000012.safetensors").state.metrics) == 2
    history = make().fit(x, y, batch_size=10, epochs=2, verbose=0, checkpoint=config)
    assert history.history == expected.history


# -- bad graphs and bad calls -----------------------------------------------------------------------
def test_calling_a_layer_on_a_numpy_array_names_the_layer_and_shape():
    message = (
        "layer 'hidden' (Dense) was called on a NumPy array of shape (4, 3), but layers are "
        "called on symbolic tensors to build a model: inputs = keras.Input(shape=(3,)), then "
        "outputs = layer(inputs) and keras.Model(inputs, outputs). To compute outputs for data, "
        "use model.predict(x)."
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        Dense(2, name="hidden")(np.ones((4, 3)))


def test_concatenate_shape_mismatch_names_the_layer_and_shapes():
    a, b = keras.Input(shape=(3, 4)), keras.Input(shape=(5, 2))
    message = (
        "Concatenate layer 'join' needs inputs with the same shape except along the "
        "concatenation axis -1, got shapes [(None, 3, 4), (None, 5, 2)]"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Concatenate(name="join")([a, b])
    with pytest.raises(ValueError, match=re.escape("Add layer 'sum' needs inputs of the same shape, got shapes [(None, 3, 4), (None, 5, 2)]")):  # fmt: skip
        Add(name="sum")([a, b])


def test_disconnected_graph_names_the_layer_and_the_missing_input():
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b")
    out = Dense(1, name="head")(Add(name="both")([a, b]))
    message = (
        "Graph disconnected: layer 'both' of model 'broken' depends on input 'b' (shape "
        "(None, 3)), which is not one of the model's inputs ['a']"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Model(a, out, name="broken")


def test_an_input_no_output_uses_is_refused():
    a = keras.Input(shape=(3,), name="used")
    b = keras.Input(shape=(2,), name="unused")
    message = (
        "model 'unused_input': input 'unused' (shape (None, 2)) is not connected to any output; "
        "every input must be used"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Model([a, b], Dense(1)(a), name="unused_input")


def test_a_cycle_in_a_model_configuration_is_refused():
    inputs = keras.Input(shape=(3,), name="x")
    first = Dense(3, name="first")
    second = Dense(3, name="second")
    model = Model(inputs, second(first(inputs)))
    config = json.loads(model.to_json())["config"]
    config["layers"][1]["inbound"] = [["second", 0]]  # first <- second <- first
    with pytest.raises(
        ValueError,
        match=re.escape("the model configuration has a cycle through layers ['first', 'second']"),
    ):
        Model.from_config(config)


def test_a_layer_is_called_only_once_and_a_model_input_must_come_from_input():
    inputs = keras.Input(shape=(3,))
    dense = Dense(3, name="shared")
    dense(inputs)
    with pytest.raises(ValueError, match="layer 'shared' .Dense. is already connected"):
        dense(inputs)
    hidden = Dense(2, name="hid")(inputs)
    with pytest.raises(ValueError, match=re.escape("input 'hid' (shape (None, 2)) is the output of layer 'hid' (Dense), not of keras.Input(...)")):  # fmt: skip
        Model(hidden, Dense(1)(hidden))


def test_wrong_data_for_a_two_input_model():
    model = two_branch_model(Add())
    model.compile(optimizer="sgd", loss="mse")
    x, y = two_inputs()
    with pytest.raises(ValueError, match=re.escape("the model has 2 inputs ['a', 'b']: give a list or a dict of 2 arrays")):  # fmt: skip
        model.fit(x[0], y, verbose=0)
    with pytest.raises(ValueError, match=re.escape("input must have the keys ['a', 'b']; missing ['b'], unexpected ['c']")):  # fmt: skip
        model.predict({"a": x[0], "c": x[1]})
    with pytest.raises(ValueError, match=re.escape("x[1] has samples of shape (3,)")):
        model.predict([x[0], x[0]])


def test_keras_input_is_a_symbolic_tensor():
    tensor = keras.Input(shape=(28, 28), name="image")
    assert tensor.shape == (None, 28, 28)
    assert repr(tensor) == "<KerasTensor shape=(None, 28, 28), name=image>"
    flat = Flatten()(tensor)
    assert flat.shape == (None, 784)
    with pytest.raises(TypeError, match="is symbolic: it has no values"):
        np.asarray(tensor, dtype=float)


# -- hostile files of functional models ---------------------------------------------------------
def _edited_model_file(tmp_path, model, edit):
    import safetensors.numpy as st_numpy

    from multilayer.models.saving import read_file

    model.save(tmp_path / "m.safetensors")
    metadata, tensors = read_file(tmp_path / "m.safetensors")
    config = json.loads(metadata["model"])
    edit(config)
    metadata["model"] = json.dumps(config)
    out = tmp_path / "edited.safetensors"
    out.write_bytes(st_numpy.save(tensors, metadata=metadata))
    return out


def test_a_functional_model_file_with_a_cycle_is_refused(tmp_path):
    from multilayer.errors import ModelFileError

    inputs = keras.Input(shape=(3,), name="x")
    model = Model(inputs, Dense(2, name="second")(Dense(3, name="first")(inputs)), seed=0)

    def cycle(config):
        config["layers"][1]["inbound"] = [["second", 0]]

    path = _edited_model_file(tmp_path, model, cycle)
    message = (
        f"{path}: invalid model configuration: the model configuration has a cycle through "
        "layers ['first', 'second']"
    )
    with pytest.raises(ModelFileError, match="^" + re.escape(message) + "$"):
        load_model(path)


@pytest.mark.parametrize(
    ("units", "width", "message"),
    [
        (
            2**36,
            4,
            "layer 'inner' gives samples of shape (68719476736,), more than 16777216 numbers",
        ),
        (5000, 50000, "the architecture declares 250005000 parameters, more than 100000000"),
    ],
    ids=["sample-size", "parameters"],
)
def test_a_huge_layer_inside_a_nested_model_is_refused_before_allocation(
    tmp_path, units, width, message
):
    import tracemalloc

    from multilayer.errors import ModelFileError

    inputs = keras.Input(shape=(4,), name="features")
    inner = Model(inputs, Dense(3, name="small")(inputs), name="inner")
    outer = Sequential([inner, Activation("softmax", name="probabilities")], name="outer")

    def huge(config):
        inner_layers = config["layers"][0]["config"]["layers"]
        inner_layers[0]["config"]["shape"] = [width]
        inner_layers[1]["config"]["units"] = units
        inner_layers[1]["config"].pop("input_shape")
        config["layers"][1]["config"].pop("input_shape")  # the softmax follows it

    path = _edited_model_file(tmp_path, outer, huge)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as raised:
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(raised.value) == f"{path}: invalid model configuration: {message}"
    assert peak < 16 * 2**20


def test_a_nested_model_with_a_seeded_dropout_resumes_bitwise(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 5)).astype("float32")
    y = x[:, :2].argmax(axis=1)

    def make():
        inputs = keras.Input(shape=(5,))
        block = Model(inputs, Dropout(0.4, seed=11)(Dense(8, activation="relu")(inputs)))
        model = Sequential([block, Dense(2, activation="softmax")], seed=5)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    reference = make()
    reference.fit(x, y, batch_size=16, epochs=2, verbose=0)
    config = CheckpointConfig(tmp_path, every=3, unit="step", resume=True)
    with pytest.raises(RuntimeError):
        make().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[_StopAfter(10)],
                   checkpoint=config)  # fmt: skip
    checkpoint = read_checkpoint(tmp_path / "checkpoint-000000009.safetensors")
    assert set(checkpoint.layer_rngs) == {"0.2"}  # the nested model's seeded Dropout
    resumed = make()
    resumed.fit(x, y, batch_size=16, epochs=2, verbose=0, checkpoint=config)
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()


def test_two_models_sharing_layers_both_train_the_same_weights():
    """Keras' feature-extractor pattern: Model(inputs, hidden) and Model(inputs, outputs)
    share layers; whichever trains, both see (and keep) the same weights."""
    inputs = keras.Input(shape=(4,))
    hidden = Dense(6, activation="tanh", name="shared")(inputs)
    features = Model(inputs, hidden, seed=0)
    classifier = Model(inputs, Dense(2, activation="softmax")(hidden), seed=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    before = features.predict(x)
    classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    classifier.fit(x, y, epochs=2, verbose=0)
    after_classifier = features.predict(x)
    assert not np.array_equal(before, after_classifier)  # the shared layer was trained
    features.compile(optimizer=SGD(learning_rate=0.1), loss="mse")
    features.fit(x, np.zeros((64, 6)), epochs=2, verbose=0)  # takes the weights back
    shared = features.get_weights()
    assert not np.array_equal(features.predict(x), after_classifier)
    assert all(
        np.array_equal(a, b) for a, b in zip(shared, classifier.get_weights()[:2], strict=True)
    )
    classifier.fit(x, y, epochs=1, verbose=0)  # and back again, from those values
    assert not np.array_equal(classifier.get_weights()[0], shared[0])


def test_summary_of_a_graph_has_keras_columns_and_connections():
    a, b = keras.Input(shape=(4,), name="a"), keras.Input(shape=(3,), name="b")
    hidden = Dense(5, name="hidden")(a)
    out = Dense(2, name="out")(Concatenate(name="join")([hidden, b]))
    lines = []
    Model([a, b], out, name="two_inputs").summary(print_fn=lines.append)
    rule, double = "─" * 68, "═" * 68
    assert lines[0].splitlines() == [
        'Model: "two_inputs"',
        rule,
        " Layer (type)        Output Shape    Param #  Connected to",
        double,
        " a (InputLayer)      (None, 4)             0  -",
        " b (InputLayer)      (None, 3)             0  -",
        " hidden (Dense)      (None, 5)            25  a[0][0]",
        " join (Concatenate)  (None, 8)             0  hidden[0][0], b[0][0]",
        " out (Dense)         (None, 2)            18  join[0][0]",
        rule,
        " Total params: 43 (172.00 B)",
        " Trainable params: 43 (172.00 B)",
        " Non-trainable params: 0 (0.00 B)",
    ]
