"""The one trainer: *_on_batch calls, objects that save their own state, and Keras'
BackupAndRestore callback over that state."""

from __future__ import annotations

import re

import numpy as np
import pytest

import multilayer as keras
from multilayer.callbacks import BackupAndRestore
from multilayer.engine import metrics as metric_module
from multilayer.engine import optimizers
from multilayer.layers import Dense, Dropout
from multilayer.models import Model, Sequential
from multilayer.models.checkpoint import CheckpointConfig


def _data(n=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5)).astype("float32")
    return x, x[:, :3].argmax(axis=1)


def _model(seed=0):
    model = Sequential(
        [keras.Input(shape=(5,)), Dense(8, activation="relu"), Dropout(0.2), Dense(3, activation="softmax")],
        seed=seed,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# -- one batch ------------------------------------------------------------------------------------
def test_train_on_batch_is_one_step_of_fit():
    x, y = _data(32)
    by_batch, by_fit = _model(), _model()
    loss, accuracy = by_batch.train_on_batch(x, y)
    history = by_fit.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert by_batch.parameters.values.tobytes() == by_fit.parameters.values.tobytes()
    assert (loss, accuracy) == (history.history["loss"][0], history.history["accuracy"][0])
    assert by_batch.optimizer.iterations == 1
    assert by_batch.train_on_batch(x, y, return_dict=True).keys() == {"loss", "accuracy"}


def test_test_and_predict_on_batch_match_evaluate_and_predict():
    x, y = _data(40)
    model = _model()
    assert model.test_on_batch(x, y) == model.evaluate(x, y, verbose=0)
    assert model.test_on_batch(x, y, return_dict=True) == model.evaluate(
        x, y, verbose=0, return_dict=True
    )
    np.testing.assert_array_equal(model.predict_on_batch(x), model.predict(x))
    before = model.parameters.values.copy()
    model.test_on_batch(x, y)
    assert np.array_equal(before, model.parameters.values)  # no training


# -- state ------------------------------------------------------------------------------------------
def test_optimizer_state_round_trip_and_checks():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    state = model.optimizer.get_state()
    copy = {**state, "slots": {k: v.copy() for k, v in state["slots"].items()}}
    other = optimizers.Adam()
    other.build(model.parameters.size, np.float32)
    other.set_state(copy)
    assert other.iterations == model.optimizer.iterations == 3
    assert all(np.array_equal(other.state[k], v) for k, v in state["slots"].items())
    with pytest.raises(ValueError, match=re.escape("optimizer state has slots ['m'], adam needs ['m', 'v']")):  # fmt: skip
        other.set_state({"slots": {"m": state["slots"]["m"]}})
    wrong = {**copy, "slots": {"m": copy["slots"]["m"][:3], "v": copy["slots"]["v"]}}
    with pytest.raises(ValueError, match="optimizer state 'm' has shape"):
        other.set_state(wrong)


def test_metric_state_round_trip_and_checks():
    metric = metric_module.get("accuracy", keras.losses.get("sparse_categorical_crossentropy"))
    metric.update_state(np.array([0, 1, 2]), np.eye(3)[[0, 2, 2]])
    copy = metric_module.get("accuracy", keras.losses.get("sparse_categorical_crossentropy"))
    copy.set_state(metric.get_state())
    assert copy.result() == metric.result() == pytest.approx(2 / 3)
    # the count is a sum of sample weights (a float once weighted), never negative
    with pytest.raises(
        ValueError, match=r"^metric 'accuracy': count must be finite and non-negative, got -1$"
    ):
        copy.set_state({"total": 1.0, "count": -1})


def test_model_generator_state_round_trip():
    inputs = keras.Input(shape=(4,))
    model = Model(inputs, Dropout(0.5, seed=3)(Dense(4)(inputs)), seed=1)
    state = model.get_state()
    assert set(state["layer_rngs"]) == {"2"}  # the seeded Dropout, not the model's generator
    draws = (model.rng.random(3), model.layers[2].rng.random(3))
    model.set_state(state)
    assert np.array_equal(model.rng.random(3), draws[0])
    assert np.array_equal(model.layers[2].rng.random(3), draws[1])
    with pytest.raises(ValueError, match="layer '1' has no random generator of its own"):
        model.set_state({"rng": state["rng"], "layer_rngs": {"1": state["rng"]}})


# -- BackupAndRestore ---------------------------------------------------------------------------------
class _CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("crash")


def test_keras_style_backup_and_restore_resumes_then_deletes_its_backup(tmp_path):
    x, y = _data()
    reference = _model()
    expected = reference.fit(x, y, batch_size=16, epochs=4, verbose=0)
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="crash"):
        _model().fit(x, y, batch_size=16, epochs=4, verbose=0,
                     callbacks=[BackupAndRestore(backup), _CrashAt(2)])  # fmt: skip
    assert [p.name for p in backup.iterdir()] != []  # kept: training did not complete
    resumed = _model(seed=42)
    history = resumed.fit(x, y, batch_size=16, epochs=4, verbose=0,
                          callbacks=[BackupAndRestore(backup)])  # fmt: skip
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()
    assert history.history == expected.history
    assert not backup.exists()  # completed: the backup is deleted


def test_backup_and_restore_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or a positive number"):
        BackupAndRestore(tmp_path, save_freq=0)
    with pytest.raises(
        TypeError, match="backup_dir must be a directory path or a CheckpointConfig"
    ):
        BackupAndRestore(3)
    x, y = _data()
    with pytest.raises(ValueError, match="one BackupAndRestore at most"):
        _model().fit(x, y, verbose=0, callbacks=[BackupAndRestore(tmp_path / "a")],
                     checkpoint=CheckpointConfig(tmp_path / "b"))  # fmt: skip
    with pytest.raises(TypeError, match="checkpoint must be a CheckpointConfig or None, got str"):
        _model().fit(x, y, verbose=0, checkpoint="dir")


# -- the one config shape -------------------------------------------------------------------------
def test_a_loss_in_the_registry_shape_is_one_loss_for_every_output():
    """compile(loss={"class_name": ..., "config": ...}) is one loss (what models save since
    the one config shape), not a dict of losses by output name."""
    inputs = keras.Input(shape=(4,))
    model = Model(inputs, [Dense(2, name="a")(inputs), Dense(3, name="b")(inputs)])
    model.compile(optimizer="sgd", loss={"class_name": "MeanSquaredError", "config": {}})
    assert [type(loss).__name__ for loss in model.loss] == ["MeanSquaredError"] * 2
    message = "compile: loss for unknown outputs ['class_name']; outputs: ['a', 'b']"
    with pytest.raises(ValueError, match=re.escape(message)):
        model.compile(optimizer="sgd", loss={"class_name": "mse"})  # not a config: no "config"
