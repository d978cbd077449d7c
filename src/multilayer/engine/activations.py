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

from multilayer.engine.checks import finite
from multilayer.utils.naming import unknown_name_error


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

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        return self.forward(x, np.empty_like(x))

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


class Linear(Activation):
    """``f(z) = z``."""

    name = "linear"

    def forward(self, z, out):
        if out is not z:
            np.copyto(out, z)
        return out

    def backward(self, grad, z, y):
        return grad


class ReLU(Activation):
    """``f(z) = max(z, 0)``; f'(z) = 1 where the output is positive, else 0."""

    name = "relu"

    def forward(self, z, out):
        return np.maximum(z, 0, out=out)

    def backward(self, grad, z, y):
        # Multiplying by the boolean mask is one pass and needs no index arrays.
        return np.multiply(grad, y > 0, out=grad)


class LeakyReLU(Activation):
    """``f(z) = z`` for z > 0, ``negative_slope * z`` otherwise (Keras' default slope: 0.2)."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        self.negative_slope = finite(negative_slope, "LeakyReLU: negative_slope")

    def forward(self, z, out):
        # max(z, a*z) equals leaky ReLU for 0 <= a <= 1.
        return np.maximum(z, self.negative_slope * z, out=out)

    def backward(self, grad, z, y):
        # The output has the sign of the input, so the slope can be read from y.
        return np.multiply(
            grad, np.where(y > 0, 1.0, self.negative_slope).astype(grad.dtype), out=grad
        )

    def get_config(self):
        return {"negative_slope": self.negative_slope}


class ELU(Activation):
    """``f(z) = z`` for z > 0, ``alpha * (exp(z) - 1)`` otherwise; f' = y + alpha below 0."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        self.alpha = finite(alpha, "ELU: alpha")

    def forward(self, z, out):
        below = z <= 0
        negative = self.alpha * np.expm1(np.minimum(z, 0))
        if out is not z:
            np.copyto(out, z)
        np.copyto(out, negative, where=below)
        return out

    def backward(self, grad, z, y):
        return np.multiply(grad, np.where(y > 0, 1.0, y + self.alpha).astype(grad.dtype), out=grad)

    def get_config(self):
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

    def __init__(self, approximate: bool = False):
        self.approximate = bool(approximate)

    def _cdf(self, z):
        if self.approximate:
            return 0.5 * (1.0 + np.tanh(self._C * (z + 0.044715 * z**3)))
        return (0.5 * (1.0 + _erf(z / math.sqrt(2.0)).astype(z.dtype))).astype(z.dtype)

    def forward(self, z, out):
        return np.multiply(z, self._cdf(z), out=out)

    def backward(self, grad, z, y):
        if self.approximate:
            inner = self._C * (z + 0.044715 * z**3)
            t = np.tanh(inner)
            dinner = self._C * (1.0 + 3 * 0.044715 * z**2)
            derivative = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * dinner
        else:
            pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
            derivative = self._cdf(z) + z * pdf
        return np.multiply(grad, derivative.astype(grad.dtype), out=grad)

    def get_config(self):
        return {"approximate": self.approximate}


class Sigmoid(Activation):
    """``f(z) = 1 / (1 + exp(-z))``, computed as ``(1 + tanh(z/2)) / 2``: no overflow at any z."""

    name = "sigmoid"

    def forward(self, z, out):
        np.multiply(z, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    def backward(self, grad, z, y):
        grad *= y
        grad *= 1.0 - y
        return grad


class Tanh(Activation):
    """``f(z) = tanh(z)``; f' = 1 - y^2."""

    name = "tanh"

    def forward(self, z, out):
        return np.tanh(z, out=out)

    def backward(self, grad, z, y):
        grad *= 1.0 - y * y
        return grad


class Softplus(Activation):
    """``f(z) = log(1 + exp(z))``, stable for large |z|; f' = sigmoid(z) = 1 - exp(-y)."""

    name = "softplus"

    def forward(self, z, out):
        positive = np.maximum(z, 0)
        return np.add(positive, np.log1p(np.exp(-np.abs(z))), out=out)

    def backward(self, grad, z, y):
        grad *= -np.expm1(-y)
        return grad


class Softmax(Activation):
    """Normalised exponentials over the last axis.

    Its Jacobian-vector product is ``y * (g - sum(g * y))``; in a model whose loss is
    cross-entropy the model skips it and uses the fused gradient ``(p - y) / n`` instead.
    """

    name = "softmax"

    def forward(self, z, out):
        # Subtracting the row maximum keeps exp() from overflowing; the result is unchanged.
        np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=-1, keepdims=True)
        return out

    def backward(self, grad, z, y):
        dot = (
            np.einsum("ij,ij->i", grad, y)[:, None]
            if grad.ndim == 2
            else (grad * y).sum(-1, keepdims=True)
        )
        grad -= dot
        grad *= y
        return grad


_REGISTRY: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Linear, ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, Softplus, Softmax)
}


def get(identifier: str | Activation | None) -> Activation:
    """An `Activation` from a name (``"relu"``), an instance, or None (linear)."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        cls = _REGISTRY.get(identifier.lower())
        if cls is None:
            raise unknown_name_error("activation", identifier, _REGISTRY)
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(
        f"activation must be a name such as 'relu', an Activation, or None; got {type(identifier).__name__}"
    )


def serialize(activation: Activation) -> str | dict:
    config = activation.get_config()
    return {"name": activation.name, **config} if config else activation.name


def deserialize(config: str | dict) -> Activation:
    if isinstance(config, str):
        return get(config)
    config = dict(config)
    name = config.pop("name", None)
    cls = _REGISTRY.get(str(name))
    if cls is None:
        raise unknown_name_error("activation", str(name), _REGISTRY)
    return cls(**config)


# Keras-style functional forms.
def linear(x):
    return Linear()(x)


def relu(x):
    return ReLU()(x)


def leaky_relu(x, negative_slope: float = 0.2):
    return LeakyReLU(negative_slope)(x)


def elu(x, alpha: float = 1.0):
    return ELU(alpha)(x)


def gelu(x, approximate: bool = False):
    return GELU(approximate)(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)


def softplus(x):
    return Softplus()(x)


def softmax(x):
    return Softmax()(x)
