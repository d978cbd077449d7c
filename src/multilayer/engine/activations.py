"""Activation functions, each with its derivative.

An activation is used two ways:

* as a plain function, as in Keras: ``multilayer.activations.relu(x)`` returns a new array;
* inside a layer, in place on the layer's own buffers: ``forward(z, out)`` writes
  ``f(z)`` into ``out`` (which may be ``z`` itself), and ``backward(grad, z, y)`` turns
  ``dL/dy`` into ``dL/dz`` in place in ``grad``. Most derivatives are written in terms of the
  output ``y`` so that ``y`` can overwrite ``z`` and no second buffer is needed;
  ``needs_input`` says when the pre-activation ``z`` must be kept.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from multilayer.engine.checks import finite
from multilayer.engine.registry import Config, Registry


class Activation:
    """Base class: ``f`` and its derivative, in place on caller-owned buffers."""

    name = "activation"
    #: True when `backward` needs the pre-activation ``z`` (so ``y`` cannot overwrite it).
    needs_input = False

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        """Return dL/dz given dL/dy = ``grad`` (modified in place and returned)."""
        raise NotImplementedError

    def __call__(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        return self.forward(x, np.empty_like(x))

    def get_config(self) -> Config:
        return {}

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


class Linear(Activation):
    """``f(z) = z``."""

    name = "linear"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        if out is not z:
            np.copyto(out, z)
        return out

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        return grad


class ReLU(Activation):
    """``f(z) = max(z, 0)``; f'(z) = 1 where the output is positive, else 0."""

    name = "relu"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        # Multiplying by the boolean mask is one pass and needs no index arrays.
        return np.multiply(grad, y > 0, out=grad)


class LeakyReLU(Activation):
    """``f(z) = z`` for z > 0, ``negative_slope * z`` otherwise (Keras' default slope: 0.2)."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2) -> None:
        self.negative_slope = finite(negative_slope, "LeakyReLU: negative_slope")

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        # max(z, a*z) equals leaky ReLU for 0 <= a <= 1.
        return np.maximum(z, self.negative_slope * z, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        # The output has the sign of the input, so the slope can be read from y.
        return np.multiply(
            grad, np.where(y > 0, 1.0, self.negative_slope).astype(grad.dtype), out=grad
        )

    def get_config(self) -> Config:
        return {"negative_slope": self.negative_slope}


class ELU(Activation):
    """``f(z) = z`` for z > 0, ``alpha * (exp(z) - 1)`` otherwise; f' = y + alpha below 0."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = finite(alpha, "ELU: alpha")

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        below = z <= 0
        negative = self.alpha * np.expm1(np.minimum(z, 0))
        if out is not z:
            np.copyto(out, z)
        np.copyto(out, negative, where=below)
        return out

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        return np.multiply(grad, np.where(y > 0, 1.0, y + self.alpha).astype(grad.dtype), out=grad)

    def get_config(self) -> Config:
        return {"alpha": self.alpha}


_erf = np.frompyfunc(math.erf, 1, 1)


class GELU(Activation):
    """Gaussian error linear unit, ``z * Phi(z)``.

    ``approximate=False`` (Keras' default) uses the exact error function; ``True`` uses the
    tanh approximation of Hendrycks & Gimpel, which is much faster in NumPy.
    """

    name = "gelu"
    needs_input = True
    _C = math.sqrt(2.0 / math.pi)

    def __init__(self, approximate: bool = False) -> None:
        self.approximate = bool(approximate)

    def _cdf(self, z: np.ndarray) -> np.ndarray:
        if self.approximate:
            return 0.5 * (1.0 + np.tanh(self._C * (z + 0.044715 * z**3)))
        erf = np.asarray(_erf(z / math.sqrt(2.0)), dtype=z.dtype)
        return (0.5 * (1.0 + erf)).astype(z.dtype)

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.multiply(z, self._cdf(z), out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        if z is None:
            raise ValueError("GELU.backward needs the pre-activation z (needs_input is True)")
        if self.approximate:
            inner = self._C * (z + 0.044715 * z**3)
            t = np.tanh(inner)
            dinner = self._C * (1.0 + 3 * 0.044715 * z**2)
            derivative = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * dinner
        else:
            pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
            derivative = self._cdf(z) + z * pdf
        return np.multiply(grad, derivative.astype(grad.dtype), out=grad)

    def get_config(self) -> Config:
        return {"approximate": self.approximate}


class Sigmoid(Activation):
    """``f(z) = 1 / (1 + exp(-z))``, computed as ``(1 + tanh(z/2)) / 2``: no overflow at any z."""

    name = "sigmoid"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        grad *= y
        grad *= 1.0 - y
        return grad


class Tanh(Activation):
    """``f(z) = tanh(z)``; f' = 1 - y^2."""

    name = "tanh"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.tanh(z, out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        grad *= 1.0 - y * y
        return grad


class Softplus(Activation):
    """``f(z) = log(1 + exp(z))``, stable for large |z|; f' = sigmoid(z) = 1 - exp(-y)."""

    name = "softplus"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        positive = np.maximum(z, 0)
        return np.add(positive, np.log1p(np.exp(-np.abs(z))), out=out)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        grad *= -np.expm1(-y)
        return grad


class Softmax(Activation):
    """Normalised exponentials over the last axis.

    Its Jacobian-vector product is ``y * (g - sum(g * y))``; in a model whose loss is
    cross-entropy the model skips it and uses the fused gradient ``(p - y) / n`` instead.
    """

    name = "softmax"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        # Subtracting the row maximum keeps exp() from overflowing; the result is unchanged.
        np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=-1, keepdims=True)
        return out

    def backward(self, grad: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        dot = (
            np.einsum("ij,ij->i", grad, y)[:, None]
            if grad.ndim == 2
            else (grad * y).sum(-1, keepdims=True)
        )
        grad -= dot
        grad *= y
        return grad


REGISTRY: Registry[Activation] = Registry("activation", Activation)
for _cls in (Linear, ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, Softplus, Softmax):
    REGISTRY.register(_cls)


def get(identifier: str | Activation | Config | None) -> Activation:
    """An `Activation` from a name (``"relu"``), a config dict, an instance, or None (linear)."""
    return Linear() if identifier is None else REGISTRY.get(identifier)


def serialize(activation: Activation) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(activation)


def deserialize(config: str | Config) -> Activation:
    return REGISTRY.deserialize(config)


# Keras-style functional forms.
def linear(x: ArrayLike) -> np.ndarray:
    return Linear()(x)


def relu(x: ArrayLike) -> np.ndarray:
    return ReLU()(x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> np.ndarray:
    return LeakyReLU(negative_slope)(x)


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    return ELU(alpha)(x)


def gelu(x: ArrayLike, approximate: bool = False) -> np.ndarray:
    return GELU(approximate)(x)


def sigmoid(x: ArrayLike) -> np.ndarray:
    return Sigmoid()(x)


def tanh(x: ArrayLike) -> np.ndarray:
    return Tanh()(x)


def softplus(x: ArrayLike) -> np.ndarray:
    return Softplus()(x)


def softmax(x: ArrayLike) -> np.ndarray:
    return Softmax()(x)
