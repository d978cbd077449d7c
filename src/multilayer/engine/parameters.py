"""All trainable parameters of a model in one contiguous array, all gradients in another.

Layers hold *views* into these two arrays. An optimizer step is then a handful of vectorised
operations over one long vector instead of a Python loop over tensors, the global gradient
norm is one dot product, and saving or checkpointing is a copy of one array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

if TYPE_CHECKING:
    from multilayer.engine.initializers import Initializer
    from multilayer.engine.layers.base import Layer
    from multilayer.engine.regularizers import Regularizer


@dataclass
class ParameterSpec:
    """A parameter a layer asks for: its name within the layer, shape and initializer."""

    name: str
    shape: tuple[int, ...]
    initializer: Initializer
    regularizer: Regularizer | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class ParameterBuffer:
    """Allocates one value buffer and one gradient buffer and binds every layer's views."""

    def __init__(self, layers: list[Layer], dtype: DTypeLike, rng: np.random.Generator) -> None:
        self.dtype = np.dtype(dtype)
        entries = [(layer, spec) for layer in layers for spec in layer.parameter_specs]
        total = sum(spec.size for _, spec in entries)
        self.values = np.zeros(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        #: (layer, spec, start offset) for every parameter, in model order.
        self.entries: list[tuple[Layer, ParameterSpec, int]] = []
        offset = 0
        for layer, spec in entries:
            value = self.values[offset : offset + spec.size].reshape(spec.shape)
            grad = self.grads[offset : offset + spec.size].reshape(spec.shape)
            # Initialise in model order from one generator: one seed, one set of weights.
            value[...] = spec.initializer(spec.shape, dtype=self.dtype, rng=rng)
            layer.bind_parameter(spec.name, value, grad)
            self.entries.append((layer, spec, offset))
            offset += spec.size

    @property
    def size(self) -> int:
        return self.values.size

    def arrays(self) -> list[np.ndarray]:
        """The parameter views, in model order (what Keras' ``get_weights`` lists)."""
        return [layer.weights[spec.name] for layer, spec, _ in self.entries]
