"""Reshape and Identity: layers that move data without computing (Keras 3).

``Reshape(target_shape)`` gives each sample the shape ``target_shape`` (the batch axis is
kept); one entry may be -1, inferred from the others. Its backward reshapes the gradient back.
``Identity()`` returns its input.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(target_shape, numbers.Integral) and not isinstance(target_shape, bool):
            target_shape = (int(target_shape),)
        if not isinstance(target_shape, (list, tuple)) or not all(
            isinstance(d, numbers.Integral)
            and not isinstance(d, bool)
            and (int(d) > 0 or int(d) == -1)
            for d in target_shape
        ):
            raise ValueError(
                "Reshape: target_shape must be a tuple of positive integers (and at most one -1), "
                f"got {target_shape!r}"
            )
        if sum(1 for d in target_shape if d == -1) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {tuple(target_shape)}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def build(self, input_shape: tuple[int, ...]) -> None:
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise ValueError(self._mismatch(input_shape))
            output = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            if known != size:
                raise ValueError(self._mismatch(input_shape))
            output = self.target_shape
        self.input_shape = tuple(input_shape)
        self.output_shape = output
        self.built = True

    def _mismatch(self, input_shape: tuple[int, ...]) -> str:
        return (
            f"Reshape layer {self.name!r}: samples of shape {tuple(input_shape)} "
            f"({math.prod(input_shape)} values) cannot be reshaped to {self.target_shape}"
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x.reshape(x.shape[0], *cast(tuple[int, ...], self.output_shape))

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad.reshape(grad.shape[0], *cast(tuple[int, ...], self.input_shape))

    def get_config(self) -> Config:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Identity(Layer):
    """Returns its input unchanged (a placeholder, as ``keras.layers.Identity``)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        return grad if need_input_grad else None
