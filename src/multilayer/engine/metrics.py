"""Metrics: running averages over the batches of an epoch (Keras' names).

``"accuracy"`` is resolved from the loss, as Keras does: categorical cross-entropy gives
categorical accuracy (argmax against argmax), the sparse loss sparse accuracy (argmax against
the label), binary cross-entropy binary accuracy (thresholded at 0.5).
"""

from __future__ import annotations

import numpy as np

from multilayer.engine.checks import finite
from multilayer.utils.naming import unknown_name_error


class Metric:
    """A running mean of a per-sample quantity: `update_state`, `result`, `reset_state`."""

    default_name = "metric"

    def __init__(self, name: str | None = None):
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, y_true, y_pred) -> None:
        y_pred = np.asarray(y_pred)
        values = self.values(np.asarray(y_true), y_pred)
        self._total += float(np.sum(values, dtype=np.float64))
        self._count += values.size

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def get_config(self) -> dict:
        return {"name": self.name}


def _labels(y: np.ndarray) -> np.ndarray:
    return y.reshape(-1) if y.ndim <= 1 or y.shape[-1] == 1 else y.argmax(axis=-1)


class CategoricalAccuracy(Metric):
    default_name = "categorical_accuracy"

    def values(self, y_true, y_pred):
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    default_name = "sparse_categorical_accuracy"

    def values(self, y_true, y_pred):
        return y_true.reshape(-1).astype(np.int64) == y_pred.argmax(axis=-1)


class BinaryAccuracy(Metric):
    default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        self.threshold = finite(threshold, "BinaryAccuracy: threshold")
        super().__init__(name)

    def values(self, y_true, y_pred):
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return (y_pred > self.threshold) == (y_true > 0.5)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class TopKCategoricalAccuracy(Metric):
    """Whether the true class is among the ``k`` highest scores (one-hot targets)."""

    default_name = "top_k_categorical_accuracy"
    sparse = False

    def __init__(self, k: int = 5, name: str | None = None):
        self.k = int(k)
        super().__init__(name)

    def values(self, y_true, y_pred):
        labels = y_true.reshape(-1).astype(np.int64) if self.sparse else y_true.argmax(axis=-1)
        true_scores = y_pred[np.arange(len(labels)), labels]
        # "in the top k" == fewer than k classes score strictly higher
        return (y_pred > true_scores[:, None]).sum(axis=-1) < self.k

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    default_name = "sparse_top_k_categorical_accuracy"
    sparse = True


class MeanSquaredError(Metric):
    default_name = "mean_squared_error"

    def values(self, y_true, y_pred):
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return np.mean(np.square(y_pred - y_true), axis=-1)


class MeanAbsoluteError(Metric):
    default_name = "mean_absolute_error"

    def values(self, y_true, y_pred):
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return np.mean(np.abs(y_pred - y_true), axis=-1)


_REGISTRY: dict[str, type[Metric]] = {
    cls.default_name: cls
    for cls in (
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        BinaryAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
    )
}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}
_ACCURACY_BY_TARGET = {
    "categorical": CategoricalAccuracy,
    "sparse": SparseCategoricalAccuracy,
    "binary": BinaryAccuracy,
}


def get(identifier, loss=None) -> Metric:
    """A `Metric` from a name or instance; ``"accuracy"``/``"acc"`` depends on ``loss``."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a Metric, got {type(identifier).__name__}")
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        kind = getattr(loss, "target_kind", "categorical")
        cls = _ACCURACY_BY_TARGET.get(kind)
        if cls is None:
            raise ValueError(
                f"'accuracy' is not defined for the loss {getattr(loss, 'name', loss)!r}"
            )
        if cls is BinaryAccuracy and getattr(loss, "from_logits", False):
            return BinaryAccuracy(name=identifier, threshold=0.0)  # logits: 0 is p = 0.5
        return cls(name=identifier)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise unknown_name_error("metric", identifier, [*_REGISTRY, *_ALIASES, "accuracy"])
    return _REGISTRY[key](name=identifier)
