"""Issue 8, item 20: fit / evaluate / predict arguments that used to crash or be silently
misread are handled (huge batch sizes) or refused with a message naming the argument."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

from multilayer.engine.layers import Dense, Input
from multilayer.models.callbacks import Callback
from multilayer.models.sequential import Sequential

X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
Y = np.arange(64) % 3


def _model():
    model = Sequential([Input(shape=(4,)), Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_batch_size_larger_than_the_data_is_one_full_batch():
    reference, huge = _model(), _model()
    reference.fit(X, Y, batch_size=64, epochs=2, verbose=0)
    tracemalloc.start()
    try:
        huge.fit(X, Y, batch_size=10**12, epochs=2, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # buffers of min(batch_size, n) rows, not 10**12
    assert huge.parameters.values.tobytes() == reference.parameters.values.tobytes()
    assert np.array_equal(huge.predict(X, batch_size=10**12), reference.predict(X))
    assert huge.evaluate(X, Y, batch_size=10**12, verbose=0) == reference.evaluate(X, Y, verbose=0)


@pytest.mark.parametrize("value", [-1, -100])
def test_negative_initial_epoch_is_refused(value):
    with pytest.raises(
        ValueError, match=f"^initial_epoch must be a non-negative integer, got {value}$"
    ):
        _model().fit(X, Y, epochs=2, initial_epoch=value, verbose=0)


@pytest.mark.parametrize("method", ["predict", "evaluate"])
@pytest.mark.parametrize("value", [0, -5, 2.5])
def test_inference_batch_size_must_be_positive(method, value):
    model = _model()
    call = (
        (lambda: model.predict(X, batch_size=value))
        if method == "predict"
        else (lambda: model.evaluate(X, Y, batch_size=value, verbose=0))
    )
    with pytest.raises(
        ValueError, match=f"^batch_size must be a positive integer, got {re.escape(repr(value))}$"
    ):
        call()


@pytest.mark.parametrize("method", ["fit", "predict", "evaluate"])
def test_complex_input_is_refused(method):
    model = _model()
    x = X.astype(np.complex64) + 1j
    call = {
        "fit": lambda: model.fit(x, Y, verbose=0),
        "predict": lambda: model.predict(x),
        "evaluate": lambda: model.evaluate(x, Y, verbose=0),
    }[method]
    with pytest.raises(
        TypeError,
        match=re.escape(
            "x must hold real numbers, got complex values (dtype complex64); "
            "pass x.real or abs(x) if that is what you mean"
        ),
    ):
        call()


def test_complex_targets_are_refused():
    with pytest.raises(TypeError, match=r"^y must hold real numbers, got complex values"):
        _model().fit(X, Y.astype(complex), verbose=0)


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        ([1], "callbacks[0] must be a Callback object (multilayer.callbacks), got int: 1"),
        (
            [Callback(), "early_stopping"],
            "callbacks[1] must be a Callback object (multilayer.callbacks), got str: "
            "'early_stopping'",
        ),
        (Callback(), "callbacks must be a list of Callback objects, got Callback"),
        ("abc", "callbacks must be a list of Callback objects, got str"),
    ],
)
def test_callbacks_that_are_not_callbacks_are_refused(callbacks, message):
    model = _model()
    before = model.get_weights()
    with pytest.raises(TypeError, match="^" + re.escape(message) + "$"):
        model.fit(X, Y, verbose=0, callbacks=callbacks)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
