"""The model API: building, summary, weights, fit / evaluate / predict, seeds and input errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from multilayer import utils
from multilayer.callbacks import History
from multilayer.layers import Dense, Flatten, Input
from multilayer.models import Sequential


def tutorial_model() -> Sequential:
    model = Sequential()
    model.add(Dense(512, input_shape=(784,), activation="relu"))
    model.add(Dense(768, activation="relu"))
    model.add(Dense(10, activation="softmax"))
    return model


def blobs(n: int = 120, d: int = 6, classes: int = 3, seed: int = 0):
    """Separable Gaussian clusters: inputs (n, d) float32 and integer labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(scale=3.0, size=(classes, d))
    x = (centres[labels] + rng.normal(size=(n, d))).astype(np.float32)
    return x, labels


def small_classifier(seed: int | None = 0, d: int = 6, loss="categorical_crossentropy"):
    model = Sequential(
        [Dense(16, activation="relu", input_shape=(d,)), Dense(3, activation="softmax")], seed=seed
    )
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


# -- building -----------------------------------------------------------------------------------


def test_list_and_add_build_the_same_model():
    listed = Sequential(
        [
            Dense(512, input_shape=(784,), activation="relu"),
            Dense(768, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    added = tutorial_model()
    assert [type(layer) for layer in listed.layers] == [type(layer) for layer in added.layers]
    assert [w.shape for w in listed.get_weights()] == [w.shape for w in added.get_weights()]
    assert [w.shape for w in added.get_weights()] == [
        (784, 512),
        (512,),
        (512, 768),
        (768,),
        (768, 10),
        (10,),
    ]


@pytest.mark.parametrize(
    "first_layers",
    [
        lambda: [Dense(8, input_shape=(5,))],
        lambda: [Dense(8, input_dim=5)],
        lambda: [Input(shape=(5,)), Dense(8)],
    ],
    ids=["input_shape", "input_dim", "Input"],
)
def test_ways_of_giving_the_input_shape(first_layers):
    model = Sequential([*first_layers(), Dense(2)])
    assert model.input_shape == (5,)
    assert model.count_params() == 5 * 8 + 8 + 8 * 2 + 2
    assert model.predict(np.ones((3, 5))).shape == (3, 2)


def test_model_without_input_shape_builds_from_the_data():
    model = Sequential([Dense(4), Dense(2)])
    assert model.get_weights() == []
    assert model.predict(np.ones((3, 7))).shape == (3, 2)
    assert model.get_weights()[0].shape == (7, 4)


def test_summary_lists_layers_shapes_and_parameter_count(capsys):
    model = tutorial_model()
    model.summary()
    text = capsys.readouterr().out
    expected_total = (784 * 512 + 512) + (512 * 768 + 768) + (768 * 10 + 10)
    assert model.count_params() == expected_total
    for layer in model.layers:
        assert layer.name in text
    for shape in ("(None, 512)", "(None, 768)", "(None, 10)"):
        assert shape in text
    for count in (784 * 512 + 512, 512 * 768 + 768, 768 * 10 + 10):
        assert f"{count:,}" in text
    assert f"Total params: {expected_total:,}" in text


def test_summary_of_keras_mnist_mlp_counts_669706():
    # 669,706 is the count Keras prints for the classic 784-512-512-10 MNIST MLP.
    model = Sequential(
        [
            Dense(512, input_shape=(784,), activation="relu"),
            Dense(512, activation="relu"),
            Dense(10),
        ]
    )
    lines = []
    model.summary(print_fn=lines.append)
    expected = (784 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)
    assert expected == 669_706
    assert f"Total params: {expected:,}" in "\n".join(lines)


def test_adding_layers_is_checked():
    model = Sequential([Dense(3, name="hidden")])
    with pytest.raises(ValueError, match="a layer named 'hidden' is already in the model"):
        model.add(Dense(2, name="hidden"))
    with pytest.raises(TypeError, match="Sequential.add expects a Layer, got int"):
        model.add(5)
    with pytest.raises(ValueError, match=re.escape("Input(...) can only be the first layer")):
        model.add(Input(shape=(3,)))


def test_dense_rejects_multidimensional_samples_with_a_hint():
    model = Sequential([Dense(4, input_shape=(28, 28))])
    with pytest.raises(
        ValueError,
        match=r"shape \(28, 28\)\. Add a Flatten\(\) layer before it, or reshape x to \(n, 784\)",
    ):
        model.build()


# -- weights ----------------------------------------------------------------------------------


def test_get_set_weights_round_trip():
    source, target = small_classifier(seed=1), small_classifier(seed=2)
    x, _ = blobs(10)
    assert not np.array_equal(source.predict(x), target.predict(x))
    target.set_weights(source.get_weights())
    np.testing.assert_array_equal(source.predict(x), target.predict(x))
    # get_weights returns copies: changing them does not change the model
    weights = source.get_weights()
    weights[0][...] = 0.0
    assert np.any(source.get_weights()[0] != 0.0)


def test_set_weights_errors():
    model = small_classifier()
    weights = model.get_weights()
    with pytest.raises(
        ValueError, match=re.escape("set_weights: expected a list of 4 arrays, got 3")
    ):
        model.set_weights(weights[:3])
    wrong = [weights[0].T, *weights[1:]]
    with pytest.raises(
        ValueError, match=re.escape("set_weights: array 0 has shape (16, 6), expected (6, 16)")
    ):
        model.set_weights(wrong)
    # a refused call changes nothing
    np.testing.assert_array_equal(model.get_weights()[0], weights[0])


# -- fit / evaluate / predict ------------------------------------------------------------------


def test_fit_returns_history_with_metrics_and_validation():
    x, labels = blobs()
    y = utils.to_categorical(labels, 3)
    model = small_classifier()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    assert isinstance(history, History) and model.history is history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 3 for values in history.history.values())
    assert history.epoch == [0, 1, 2]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_model_learns_separable_blobs():
    x, labels = blobs(300)
    model = small_classifier(loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=15, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x, labels, verbose=0)
    assert accuracy >= 0.97
    assert np.mean(model.predict(x).argmax(axis=1) == labels) == pytest.approx(accuracy)
    np.testing.assert_allclose(model.predict(x).sum(axis=1), 1.0, rtol=1e-5)


def test_validation_split_takes_the_last_samples():
    x, labels = blobs(100)
    y = utils.to_categorical(labels, 3)
    model = small_classifier()
    history = model.fit(x, y, epochs=1, validation_split=0.2, shuffle=True, verbose=0)
    last = model.evaluate(x[80:], y[80:], verbose=0, return_dict=True)
    first = model.evaluate(x[:20], y[:20], verbose=0, return_dict=True)
    assert history.history["val_loss"][0] == pytest.approx(last["loss"], rel=1e-6)
    assert history.history["val_loss"][0] != pytest.approx(first["loss"], rel=1e-6)
    assert history.history["val_accuracy"][0] == last["accuracy"]


def test_validation_split_trains_only_on_the_first_samples():
    """Two runs that differ only in the held-out samples train identically."""
    x, labels = blobs(100)
    y = utils.to_categorical(labels, 3)
    x_other = x.copy()
    x_other[80:] = 0.0
    a, b = small_classifier(seed=3), small_classifier(seed=3)
    a.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    b.fit(x_other, y, epochs=2, validation_split=0.2, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_validation_data_is_used():
    x, labels = blobs(60)
    y = utils.to_categorical(labels, 3)
    model = small_classifier()
    history = model.fit(x[:40], y[:40], epochs=1, validation_data=(x[40:], y[40:]), verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(x[40:], y[40:], verbose=0)[0], rel=1e-6
    )


def test_verbose_0_prints_nothing(capsys):
    x, labels = blobs(40)
    small_classifier().fit(x, utils.to_categorical(labels, 3), epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, labels = blobs(40)
    small_classifier().fit(
        x, utils.to_categorical(labels, 3), epochs=3, verbose=2, validation_split=0.25
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"Epoch {epoch}/3")
        for key in ("loss:", "accuracy:", "val_loss:", "val_accuracy:"):
            assert key in line


def test_evaluate_returns_loss_and_metrics():
    x, labels = blobs(50)
    y = utils.to_categorical(labels, 3)
    model = small_classifier()
    loss, accuracy = model.evaluate(x, y, verbose=0)
    p = np.clip(model.predict(x).astype(np.float64), 1e-7, 1 - 1e-7)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(50), labels])), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(p.argmax(1) == labels))
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss, "accuracy": accuracy}


def test_initial_epoch_continues_the_history():
    x, labels = blobs(40)
    y = utils.to_categorical(labels, 3)
    model = small_classifier()
    model.fit(x, y, epochs=2, verbose=0)
    history = model.fit(x, y, epochs=4, initial_epoch=2, verbose=0)
    assert history.epoch == [0, 1, 2, 3]
    assert len(history.history["loss"]) == 4


# -- seeds ---------------------------------------------------------------------------------------


def train_with_global_seed(seed: int) -> list[np.ndarray]:
    utils.set_random_seed(seed)
    x, labels = blobs(64)
    model = Sequential(
        [Dense(8, activation="relu", input_shape=(6,)), Dense(3, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    return model.get_weights()


def test_same_seed_gives_bitwise_identical_weights():
    first, second = train_with_global_seed(7), train_with_global_seed(7)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    third = train_with_global_seed(8)
    assert not np.array_equal(first[0], third[0])


# -- errors on bad input -----------------------------------------------------------------------


@pytest.fixture
def tutorial():
    model = tutorial_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def test_images_fed_to_a_flat_dense_layer(tutorial):
    images = np.zeros((5, 28, 28), dtype=np.float32)
    y = utils.to_categorical(np.arange(5), 10)
    message = re.escape(
        "x has samples of shape (28, 28) (array shape (5, 28, 28)), but the model expects samples "
        "of shape (784,). Flatten them: add Flatten() as the model's first layer, or pass "
        "x.reshape(len(x), 784)."
    )
    with pytest.raises(ValueError, match=message):
        tutorial.fit(images, y, verbose=0)
    with pytest.raises(ValueError, match=message):
        tutorial.predict(images)
    # and the suggested fixes work
    assert tutorial.predict(images.reshape(len(images), 784)).shape == (5, 10)
    flat = Sequential([Flatten(input_shape=(28, 28)), Dense(10, activation="softmax")])
    assert flat.predict(images).shape == (5, 10)


X5 = np.zeros((5, 784), dtype=np.float32)
Y5 = np.eye(10)[[0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"x": X5, "y": Y5[:4]},
            ValueError,
            "x and y have different lengths: 5 samples and 4 targets",
        ),
        (
            {"x": X5, "y": np.array([0, 1, 2, 3, 4])},
            ValueError,
            "y holds class labels of shape (5,), but categorical_crossentropy expects one-hot targets "
            "of shape (5, 10): convert them with multilayer.utils.to_categorical(y, 10) or use "
            "loss='sparse_categorical_crossentropy'",
        ),
        (
            {"x": X5[:0], "y": Y5[:0]},
            ValueError,
            "x is empty: it needs at least one sample",
        ),
        (
            {"x": X5, "y": Y5, "batch_size": 0},
            ValueError,
            "batch_size must be a positive integer, got 0",
        ),
        (
            {"x": X5, "y": Y5, "batch_size": -32},
            ValueError,
            "batch_size must be a positive integer, got -32",
        ),
        ({"x": X5, "y": Y5, "epochs": 0}, ValueError, "epochs must be a positive integer, got 0"),
        (
            {"x": X5, "y": Y5, "validation_split": 1.0},
            ValueError,
            "validation_split must be in [0, 1), got 1.0",
        ),
        (
            {"x": np.array([["a"] * 784] * 5), "y": Y5},
            TypeError,
            "x must hold numbers, got an array of dtype <U1",
        ),
        (
            {"x": X5, "y": Y5 * 2},
            ValueError,
            "y must hold one-hot (or probability) targets in [0, 1] for categorical_crossentropy",
        ),
    ],
    ids=[
        "length-mismatch",
        "integer-labels-to-categorical",
        "empty",
        "batch-size-zero",
        "batch-size-negative",
        "epochs-zero",
        "validation-split",
        "strings",
        "targets-out-of-range",
    ],
)
def test_fit_refuses_bad_input(tutorial, kwargs, error, message):
    before = tutorial.get_weights()
    with pytest.raises(error, match=re.escape(message)):
        tutorial.fit(verbose=0, **kwargs)
    for a, b in zip(before, tutorial.get_weights(), strict=True):
        assert np.array_equal(a, b)  # nothing was trained


def test_nan_in_x_names_the_row(tutorial):
    x = X5.copy()
    x[3, 100] = np.nan
    with pytest.raises(
        ValueError,
        match=re.escape("x contains NaN or infinite values in 1 row(s), first at row(s) 3"),
    ):
        tutorial.fit(x, Y5, verbose=0)
    x[1, 0] = np.inf
    with pytest.raises(ValueError, match=re.escape("in 2 row(s), first at row(s) 1, 3")):
        tutorial.predict(x)


@pytest.mark.parametrize("bad", [10, -1])
def test_sparse_labels_out_of_range(bad):
    model = Sequential([Dense(10, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    labels = np.array([0, 3, bad, 9])
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"y has a label out of range: {bad}, but the model has 10 output classes (valid labels: 0 to 9)"
        ),
    ):
        model.fit(np.zeros((4, 4)), labels, verbose=0)


def test_fractional_sparse_labels():
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError,
        match="y must hold integer class labels for sparse_categorical_crossentropy, found non-integer values",
    ):
        model.fit(np.zeros((2, 4)), np.array([0.5, 1.0]), verbose=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Sequential([Dense(2, input_shape=(3,))]).compile(optimizer="adamm", loss="mse"),
            "Unknown optimizer 'adamm'. Did you mean 'adam'?",
        ),
        (
            lambda: Sequential([Dense(2, input_shape=(3,))]).compile(optimizer="adam", loss="msee"),
            "Unknown loss 'msee'. Did you mean 'mse'?",
        ),
        (
            lambda: Sequential([Dense(2, input_shape=(3,))]).compile(
                optimizer="adam", loss="categorical_crossentropy", metrics=["acuracy"]
            ),
            "Unknown metric 'acuracy'. Did you mean 'accuracy'?",
        ),
        (lambda: Dense(3, activation="rellu"), "Unknown activation 'rellu'. Did you mean 'relu'?"),
        (
            lambda: Dense(3, kernel_initializer="glorot_unifrom"),
            "Unknown initializer 'glorot_unifrom'. Did you mean 'glorot_uniform'?",
        ),
        (
            lambda: Dense(3, kernel_regularizer="l1l2"),
            "Unknown regularizer 'l1l2'. Did you mean 'l1_l2'?",
        ),
    ],
    ids=["optimizer", "loss", "metric", "activation", "initializer", "regularizer"],
)
def test_unknown_names_suggest_the_closest(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_fit_before_compile_and_invalid_verbose(tutorial):
    with pytest.raises(
        RuntimeError, match=re.escape("call compile(optimizer=..., loss=...) before fit()")
    ):
        tutorial_model().fit(X5, Y5)
    with pytest.raises(ValueError, match=re.escape("verbose must be 0, 1, 2 or 'auto', got 3")):
        tutorial.fit(X5, Y5, verbose=3)
    with pytest.raises(ValueError, match="compile: a loss is required"):
        tutorial.compile(optimizer="adam")


@pytest.mark.parametrize("empty", [[], (), {}])
def test_compile_with_an_empty_loss_list_says_a_loss_is_required(empty):
    """An empty list/dict of losses used to end in IndexError inside compile."""
    model = Sequential([Dense(1, input_shape=(3,))])
    with pytest.raises(
        ValueError,
        match=re.escape("compile: a loss is required, e.g. loss='categorical_crossentropy'"),
    ):
        model.compile(optimizer="sgd", loss=empty)
