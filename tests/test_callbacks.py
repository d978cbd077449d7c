"""Callbacks: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler,
CSVLogger and TerminateOnNaN, each observed through what it does to a real training run.

To control exactly when a monitored quantity "improves", a `Scripted` callback placed before
the callback under test writes a scripted value into the epoch logs.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from multilayer.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from multilayer.layers import Dense
from multilayer.models import Sequential, load_model
from multilayer.optimizers import SGD


class Scripted(Callback):
    """Puts ``values[epoch]`` into the logs as ``score`` and records the weights and lr."""

    def __init__(self, values):
        super().__init__()
        self.values = values
        self.weights: list[np.ndarray] = []
        self.learning_rates: list[float] = []
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.learning_rates.append(self.model.optimizer.learning_rate)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]
        self.weights.append(self.model.parameters.values.copy())


def data(n: int = 64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3).astype(np.float32).reshape(-1, 1)
    return x, y


def regressor(optimizer=None) -> Sequential:
    model = Sequential([Dense(8, activation="tanh", input_shape=(4,)), Dense(1)], seed=0)
    model.build()
    model.compile(optimizer=optimizer or SGD(learning_rate=0.05), loss="mse")
    return model


def test_early_stopping_patience():
    x, y = data()
    script = Scripted([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # never improves after epoch 0
    stopper = EarlyStopping(monitor="score", patience=2)
    history = regressor().fit(x, y, epochs=6, callbacks=[script, stopper], verbose=0)
    assert history.epoch == [0, 1, 2]  # stopped after 2 epochs without improvement
    assert stopper.stopped_epoch == 2


def test_early_stopping_min_delta_and_mode_max():
    x, y = data()
    script = Scripted([0.5, 0.505, 0.509, 0.6, 0.61, 0.62])
    stopper = EarlyStopping(monitor="score", patience=2, min_delta=0.01, mode="max")
    history = regressor().fit(x, y, epochs=6, callbacks=[script, stopper], verbose=0)
    assert history.epoch == [0, 1, 2]  # +0.005 and +0.009 are below min_delta


def test_early_stopping_restores_the_best_weights():
    x, y = data()
    script = Scripted([3.0, 1.0, 2.0, 2.5, 0.5])  # best at epoch 1, stop at epoch 3
    stopper = EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    model = regressor()
    history = model.fit(x, y, epochs=5, callbacks=[script, stopper], verbose=0)
    assert history.epoch == [0, 1, 2, 3]
    assert stopper.best_epoch == 1
    np.testing.assert_array_equal(model.parameters.values, script.weights[1])
    assert not np.array_equal(script.weights[1], script.weights[3])  # it really changed back


def test_early_stopping_without_restore_keeps_the_last_weights():
    x, y = data()
    script = Scripted([3.0, 1.0, 2.0, 2.5])
    model = regressor()
    model.fit(
        x, y, epochs=4, callbacks=[script, EarlyStopping(monitor="score", patience=2)], verbose=0
    )
    np.testing.assert_array_equal(model.parameters.values, script.weights[-1])


def test_early_stopping_unknown_monitor_lists_the_available_keys():
    # Keras 3 warns (and never stops) rather than failing the run
    x, y = data()
    with pytest.warns(
        UserWarning, match=r"^EarlyStopping: 'val_loss' is not in the logs \(available: loss\)$"
    ):
        history = regressor().fit(x, y, epochs=2, callbacks=[EarlyStopping()], verbose=0)
    assert history.epoch == [0, 1]


def test_model_checkpoint_writes_a_loadable_file_per_epoch(tmp_path):
    x, y = data()
    model = regressor()
    pattern = str(tmp_path / "model-{epoch:02d}.safetensors")
    model.fit(x, y, epochs=3, callbacks=[ModelCheckpoint(pattern, monitor="loss")], verbose=0)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["model-01.safetensors", "model-02.safetensors", "model-03.safetensors"]
    restored = load_model(tmp_path / "model-03.safetensors")
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = data()
    script = Scripted([2.0, 1.0, 1.5, 0.5])  # improves at epochs 1, 2 and 4 (1-based: 1, 2, 4)
    path = str(tmp_path / "best-{epoch}.safetensors")
    checkpoint = ModelCheckpoint(path, monitor="score", save_best_only=True)
    regressor().fit(x, y, epochs=4, callbacks=[script, checkpoint], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best-1.safetensors",
        "best-2.safetensors",
        "best-4.safetensors",
    ]
    # the file of epoch 2 holds the weights of the end of epoch 2
    saved = load_model(tmp_path / "best-2.safetensors")
    np.testing.assert_array_equal(saved.parameters.values, script.weights[1])


def test_reduce_lr_on_plateau_lowers_the_learning_rate():
    x, y = data()
    script = Scripted([1.0] * 9)  # a plateau from the start
    reducer = ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.01)
    model = regressor(SGD(learning_rate=0.08))
    model.fit(x, y, epochs=9, callbacks=[script, reducer], verbose=0)
    # epoch 0 sets the best; every 2 epochs without improvement halve the rate, down to min_lr
    assert script.learning_rates == pytest.approx(
        [0.08, 0.08, 0.08, 0.04, 0.04, 0.02, 0.02, 0.01, 0.01]
    )
    assert model.optimizer.learning_rate == pytest.approx(0.01)


def test_reduce_lr_on_plateau_leaves_an_improving_run_alone():
    x, y = data()
    script = Scripted([5.0, 4.0, 3.0, 2.0])
    model = regressor(SGD(learning_rate=0.08))
    model.fit(
        x,
        y,
        epochs=4,
        callbacks=[script, ReduceLROnPlateau(monitor="score", patience=1)],
        verbose=0,
    )
    assert model.optimizer.learning_rate == pytest.approx(0.08)


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    x, y = data()
    script = Scripted([0.0] * 4)
    scheduler = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    model = regressor()
    # the scheduler runs first, so the script sees the rate set for the epoch
    model.fit(x, y, epochs=4, callbacks=[scheduler, script], verbose=0)
    assert script.learning_rates == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert model.optimizer.learning_rate == pytest.approx(0.0125)


def test_learning_rate_scheduler_rate_is_the_one_the_optimizer_uses():
    """One SGD step (one batch): doubling the scheduled rate doubles the weight change."""
    x, y = data(8)
    changes = []
    for rate in (0.01, 0.02):
        model = regressor(SGD(learning_rate=0.5))
        before = model.parameters.values.copy()
        scheduler = LearningRateScheduler(lambda epoch, lr, rate=rate: rate)
        model.fit(x, y, epochs=1, batch_size=8, callbacks=[scheduler], verbose=0)
        changes.append(model.parameters.values - before)
    assert np.any(changes[0] != 0)
    np.testing.assert_allclose(changes[1], 2 * changes[0], rtol=1e-4, atol=1e-6)  # float32


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    history = regressor().fit(
        x, y, epochs=3, validation_split=0.25, callbacks=[CSVLogger(path)], verbose=0
    )
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert set(rows[0]) == {"epoch", "loss", "val_loss"}
    for key in ("loss", "val_loss"):
        assert [float(row[key]) for row in rows] == pytest.approx(history.history[key])


def test_csv_logger_append(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    model = regressor()
    model.fit(x, y, epochs=2, callbacks=[CSVLogger(path)], verbose=0)
    model.fit(x, y, epochs=2, callbacks=[CSVLogger(path, append=True)], verbose=0)
    lines = path.read_text().strip().splitlines()
    assert lines[0] == "epoch,loss" and len(lines) == 5


def test_terminate_on_nan_stops_on_a_nan_loss(capsys):
    model = regressor()
    callback = TerminateOnNaN()
    callback.set_model(model)
    callback.on_train_batch_end(0, {"loss": 0.5})
    assert not model.stop_training
    callback.on_train_batch_end(3, {"loss": float("nan")})
    assert model.stop_training
    assert "Batch 3: invalid loss, terminating training" in capsys.readouterr().out
    model.stop_training = False
    callback.on_train_batch_end(4, {"loss": float("inf")})
    assert model.stop_training


def test_a_nan_loss_stops_fit_at_the_first_bad_batch():
    """fit itself refuses to apply an update computed from a NaN loss (TrainingError), so
    training stops at the first bad batch with TerminateOnNaN or without it."""
    from multilayer.errors import TrainingError

    x, y = data(64)
    model = regressor()
    weights = model.get_weights()
    weights[0][0, 0] = np.nan
    model.set_weights(weights)
    script = Scripted([0.0] * 5)
    with pytest.raises(TrainingError, match="the loss became nan at optimizer step 1"):
        model.fit(x, y, epochs=5, batch_size=8, callbacks=[TerminateOnNaN(), script], verbose=0)
    assert script.batches == 0  # the first batch never completed
    assert model.optimizer.iterations == 0
