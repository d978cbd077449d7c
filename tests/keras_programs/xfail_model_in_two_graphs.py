"""Transfer-learning idiom: a base model trained inside one model (base + old head), then
called again in a new functional model with a new head (the model reused in a second graph)."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers

x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
base = keras.Sequential([keras.Input(shape=(8,)), layers.Dense(4, activation="relu")], name="base")
old = keras.Sequential([base, layers.Dense(1)])
old.compile(optimizer="adam", loss="mse")
old.fit(x, x[:, :1], epochs=1, verbose=0)
base.trainable = False
inputs = keras.Input(shape=(8,))
new = keras.Model(inputs, layers.Dense(2)(base(inputs, training=False)))
assert new.predict(x, verbose=0).shape == (64, 2)
print("RESULT " + json.dumps({"n_trainable": len(new.trainable_weights)}))
