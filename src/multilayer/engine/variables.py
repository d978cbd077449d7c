"""`Variable`: what Keras programs get from ``model.weights`` and ``layer.trainable_weights``.

A variable names one parameter tensor of a layer and reads it from the layer each time, so
it stays valid when a model (re)allocates its parameter buffer. It offers the part of Keras'
``keras.Variable`` that MLP programs use: ``numpy()`` (a copy), ``value`` (the live array),
``shape``, ``dtype``, ``name`` (``"kernel"``), ``path`` (``"dense/kernel"``), ``trainable``
and ``assign()``; ``np.asarray(variable)`` works too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from multilayer.engine.layers.base import Layer


class Variable:
    """One weight of a layer (see the module docstring).

    Args:
        layer: the layer holding the weight.
        name: the weight's name within the layer (``"kernel"``, ``"bias"``).
        trainable: whether the optimizer updates it (the layer's flag, read when listed).
    """

    def __init__(self, layer: Layer, name: str, trainable: bool = True) -> None:
        self._layer = layer
        self.name = name
        self.trainable = trainable

    @property
    def path(self) -> str:
        """``"{layer name}/{weight name}"``, as Keras 3 names a variable's path."""
        return f"{self._layer.name}/{self.name}"

    @property
    def value(self) -> np.ndarray:
        """The live array (a view into the model's parameters: writing to it changes them).

        Raises:
            ValueError: the layer's parameters are not allocated yet (build the model first).
        """
        array = self._layer.weights.get(self.name)
        if array is None:
            raise ValueError(
                f"variable {self.path!r} has no value yet: build the model (model.build, "
                "fit or predict) to allocate its weights"
            )
        return array

    def numpy(self) -> np.ndarray:
        """A copy of the value, as a NumPy array."""
        return self.value.copy()

    @property
    def shape(self) -> tuple[int, ...]:
        for spec in self._layer.parameter_specs:
            if spec.name == self.name:
                return tuple(spec.shape)
        return tuple(self.value.shape)

    @property
    def dtype(self) -> str:
        return str(self.value.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def assign(self, value: Any) -> None:
        """Set the value (same shape).

        Raises:
            ValueError: the shape differs from the variable's.
        """
        array = np.asarray(value)
        if array.shape != self.shape:
            raise ValueError(
                f"cannot assign a value of shape {array.shape} to variable {self.path!r} of "
                f"shape {self.shape}"
            )
        self.value[...] = array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.value
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path}, shape={self.shape}, dtype="
            f"{self.dtype if self._layer.weights.get(self.name) is not None else 'unbuilt'}>"
        )
