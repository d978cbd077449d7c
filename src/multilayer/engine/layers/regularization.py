"""ActivityRegularization: a penalty on a layer's output, added to the loss (Keras 3).

The layer passes its input through unchanged and adds, for a batch of ``n`` samples,

    penalty = (l1 * sum(|x|) + l2 * sum(x^2)) / n

to the loss (Keras 3 divides the activity penalty by the batch size, so its strength does not
depend on it). It is counted in training and in evaluation (where Keras counts it too).
Backward: ``dL/dx = g + (l1 * sign(x) + 2 * l2 * x) / n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multilayer.engine.checks import finite
from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config


class ActivityRegularization(Layer):
    """Identity on the data; adds ``(l1 * sum|x| + l2 * sum x^2) / batch_size`` to the loss."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l1 = finite(l1, "ActivityRegularization: l1")
        self.l2 = finite(l2, "ActivityRegularization: l2")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(
                f"ActivityRegularization: l1 and l2 must be >= 0, got l1={l1!r}, l2={l2!r}"
            )
        self._loss = 0.0

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._x = x
        n = max(len(x), 1)
        loss = 0.0
        if self.l1:
            loss += self.l1 * float(np.abs(x).sum(dtype=np.float64))
        if self.l2:
            loss += self.l2 * float(np.square(x, dtype=np.float64).sum())
        self._loss = loss / n
        return x

    def activity_loss(self) -> float:
        return self._loss

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        n = max(len(grad), 1)
        x = self._x
        if self.l1:
            grad = grad + (self.l1 / n) * np.sign(x).astype(grad.dtype)
        if self.l2:
            grad = grad + (2.0 * self.l2 / n) * x.astype(grad.dtype)
        return grad

    def get_config(self) -> Config:
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
