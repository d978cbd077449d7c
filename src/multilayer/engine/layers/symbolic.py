"""Symbolic tensors and graph nodes: what ``Input(shape=...)`` and ``layer(tensor)`` return.

A `KerasTensor` holds no values: only the shape of what a layer will output (``None`` for the
batch axis, as in Keras) and the layer that produces it. Calling a layer on such tensors
records a `Node`; `multilayer.Model` walks the nodes back from its outputs to find the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from multilayer.engine.layers.base import Layer


class KerasTensor:
    """The symbolic output of a layer: ``shape`` is ``(None, *sample_shape)``.

    It supports no arithmetic and converts to no array: compose layers instead (merge layers
    such as `Add` and `Concatenate` combine tensors).
    """

    def __init__(self, sample_shape: tuple[int, ...], layer: Layer, index: int = 0):
        self.sample_shape: tuple[int, ...] = tuple(int(s) for s in sample_shape)
        #: the layer whose output this is, and which of its outputs
        self.layer = layer
        self.index = index

    @property
    def shape(self) -> tuple[int | None, ...]:
        return (None, *self.sample_shape)

    @property
    def name(self) -> str:
        return self.layer.name if self.index == 0 else f"{self.layer.name}[{self.index}]"

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, name={self.name}>"

    def __array__(self, dtype: object = None, copy: object = None) -> NoReturn:
        raise TypeError(
            f"{self!r} is symbolic: it has no values to convert to an array. Build the model "
            "with layers (x = Dense(8)(x)), then call model.predict(data)"
        )

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is symbolic: it has no truth value")

    __hash__ = object.__hash__


class Node:
    """One call of a layer in a graph: the layer, its input tensors and its output tensors."""

    def __init__(self, layer: Layer, inputs: list[KerasTensor], outputs: list[KerasTensor]):
        self.layer = layer
        self.inputs = list(inputs)
        self.outputs = list(outputs)


def is_symbolic(value: object) -> bool:
    return isinstance(value, KerasTensor)
