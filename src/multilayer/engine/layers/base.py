"""The base class of layers: a build step that sizes the layer, then forward and backward.

A layer is built once it knows the shape of one input sample (without the batch axis). Its
parameters are not allocated by the layer but by the model, inside one flat buffer
(`multilayer.engine.parameters`); the layer keeps views of them in ``weights`` and ``grads``.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from multilayer.engine.config import resolve_dtype
from multilayer.engine.parameters import ParameterSpec
from multilayer.engine.registry import Config

if TYPE_CHECKING:
    from multilayer.engine.initializers import Initializer
    from multilayer.engine.regularizers import Regularizer

_name_counters: defaultdict[str, itertools.count] = defaultdict(itertools.count)


def _default_name(cls_name: str) -> str:
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).lower()
    index = next(_name_counters[base])
    return base if index == 0 else f"{base}_{index}"


class Layer:
    """Base class of all layers.

    Subclasses implement `build` (declare parameters with `add_weight`, set
    ``output_shape``), `forward` and `backward`.

    Args:
        name: a unique name; generated from the class name when omitted.
        input_shape: the shape of one input sample, without the batch axis (Keras' argument,
            only meaningful on the first layer of a `Sequential` model).
        dtype: float type of the computation; the model's when omitted.
    """

    def __init__(
        self,
        name: str | None = None,
        input_shape: int | Iterable[int] | None = None,
        dtype: DTypeLike | None = None,
        trainable: bool = True,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"a layer name must be a non-empty string, got {name!r}")
        if not isinstance(trainable, bool):
            raise TypeError(f"trainable must be True or False, got {trainable!r}")
        self.name = name or _default_name(type(self).__name__)
        self.dtype = None if dtype is None else resolve_dtype(dtype)
        self.trainable = trainable
        self.input_shape: tuple[int, ...] | None = (
            _as_shape(input_shape, "input_shape") if input_shape is not None else None
        )
        self.output_shape: tuple[int, ...] | None = None
        self.built = False
        self.parameter_specs: list[ParameterSpec] = []
        self.weights: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._workspace: dict[str, np.ndarray] = {}
        self.rng: np.random.Generator | None = None

    # -- building -----------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...]) -> None:
        """Size the layer for samples of shape ``input_shape``. Default: shape-preserving."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(input_shape)
        self.built = True

    def add_weight(
        self,
        name: str,
        shape: Iterable[int],
        initializer: Initializer,
        regularizer: Regularizer | None = None,
    ) -> None:
        self.parameter_specs.append(ParameterSpec(name, tuple(shape), initializer, regularizer))

    def bind_parameter(self, name: str, value: np.ndarray, grad: np.ndarray) -> None:
        self.weights[name] = value
        self.grads[name] = grad

    # -- computation --------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output for a batch ``x`` of shape ``(n, *input_shape)``."""
        raise NotImplementedError

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        """Given dL/d(output) of the last `forward`, fill ``grads`` and return dL/d(input).

        ``grad`` may be overwritten. Returns None when ``need_input_grad`` is False (the first
        layer: nobody needs the gradient with respect to the data). ``fused=True`` says that
        ``grad`` is already the gradient with respect to the input of the layer's activation
        (the loss absorbed softmax or sigmoid, see `multilayer.engine.losses`); layers without
        an activation have nothing to skip and ignore it.
        """
        raise NotImplementedError

    def regularization_loss(self) -> float:
        return sum(
            spec.regularizer(self.weights[spec.name])
            for spec in self.parameter_specs
            if spec.regularizer is not None
        )

    def _buffer(self, key: str, n: int, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
        """A reusable work array of ``n`` rows: grown when needed, never freed between batches."""
        buffer = self._workspace.get(key)
        if (
            buffer is None
            or buffer.shape[0] < n
            or buffer.shape[1:] != shape
            or buffer.dtype != dtype
        ):
            buffer = np.empty((max(n, 1), *shape), dtype=dtype)
            self._workspace[key] = buffer
        return buffer[:n]

    def release_buffers(self) -> None:
        """Drop the work arrays (and the references to the last batch) to free memory."""
        self._workspace.clear()

    # -- description --------------------------------------------------------------------
    def count_params(self) -> int:
        return sum(spec.size for spec in self.parameter_specs)

    def get_config(self) -> Config:
        config: Config = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: Config) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} output_shape={self.output_shape}>"


def _as_shape(shape: Any, argument: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        result = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{argument} must be a tuple of positive integers, got {shape!r}"
        ) from None
    if (
        not result
        or any(s <= 0 for s in result)
        or any(isinstance(s, float) and not float(s).is_integer() for s in shape)
    ):
        raise ValueError(f"{argument} must be a tuple of positive integers, got {shape!r}")
    return result
