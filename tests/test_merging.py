"""The merge layers Subtract, Maximum, Minimum and Dot, and the function forms of every merge
layer: outputs against their definitions, backward against finite differences (layer by layer
and through a whole model), and the errors for inputs they cannot take."""

from __future__ import annotations

import numpy as np
import pytest

import multilayer as keras
from helpers.gradients import central_differences, model_gradients_match
from multilayer import layers
from multilayer.layers import Dense, Dot, Maximum, Minimum, Subtract
from multilayer.models import Model, load_model

STEP = 1e-6
RNG = np.random.default_rng(0)


def layer_gradients_match(layer, shapes, expected):
    """Forward equals ``expected``; backward equals central differences of sum(w * y)."""
    xs = [RNG.normal(size=s) for s in shapes]
    layer.build([s[1:] for s in shapes])
    y = layer.forward([x.copy() for x in xs]).copy()
    assert y.shape[1:] == layer.output_shape
    np.testing.assert_allclose(y, expected(*xs), rtol=1e-12, atol=1e-12)
    weights = RNG.normal(size=y.shape)
    layer.forward(xs)
    grads = [g.copy() for g in layer.backward(weights.copy())]
    assert len({id(g) for g in layer.backward(weights.copy())}) == len(xs)  # own buffers

    def value():
        return float(np.sum(layer.forward([x.copy() for x in xs]) * weights))

    for x, grad in zip(xs, grads, strict=True):
        numeric = central_differences(x, value, STEP)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def _unit(x, axis):
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


@pytest.mark.parametrize(
    ("layer", "shapes", "expected"),
    [
        (Subtract(), [(4, 3)] * 2, lambda a, b: a - b),
        (Maximum(), [(4, 3)] * 3, lambda *xs: np.maximum.reduce(xs)),
        (Minimum(), [(4, 3)] * 2, np.minimum),
        (Dot(axes=1), [(4, 3)] * 2, lambda a, b: np.sum(a * b, axis=1, keepdims=True)),
        (Dot(axes=(2, 1)), [(4, 2, 3), (4, 3, 5)], lambda a, b: a @ b),
        (Dot(axes=-1), [(4, 2, 3), (4, 5, 3)], lambda a, b: a @ b.transpose(0, 2, 1)),
        (Dot(axes=(1, 1)), [(4, 3, 2), (4, 3, 5)], lambda a, b: a.transpose(0, 2, 1) @ b),
        (
            Dot(axes=1, normalize=True),
            [(4, 3)] * 2,
            lambda a, b: np.sum(_unit(a, 1) * _unit(b, 1), axis=1, keepdims=True),
        ),
    ],
    ids=["subtract", "maximum3", "minimum", "dot", "dot-2-1", "dot-last", "dot-1-1", "cosine"],
)
def test_merge_layer_forward_and_backward(layer, shapes, expected):
    layer_gradients_match(layer, shapes, expected)


def test_maximum_ties_send_the_gradient_to_the_first_input_and_nan_propagates():
    layer = Maximum()
    layer.build([(2,), (2,)])
    a = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(layer.forward([a, a.copy()]), a)
    first, second = layer.backward(np.ones((1, 2)))
    assert first.tolist() == [[1, 1]] and second.tolist() == [[0, 0]]
    assert np.isnan(layer.forward([a, np.array([[np.nan, 0.0]])])[0, 0])


# -- function forms inside models ---------------------------------------------------------------


@pytest.mark.parametrize(
    "merge",
    [
        layers.subtract,
        layers.maximum,
        layers.minimum,
        lambda xs: layers.dot(xs, axes=1),
        lambda xs: layers.dot(xs, axes=1, normalize=True),
        layers.add,
        layers.multiply,
        layers.average,
        lambda xs: layers.concatenate(xs, axis=-1),
    ],
    ids=["subtract", "maximum", "minimum", "dot", "cosine", "add", "multiply", "average", "concat"],
)
def test_function_forms_train_with_exact_gradients(merge):
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4,))
    merged = merge([Dense(5, activation="tanh")(a), Dense(5, activation="tanh")(b)])
    model = Model([a, b], Dense(2)(merged), dtype="float64", seed=0)
    x = [RNG.normal(size=(6, 3)), RNG.normal(size=(6, 4))]
    model_gradients_match(model, x, RNG.normal(size=(6, 2)))


def test_a_siamese_similarity_model_saves_and_loads(tmp_path):
    # The idiom: two encoders, cosine similarity with dot(normalize=True), a sigmoid on top.
    left, right = keras.Input(shape=(6,), name="left"), keras.Input(shape=(6,), name="right")
    similarity = layers.dot(
        [Dense(4, name="enc_l")(left), Dense(4, name="enc_r")(right)], axes=1, normalize=True
    )
    difference = layers.subtract([left, right])
    merged = layers.concatenate(
        [similarity, layers.maximum([difference, layers.minimum([left, right])])]
    )
    model = Model([left, right], Dense(1, activation="sigmoid")(merged), seed=3)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = [RNG.normal(size=(64, 6)).astype("float32"), RNG.normal(size=(64, 6)).astype("float32")]
    y = (np.sum(x[0] * x[1], axis=1) > 0).astype("float32")
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "siamese.safetensors")
    loaded = load_model(tmp_path / "siamese.safetensors")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    kinds = [type(layer).__name__ for layer in loaded.layers]
    assert {"Dot", "Subtract", "Maximum", "Minimum"} <= set(kinds)
    assert loaded.get_layer(model.layers[-4].name).get_config() == model.layers[-4].get_config()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda a, b, c: layers.subtract([a, b, c]),
            "A Subtract layer should be called on exactly 2 inputs; layer 'subtract' got 3: "
            "[(None, 3), (None, 3), (None, 3)]",
        ),
        (
            lambda a, b, c: layers.maximum([a, keras.Input(shape=(4,))]),
            "Maximum layer 'maximum' needs inputs of the same shape, got shapes "
            "[(None, 3), (None, 4)]",
        ),
        (
            lambda a, b, c: layers.dot([a, keras.Input(shape=(4,))], axes=1),
            "Dot layer 'dot': inputs of shapes [(None, 3), (None, 4)] cannot be multiplied "
            "along axes [1, 1] (3 != 4)",
        ),
        (
            lambda a, b, c: layers.dot([a, b], axes=0),
            "Dot layer 'dot': axes=[0, 0] are not sample axes of inputs of shapes "
            "[(None, 3), (None, 3)]",
        ),
    ],
    ids=["subtract-3", "maximum-shapes", "dot-sizes", "dot-batch-axis"],
)
def test_merge_errors_name_the_layer_and_shapes(call, message):
    keras.backend.clear_session()
    a, b, c = (keras.Input(shape=(3,)) for _ in range(3))
    with pytest.raises(ValueError) as error:
        call(a, b, c)
    assert str(error.value) == message


def test_dot_arguments():
    with pytest.raises(
        ValueError,
        match=r"Invalid format for argument `axes`: expected an int or a list/tuple of 2 ints. Received: axes=\(1, 2, 3\)",
    ):
        Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="Dot: normalize must be True or False, got 1"):
        Dot(axes=1, normalize=1)
    assert Dot(axes=[1, 2], normalize=True).get_config()["axes"] == [1, 2]
