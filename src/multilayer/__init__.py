"""multilayer: multi-layer perceptrons done right.

Keras' names and defaults on a small NumPy engine, so that ``import multilayer as keras``
runs Keras MLP code::

    import multilayer as keras
    from multilayer.layers import Dense

    model = keras.Sequential([Dense(512, activation="relu", input_shape=(784,)),
                              Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

or, with the functional API::

    inputs = keras.Input(shape=(784,))
    outputs = Dense(10, activation="softmax")(Dense(512, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
"""

from multilayer import (
    activations,
    callbacks,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    utils,
)
from multilayer._version import __version__
from multilayer.engine.layers import Input
from multilayer.models import Model, Sequential, load_model
from multilayer.perceptron import Perceptron

__all__ = [
    "Input",
    "Model",
    "__version__",
    "Perceptron",
    "Sequential",
    "activations",
    "callbacks",
    "datasets",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "utils",
]
