"""TensorFlow "overfit and underfit" tutorial idiom: a loss object with a name used as a
metric, ``metrics=[keras.losses.BinaryCrossentropy(from_logits=True, name="binary_crossentropy")]``."""

import json

import numpy as np

import multilayer as keras

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = (x[:, :1] > 0).astype("float32")
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
model.compile(
    optimizer="adam",
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[keras.losses.BinaryCrossentropy(from_logits=True, name="binary_crossentropy")],
)
history = model.fit(x, y, epochs=2, verbose=0)
assert "binary_crossentropy" in history.history
print("RESULT " + json.dumps({"keys": sorted(history.history)}))
