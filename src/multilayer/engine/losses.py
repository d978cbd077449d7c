"""Loss functions with Keras' names, defaults and reductions (mean over the batch).

Each loss gives its value and its gradient with respect to the model's output. The
cross-entropies can also *fuse* with the activation that produced their input: for
softmax + categorical cross-entropy (and sigmoid + binary cross-entropy) the gradient with
respect to the pre-activation ``z`` is simply ``(p - y) / n``. That is cheaper and, unlike
chaining ``dL/dp`` through the softmax Jacobian, never divides by a tiny probability.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from multilayer.engine.checks import finite
from multilayer.engine.config import epsilon
from multilayer.engine.registry import Config, Registry

#: Probabilities are clipped to [eps, 1 - eps] before a log, as in Keras; eps is
#: `multilayer.engine.config.epsilon()` (this default unless changed with set_epsilon).
EPSILON = 1e-7


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _match(y_true: ArrayLike, y_pred: np.ndarray) -> np.ndarray:
    """Let ``(n,)`` targets meet ``(n, 1)`` outputs, as Keras does."""
    y_true = np.asarray(y_true)
    if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
        y_true = y_true.reshape(y_pred.shape)
    return y_true


class Loss:
    """Base class. Subclasses implement `per_sample` and `gradient`.

    ``loss(y_true, y_pred)`` is the mean over the batch of the per-sample losses (Keras'
    ``"sum_over_batch_size"`` reduction); `gradient` is the derivative of that mean.
    """

    name = "loss"
    #: the output activation whose derivative this loss can absorb (see module docstring)
    fused_activation: str | None = None
    #: the kind of targets it expects: "categorical", "sparse", "binary" or "regression"
    target_kind = "regression"
    from_logits = False

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike) -> float:
        y_pred = np.asarray(y_pred, dtype=np.result_type(np.asarray(y_pred).dtype, np.float32))
        return float(np.mean(self.per_sample(_match(y_true, y_pred), y_pred), dtype=np.float64))

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """dL/dy_pred of the batch-mean loss, shape of ``y_pred``."""
        raise NotImplementedError

    def fused_gradient(self, y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """dL/dz where ``probabilities = fused_activation(z)``; may overwrite ``probabilities``."""
        raise NotImplementedError(f"{self.name} has no fused gradient")

    def get_config(self) -> Config:
        return {}


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)^2)`` over the last axis, then over the batch."""

    name = "mean_squared_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(y_pred - y_true), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return (2.0 / y_pred.size) * (y_pred - y_true)


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)`` over the last axis, then over the batch."""

    name = "mean_absolute_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.sign(y_pred - y_true) / y_pred.size


def _hinge_labels(y_true: np.ndarray) -> np.ndarray:
    """Keras' hinge targets: {0, 1} labels become {-1, 1} when *every* label of the batch is
    0 or 1; otherwise the labels are used as given (expected -1 or 1)."""
    y_true = np.asarray(y_true)
    if np.all((y_true == 0) | (y_true == 1)):
        return 2.0 * y_true - 1.0
    return y_true


class Hinge(Loss):
    """``mean(max(1 - y_true * y_pred, 0))`` over the last axis; targets in {-1, 1} (a batch
    of {0, 1} labels is mapped to -1/1 first, as in Keras)."""

    name = "hinge"
    target_kind = "binary"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        signed = _hinge_labels(y_true)
        active = (1.0 - signed * y_pred) > 0
        return (-signed * active / y_pred.size).astype(y_pred.dtype, copy=False)


class SquaredHinge(Loss):
    """``mean(max(1 - y_true * y_pred, 0)^2)`` over the last axis (targets as `Hinge`)."""

    name = "squared_hinge"
    target_kind = "binary"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(np.square(np.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0)), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        signed = _hinge_labels(y_true)
        margin = np.maximum(1.0 - signed * y_pred, 0.0)
        return (-2.0 * signed * margin / y_pred.size).astype(y_pred.dtype, copy=False)


class CategoricalHinge(Loss):
    """``max(neg - pos + 1, 0)`` per sample, where ``pos = sum(y_true * y_pred)`` and
    ``neg = max((1 - y_true) * y_pred)`` (one-hot targets)."""

    name = "categorical_hinge"
    target_kind = "categorical"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        pos = np.sum(y_true * y_pred, axis=-1)
        neg = np.max((1.0 - y_true) * y_pred, axis=-1)
        return np.maximum(neg - pos + 1.0, 0.0)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true = np.broadcast_to(y_true, y_pred.shape)
        others = (1.0 - y_true) * y_pred
        pos = np.sum(y_true * y_pred, axis=-1)
        neg = np.max(others, axis=-1)
        active = (neg - pos + 1.0) > 0
        # d neg / d y_pred: (1 - y_true) at the (first) arg max, 0 elsewhere
        picked = np.zeros(y_pred.shape, dtype=np.float64)
        np.put_along_axis(picked, others.argmax(axis=-1)[..., None], 1.0, axis=-1)
        grad = (picked * (1.0 - y_true) - y_true) * active[..., None]
        return (grad / (y_pred.size // y_pred.shape[-1])).astype(y_pred.dtype, copy=False)


class Huber(Loss):
    """``0.5 e^2`` where ``|e| <= delta``, else ``delta (|e| - 0.5 delta)``, with
    ``e = y_pred - y_true``; mean over the last axis.

    Args:
        delta: where the loss turns from quadratic to linear (finite, > 0 as in Keras'
            intent; Keras itself does not check).
    """

    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        delta = finite(delta, "Huber: delta")
        if delta <= 0:
            raise ValueError(f"Huber: delta must be positive, got {delta!r}")
        self.delta = delta

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        error = y_pred - y_true
        abs_error = np.abs(error)
        d = self.delta
        return np.mean(
            np.where(abs_error <= d, 0.5 * np.square(error), d * abs_error - 0.5 * d * d), axis=-1
        )

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        error = y_pred - y_true
        grad = np.where(np.abs(error) <= self.delta, error, self.delta * np.sign(error))
        return (grad / y_pred.size).astype(y_pred.dtype, copy=False)

    def get_config(self) -> Config:
        return {"delta": self.delta}


class LogCosh(Loss):
    """``mean(log(cosh(y_pred - y_true)))`` over the last axis, computed as
    ``x + softplus(-2x) - log 2`` (no overflow for large errors)."""

    name = "log_cosh"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        x = y_pred - y_true
        return np.mean(x + np.logaddexp(0.0, -2.0 * x) - np.log(2.0), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return (np.tanh(y_pred - y_true) / y_pred.size).astype(y_pred.dtype, copy=False)


class KLDivergence(Loss):
    """``sum(y_true * log(y_true / y_pred))`` over the last axis, both clipped to
    ``[EPSILON, 1]`` first (as Keras); probabilities in, no ``from_logits`` (Keras has none)."""

    name = "kl_divergence"
    target_kind = "categorical"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t = np.clip(y_true, EPSILON, 1.0)
        p = np.clip(y_pred, EPSILON, 1.0)
        return np.sum(t * np.log(t / p), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t = np.clip(y_true, EPSILON, 1.0)
        inside = (y_pred >= EPSILON) & (y_pred <= 1.0)  # the clip passes the gradient through
        grad = np.where(inside, -t / np.clip(y_pred, EPSILON, 1.0), 0.0)
        return (grad / (y_pred.size // y_pred.shape[-1])).astype(y_pred.dtype, copy=False)


class Poisson(Loss):
    """``mean(y_pred - y_true * log(y_pred + EPSILON))`` over the last axis (rates in)."""

    name = "poisson"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.mean(y_pred - y_true * np.log(y_pred + EPSILON), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        grad = 1.0 - y_true / (y_pred + EPSILON)
        return (grad / y_pred.size).astype(y_pred.dtype, copy=False)


class MeanAbsolutePercentageError(Loss):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, EPSILON))`` over the last axis."""

    name = "mean_absolute_percentage_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return 100.0 * np.mean(
            np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), EPSILON)), axis=-1
        )

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        grad = 100.0 * np.sign(y_pred - y_true) / np.maximum(np.abs(y_true), EPSILON)
        return (grad / y_pred.size).astype(y_pred.dtype, copy=False)


class MeanSquaredLogarithmicError(Loss):
    """``mean((log(max(y_pred, EPSILON) + 1) - log(max(y_true, EPSILON) + 1))^2)`` over the
    last axis."""

    name = "mean_squared_logarithmic_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        first = np.log(np.maximum(y_pred, EPSILON) + 1.0)
        second = np.log(np.maximum(y_true, EPSILON) + 1.0)
        return np.mean(np.square(first - second), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        clipped = np.maximum(y_pred, EPSILON)
        diff = np.log(clipped + 1.0) - np.log(np.maximum(y_true, EPSILON) + 1.0)
        grad = np.where(y_pred >= EPSILON, 2.0 * diff / (clipped + 1.0), 0.0)
        return (grad / y_pred.size).astype(y_pred.dtype, copy=False)


class CategoricalCrossentropy(Loss):
    """``-sum(y_true * log(p))`` for one-hot (or soft) targets of shape ``(n, classes)``.

    Args:
        from_logits: ``y_pred`` holds logits rather than probabilities.
        label_smoothing: targets become ``y * (1 - s) + s / classes``.
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"
    target_kind = "categorical"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _targets(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + self.label_smoothing / y_pred.shape[-1]
        return y_true

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = self._targets(y_true, y_pred)
        if self.from_logits:
            return -np.sum(y * _log_softmax(y_pred), axis=-1)
        p = y_pred / y_pred.sum(axis=-1, keepdims=True)
        return -np.sum(y * np.log(np.clip(p, epsilon(), 1.0 - epsilon())), axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = self._targets(y_true, y_pred)
        n = y_pred.shape[0]
        if self.from_logits:
            return (_softmax(y_pred) * y.sum(axis=-1, keepdims=True) - y) / n
        # d/dp of -sum(y * log(p / sum(p))) (the normalisation Keras applies)
        total = y_pred.sum(axis=-1, keepdims=True)
        return (-y / np.clip(y_pred, epsilon(), None) + y.sum(axis=-1, keepdims=True) / total) / n

    def fused_gradient(self, y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        grad = probabilities
        grad -= self._targets(y_true, probabilities)
        grad *= 1.0 / probabilities.shape[0]
        return grad

    def get_config(self) -> Config:
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels of shape ``(n,)``.

    Same as `CategoricalCrossentropy` on ``to_categorical(y_true)``, without building the
    one-hot matrix.
    """

    name = "sparse_categorical_crossentropy"
    target_kind = "sparse"

    def _picked(self, y_true: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(y_true).reshape(-1).astype(np.intp, copy=False)
        return matrix[np.arange(matrix.shape[0]), labels], labels

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.from_logits:
            log_p = _log_softmax(y_pred)
        else:
            p = y_pred / y_pred.sum(axis=-1, keepdims=True)
            log_p = np.log(np.clip(p, epsilon(), 1.0 - epsilon()))
        picked, _ = self._picked(y_true, log_p)
        s = self.label_smoothing
        if not s:
            return -picked
        return -(1.0 - s) * picked - (s / y_pred.shape[-1]) * log_p.sum(axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return super().gradient(self._one_hot(y_true, y_pred), y_pred)

    def _one_hot(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        one_hot = np.zeros_like(y_pred)
        one_hot[np.arange(y_pred.shape[0]), np.asarray(y_true).reshape(-1).astype(np.intp)] = 1.0
        return one_hot

    def fused_gradient(self, y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        n, classes = probabilities.shape
        grad = probabilities
        s = self.label_smoothing
        if s:
            grad -= s / classes
        labels = np.asarray(y_true).reshape(-1).astype(np.intp, copy=False)
        grad[np.arange(n), labels] -= 1.0 - s
        grad *= 1.0 / n
        return grad


class BinaryCrossentropy(Loss):
    """``-mean(y log p + (1 - y) log(1 - p))`` over the last axis, for targets in [0, 1].

    Args:
        from_logits: ``y_pred`` holds logits rather than probabilities.
        label_smoothing: targets become ``y * (1 - s) + s / 2``.
    """

    name = "binary_crossentropy"
    fused_activation = "sigmoid"
    target_kind = "binary"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _targets(self, y_true: np.ndarray) -> np.ndarray:
        s = self.label_smoothing
        return y_true * (1.0 - s) + 0.5 * s if s else y_true

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = self._targets(y_true)
        if self.from_logits:
            # log(1 + exp(-|z|)) + max(z, 0) - z y: the stable form of the same quantity
            values = np.maximum(y_pred, 0) - y_pred * y + np.log1p(np.exp(-np.abs(y_pred)))
        else:
            p = np.clip(y_pred, epsilon(), 1.0 - epsilon())
            values = -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
        return np.mean(values, axis=-1)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = self._targets(y_true)
        if self.from_logits:
            return (_sigmoid(y_pred) - y) / y_pred.size
        p = np.clip(y_pred, epsilon(), 1.0 - epsilon())
        return (p - y) / (p * (1.0 - p)) / y_pred.size

    def fused_gradient(self, y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        grad = probabilities
        grad -= self._targets(_match(y_true, probabilities))
        grad *= 1.0 / probabilities.size
        return grad

    def get_config(self) -> Config:
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


REGISTRY: Registry[Loss] = Registry(
    "loss",
    Loss,
    # Keras 3's aliases, and Keras 2 spellings that old programs use
    aliases={
        "mse": "mean_squared_error",
        "mae": "mean_absolute_error",
        "mape": "mean_absolute_percentage_error",
        "msle": "mean_squared_logarithmic_error",
        "kld": "kl_divergence",
        "bce": "binary_crossentropy",
        "logcosh": "log_cosh",
        "kullback_leibler_divergence": "kl_divergence",
        "huber_loss": "huber",
    },
)
for _cls in (
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Huber,
    LogCosh,
    KLDivergence,
    Poisson,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    BinaryCrossentropy,
):
    REGISTRY.register(_cls)


def get(identifier: str | Loss | Config) -> Loss:
    """A `Loss` from a name (``"categorical_crossentropy"``, ``"mse"``), config or instance."""
    return REGISTRY.get(identifier)


def serialize(loss: Loss) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(loss)


def deserialize(config: str | Config) -> Loss:
    return REGISTRY.deserialize(config)


# Keras-style functional forms: per-sample losses.
def categorical_crossentropy(
    y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False, label_smoothing: float = 0.0
) -> np.ndarray:
    return CategoricalCrossentropy(from_logits, label_smoothing).per_sample(
        np.asarray(y_true), np.asarray(y_pred)
    )


def sparse_categorical_crossentropy(
    y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False
) -> np.ndarray:
    return SparseCategoricalCrossentropy(from_logits).per_sample(
        np.asarray(y_true), np.asarray(y_pred)
    )


def binary_crossentropy(
    y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False, label_smoothing: float = 0.0
) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    return BinaryCrossentropy(from_logits, label_smoothing).per_sample(
        _match(y_true, y_pred), y_pred
    )


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    return MeanSquaredError().per_sample(_match(y_true, y_pred), y_pred)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    return MeanAbsoluteError().per_sample(_match(y_true, y_pred), y_pred)


def _per_sample(loss: Loss, y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    y_pred = y_pred.astype(np.result_type(y_pred.dtype, np.float32), copy=False)
    return loss.per_sample(_match(y_true, y_pred), y_pred)


def hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(Hinge(), y_true, y_pred)


def squared_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(SquaredHinge(), y_true, y_pred)


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(CategoricalHinge(), y_true, y_pred)


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> np.ndarray:
    return _per_sample(Huber(delta), y_true, y_pred)


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(LogCosh(), y_true, y_pred)


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(KLDivergence(), y_true, y_pred)


def poisson(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(Poisson(), y_true, y_pred)


def mean_absolute_percentage_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(MeanAbsolutePercentageError(), y_true, y_pred)


def mean_squared_logarithmic_error(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    return _per_sample(MeanSquaredLogarithmicError(), y_true, y_pred)


mse = mean_squared_error
mae = mean_absolute_error
mape = mean_absolute_percentage_error
msle = mean_squared_logarithmic_error
kld = kl_divergence
logcosh = log_cosh
