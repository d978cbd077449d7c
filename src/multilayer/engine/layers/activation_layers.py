"""Activation functions as layers, with Keras 3's arguments: Softmax, ReLU, LeakyReLU, PReLU, ELU.

Axes follow Keras: they count the batch axis as axis 0, so ``axis=-1`` (the default) is the
last axis of each sample and ``axis=1`` the first one.

Definitions (``x`` the input, ``y`` the output, ``g`` = dL/dy)::

    Softmax(axis)     y = exp(x - logsumexp(x, axis))       dL/dx = y * (g - sum(g * y, axis))
    ReLU(max_value=None, negative_slope=0, threshold=0)
                      y = min(x, max_value) where x > threshold, else 0,
                          plus negative_slope * (x - threshold) where x < threshold
    LeakyReLU(negative_slope=0.3)   y = x if x >= 0 else negative_slope * x
    PReLU             y = x if x > 0 else alpha * x, ``alpha`` a learned weight per feature
                      dL/dalpha = sum over the batch (and shared axes) of g * min(x, 0)
    ELU(alpha=1)      y = x if x > 0 else alpha * (exp(x) - 1)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from multilayer.engine import activations, constraints, initializers, regularizers
from multilayer.engine.checks import finite, finite_or_none
from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config


def sample_axes(axis: int | Sequence[int], sample_ndim: int, what: str) -> tuple[int, ...]:
    """Keras-style axes (batch axis = 0, negatives from the end) as non-negative axes of the
    full ``(batch, *sample)`` array, or ValueError naming the layer."""
    ndim = sample_ndim + 1
    axes: tuple[object, ...] = tuple(axis) if isinstance(axis, Sequence) else (axis,)
    result = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or not -ndim <= int(a) < ndim:
            raise ValueError(
                f"{what}: axis {a!r} is out of range for inputs of rank {ndim} "
                f"(a batch of samples of rank {sample_ndim})"
            )
        result.append(int(a) % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{what}: axis {axis!r} names an axis twice")
    return tuple(sorted(result))


def _axis_argument(axis: object, what: str) -> int | list[int]:
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        return int(axis)
    if (
        isinstance(axis, (list, tuple))
        and axis
        and all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis)
    ):
        return [int(a) for a in axis]
    raise ValueError(f"{what}: axis must be an integer or a list of integers, got {axis!r}")


class Softmax(Layer):
    """Softmax over ``axis`` (default -1, an int or a list of axes), as ``keras.layers.Softmax``.

    Over the last axis, it exposes ``activation`` (the softmax activation), so that a model
    whose loss is cross-entropy fuses it with the loss exactly as for ``Dense(...,
    activation="softmax")``.
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = _axis_argument(axis, "Softmax")
        self._axes: tuple[int, ...] = ()

    def build(self, input_shape: tuple[int, ...]) -> None:
        super().build(input_shape)
        self._axes = sample_axes(self.axis, len(input_shape), f"Softmax layer {self.name!r}")
        if self._axes == (len(input_shape),):
            self.activation = activations.Softmax()

    @property
    def fusable_activation(self) -> str | None:
        """ "softmax" over the last axis: a cross-entropy loss may absorb it (``fused``)."""
        return "softmax" if hasattr(self, "activation") else None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(self.dtype or np.float32)
        y = self._buffer("y", x.shape[0], x.shape[1:], x.dtype)
        np.subtract(x, x.max(axis=self._axes, keepdims=True), out=y)
        np.exp(y, out=y)
        y /= y.sum(axis=self._axes, keepdims=True)
        self._y = y
        return y

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        if fused:
            return grad
        dx = grad - np.sum(grad * self._y, axis=self._axes, keepdims=True)
        dx *= self._y
        return dx

    def get_config(self) -> Config:
        return {**super().get_config(), "axis": self.axis}


class _Elementwise(Layer):
    """A weightless element-wise activation: subclasses give the function and its slope."""

    def _f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _slope(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(self.dtype or np.float32)
        self._x = x
        return self._f(x).astype(x.dtype, copy=False)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return np.multiply(grad, self._slope(self._x).astype(grad.dtype, copy=False), out=grad)


class ReLU(_Elementwise):
    """Rectified linear unit with Keras' options (all >= 0): ``max_value`` caps the output,
    ``threshold`` moves the kink, ``negative_slope`` leaks below it."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_value = finite_or_none(max_value, "ReLU: max_value")
        self.negative_slope = finite(negative_slope, "ReLU: negative_slope")
        self.threshold = finite(threshold, "ReLU: threshold")
        for argument, value in (
            ("max_value", self.max_value),
            ("negative_slope", self.negative_slope),
            ("threshold", self.threshold),
        ):
            if value is not None and value < 0:
                raise ValueError(f"ReLU: {argument} must be >= 0, got {value!r}")

    def _f(self, x: np.ndarray) -> np.ndarray:
        above = x if self.max_value is None else np.minimum(x, self.max_value)
        y = np.where(x > self.threshold, above, 0)
        if self.negative_slope:
            y = y + self.negative_slope * np.minimum(x - self.threshold, 0)
        return y

    def _slope(self, x: np.ndarray) -> np.ndarray:
        passing = x > self.threshold
        if self.max_value is not None:
            passing &= x < self.max_value
        slope = passing.astype(x.dtype)
        if self.negative_slope:
            slope += self.negative_slope * (x < self.threshold)
        return slope

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(_Elementwise):
    """``x`` for x >= 0, ``negative_slope * x`` below (Keras 3's default slope: 0.3).

    Keras 2's spelling ``LeakyReLU(alpha=0.1)`` is accepted too.
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = finite(negative_slope, "LeakyReLU: negative_slope")
        if self.negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope!r}")

    def _f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, self.negative_slope * x)

    def _slope(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, self.negative_slope)

    def get_config(self) -> Config:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = finite(alpha, "ELU: alpha")

    def _f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def _slope(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0)))

    def get_config(self) -> Config:
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Parametric ReLU: ``x`` for x > 0, ``alpha * x`` otherwise, with ``alpha`` learned.

    ``alpha`` has the shape of one sample, except along ``shared_axes`` (Keras' axes: 1 is the
    first sample axis), where one value is shared. Keras' defaults: ``alpha_initializer=
    "zeros"``, no regularizer, no constraint.
    """

    def __init__(
        self,
        alpha_initializer: str | initializers.Initializer | Config = "zeros",
        alpha_regularizer: str | regularizers.Regularizer | Config | None = None,
        alpha_constraint: str | constraints.Constraint | Config | None = None,
        shared_axes: int | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes: list[int] | None = None
        else:
            axes = _axis_argument(shared_axes, "PReLU: shared_axes")
            self.shared_axes = [axes] if isinstance(axes, int) else axes

    def build(self, input_shape: tuple[int, ...]) -> None:
        super().build(input_shape)
        shape = list(input_shape)
        for axis in self.shared_axes or []:
            if not 1 <= axis <= len(input_shape):
                raise ValueError(
                    f"PReLU layer {self.name!r}: shared axis {axis} is not a sample axis "
                    f"(1 to {len(input_shape)} for samples of shape {tuple(input_shape)})"
                )
            shape[axis - 1] = 1
        self.add_weight(
            "alpha",
            tuple(shape),
            self.alpha_initializer,
            self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )
        # the axes summed over for alpha's gradient: the batch and the shared axes
        self._reduce = (0, *sorted(set(self.shared_axes or [])))

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        alpha = self.weights["alpha"]
        if x.dtype != alpha.dtype:
            x = x.astype(alpha.dtype)
        self._x = x
        return np.where(x > 0, x, alpha * x)

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        x, alpha = self._x, self.weights["alpha"]
        negative = np.minimum(x, 0)
        np.sum(grad * negative, axis=self._reduce, keepdims=True, out=self.grads["alpha"][None])
        if self.alpha_regularizer is not None:
            self.alpha_regularizer.add_gradient(alpha, self.grads["alpha"])
        if not need_input_grad:
            return None
        return grad * np.where(x > 0, 1.0, alpha).astype(grad.dtype, copy=False)

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": constraints.serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }
