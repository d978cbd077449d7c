"""Merge layers: combine several tensors of a functional model into one (Keras' names).

For inputs ``x_1 .. x_k`` and the gradient ``g = dL/dy`` of the output:

    Concatenate  y = [x_1, ..., x_k] along ``axis``    dL/dx_i = the slice of g that x_i filled
    Add          y = x_1 + ... + x_k                   dL/dx_i = g
    Average      y = (x_1 + ... + x_k) / k             dL/dx_i = g / k
    Multiply     y = x_1 * ... * x_k                   dL/dx_i = g * prod_{j != i} x_j

Each input's gradient is written into a buffer of its own (never a view shared with another
input), so a layer upstream may overwrite its incoming gradient in place. Shapes must match
exactly (no broadcasting), except along the concatenation axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import DTypeLike

from multilayer.engine.layers.base import Layer
from multilayer.engine.layers.symbolic import KerasTensor
from multilayer.engine.registry import Config


class _Merge(Layer):
    """A layer of several inputs (``multi_input``): `build` gets one shape per input,
    `forward` a list of arrays, `backward` returns one gradient per input. These overrides
    take and return lists where `Layer`'s take one array: the graph calls them by
    ``multi_input`` (`multilayer.models.graph`)."""

    multi_input = True

    def build(self, input_shape: Sequence[tuple[int, ...]]) -> None:  # type: ignore[override]
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} needs at least 2 inputs, got "
                f"{len(shapes)}"
            )
        self.input_shape = shapes  # type: ignore[assignment]  # one shape per input
        self.output_shape = self._output_shape(shapes)
        self.built = True

    def get_config(self) -> Config:
        return {"name": self.name}

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} needs inputs of the same shape, got "
                f"shapes {_shapes(shapes)}"
            )
        return shapes[0]

    def _input_grads(self, n: int, dtype: DTypeLike) -> list[np.ndarray]:
        shapes: list[tuple[int, ...]] = self.input_shape or []  # type: ignore[assignment]
        return [self._buffer(f"dx{i}", n, tuple(shape), dtype) for i, shape in enumerate(shapes)]


class Add(_Merge):
    """``Add()([a, b, ...])``: the element-wise sum of inputs of one shape."""

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        y = self._buffer("y", inputs[0].shape[0], inputs[0].shape[1:], _dtype(inputs))
        np.add(inputs[0], inputs[1], out=y)
        for x in inputs[2:]:
            y += x
        return y

    def backward(  # type: ignore[override]  # one gradient per input (multi_input)
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> list[np.ndarray] | None:
        if not need_input_grad:
            return None
        grads = self._input_grads(grad.shape[0], grad.dtype)
        for buffer in grads:
            np.copyto(buffer, grad)
        return grads


class Average(_Merge):
    """``Average()([a, b, ...])``: the element-wise mean of inputs of one shape."""

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        y = self._buffer("y", inputs[0].shape[0], inputs[0].shape[1:], _dtype(inputs))
        np.add(inputs[0], inputs[1], out=y)
        for x in inputs[2:]:
            y += x
        y *= y.dtype.type(1.0 / len(inputs))
        return y

    def backward(  # type: ignore[override]  # one gradient per input (multi_input)
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> list[np.ndarray] | None:
        if not need_input_grad:
            return None
        grads = self._input_grads(grad.shape[0], grad.dtype)
        scale = grad.dtype.type(1.0 / len(grads))
        for buffer in grads:
            np.multiply(grad, scale, out=buffer)
        return grads


class Multiply(_Merge):
    """``Multiply()([a, b, ...])``: the element-wise product of inputs of one shape."""

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        y = self._buffer("y", inputs[0].shape[0], inputs[0].shape[1:], _dtype(inputs))
        np.multiply(inputs[0], inputs[1], out=y)
        for x in inputs[2:]:
            y *= x
        self._inputs = list(inputs)
        return y

    def backward(  # type: ignore[override]  # one gradient per input (multi_input)
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> list[np.ndarray] | None:
        if not need_input_grad:
            return None
        grads = self._input_grads(grad.shape[0], grad.dtype)
        for i, buffer in enumerate(grads):
            np.copyto(buffer, grad)
            for j, x in enumerate(self._inputs):
                if j != i:
                    buffer *= x
        return grads


class Concatenate(_Merge):
    """``Concatenate(axis=-1)([a, b, ...])``: inputs joined along ``axis`` (of the sample
    shape plus the batch axis, as in Keras; the batch axis 0 cannot be the one)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Concatenate: axis must be an integer, got {axis!r}")
        self.axis = int(axis)

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        rank = len(shapes[0]) + 1
        axis = self.axis % rank if -rank <= self.axis < rank else None
        mismatch = any(len(shape) != len(shapes[0]) for shape in shapes)
        if axis is None or axis == 0:
            raise ValueError(
                f"Concatenate layer {self.name!r}: axis {self.axis} is not a sample axis of "
                f"inputs of shapes {_shapes(shapes)}"
            )
        if not mismatch:
            others = [shape[: axis - 1] + shape[axis:] for shape in shapes]
            mismatch = any(other != others[0] for other in others)
        if mismatch:
            raise ValueError(
                f"Concatenate layer {self.name!r} needs inputs with the same shape except along "
                f"the concatenation axis {self.axis}, got shapes {_shapes(shapes)}"
            )
        self._sample_axis = axis - 1
        self._bounds = np.cumsum([0] + [shape[axis - 1] for shape in shapes]).tolist()
        out = list(shapes[0])
        out[axis - 1] = self._bounds[-1]
        return tuple(out)

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        shape = cast(tuple[int, ...], self.output_shape)  # set by build
        y = self._buffer("y", inputs[0].shape[0], shape, _dtype(inputs))
        return np.concatenate(inputs, axis=self._sample_axis + 1, out=y, casting="same_kind")

    def backward(  # type: ignore[override]  # one gradient per input (multi_input)
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> list[np.ndarray] | None:
        if not need_input_grad:
            return None
        grads = self._input_grads(grad.shape[0], grad.dtype)
        axis = self._sample_axis + 1
        for i, buffer in enumerate(grads):
            index = [slice(None)] * grad.ndim
            index[axis] = slice(self._bounds[i], self._bounds[i + 1])
            np.copyto(buffer, grad[tuple(index)])
        return grads

    def get_config(self) -> Config:
        return {**super().get_config(), "axis": self.axis}


def _dtype(inputs: list[np.ndarray]) -> np.dtype:
    dtype = np.result_type(*inputs)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype("float32")


def _shapes(shapes: Sequence[tuple[int, ...]]) -> str:
    return "[" + ", ".join(str((None, *shape)) for shape in shapes) + "]"


def add(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of `Add`: ``add([a, b])``."""
    return Add(**kwargs)(inputs)


def average(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of `Average`."""
    return Average(**kwargs)(inputs)


def multiply(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of `Multiply`."""
    return Multiply(**kwargs)(inputs)


def concatenate(inputs: list[KerasTensor], axis: int = -1, **kwargs: Any) -> KerasTensor:
    """Functional form of `Concatenate`: ``concatenate([a, b], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
