"""Small layers without weights: Input, Flatten, Rescaling, Activation and Dropout."""

from __future__ import annotations

import math

import numpy as np

from multilayer.engine import activations
from multilayer.engine.checks import finite
from multilayer.engine.layers.base import Layer, _as_shape


class InputLayer(Layer):
    """Declares the shape of one input sample; passes data through unchanged.

    ``Input(shape=(784,))`` as the first element of a `Sequential` model is the Keras 3 way
    to give the model its input shape.
    """

    def __init__(self, shape=None, name: str | None = None, dtype=None, **kwargs):
        if shape is None:
            shape = kwargs.pop("input_shape", None)
        if shape is None:
            raise ValueError("Input: shape is required, e.g. Input(shape=(784,))")
        super().__init__(name=name, input_shape=_as_shape(shape, "shape"), dtype=dtype)

    def forward(self, x, training=False):
        return x

    def backward(self, grad, need_input_grad=True):
        return grad if need_input_grad else None

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape)}


def Input(shape=None, name: str | None = None, dtype=None, **kwargs) -> InputLayer:  # noqa: N802 - Keras' name
    """The input declaration of a model: ``Input(shape=(784,))``."""
    return InputLayer(shape=shape, name=name, dtype=dtype, **kwargs)


class Flatten(Layer):
    """Flattens each sample to one axis: ``(n, 28, 28)`` becomes ``(n, 784)``. A free reshape."""

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.output_shape = (math.prod(input_shape),)  # Python ints: no overflow
        self.built = True

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, grad, need_input_grad=True):
        return grad.reshape(grad.shape[0], *self.input_shape) if need_input_grad else None


class Rescaling(Layer):
    """``y = x * scale + offset``, e.g. ``Rescaling(1/255)`` to feed raw uint8 pixels.

    It also casts to the model's float type, so data can stay uint8 (4x smaller) in memory.
    """

    def __init__(self, scale: float, offset: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = finite(scale, "Rescaling: scale")
        self.offset = finite(offset, "Rescaling: offset")

    def forward(self, x, training=False):
        dtype = self.dtype or np.dtype("float32")
        y = self._buffer("y", x.shape[0], x.shape[1:], dtype)
        # A scalar of the output's float type keeps the whole multiply in float32: a Python
        # float would promote uint8 pixels to float64 first (2.5x slower per batch).
        np.multiply(x, y.dtype.type(self.scale), out=y, casting="unsafe")
        if self.offset:
            y += self.offset
        return y

    def backward(self, grad, need_input_grad=True):
        return grad * self.scale if need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Activation(Layer):
    """Applies an activation function on its own: ``Activation("softmax")``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        y = self._buffer("y", x.shape[0], x.shape[1:], x.dtype)
        self._x, self._y = x, self.activation.forward(x, out=y)
        return self._y

    def backward(self, grad, need_input_grad=True, fused: bool = False):
        if not need_input_grad:
            return None
        return grad if fused else self.activation.backward(grad, self._x, self._y)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs during training, scaling the rest by
    ``1 / (1 - rate)`` so the expected value is unchanged ("inverted dropout").
    At inference it is the identity."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def forward(self, x, training=False):
        self._mask = None
        if not training or self.rate == 0.0:
            return x
        n = x.shape[0]
        mask = self._buffer("mask", n, x.shape[1:], x.dtype)
        self.rng.random(out=mask, dtype=mask.dtype)
        # mask <- (u >= rate) / (1 - rate), computed in place
        np.greater_equal(mask, self.rate, out=mask, casting="unsafe")
        mask *= 1.0 / (1.0 - self.rate)
        self._mask = mask
        y = self._buffer("y", n, x.shape[1:], x.dtype)
        return np.multiply(x, mask, out=y)

    def backward(self, grad, need_input_grad=True):
        if not need_input_grad:
            return None
        if self._mask is not None:
            grad *= self._mask
        return grad

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
