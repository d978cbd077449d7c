"""Keras-compatible namespace: ``multilayer.activations.relu(x)`` and the activation classes."""

from multilayer.engine.activations import (  # noqa: F401
    ELU,
    GELU,
    Activation,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    elu,
    gelu,
    get,
    leaky_relu,
    linear,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
