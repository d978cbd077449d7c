"""API input validation: every bad argument is a ValueError or TypeError that names the
argument and says what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer.engine import activations, losses, optimizers
from multilayer.engine.layers import Dense, Input, deserialize
from multilayer.models.sequential import Sequential


def _model(loss="sparse_categorical_crossentropy", units=3):
    model = Sequential([Input(shape=(4,)), Dense(units, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss=loss)
    return model


X = np.zeros((6, 4), dtype="float32")
Y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    ("x", "y", "error", "match"),
    [
        (
            np.zeros((6, 5)),
            Y,
            ValueError,
            r"x has samples of shape \(5,\).*expects samples of shape \(4,\)",
        ),
        (np.zeros((6, 2, 2)), Y, ValueError, r"Flatten"),
        (np.array([["a"] * 4] * 6), Y, TypeError, "x must hold numbers"),
        (np.array([{}] * 6, dtype=object), Y, TypeError, "x must hold numbers"),
        ([[1, 2], [3]], Y, TypeError, "x must be a numeric array"),
        (np.float32(1.0), Y, ValueError, "x must be an array of samples, got a scalar"),
        (np.zeros((0, 4)), Y[:0], ValueError, "x is empty"),
        (X, Y[:5], ValueError, "x and y have different lengths: 6 samples and 5 targets"),
        (X, np.array(["a"] * 6), TypeError, "y must hold numbers"),
        (
            X,
            np.array([0, 1, 2, 3, 0, 1]),
            ValueError,
            r"label out of range: 3.*valid labels: 0 to 2",
        ),
        (X, np.array([0, -1, 2, 0, 1, 2]), ValueError, "label out of range: -1"),
        (X, np.array([0, 0.5, 2, 0, 1, 2]), ValueError, "y must hold integer class labels"),
        (X, np.zeros((6, 3)), ValueError, "y must hold one integer class label per sample"),
    ],
)
def test_fit_refuses_bad_data(x, y, error, match):
    with pytest.raises(error, match=match):
        _model().fit(x, y, verbose=0)


def test_nan_and_inf_in_inputs_are_refused_naming_the_rows():
    x = X.copy()
    x[2, 1] = np.nan
    x[4, 0] = np.inf
    with pytest.raises(
        ValueError, match=r"x contains NaN or infinite values in 2 row\(s\), first at row\(s\) 2, 4"
    ):
        _model().fit(x, Y, verbose=0)
    with pytest.raises(ValueError, match="x contains NaN"):
        _model().predict(x)


def test_nan_in_targets_is_refused():
    y = np.zeros((6, 3))
    y[3, 1] = np.nan
    with pytest.raises(
        ValueError, match=r"y contains NaN or infinite values in 1 row\(s\), first at row\(s\) 3"
    ):
        _model("categorical_crossentropy").fit(X, y, verbose=0)


def test_categorical_targets_given_as_labels_suggest_the_fix():
    with pytest.raises(ValueError, match="to_categorical.*sparse_categorical_crossentropy"):
        _model("categorical_crossentropy").fit(X, Y, verbose=0)


def test_validation_data_is_checked_under_its_own_name():
    with pytest.raises(ValueError, match="validation x and validation y have different lengths"):
        _model().fit(X, Y, validation_data=(X, Y[:2]), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data must be a tuple \(x_val, y_val\)"):
        _model().fit(X, Y, validation_data=X, verbose=0)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "32"])
@pytest.mark.parametrize("argument", ["batch_size", "epochs"])
def test_fit_refuses_non_positive_counts(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer, got {value!r}"):
        _model().fit(X, Y, verbose=0, **{argument: value})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_split": 1.0}, r"validation_split must be in \[0, 1\)"),
        ({"validation_split": -0.1}, r"validation_split must be in \[0, 1\)"),
        ({"verbose": 3}, "verbose must be 0, 1, 2 or 'auto'"),
    ],
)
def test_fit_refuses_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model().fit(X, Y, **{"verbose": 0, **kwargs})


def test_evaluate_and_predict_check_their_arguments():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        _model().predict(X, batch_size=-1)
    with pytest.raises(ValueError, match="x and y have different lengths"):
        _model().evaluate(X, Y[:3], verbose=0)


def test_compile_requires_a_loss_and_fit_requires_compile():
    model = Sequential([Input(shape=(4,)), Dense(3)])
    with pytest.raises(ValueError, match="a loss is required"):
        model.compile(optimizer="adam")
    with pytest.raises(
        RuntimeError, match=r"call compile\(optimizer=..., loss=...\) before fit\(\)"
    ):
        model.fit(X, Y, verbose=0)


@pytest.mark.parametrize(
    ("resolve", "name", "suggestion"),
    [
        (activations.get, "rleu", "relu"),
        (activations.get, "softmx", "softmax"),
        (losses.get, "categorical_crossentropi", "categorical_crossentropy"),
        (losses.get, "sparse_categorical_crossentrpy", "sparse_categorical_crossentropy"),
        (optimizers.get, "adma", "adam"),
        (optimizers.get, "rmsprp", "rmsprop"),
        (lambda name: deserialize({"class_name": name, "config": {}}), "Dence", "Dense"),
    ],
)
def test_unknown_names_suggest_the_closest_one(resolve, name, suggestion):
    with pytest.raises(ValueError, match=f"Unknown .*{name!r}. Did you mean {suggestion!r}\\?"):
        resolve(name)


def test_unknown_names_through_the_model_api():
    with pytest.raises(ValueError, match="Did you mean 'relu'"):
        Dense(3, activation="rleu")
    model = Sequential([Input(shape=(4,)), Dense(3)])
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        model.compile(optimizer="adma", loss="mse")
    with pytest.raises(ValueError, match="Did you mean 'mse'|Did you mean 'mae'"):
        model.compile(optimizer="adam", loss="msee")


def test_a_name_with_nothing_close_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown optimizer 'zzz'. Known: adadelta, adagrad, adam"):
        optimizers.get("zzz")


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Dense(0), ValueError, "units"),
        (lambda: Dense(-4), ValueError, "units"),
        (lambda: Input(shape=(0,)), ValueError, "shape must be a tuple of positive integers"),
        (lambda: Input(shape="abc"), ValueError, "shape must be a tuple of positive integers"),
        (
            lambda: optimizers.get({"name": "adam", "config": {"learning_rate": -1}}),
            ValueError,
            "learning_rate",
        ),
        (lambda: optimizers.SGD(momentum=2.0), ValueError, "momentum"),
        (lambda: losses.get(3), TypeError, "loss must be a name or a Loss"),
        (lambda: optimizers.get(3), TypeError, "optimizer must be a name or an Optimizer"),
    ],
)
def test_layer_and_optimizer_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()
