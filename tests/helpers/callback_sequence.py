"""Record every callback hook of a small fit (with validation), evaluate and predict.

Run as ``python callback_sequence.py keras`` (with Keras 3 installed: the oracle) or
``multilayer``; prints the calls as JSON: ``[hook, batch-or-epoch?, sorted log keys]``.
The same program for both libraries: the hooks must be called in the same order, with the
same arguments and the same log keys.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
    "on_predict_batch_begin", "on_predict_batch_end", "on_batch_begin", "on_batch_end",
)  # fmt: skip


def record(keras) -> list:
    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls: list = []

    def make(name):
        def hook(self, *args, logs=None):
            if args and not isinstance(args[0], int):  # on_train_begin(logs) and friends
                logs, args = args[0], ()
            elif len(args) == 2:
                logs, args = args[1], args[:1]
            self.calls.append([name, *args, None if logs is None else sorted(logs)])
            if name in ("on_train_batch_begin", "on_train_batch_end"):  # keep the aliases
                getattr(super(Recorder, self), name)(*args, logs=logs)

        return hook

    for name in HOOKS:
        setattr(Recorder, name, make(name))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    recorder = Recorder()
    model.fit(
        x, y, batch_size=4, epochs=2, validation_data=(x[:6], y[:6]), validation_batch_size=4,
        callbacks=[recorder], verbose=0,
    )  # fmt: skip
    model.evaluate(x, y, batch_size=8, callbacks=[recorder], verbose=0)
    model.predict(x, batch_size=8, callbacks=[recorder], verbose=0)
    return recorder.calls


if __name__ == "__main__":
    if sys.argv[1] == "keras":
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras as library
    else:
        import multilayer as library
    print(json.dumps(record(library)))
