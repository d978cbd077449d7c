"""Small layers without weights: Input, Flatten, Rescaling, Activation and Dropout."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NoReturn, cast

import numpy as np
from numpy.typing import DTypeLike

from multilayer.engine import activations
from multilayer.engine.checks import finite
from multilayer.engine.layers.base import Layer, _as_shape
from multilayer.engine.layers.symbolic import KerasTensor, Node
from multilayer.engine.registry import Config


class InputLayer(Layer):
    """Declares the shape of one input sample; passes data through unchanged.

    Its symbolic output tensor, ``output``, is what `Input` returns: the start of a model
    graph, or the first element of a `Sequential` model (Keras 3's way to give it its input
    shape).
    """

    def __init__(
        self,
        shape: int | Iterable[int] | None = None,
        name: str | None = None,
        dtype: DTypeLike | None = None,
        **kwargs: Any,
    ) -> None:
        if shape is None:
            shape = kwargs.pop("input_shape", None)
        if shape is None:
            raise ValueError("Input: shape is required, e.g. Input(shape=(784,))")
        if kwargs:
            raise TypeError(f"Input: unexpected arguments {sorted(kwargs)}")
        super().__init__(name=name, input_shape=_as_shape(shape, "shape"), dtype=dtype)
        shape = _as_shape(shape, "shape")
        self.output_shape = shape
        self.built = True
        self.output = KerasTensor(shape, self, 0)
        self.inbound_node = Node(self, [], [self.output])

    def __call__(self, inputs: object, training: bool | None = None, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"input layer {self.name!r} cannot be called: use its tensor (keras.Input(shape=...)"
            " returns it) as the input of other layers"
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        return grad if need_input_grad else None

    def get_config(self) -> Config:
        return {"name": self.name, "shape": list(cast(tuple[int, ...], self.input_shape))}


def Input(  # noqa: N802 - Keras' name
    shape: int | Iterable[int] | None = None,
    name: str | None = None,
    dtype: DTypeLike | None = None,
    **kwargs: Any,
) -> KerasTensor:
    """The input of a model: a symbolic tensor of shape ``(None, *shape)``.

    ``x = Input(shape=(784,))`` starts a functional model (``Dense(64)(x)``, then
    ``Model(x, outputs)``); as the first element of a `Sequential` model it declares the
    input shape.
    """
    return InputLayer(shape=shape, name=name, dtype=dtype, **kwargs).output


class Flatten(Layer):
    """Flattens each sample to one axis: ``(n, 28, 28)`` becomes ``(n, 784)``. A free reshape."""

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(input_shape)
        self.output_shape = (math.prod(input_shape),)  # Python ints: no overflow
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x.reshape(x.shape[0], -1)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad.reshape(grad.shape[0], *cast(tuple[int, ...], self.input_shape))


class Rescaling(Layer):
    """``y = x * scale + offset``, e.g. ``Rescaling(1/255)`` to feed raw uint8 pixels.

    It also casts to the model's float type, so data can stay uint8 (4x smaller) in memory.
    """

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = finite(scale, "Rescaling: scale")
        self.offset = finite(offset, "Rescaling: offset")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        dtype = self.dtype or np.dtype("float32")
        y = self._buffer("y", x.shape[0], x.shape[1:], dtype)
        # A scalar of the output's float type keeps the whole multiply in float32: a Python
        # float would promote uint8 pixels to float64 first (2.5x slower per batch).
        np.multiply(x, y.dtype.type(self.scale), out=y, casting="unsafe")
        if self.offset:
            y += self.offset
        return y

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        return grad * self.scale if need_input_grad else None

    def get_config(self) -> Config:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Activation(Layer):
    """Applies an activation function on its own: ``Activation("softmax")``."""

    def __init__(
        self, activation: str | activations.Activation | Config | None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = self._buffer("y", x.shape[0], x.shape[1:], x.dtype)
        self._x, self._y = x, self.activation.forward(x, out=y)
        return self._y

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad if fused else self.activation.backward(grad, self._x, self._y)

    @property
    def fusable_activation(self) -> str | None:
        return self.activation.name

    def get_config(self) -> Config:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs during training, scaling the rest by
    ``1 / (1 - rate)`` so the expected value is unchanged ("inverted dropout").
    At inference it is the identity."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self.owns_rng = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._mask = None
        if not training or self.rate == 0.0:
            return x
        n = x.shape[0]
        if self.rng is None:
            raise RuntimeError(
                f"Dropout layer {self.name!r} has no random generator: give it a seed, or train "
                "it inside a model (which provides one)"
            )
        mask = self._buffer("mask", n, x.shape[1:], x.dtype)
        self.rng.random(out=mask, dtype=mask.dtype)
        # mask <- (u >= rate) / (1 - rate), computed in place
        np.greater_equal(mask, self.rate, out=mask, casting="unsafe")
        mask *= 1.0 / (1.0 - self.rate)
        self._mask = mask
        y = self._buffer("y", n, x.shape[1:], x.dtype)
        return np.multiply(x, mask, out=y)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        if self._mask is not None:
            grad *= self._mask
        return grad

    def get_config(self) -> Config:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
