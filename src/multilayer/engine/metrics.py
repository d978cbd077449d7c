"""Metrics: running averages over the batches of an epoch (Keras' names).

``"accuracy"`` is resolved from the loss, as Keras does: categorical cross-entropy gives
categorical accuracy (argmax against argmax), the sparse loss sparse accuracy (argmax against
the label), binary cross-entropy binary accuracy (thresholded at 0.5).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from multilayer.engine.checks import finite
from multilayer.engine.registry import Config, Registry


class Metric:
    """A running mean of a per-sample quantity: `update_state`, `result`, `reset_state`."""

    default_name = "metric"

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike) -> None:
        y_pred = np.asarray(y_pred)
        values = self.values(np.asarray(y_true), y_pred)
        self._total += float(np.sum(values, dtype=np.float64))
        self._count += values.size

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def get_state(self) -> dict:
        """The running sums: ``{"total": float, "count": int}`` (a checkpoint keeps them)."""
        return {"total": self._total, "count": self._count}

    def set_state(self, state: dict) -> None:
        """Restore what `get_state` returned.

        Raises:
            ValueError: not a dict with a finite float total and a non-negative int count.
        """
        if not isinstance(state, dict) or set(state) != {"total", "count"}:
            raise ValueError(f"metric {self.name!r}: a state must be {{'total', 'count'}}")
        total, count = state["total"], state["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"metric {self.name!r}: count must be a non-negative integer")
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise ValueError(f"metric {self.name!r}: total must be a number")
        self._total, self._count = float(total), count

    def get_config(self) -> Config:
        return {"name": self.name}


class Mean(Metric):
    """The running mean of values given with `update_state(value, count)` (e.g. a batch's
    mean loss, weighted by the batch size)."""

    default_name = "mean"

    def update_state(self, value: float, count: int = 1) -> None:  # type: ignore[override]
        self._total += float(value) * count
        self._count += int(count)


def _labels(y: np.ndarray) -> np.ndarray:
    return y.reshape(-1) if y.ndim <= 1 or y.shape[-1] == 1 else y.argmax(axis=-1)


class CategoricalAccuracy(Metric):
    default_name = "categorical_accuracy"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    default_name = "sparse_categorical_accuracy"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return y_true.reshape(-1).astype(np.int64) == y_pred.argmax(axis=-1)


class BinaryAccuracy(Metric):
    default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        self.threshold = finite(threshold, "BinaryAccuracy: threshold")
        super().__init__(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return (y_pred > self.threshold) == (y_true > 0.5)

    def get_config(self) -> Config:
        return {**super().get_config(), "threshold": self.threshold}


class TopKCategoricalAccuracy(Metric):
    """Whether the true class is among the ``k`` highest scores (one-hot targets)."""

    default_name = "top_k_categorical_accuracy"
    sparse = False

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        self.k = int(k)
        super().__init__(name)

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        labels = y_true.reshape(-1).astype(np.int64) if self.sparse else y_true.argmax(axis=-1)
        true_scores = y_pred[np.arange(len(labels)), labels]
        # "in the top k" == fewer than k classes score strictly higher
        return (y_pred > true_scores[:, None]).sum(axis=-1) < self.k

    def get_config(self) -> Config:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    default_name = "sparse_top_k_categorical_accuracy"
    sparse = True


class MeanSquaredError(Metric):
    default_name = "mean_squared_error"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return np.mean(np.square(y_pred - y_true), axis=-1)


class MeanAbsoluteError(Metric):
    default_name = "mean_absolute_error"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return np.mean(np.abs(y_pred - y_true), axis=-1)


REGISTRY: Registry[Metric] = Registry(
    "metric",
    Metric,
    aliases={"mse": "mean_squared_error", "mae": "mean_absolute_error"},
    legacy=False,  # metrics were only ever saved by name
)
for _cls in (
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    BinaryAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    MeanSquaredError,
    MeanAbsoluteError,
):
    REGISTRY.register(_cls, names=(_cls.default_name,))
_ACCURACY_BY_TARGET: dict[str, type[Metric]] = {
    "categorical": CategoricalAccuracy,
    "sparse": SparseCategoricalAccuracy,
    "binary": BinaryAccuracy,
}


def get(identifier: str | Metric | Config, loss: object = None) -> Metric:
    """A `Metric` from a name, a config dict or an instance; ``"accuracy"``/``"acc"`` is the
    accuracy that matches ``loss`` (a `Loss`)."""
    if not isinstance(identifier, str):
        return REGISTRY.get(identifier)
    if identifier.lower() in ("accuracy", "acc"):
        kind = getattr(loss, "target_kind", "categorical")
        accuracy = _ACCURACY_BY_TARGET.get(kind)
        if accuracy is None:
            raise ValueError(
                f"'accuracy' is not defined for the loss {getattr(loss, 'name', loss)!r}"
            )
        if accuracy is BinaryAccuracy and getattr(loss, "from_logits", False):
            return BinaryAccuracy(name=identifier, threshold=0.0)  # logits: 0 is p = 0.5
        return accuracy(name=identifier)
    return REGISTRY.lookup(identifier, extra_names=["accuracy"])(name=identifier)


def serialize(metric: Metric) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(metric)


def deserialize(config: Config) -> Metric:
    return REGISTRY.deserialize(config)
