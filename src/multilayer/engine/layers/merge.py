"""Merge layers: combine several tensors of a functional model into one (Keras' names).

For inputs ``x_1 .. x_k`` and the gradient ``g = dL/dy`` of the output:

    Concatenate  y = [x_1, ..., x_k] along ``axis``    dL/dx_i = the slice of g that x_i filled
    Add          y = x_1 + ... + x_k                   dL/dx_i = g
    Average      y = (x_1 + ... + x_k) / k             dL/dx_i = g / k
    Multiply     y = x_1 * ... * x_k                   dL/dx_i = g * prod_{j != i} x_j
    Subtract     y = x_1 - x_2                         dL/dx_1 = g, dL/dx_2 = -g
    Maximum      y = max(x_1, ..., x_k)                dL/dx_i = g where x_i is the first maximum
    Minimum      y = min(x_1, ..., x_k)                dL/dx_i = g where x_i is the first minimum
    Dot          y = sum over the dot axes of x_1 x_2  (per sample; see `Dot`)

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

    def _output(self, inputs: list[np.ndarray]) -> np.ndarray:
        """The output buffer, of the first input's shape."""
        return self._buffer("y", inputs[0].shape[0], inputs[0].shape[1:], _dtype(inputs))

    def _fold(self, ufunc: np.ufunc, inputs: list[np.ndarray]) -> np.ndarray:
        """``ufunc(... ufunc(ufunc(x_1, x_2), x_3) ..., x_k)`` into the output buffer."""
        y = ufunc(inputs[0], inputs[1], out=self._output(inputs))
        for x in inputs[2:]:
            ufunc(y, x, out=y)
        return y

    def backward(  # type: ignore[override]  # one gradient per input (multi_input)
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> list[np.ndarray] | None:
        if not need_input_grad:
            return None
        grads = self._input_grads(grad.shape[0], grad.dtype)
        self._fill_input_grads(grad, grads)
        return grads

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        """Write dL/dx_i, from ``grad`` = dL/dy, into ``grads[i]`` (the input's own buffer)."""
        raise NotImplementedError


class Add(_Merge):
    """``Add()([a, b, ...])``: the element-wise sum of inputs of one shape."""

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        return self._fold(np.add, inputs)

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        for buffer in grads:
            np.copyto(buffer, grad)


class Average(_Merge):
    """``Average()([a, b, ...])``: the element-wise mean of inputs of one shape."""

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        y = self._fold(np.add, inputs)
        y *= y.dtype.type(1.0 / len(inputs))
        return y

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        scale = grad.dtype.type(1.0 / len(grads))
        for buffer in grads:
            np.multiply(grad, scale, out=buffer)


class Multiply(_Merge):
    """``Multiply()([a, b, ...])``: the element-wise product of inputs of one shape."""

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        y = self._fold(np.multiply, inputs)
        self._inputs = list(inputs)
        return y

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        for i, buffer in enumerate(grads):
            np.copyto(buffer, grad)
            for j, x in enumerate(self._inputs):
                if j != i:
                    buffer *= x


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

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        axis = self._sample_axis + 1
        for i, buffer in enumerate(grads):
            index = [slice(None)] * grad.ndim
            index[axis] = slice(self._bounds[i], self._bounds[i + 1])
            np.copyto(buffer, grad[tuple(index)])

    def get_config(self) -> Config:
        return {**super().get_config(), "axis": self.axis}


class Subtract(_Merge):
    """``Subtract()([a, b])``: ``a - b``, for exactly two inputs of one shape."""

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if len(shapes) != 2:
            raise ValueError(
                f"A Subtract layer should be called on exactly 2 inputs; layer {self.name!r} got "
                f"{len(shapes)}: {_shapes(shapes)}"
            )
        return super()._output_shape(shapes)

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        return np.subtract(inputs[0], inputs[1], out=self._output(inputs))

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        first, second = grads
        np.copyto(first, grad)
        np.negative(grad, out=second)


class _Extremum(_Merge):
    #: True for the maximum, False for the minimum
    _largest = True

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        y = self._output(inputs)
        # winner: which input holds the extremum (the first one on ties), for backward
        winner = self._buffer("winner", inputs[0].shape[0], inputs[0].shape[1:], np.intp)
        winner.fill(0)
        np.copyto(y, inputs[0], casting="same_kind")
        for i, x in enumerate(inputs[1:], 1):
            # strictly better: on ties the first input keeps the gradient; a NaN wins, as in
            # np.maximum
            better = (np.greater(x, y) if self._largest else np.less(x, y)) | np.isnan(x)
            np.copyto(y, x, where=better, casting="same_kind")
            winner[better] = i
        self._winner = winner
        return y

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        for i, buffer in enumerate(grads):
            np.multiply(grad, self._winner == i, out=buffer)


class Maximum(_Extremum):
    """``Maximum()([a, b, ...])``: the element-wise maximum of inputs of one shape (where
    inputs tie, the gradient goes to the first of them, as TensorFlow's)."""

    _largest = True


class Minimum(_Extremum):
    """``Minimum()([a, b, ...])``: the element-wise minimum of inputs of one shape (ties: the
    gradient goes to the first)."""

    _largest = False


class Dot(_Merge):
    """``Dot(axes)([a, b])``: the dot product of two inputs, sample by sample, over ``axes``
    (Keras' ``batch_dot``; axis 0 is the batch and cannot be one of them).

    ``Dot(axes=1)`` on two inputs of shape ``(None, d)`` gives ``(None, 1)``;
    ``Dot(axes=(2, 1))`` on ``(None, p, d)`` and ``(None, d, q)`` gives ``(None, p, q)``. With
    ``normalize=True`` both inputs are L2-normalised along their dot axes first, so the result
    is their cosine similarity.
    """

    def __init__(self, axes: int | Sequence[int], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
            axes = (int(axes), int(axes))
        if (
            not isinstance(axes, (list, tuple))
            or len(axes) != 2
            or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes)
        ):
            raise ValueError(
                "Invalid format for argument `axes`: expected an int or a list/tuple of 2 "
                f"ints. Received: axes={axes!r}"
            )
        if not isinstance(normalize, bool):
            raise ValueError(f"Dot: normalize must be True or False, got {normalize!r}")
        self.axes = (int(axes[0]), int(axes[1]))
        self.normalize = normalize

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if len(shapes) != 2:
            raise ValueError(
                f"A Dot layer should be called on exactly 2 inputs; layer {self.name!r} got "
                f"{len(shapes)}: {_shapes(shapes)}"
            )
        ranks = (len(shapes[0]) + 1, len(shapes[1]) + 1)
        axes = []
        for axis, rank in zip(self.axes, ranks, strict=True):
            resolved = axis % rank if -rank <= axis < rank else 0
            if resolved == 0:
                raise ValueError(
                    f"Dot layer {self.name!r}: axes={list(self.axes)} are not sample axes of "
                    f"inputs of shapes {_shapes(shapes)}"
                )
            axes.append(resolved)
        a1, a2 = axes
        if shapes[0][a1 - 1] != shapes[1][a2 - 1]:
            raise ValueError(
                f"Dot layer {self.name!r}: inputs of shapes {_shapes(shapes)} cannot be "
                f"multiplied along axes {list(self.axes)} ({shapes[0][a1 - 1]} != "
                f"{shapes[1][a2 - 1]})"
            )
        letters = iter("cdefghijklmnopqrstuvwxy")
        s1 = ["b"] + [next(letters) for _ in shapes[0]]
        s2 = ["b"] + [next(letters) for _ in shapes[1]]
        s1[a1] = s2[a2] = "z"
        out = ["b"] + [c for c in s1[1:] if c != "z"] + [c for c in s2[1:] if c != "z"]
        self._subscripts = ("".join(s1), "".join(s2), "".join(out))
        self._dot_axes = (a1, a2)
        sample = [d for i, d in enumerate(shapes[0], 1) if i != a1]
        sample += [d for i, d in enumerate(shapes[1], 1) if i != a2]
        return tuple(sample) or (1,)

    def forward(  # type: ignore[override]  # a list of inputs (multi_input)
        self, inputs: list[np.ndarray], training: bool = False
    ) -> np.ndarray:
        x1, x2 = inputs
        a1, a2 = self._dot_axes
        if self.normalize:
            self._norms = (
                np.sqrt(np.maximum(np.sum(x1 * x1, axis=a1, keepdims=True), 1e-12)),
                np.sqrt(np.maximum(np.sum(x2 * x2, axis=a2, keepdims=True), 1e-12)),
            )
            x1, x2 = x1 / self._norms[0], x2 / self._norms[1]
        self._x = (x1, x2)
        s1, s2, out = self._subscripts
        y = np.einsum(f"{s1},{s2}->{out}", x1, x2)
        sample: tuple[int, ...] = self.output_shape or ()
        return y.reshape(y.shape[0], *sample).astype(_dtype(inputs), copy=False)

    def _fill_input_grads(self, grad: np.ndarray, grads: list[np.ndarray]) -> None:
        s1, s2, out = self._subscripts
        g = grad.reshape(grad.shape[0], *(() if len(out) == 1 else grad.shape[1:]))
        x1, x2 = self._x
        g1 = np.einsum(f"{out},{s2}->{s1}", g, x2)
        g2 = np.einsum(f"{out},{s1}->{s2}", g, x1)
        if self.normalize:
            # d(x / |x|) applied to g: (g - x^ (x^ . g)) / |x|, x^ = x / |x|
            a1, a2 = self._dot_axes
            g1 = (g1 - x1 * np.sum(x1 * g1, axis=a1, keepdims=True)) / self._norms[0]
            g2 = (g2 - x2 * np.sum(x2 * g2, axis=a2, keepdims=True)) / self._norms[1]
        np.copyto(grads[0], g1, casting="same_kind")
        np.copyto(grads[1], g2, casting="same_kind")

    def get_config(self) -> Config:
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}


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


def subtract(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of `Subtract`: ``subtract([a, b])``."""
    return Subtract(**kwargs)(inputs)


def maximum(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of `Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: list[KerasTensor], **kwargs: Any) -> KerasTensor:
    """Functional form of `Minimum`."""
    return Minimum(**kwargs)(inputs)


def dot(
    inputs: list[KerasTensor],
    axes: int | Sequence[int] = -1,
    normalize: bool = False,
    **kwargs: Any,
) -> KerasTensor:
    """Functional form of `Dot`: ``dot([a, b], axes=1)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
