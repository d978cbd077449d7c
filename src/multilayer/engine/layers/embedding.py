"""Embedding: a trainable lookup table from integer indices to dense vectors (Keras 3).

Shapes, for a batch of ``n`` samples of ``d`` indices each:

    x  (n, d) integers in [0, input_dim)     table (input_dim, output_dim)
    y = table[x]  (n, d, output_dim)

Backward, given g = dL/dy: ``dL/dtable[i] = sum of g[s, j] over the positions with x[s, j] == i``
(``np.add.at``, which accumulates repeated indices). Indices are not differentiable: the layer
returns no gradient for its input, so it must be a model's first computing layer or follow
one whose output is integers (IntegerLookup, StringLookup, Discretization).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from multilayer.engine import constraints, initializers, regularizers
from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config, positive_int


def integer_indices(x: np.ndarray, where: str) -> np.ndarray:
    """``x`` as int64 indices; float inputs (a model casts its inputs to floats) must hold
    whole numbers.

    Raises:
        ValueError: ``x`` holds fractions, NaN or values out of the int64 range.
    """
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        return x.astype(np.int64, copy=False)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{where}: expects integer indices, got an array of dtype {x.dtype}")
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) > 2.0**62) or np.any(x != np.floor(x)):
        raise ValueError(f"{where}: expects integer indices, got non-integer values")
    return x.astype(np.int64)


class Embedding(Layer):
    """Turns integer indices into dense vectors of size ``output_dim``.

    Args:
        input_dim: the size of the vocabulary (indices are ``0 .. input_dim - 1``).
        output_dim: the size of each vector.
        embeddings_initializer: Keras' default ``"uniform"`` (uniform in [-0.05, 0.05]).
        embeddings_regularizer, embeddings_constraint: optional, as for Dense.
        mask_zero: Keras masking; masks are not supported here, so True is refused.

    Input shape ``(n, d)``; output shape ``(n, d, output_dim)``. An index outside
    ``[0, input_dim)`` raises ValueError (naming it) rather than reading another row.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str | initializers.Initializer | Config = "uniform",
        embeddings_regularizer: str | regularizers.Regularizer | Config | None = None,
        embeddings_constraint: str | constraints.Constraint | Config | None = None,
        mask_zero: bool = False,
        input_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (positive_int(input_length, "Embedding: input_length"),)
        super().__init__(**kwargs)
        self.input_dim = positive_int(input_dim, "Embedding: input_dim")
        self.output_dim = positive_int(output_dim, "Embedding: output_dim")
        if mask_zero is not False:
            raise ValueError(
                "Embedding: mask_zero=True is not supported (multilayer has no masks); "
                "reserve index 0 yourself or leave mask_zero=False"
            )
        if embeddings_initializer == "uniform":
            embeddings_initializer = initializers.RandomUniform(-0.05, 0.05)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = False

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(input_shape)
        self.output_shape = (*input_shape, self.output_dim)
        self.add_weight(
            "embeddings",
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
        )
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        where = f"Embedding layer {self.name!r}"
        indices = integer_indices(x, where)
        bad = (indices < 0) | (indices >= self.input_dim)
        if np.any(bad):
            value = int(indices[bad].flat[0])
            raise ValueError(
                f"{where}: index {value} is outside [0, {self.input_dim}) (input_dim="
                f"{self.input_dim}); put a lookup layer with an out-of-vocabulary bucket before it"
            )
        self._indices = indices
        return self.weights["embeddings"][indices]

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        table_grad = self.grads["embeddings"]
        table_grad.fill(0)
        np.add.at(table_grad, self._indices.reshape(-1), grad.reshape(-1, self.output_dim))
        if self.embeddings_regularizer is not None:
            self.embeddings_regularizer.add_gradient(self.weights["embeddings"], table_grad)
        if not need_input_grad:
            return None
        # indices are piecewise constant: their gradient is zero
        shape = cast(tuple[int, ...], self.input_shape)
        return np.zeros((grad.shape[0], *shape), dtype=grad.dtype)

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
        }
