"""The fully connected layer: ``y = activation(x @ kernel + bias)``.

Shapes, for a batch of ``n`` samples with ``d`` features and a layer of ``units`` outputs:

    x       (n, d)        kernel  (d, units)      bias (units,)
    z = x @ kernel + bias (n, units)              y = activation(z)  (n, units)

Backward, given g = dL/dy:

    dz = g * activation'(z)                       (element-wise; skipped when the loss
                                                   already handed us dL/dz, see `fused`)
    dL/dkernel = x.T @ dz    dL/dbias = sum(dz, axis=0)    dL/dx = dz @ kernel.T

All products write into buffers the layer keeps from batch to batch (``out=``), so a
training step allocates nothing large.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from multilayer.engine import activations, initializers, regularizers
from multilayer.engine.layers.base import Layer
from multilayer.engine.registry import Config, positive_int


class Dense(Layer):
    """Densely connected layer with its activation fused in.

    Args:
        units: number of outputs.
        activation: name or `Activation`; None means linear.
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: names or `Initializer` objects
            (Keras' defaults: ``"glorot_uniform"`` and ``"zeros"``).
        kernel_regularizer, bias_regularizer: optional `Regularizer` (e.g. ``"l2"``).
        input_shape / input_dim: the input sample shape, Keras style, for a first layer.

    Input shape ``(n, d)``; output shape ``(n, units)``.
    """

    def __init__(
        self,
        units: int,
        activation: str | activations.Activation | Config | None = None,
        use_bias: bool = True,
        kernel_initializer: str | initializers.Initializer | Config = "glorot_uniform",
        bias_initializer: str | initializers.Initializer | Config = "zeros",
        kernel_regularizer: str | regularizers.Regularizer | Config | None = None,
        bias_regularizer: str | regularizers.Regularizer | Config | None = None,
        input_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        if input_dim is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_dim,)
        super().__init__(**kwargs)
        self.units = positive_int(units, "Dense: units")
        self.activation = activations.get(activation)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"Dense: use_bias must be True or False, got {use_bias!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 1:
            flat = int(np.prod(input_shape))
            raise ValueError(
                f"Dense layer {self.name!r} expects inputs of shape (batch, features), but its "
                f"input samples have shape {tuple(input_shape)}. Add a Flatten() layer before it, "
                f"or reshape x to (n, {flat})."
            )
        self.input_shape = tuple(input_shape)
        self.output_shape = (self.units,)
        self.add_weight(
            "kernel", (input_shape[0], self.units), self.kernel_initializer, self.kernel_regularizer
        )
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        kernel = self.weights["kernel"]
        if x.dtype != kernel.dtype:
            x = x.astype(kernel.dtype)
        n = x.shape[0]
        z = self._buffer("z", n, (self.units,), kernel.dtype)
        np.matmul(x, kernel, out=z)
        if self.use_bias:
            z += self.weights["bias"]
        # The output overwrites z unless the derivative needs z itself.
        y = self._buffer("y", n, (self.units,), kernel.dtype) if self.activation.needs_input else z
        self.activation.forward(z, out=y)
        self._x, self._z, self._y = x, z, y
        return y

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        """``fused=True`` means ``grad`` is already dL/dz (the loss fused the activation)."""
        dz = grad if fused else self.activation.backward(grad, self._z, self._y)
        np.matmul(self._x.T, dz, out=self.grads["kernel"])
        if self.kernel_regularizer is not None:
            self.kernel_regularizer.add_gradient(self.weights["kernel"], self.grads["kernel"])
        if self.use_bias:
            # ones @ dz: the column sums as one BLAS gemv, twice as fast as np.sum(axis=0).
            ones = self._workspace.get("ones")
            if ones is None or ones.shape[0] < dz.shape[0] or ones.dtype != dz.dtype:
                ones = self._workspace["ones"] = np.ones(dz.shape[0], dtype=dz.dtype)
            np.matmul(ones[: dz.shape[0]], dz, out=self.grads["bias"])
            if self.bias_regularizer is not None:
                self.bias_regularizer.add_gradient(self.weights["bias"], self.grads["bias"])
        if not need_input_grad:
            return None
        dx = self._buffer("dx", dz.shape[0], cast(tuple[int, ...], self.input_shape), dz.dtype)
        return np.matmul(dz, self.weights["kernel"].T, out=dx)

    @property
    def fusable_activation(self) -> str | None:
        return self.activation.name

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }
