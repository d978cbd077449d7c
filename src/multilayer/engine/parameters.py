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
    """Allocates one value buffer and one gradient buffer and binds every layer's views.

    A layer that already holds weights of the right shape (it belongs to a model nested in
    this one, or to a model built before) keeps their values; the others are initialised, in
    order, from ``rng``.
    """

    def __init__(self, layers: list[Layer], dtype: DTypeLike, rng: np.random.Generator) -> None:
        self.dtype = np.dtype(dtype)
        #: the buffer that owns the memory (itself; for a `view`, the buffer it is part of)
        self.root: ParameterBuffer = self
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
            existing = layer.weights.get(spec.name)
            if existing is not None and existing.shape == spec.shape:
                value[...] = existing
            else:
                # Initialise in model order from one generator: one seed, one set of weights.
                value[...] = spec.initializer(spec.shape, dtype=self.dtype, rng=rng)
            layer.bind_parameter(spec.name, value, grad, self)
            self.entries.append((layer, spec, offset))
            offset += spec.size

    def owns(self, layers: list[Layer]) -> bool:
        """Whether ``layers``' parameters are (still) views of this buffer: a layer shared
        with another model is bound to whichever model allocated last."""
        return all(layer.bound_to is self.root for layer in layers if layer.parameter_specs)

    def view(self, layers: list[Layer]) -> ParameterBuffer:
        """The part of this buffer holding ``layers``' parameters (which must be contiguous
        in it, as a nested model's are): same memory, offsets counted from its start."""
        wanted = {id(layer) for layer in layers}
        picked = [entry for entry in self.entries if id(entry[0]) in wanted]
        view = object.__new__(ParameterBuffer)
        view.dtype = self.dtype
        view.root = self.root
        if not picked:
            view.values, view.grads, view.entries = self.values[:0], self.grads[:0], []
            return view
        start = picked[0][2]
        stop = picked[-1][2] + picked[-1][1].size
        if stop - start != sum(spec.size for _, spec, _ in picked):
            raise ValueError("the layers' parameters are not contiguous in this buffer")
        view.values, view.grads = self.values[start:stop], self.grads[start:stop]
        view.entries = [(layer, spec, offset - start) for layer, spec, offset in picked]
        return view

    @property
    def size(self) -> int:
        return self.values.size

    def arrays(self) -> list[np.ndarray]:
        """The parameter views, in model order (what Keras' ``get_weights`` lists)."""
        return [layer.weights[spec.name] for layer, spec, _ in self.entries]
