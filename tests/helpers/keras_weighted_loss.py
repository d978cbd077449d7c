"""Keras 3 as the oracle of weighted losses: ``python keras_weighted_loss.py data.npz``.

The file holds ``x``, ``y`` (integer labels), ``w`` (sample weights), ``onehot`` (0 or 1)
and the weights ``w0``, ``w1``, ... of a Dense(6, tanh) -> Dense(3, softmax) model; prints
as JSON Keras' evaluate loss with those weights, and the loss of one train_on_batch.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

data = np.load(sys.argv[1])
onehot = bool(data["onehot"])
model = keras.Sequential(
    [keras.Input(shape=(4,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3, activation="softmax")]
)  # fmt: skip
loss = "categorical_crossentropy" if onehot else "sparse_categorical_crossentropy"
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss)
model.set_weights([data[f"w{i}"] for i in range(4)])
y = np.eye(3)[data["y"]] if onehot else data["y"]
evaluated = model.evaluate(data["x"], y, sample_weight=data["w"], batch_size=7, verbose=0)
trained = model.train_on_batch(data["x"], y, sample_weight=data["w"])
after = [w.tolist() for w in model.get_weights()]
print(json.dumps({"evaluate": float(evaluated), "train": float(trained), "weights": after}))
