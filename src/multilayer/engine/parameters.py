"""All trainable parameters of a model in one contiguous array, all gradients in another.

Layers hold *views* into these two arrays. An optimizer step is then a handful of vectorised
operations over one long vector instead of a Python loop over tensors, the global gradient
norm is one dot product, and saving or checkpointing is a copy of one array.

Non-trainable weights (``trainable=False`` in `ParameterSpec`: BatchNormalization's moving
mean and variance, Normalization's mean and variance) live in a third array, ``state``, which
the optimizer never sees (so neither weight decay nor any update touches them); the layer
updates them itself. They have no gradient. They are weights all the same: listed by
`ParameterBuffer.arrays` (Keras' ``get_weights`` order), saved in model files and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
from numpy.typing import DTypeLike

if TYPE_CHECKING:
    from multilayer.engine.constraints import Constraint
    from multilayer.engine.initializers import Initializer
    from multilayer.engine.layers.base import Layer
    from multilayer.engine.regularizers import Regularizer


@dataclass
class ParameterSpec:
    """A parameter a layer asks for: its name within the layer, shape and initializer.

    ``constraint`` is applied after each optimizer step; ``trainable=False`` puts the weight
    in the buffer's ``state`` array, out of the optimizer's reach.
    """

    name: str
    shape: tuple[int, ...]
    initializer: Initializer
    regularizer: Regularizer | None = None
    trainable: bool = True
    constraint: Constraint | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class ParameterBuffer:
    """Allocates one value buffer and one gradient buffer (trainable weights) and one state
    buffer (non-trainable weights), and binds every layer's views.

    A layer that already holds weights of the right shape (it belongs to a model nested in
    this one, or to a model built before) keeps their values; the others are initialised, in
    order, from ``rng``.
    """

    def __init__(self, layers: list[Layer], dtype: DTypeLike, rng: np.random.Generator) -> None:
        self.dtype = np.dtype(dtype)
        #: the buffer that owns the memory (itself; for a `view`, the buffer it is part of)
        self.root: ParameterBuffer = self
        entries = [(layer, spec) for layer in layers for spec in layer.parameter_specs]
        total = sum(spec.size for _, spec in entries if spec.trainable)
        total_state = sum(spec.size for _, spec in entries if not spec.trainable)
        self.values = np.zeros(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        self.state = np.zeros(total_state, dtype=self.dtype)
        #: (layer, spec, start offset in ``values``) for every trainable parameter, in model order.
        self.entries: list[tuple[Layer, ParameterSpec, int]] = []
        #: (layer, spec, start offset in ``state``) for every non-trainable weight.
        self.state_entries: list[tuple[Layer, ParameterSpec, int]] = []
        #: every weight in model order (Keras' ``weights`` order)
        self._all: list[tuple[Layer, ParameterSpec]] = entries
        offset = state_offset = 0
        for layer, spec in entries:
            existing = layer.weights.get(spec.name)
            if existing is not None and existing.shape == spec.shape:
                initial = existing.copy()
            else:
                # Initialise in model order from one generator: one seed, one set of weights.
                initial = spec.initializer(spec.shape, dtype=self.dtype, rng=rng)
            if spec.trainable:
                value = self.values[offset : offset + spec.size].reshape(spec.shape)
                grad = self.grads[offset : offset + spec.size].reshape(spec.shape)
                value[...] = initial
                layer.bind_parameter(spec.name, value, grad, self)
                self.entries.append((layer, spec, offset))
                offset += spec.size
            else:
                value = self.state[state_offset : state_offset + spec.size].reshape(spec.shape)
                value[...] = initial
                layer.bind_parameter(spec.name, value, None, self)
                self.state_entries.append((layer, spec, state_offset))
                state_offset += spec.size
        self._constrained = [
            (layer, spec) for layer, spec in entries if spec.constraint is not None
        ]
        for layer, spec in self._constrained:
            # a constraint that cannot apply to this weight (an axis out of range) fails now,
            # at build time, rather than after the first training step; the result is unused
            cast("Constraint", spec.constraint)(layer.weights[spec.name])

    def owns(self, layers: list[Layer]) -> bool:
        """Whether ``layers``' parameters are (still) views of this buffer: a layer shared
        with another model is bound to whichever model allocated last."""
        return all(layer.bound_to is self.root for layer in layers if layer.parameter_specs)

    def view(self, layers: list[Layer]) -> ParameterBuffer:
        """The part of this buffer holding ``layers``' parameters (which must be contiguous
        in it, as a nested model's are): same memory, offsets counted from its start."""
        wanted = {id(layer) for layer in layers}
        view = object.__new__(ParameterBuffer)
        view.dtype = self.dtype
        view.root = self.root
        view._all = [entry for entry in self._all if id(entry[0]) in wanted]
        view._constrained = [entry for entry in self._constrained if id(entry[0]) in wanted]
        for array_name, entries_name in (("values", "entries"), ("state", "state_entries")):
            array = getattr(self, array_name)
            picked = [entry for entry in getattr(self, entries_name) if id(entry[0]) in wanted]
            if not picked:
                setattr(view, array_name, array[:0])
                if array_name == "values":
                    view.grads = self.grads[:0]
                setattr(view, entries_name, [])
                continue
            start = picked[0][2]
            stop = picked[-1][2] + picked[-1][1].size
            if stop - start != sum(spec.size for _, spec, _ in picked):
                raise ValueError("the layers' parameters are not contiguous in this buffer")
            setattr(view, array_name, array[start:stop])
            if array_name == "values":
                view.grads = self.grads[start:stop]
            setattr(
                view,
                entries_name,
                [(layer, spec, offset - start) for layer, spec, offset in picked],
            )
        return view

    @property
    def size(self) -> int:
        """The number of trainable parameters (what the optimizer updates)."""
        return self.values.size

    @property
    def total_size(self) -> int:
        """The number of weights, trainable or not (Keras' "Total params")."""
        return self.values.size + self.state.size

    def arrays(self) -> list[np.ndarray]:
        """Every weight's view, in model order (what Keras' ``get_weights`` lists)."""
        return [layer.weights[spec.name] for layer, spec in self._all]

    def apply_constraints(self) -> None:
        """Project every constrained weight in place (after each optimizer step, as Keras)."""
        for layer, spec in self._constrained:
            constraint = spec.constraint
            assert constraint is not None
            constraint.apply(layer.weights[spec.name])
