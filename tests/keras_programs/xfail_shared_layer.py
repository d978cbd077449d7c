"""Functional API guide idiom (shared layers): one layer instance called on two inputs, its
weights shared by both branches (siamese models)."""

import json

import numpy as np

import multilayer as keras
from multilayer import layers

a = keras.Input(shape=(10,))
b = keras.Input(shape=(10,))
shared = layers.Dense(4)
model = keras.Model([a, b], layers.add([shared(a), shared(b)]))
assert len(model.trainable_weights) == 2
x = np.random.default_rng(0).normal(size=(8, 10)).astype("float32")
np.testing.assert_allclose(
    model.predict([x, x], verbose=0),
    2 * model.predict([x, 0 * x], verbose=0) - model.predict([0 * x, 0 * x], verbose=0),
    rtol=1e-4,
    atol=1e-5,
)
print("RESULT " + json.dumps({"n_weights": len(model.trainable_weights)}))
