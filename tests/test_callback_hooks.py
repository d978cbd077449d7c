"""Callbacks with Keras 3 semantics (issue 10 item 4): every hook is called where Keras calls
it, with a logs dict (Keras itself as the oracle where installed); batch hooks cost nothing
when no callback overrides them; ModelCheckpoint's templates, folders and modes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import multilayer as keras
from multilayer.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    ModelCheckpoint,
)
from multilayer.layers import Dense
from multilayer.models import Sequential, load_model

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from callback_sequence import record  # noqa: E402

TRAIN_LOGS = ["accuracy", "loss"]


def keras_sequence() -> list:
    """What Keras 3 calls for `callback_sequence.record`: fit on 10 samples in batches of 4
    (3 batches) for 2 epochs, validating 6 samples in batches of 4 (2 batches) after each
    epoch with the same callbacks; evaluate and predict of 10 samples in batches of 8."""
    calls: list = [["on_train_begin", []]]

    def test(batches):
        calls.append(["on_test_begin", []])
        for b in range(batches):
            calls.append(["on_test_batch_begin", b, []])
            calls.append(["on_test_batch_end", b, TRAIN_LOGS])
        calls.append(["on_test_end", TRAIN_LOGS])

    for epoch in range(2):
        calls.append(["on_epoch_begin", epoch, []])
        for b in range(3):
            calls.append(["on_train_batch_begin", b, []])
            calls.append(["on_batch_begin", b, []])  # Keras 2's name, called by the default
            calls.append(["on_train_batch_end", b, TRAIN_LOGS])
            calls.append(["on_batch_end", b, TRAIN_LOGS])
        test(2)
        calls.append(["on_epoch_end", epoch, [*TRAIN_LOGS, "val_accuracy", "val_loss"]])
    calls.append(["on_train_end", [*TRAIN_LOGS, "val_accuracy", "val_loss"]])
    test(2)  # evaluate
    calls.append(["on_predict_begin", []])
    for b in range(2):
        calls.append(["on_predict_batch_begin", b, []])
        calls.append(["on_predict_batch_end", b, ["outputs"]])
    calls.append(["on_predict_end", []])
    return calls


def test_hooks_are_called_where_keras_calls_them():
    assert record(keras) == keras_sequence()


@pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
    reason="Keras 3 with JAX is not installed (the oracle)",
)
def test_keras_itself_calls_the_same_hooks():
    script = Path(__file__).parent / "helpers" / "callback_sequence.py"
    result = subprocess.run(
        [sys.executable, str(script), "keras"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == keras_sequence()


def _data(n=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _model():
    model = Sequential([keras.Input(shape=(4,)), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_batch_hooks_only_called_when_overridden():
    class EpochOnly(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    quiet = CallbackList([History(), EpochOnly(), CSVLogger("unused.csv")], None)
    assert not (quiet.wants_train_batches or quiet.wants_test_batches)
    assert not quiet.wants_predict_batches
    alias = CallbackList([LambdaCallback(on_batch_end=print)], None)
    assert alias.wants_train_batches and not alias.wants_test_batches
    tester = CallbackList([LambdaCallback(on_test_batch_begin=print)], None)
    assert tester.wants_test_batches and not tester.wants_train_batches


def test_logs_are_the_running_means_and_on_train_end_gets_the_last_epoch():
    x, y = _data()
    batch_logs, end_logs = [], []
    callback = LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch_logs.append(dict(logs)),
        on_train_end=lambda logs: end_logs.append(dict(logs)),
    )
    model = _model()
    history = model.fit(x, y, batch_size=10, epochs=2, callbacks=[callback], verbose=0)
    assert batch_logs[3]["loss"] == history.history["loss"][0]  # the epoch's mean
    assert batch_logs[-1]["accuracy"] == history.history["accuracy"][1]
    assert end_logs == [
        {"loss": history.history["loss"][1], "accuracy": history.history["accuracy"][1]}
    ]


# -- ModelCheckpoint --------------------------------------------------------------------------
def test_model_checkpoint_template_creates_its_folder(tmp_path):
    x, y = _data()
    path = tmp_path / "ckpt" / "deeper" / "{epoch:02d}-{val_loss:.2f}.safetensors"
    model = _model()
    history = model.fit(
        x, y, epochs=2, validation_split=0.25, callbacks=[ModelCheckpoint(path)], verbose=0
    )
    names = sorted(p.name for p in (tmp_path / "ckpt" / "deeper").iterdir())
    expected = [
        f"{e + 1:02d}-{v:.2f}.safetensors" for e, v in enumerate(history.history["val_loss"])
    ]
    assert names == expected
    restored = load_model(tmp_path / "ckpt" / "deeper" / expected[-1])
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def test_model_checkpoint_save_best_only_modes(tmp_path):
    x, y = _data()
    values = iter([0.5, 0.7, 0.6, 0.9])

    class FakeMetric(Callback):  # runs before the checkpoint: sets the monitored value
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = next(values)

    best = ModelCheckpoint(tmp_path / "max-{epoch}.safetensors", monitor="score", mode="max",
                           save_best_only=True)  # fmt: skip
    _model().fit(x, y, epochs=4, callbacks=[FakeMetric(), best], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "max-1.safetensors", "max-2.safetensors", "max-4.safetensors",
    ]  # fmt: skip
    assert best.best == 0.9
    threshold = ModelCheckpoint(tmp_path / "min-{epoch}.safetensors", monitor="loss",
                                save_best_only=True, initial_value_threshold=0.0)  # fmt: skip
    _model().fit(x, y, epochs=2, callbacks=[threshold], verbose=0)
    assert not list(tmp_path.glob("min-*"))  # nothing beats a loss of 0


def test_model_checkpoint_missing_monitor_warns_and_skips(tmp_path):
    x, y = _data()
    checkpoint = ModelCheckpoint(
        tmp_path / "m.safetensors", monitor="val_loss", save_best_only=True
    )
    with pytest.warns(UserWarning, match=r"can save the best model only with val_loss available"):
        _model().fit(x, y, epochs=1, callbacks=[checkpoint], verbose=0)
    assert not list(tmp_path.iterdir())


def test_model_checkpoint_save_freq_in_batches(tmp_path):
    x, y = _data(40)  # 4 batches of 10 per epoch, 8 in all: saves after batches 3 and 6
    checkpoint = ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.safetensors", save_freq=3)
    _model().fit(x, y, batch_size=10, epochs=2, callbacks=[checkpoint], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1-b3.safetensors", "e2-b2.safetensors"]
    with pytest.raises(ValueError, match=r"^ModelCheckpoint: cannot fill in the filepath"):
        _model().fit(x, y, epochs=1, verbose=0,
                     callbacks=[ModelCheckpoint(tmp_path / "{val_auc}.safetensors")])  # fmt: skip


def test_model_checkpoint_weights_only(tmp_path):
    x, y = _data()
    checkpoint = ModelCheckpoint(
        tmp_path / "w" / "{epoch}.weights.safetensors", save_weights_only=True
    )
    model = _model()
    model.fit(x, y, epochs=2, callbacks=[checkpoint], verbose=0)
    other = _model()
    other.load_weights(tmp_path / "w" / "2.weights.safetensors")
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        "1.weights.safetensors",
        "2.weights.safetensors",
    ]


def test_early_stopping_keras_semantics():
    x, y = _data()
    losses = iter([1.0, 0.8, 0.9, 0.95, 0.5, 0.4])
    snapshots = []

    class Fake(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            snapshots.append(self.model.parameters.values.copy())

    stop = EarlyStopping(patience=2, restore_best_weights=True)
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(x, y, epochs=6, callbacks=[Fake(), stop], verbose=0)
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3
    np.testing.assert_array_equal(model.parameters.values, snapshots[1])  # the best epoch
    # start_from_epoch: the first epochs are not watched; baseline: must be beaten
    losses = iter([9.0, 9.0, 1.0, 1.0, 1.0])
    late = EarlyStopping(patience=1, start_from_epoch=2, baseline=0.5)
    history = _model().fit(x, y, epochs=5, callbacks=[Fake(), late], verbose=0)
    assert history.epoch == [0, 1, 2, 3]
