"""A common idiom of MLP notebooks: ``model.layers[0]`` is the first Dense layer of a
Sequential model that starts with keras.Input (Keras 3 leaves the InputLayer out of
``Sequential.layers``): read its kernel, freeze it."""

import json

import multilayer as keras
from multilayer import layers

model = keras.Sequential(
    [keras.Input(shape=(784,)), layers.Dense(32, activation="relu"), layers.Dense(10)]
)
assert len(model.layers) == 2, model.layers
first = model.layers[0]
assert first.get_weights()[0].shape == (784, 32)
first.trainable = False
assert len(model.trainable_weights) == 2
print("RESULT " + json.dumps({"n_layers": len(model.layers)}))
