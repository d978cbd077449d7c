"""Metrics: running averages over the batches of an epoch (Keras' names).

``"accuracy"`` is resolved from the loss, as Keras does: categorical cross-entropy gives
categorical accuracy (argmax against argmax), the sparse loss sparse accuracy (argmax against
the label), binary cross-entropy binary accuracy (thresholded at 0.5).
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike

from multilayer.engine import losses as loss_module
from multilayer.engine.checks import finite
from multilayer.engine.registry import Config, Registry, positive_int

#: what `Metric.result` returns: a number, or one per threshold / class where Keras does so
Result = Union[float, np.ndarray]  # noqa: UP007 (an alias evaluated at run time on 3.10)
#: Keras' ``backend.epsilon()``
EPSILON = 1e-7


def _accumulate(state: dict[str, np.ndarray], updates: dict[str, np.ndarray]) -> None:
    """Add each batch total in ``updates`` to the running ``state`` (zeros at first)."""
    for key, value in updates.items():
        state[key] = state.get(key, np.zeros(value.shape)) + value


def _check_2d(metric: str, p: np.ndarray, t: np.ndarray) -> None:
    if p.ndim != 2 or t.ndim != 2:
        raise ValueError(
            f"{metric} expects 2D inputs with shape (batch_size, output_dim). "
            f"Received input shapes: y_pred.shape={p.shape} and y_true.shape={t.shape}."
        )


def _weights(sample_weight: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``sample_weight`` broadcast to ``shape``: a weight per sample (``(n,)``) is repeated
    along the trailing axes, as Keras does."""
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim < len(shape):
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(
            f"{name}: sample_weight of shape {np.shape(sample_weight)} does not fit "
            f"predictions of shape {shape}"
        ) from None


def _number(value: object, what: str) -> float:
    """A finite, non-negative number read back from a saved state."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be finite and non-negative, got {value!r}")
    return number


def _rows(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=tuple(range(1, values.ndim))) if values.ndim > 1 else values


def _samplewise(
    values: np.ndarray, sample_weight: ArrayLike | None, name: str
) -> tuple[float, float]:
    """``(sum, count)`` of one batch, as Keras' ``Mean.update_state``: values are averaged
    over their trailing axes to one per row; unweighted, the count is the number of rows;
    weighted, values with more axes than the weights are averaged down to the weights' rank,
    multiplied by them, and the count is the sum of the (row-averaged) weights."""
    values = values.astype(np.float64, copy=False)
    if sample_weight is None:
        return float(np.sum(_rows(values))), (values.shape[0] if values.ndim else 1)
    w = np.asarray(sample_weight, dtype=np.float64)
    if values.ndim == w.ndim + 1:
        if values.shape[-1] == 1:
            values = values[..., 0]
        else:
            w = w[..., None]
    elif w.ndim == values.ndim + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if values.ndim > w.ndim:
        values = values.mean(axis=tuple(range(w.ndim, values.ndim)))
    w = _weights(w, values.shape, name)
    return float(np.sum(_rows(values * w))), float(np.sum(_rows(w)))


class Metric:
    """A running mean of a per-sample quantity: `update_state`, `result`, `reset_state`.

    With ``sample_weight`` the mean is weighted, as Keras' ``Mean`` (see `_samplewise`).
    """

    default_name = "metric"
    #: "up" when higher is better (Keras' ``_direction``), for callbacks' ``mode="auto"``
    direction = "down"

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count: float = 0

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        values = np.asarray(self.values(np.asarray(y_true), np.asarray(y_pred)))
        total, count = _samplewise(values, sample_weight, self.name)
        self._total += total
        self._count += count

    def result(self) -> Result:
        return self._total / self._count if self._count else 0.0

    def get_state(self) -> dict[str, Any]:
        """The running sums, JSON-able (a checkpoint keeps them): ``{"total", "count"}``."""
        return {"total": self._total, "count": self._count}

    def set_state(self, state: object) -> None:
        """Restore what `get_state` returned.

        Raises:
            ValueError: not a dict with exactly the keys of `get_state`, or values of the
                wrong kind (see the subclass).
        """
        if not isinstance(state, dict) or set(state) != {"total", "count"}:
            raise ValueError(f"metric {self.name!r}: a state must be {{'total', 'count'}}")
        total = state["total"]
        if isinstance(total, bool) or not isinstance(total, numbers.Real):
            raise ValueError(f"metric {self.name!r}: total must be a number, got {total!r}")
        if not math.isfinite(float(total)):
            raise ValueError(f"metric {self.name!r}: total must be finite, got {total!r}")
        count = state["count"]
        self._count = _number(count, f"metric {self.name!r}: count")
        if isinstance(count, numbers.Integral):
            self._count = int(count)
        self._total = float(total)

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
    direction = "up"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    default_name = "sparse_categorical_accuracy"
    direction = "up"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return y_true.reshape(-1).astype(np.int64) == y_pred.argmax(axis=-1)


class BinaryAccuracy(Metric):
    default_name = "binary_accuracy"
    direction = "up"

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
    direction = "up"
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


class RootMeanSquaredError(Metric):
    """``sqrt`` of the running mean squared error (weighted like Keras' ``Mean``)."""

    default_name = "root_mean_squared_error"

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        return np.square(y_pred.astype(np.float64) - y_true)

    def result(self) -> float:
        return math.sqrt(self._total / self._count) if self._count else 0.0


class _LossMetric(Metric):
    """The running mean of a loss' per-sample values (Keras' ``MeanMetricWrapper``)."""

    loss: loss_module.Loss

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_pred = y_pred.astype(np.result_type(y_pred.dtype, np.float32), copy=False)
        return self.loss.per_sample(loss_module._match(y_true, y_pred), y_pred)


class MeanAbsolutePercentageError(_LossMetric):
    default_name = "mean_absolute_percentage_error"
    loss = loss_module.MeanAbsolutePercentageError()


class MeanSquaredLogarithmicError(_LossMetric):
    default_name = "mean_squared_logarithmic_error"
    loss = loss_module.MeanSquaredLogarithmicError()


class LogCoshError(_LossMetric):
    default_name = "logcosh"
    loss = loss_module.LogCosh()


class Hinge(_LossMetric):
    default_name = "hinge"
    loss = loss_module.Hinge()


class SquaredHinge(_LossMetric):
    default_name = "squared_hinge"
    loss = loss_module.SquaredHinge()


class CategoricalHinge(_LossMetric):
    default_name = "categorical_hinge"
    loss = loss_module.CategoricalHinge()


class KLDivergence(_LossMetric):
    default_name = "kl_divergence"
    loss = loss_module.KLDivergence()


class Poisson(_LossMetric):
    default_name = "poisson"
    loss = loss_module.Poisson()


class _CrossentropyMetric(_LossMetric):
    """The running mean of a cross-entropy loss, with the loss' arguments."""

    loss_class: type[loss_module.CategoricalCrossentropy] | type[loss_module.BinaryCrossentropy]

    def __init__(
        self, name: str | None = None, from_logits: bool = False, label_smoothing: float = 0.0
    ) -> None:
        self.loss = self.loss_class(from_logits, label_smoothing)
        super().__init__(name)

    def get_config(self) -> Config:
        return {**super().get_config(), **self.loss.get_config()}


class BinaryCrossentropy(_CrossentropyMetric):
    """The running mean of `losses.BinaryCrossentropy` (same arguments)."""

    default_name = "binary_crossentropy"
    loss_class = loss_module.BinaryCrossentropy


class CategoricalCrossentropy(_CrossentropyMetric):
    """The running mean of `losses.CategoricalCrossentropy` (same arguments)."""

    default_name = "categorical_crossentropy"
    loss_class = loss_module.CategoricalCrossentropy


class SparseCategoricalCrossentropy(_CrossentropyMetric):
    """The running mean of `losses.SparseCategoricalCrossentropy` (``label_smoothing`` is an
    extension: Keras 3's sparse metric has none)."""

    default_name = "sparse_categorical_crossentropy"
    loss_class = loss_module.SparseCategoricalCrossentropy


# -- metrics with array state --------------------------------------------------------------


class _StateMetric(Metric):
    """A metric whose state is a few named float arrays (confusion counts, per-class sums).

    `get_state` gives them as nested lists; `set_state` checks names, shapes and values.
    """

    _state: dict[str, np.ndarray]

    def _initial_state(self) -> dict[str, np.ndarray] | None:
        """The zero state, or None while the shape is unknown (built by the first batch)."""
        raise NotImplementedError

    def reset_state(self) -> None:
        self._state = self._initial_state() or {}

    def get_state(self) -> dict[str, Any]:
        return {key: value.tolist() for key, value in self._state.items()}

    def set_state(self, state: object) -> None:
        """Restore what `get_state` returned.

        Raises:
            ValueError: other keys, other shapes, or values that are not finite and
                non-negative (counts and sums of weights; `R2Score`'s sum of targets may be
                negative).
        """
        initial = self._initial_state()
        if initial is None and state == {}:
            self._state = {}  # a lazily built metric that has seen nothing yet
            return
        keys = set(initial) if initial is not None else set(self._state_keys)
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"metric {self.name!r}: a state must have the keys {sorted(keys)}")
        restored: dict[str, np.ndarray] = {}
        for key in sorted(keys) if initial is not None else self._state_keys:
            try:
                value = np.asarray(state[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"metric {self.name!r}: {key} must be numbers") from None
            if initial is not None:
                expected = initial[key].shape
            elif key in self._scalar_keys:
                expected = ()
            elif key != self._state_keys[0]:
                expected = restored[self._state_keys[0]].shape
            else:  # the first key: a number, or one per class
                expected = value.shape if value.ndim <= 1 else (-1,)
            if value.shape != expected:
                raise ValueError(
                    f"metric {self.name!r}: {key} must have shape {expected}, got {value.shape}"
                )
            if not np.all(np.isfinite(value)) or (
                key not in self._signed_keys and np.any(value < 0)
            ):
                raise ValueError(f"metric {self.name!r}: {key} must be finite and non-negative")
            restored[key] = value
        self._state = restored

    #: a lazily built state: its keys (the first fixes the shape of the others) ...
    _state_keys: tuple[str, ...] = ()
    #: ... those that are single numbers, and those that may be negative
    _scalar_keys: frozenset[str] = frozenset()
    _signed_keys: frozenset[str] = frozenset()


def _thresholds_list(thresholds: float | Sequence[float] | None, default: float) -> list[float]:
    """Keras' ``parse_init_thresholds``: None is ``[default]``, a number is a list of one; each
    value must be in [0, 1]."""
    if thresholds is None:
        return [default]
    values = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
    if not values:
        raise ValueError("thresholds must not be empty")
    checked = [finite(t, "a threshold") for t in values]
    invalid = [t for t in checked if t < 0 or t > 1]
    if invalid:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    return checked


def _evenly_distributed(thresholds: Sequence[float]) -> bool:
    """Keras' ``is_evenly_distributed_thresholds`` (it then clips predictions to [0, 1])."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _top_k_only(y_pred: np.ndarray, k: int) -> np.ndarray:
    """Keep the ``k`` highest values of each row (the first ones among ties), others -inf."""
    order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :k]
    kept = np.full_like(y_pred, -np.inf)
    np.put_along_axis(kept, order, np.take_along_axis(y_pred, order, axis=-1), axis=-1)
    return kept


def confusion_counts(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    thresholds: Sequence[float],
    sample_weight: ArrayLike | None = None,
    top_k: int | None = None,
    class_id: int | None = None,
    clip: bool = False,
    name: str = "metric",
) -> dict[str, np.ndarray]:
    """Weighted true/false positive/negative counts at each threshold, as Keras'
    ``update_confusion_matrix_variables``: a prediction is positive at ``t`` when it is
    *strictly greater* than ``t``; a label is positive when non-zero; NaN predictions are
    never positive.

    Cost O(n log T + T): each prediction's count of thresholds below it, then cumulative sums.
    """
    p = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true)
    if t.size != p.size:
        raise ValueError(
            f"{name}: y_true has {t.size} values but y_pred has {p.size} "
            f"(shapes {t.shape} and {p.shape})"
        )
    t = t.reshape(p.shape)
    w = None if sample_weight is None else _weights(sample_weight, p.shape, name)
    if top_k is not None:
        if p.ndim == 0:
            raise ValueError(f"{name}: top_k needs predictions with a class axis")
        p = _top_k_only(p, top_k)
    if class_id is not None:
        if p.ndim < 2 or not 0 <= class_id < p.shape[-1]:
            raise ValueError(
                f"{name}: class_id={class_id} needs predictions of shape (n, classes) "
                f"with more than {class_id} classes, got {p.shape}"
            )
        p, t = p[..., class_id], t[..., class_id]
        w = None if w is None else w[..., class_id]
    if clip:
        p = np.clip(p, 0.0, 1.0)
    p, positive = p.reshape(-1), (t.reshape(-1) != 0)
    weights = np.ones(p.shape) if w is None else w.reshape(-1)
    levels = np.asarray(thresholds, dtype=np.float64)
    order = np.argsort(levels, kind="stable")
    above = np.searchsorted(levels[order], p, side="left")  # thresholds strictly below p
    above[np.isnan(p)] = 0
    counts: dict[str, np.ndarray] = {}
    for above_key, below_key, mask in (("tp", "fn", positive), ("fp", "tn", ~positive)):
        bins = np.bincount(above, weights=weights * mask, minlength=len(levels) + 1)
        # positives at threshold i: the buckets above it; negatives: the buckets up to it
        for key, sums in (
            (above_key, np.cumsum(bins[::-1])[::-1][1:]),
            (below_key, np.cumsum(bins)[:-1]),
        ):
            counts[key] = np.empty(len(levels))
            counts[key][order] = sums
    return counts


def _divide_no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def _one_or_all(values: np.ndarray) -> Result:
    return float(values[0]) if values.size == 1 else values


class _ConfusionMetric(_StateMetric):
    """Confusion counts at ``thresholds`` (Keras' ``thresholds``, ``top_k``, ``class_id``)."""

    _counts: tuple[str, ...] = ("tp", "fp", "tn", "fn")

    def __init__(
        self,
        thresholds: float | Sequence[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
    ) -> None:
        self.init_thresholds = (
            list(thresholds) if isinstance(thresholds, (list, tuple)) else thresholds
        )
        default = 0.5 if top_k is None else -math.inf
        self.thresholds = _thresholds_list(thresholds, default)
        self.top_k = None if top_k is None else positive_int(top_k, "top_k")
        if class_id is not None and (
            isinstance(class_id, bool) or not isinstance(class_id, numbers.Integral) or class_id < 0
        ):
            raise ValueError(f"class_id must be a non-negative integer, got {class_id!r}")
        self.class_id = None if class_id is None else int(class_id)
        self._clip = _evenly_distributed(self.thresholds)
        super().__init__(name)

    def _initial_state(self) -> dict[str, np.ndarray]:
        return {key: np.zeros(len(self.thresholds)) for key in self._counts}

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        counts = confusion_counts(
            y_true,
            y_pred,
            self.thresholds,
            sample_weight,
            self.top_k,
            self.class_id,
            clip=self._clip,
            name=self.name,
        )
        for key in self._counts:
            self._state[key] = self._state[key] + counts[key]

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_ConfusionMetric):
    """``tp / (tp + fp)`` at each threshold (default 0.5; with ``top_k``, the k highest
    scores of each row are the positive predictions); 0 when nothing is predicted positive.
    One number for one threshold, an array for several."""

    default_name = "precision"
    direction = "up"
    _counts = ("tp", "fp")

    def result(self) -> Result:
        tp, fp = self._state["tp"], self._state["fp"]
        return _one_or_all(_divide_no_nan(tp, tp + fp))


class Recall(_ConfusionMetric):
    """``tp / (tp + fn)`` at each threshold (as `Precision`)."""

    default_name = "recall"
    direction = "up"
    _counts = ("tp", "fn")

    def result(self) -> Result:
        tp, fn = self._state["tp"], self._state["fn"]
        return _one_or_all(_divide_no_nan(tp, tp + fn))


class _ConditionCount(_ConfusionMetric):
    """One confusion count at each of ``thresholds`` (default 0.5)."""

    _key = "tp"

    def __init__(
        self, thresholds: float | Sequence[float] | None = None, name: str | None = None
    ) -> None:
        self._counts = (self._key,)
        super().__init__(thresholds, name=name)

    def result(self) -> Result:
        return _one_or_all(self._state[self._key])

    def get_config(self) -> Config:
        return {"name": self.name, "thresholds": self.init_thresholds}


class TruePositives(_ConditionCount):
    default_name = "true_positives"
    direction = "up"
    _key = "tp"


class FalsePositives(_ConditionCount):
    default_name = "false_positives"
    _key = "fp"


class TrueNegatives(_ConditionCount):
    default_name = "true_negatives"
    direction = "up"
    _key = "tn"


class FalseNegatives(_ConditionCount):
    default_name = "false_negatives"
    _key = "fn"


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(_StateMetric):
    """Area under the ROC or precision-recall curve, approximated as Keras does: confusion
    counts at ``num_thresholds`` thresholds (``-1e-7``, ``i / (num_thresholds - 1)``,
    ``1 + 1e-7``), then a Riemann sum (``summation_method``); the PR curve with
    "interpolation" uses Davis & Goadrich's interpolation of precision (Keras'
    ``interpolate_pr_auc``). Labels and predictions are flattened (``multi_label=False``);
    ``from_logits=True`` applies a sigmoid first.
    """

    default_name = "auc"
    direction = "up"

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        thresholds: Sequence[float] | None = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Sequence[float] | None = None,
        from_logits: bool = False,
    ) -> None:
        if str(curve).lower() not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected one of ROC, PR, PRGAIN')
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(
                f'Invalid `summation_method` argument value "{summation_method}". '
                f"Expected one of: {', '.join(_SUMMATIONS)}"
            )
        if multi_label or num_labels is not None or label_weights is not None:
            raise ValueError(
                "AUC: multi_label, num_labels and label_weights are not supported "
                "(labels are flattened, as with Keras' default multi_label=False)"
            )
        self.curve = _CURVES[str(curve).lower()]
        self.summation_method = str(summation_method).lower()
        self.from_logits = bool(from_logits)
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_thresholds_list(list(thresholds), 0.5))
            self.num_thresholds = len(inner) + 2
            self._clip = _evenly_distributed([0.0, *inner, 1.0])
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral):
                raise ValueError(f"num_thresholds must be an integer, got {num_thresholds!r}")
            if num_thresholds <= 1:
                raise ValueError(
                    "Argument `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = int(num_thresholds)
            inner = [
                (i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)
            ]
            self._clip = True
        self.thresholds = [0.0 - EPSILON, *inner, 1.0 + EPSILON]
        super().__init__(name)

    def _initial_state(self) -> dict[str, np.ndarray]:
        return {key: np.zeros(self.num_thresholds) for key in ("tp", "fp", "tn", "fn")}

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        p = np.asarray(y_pred, dtype=np.float64)
        if self.from_logits:
            p = 0.5 * (1.0 + np.tanh(0.5 * p))
        counts = confusion_counts(
            y_true, p, self.thresholds, sample_weight, clip=self._clip, name=self.name
        )
        for key, value in counts.items():
            self._state[key] = self._state[key] + value

    def _interpolate_pr_auc(self) -> float:
        tp, fp, fn = self._state["tp"], self._state["fp"], self._state["fn"]
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        increments = _divide_no_nan(
            slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0)
        )
        return float(np.sum(increments))

    def result(self) -> float:
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp, tn, fn = (self._state[k] for k in ("tp", "fp", "tn", "fn"))
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN, with Keras' fixes for its divergent cases
            scaling = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scaling * _divide_no_nan(fn, tp)
            precision_gain = 1.0 - scaling * _divide_no_nan(fp, tp)
            recall_gain = np.maximum(np.where(tp == 0, 0.0, recall_gain), 0.0)
            precision_gain = np.where(tp == 0, 1.0, precision_gain)
            x, y = recall_gain, precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "thresholds": self.thresholds[1:-1] if self._init_from_thresholds else None,
            "multi_label": False,
            "num_labels": None,
            "label_weights": None,
            "from_logits": self.from_logits,
        }


_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(_StateMetric):
    """F-beta per class from running true/false positive and false negative counts (Keras'
    formula, with its ``1e-7`` in each denominator).

    Args:
        average: None (one score per class), "micro" (counts pooled over classes), "macro"
            (mean of the class scores) or "weighted" (mean weighted by each class' count of
            true labels).
        beta: weight of recall against precision (> 0).
        threshold: predictions above it are positive; None: the highest score of each row
            (when it is not 0) is the positive one.
    """

    default_name = "fbeta_score"
    direction = "up"
    _state_keys = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str | None = None,
    ) -> None:
        if average not in _AVERAGES:
            raise ValueError(
                "Invalid `average` argument value. Expected one of: "
                f"{{None, 'micro', 'macro', 'weighted'}}. Received: average={average}"
            )
        beta = finite(beta, "beta")
        if beta <= 0.0:
            raise ValueError(
                f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}"
            )
        if threshold is not None:
            threshold = finite(threshold, "threshold")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError(
                    "Invalid `threshold` argument value. It should verify 0 < threshold <= 1. "
                    f"Received: threshold={threshold}"
                )
        self.average = average
        self.beta = beta
        self.threshold = threshold
        super().__init__(name)

    def _initial_state(self) -> None:
        return None  # one entry per class: known at the first batch

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        p = np.asarray(y_pred, dtype=np.float64)
        t = np.asarray(y_true, dtype=np.float64)
        _check_2d(type(self).__name__, p, t)
        if t.shape != p.shape:
            raise ValueError(f"{self.name}: y_true shape {t.shape} differs from y_pred {p.shape}")
        if self._state and self._state["true_positives"].shape not in ((), (p.shape[1],)):
            raise ValueError(
                f"{self.name}: {p.shape[1]} classes, but earlier batches had "
                f"{self._state['true_positives'].shape[0]}"
            )
        if self.threshold is None:
            predicted = (p >= p.max(axis=-1, keepdims=True)) & (np.abs(p) > 1e-9)
        else:
            predicted = p > self.threshold
        pred = predicted.astype(np.float64)
        axis = None if self.average == "micro" else 0
        w = None if sample_weight is None else _weights(sample_weight, p.shape, self.name)

        def weighted_sum(values: np.ndarray) -> np.ndarray:
            return np.asarray(np.sum(values if w is None else values * w, axis=axis))

        updates = {
            "true_positives": weighted_sum(pred * t),
            "false_positives": weighted_sum(pred * (1 - t)),
            "false_negatives": weighted_sum((1 - pred) * t),
            "intermediate_weights": weighted_sum(t),
        }
        _accumulate(self._state, updates)

    def result(self) -> Result:
        if not self._state:
            return 0.0
        tp = self._state["true_positives"]
        precision = tp / (tp + self._state["false_positives"] + EPSILON)
        recall = tp / (tp + self._state["false_negatives"] + EPSILON)
        b2 = self.beta**2
        score = (1 + b2) * (precision * recall / (b2 * precision + recall + EPSILON))
        if self.average == "weighted":
            weights = self._state["intermediate_weights"]
            return float(np.sum(score * weights / (np.sum(weights) + EPSILON)))
        if self.average is not None:
            return float(np.mean(score))
        return score

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """`FBetaScore` with ``beta = 1``."""

    default_name = "f1_score"

    def __init__(
        self, average: str | None = None, threshold: float | None = None, name: str | None = None
    ) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)

    def get_config(self) -> Config:
        config = super().get_config()
        del config["beta"]
        return config


class R2Score(_StateMetric):
    """The coefficient of determination per output, from running sums (Keras' ``R2Score``).

    Args:
        class_aggregation: "uniform_average" (mean over outputs), "variance_weighted_average"
            (weighted by each output's variance) or None (one score per output).
        num_regressors: > 0 gives the adjusted R2, ``1 - (1 - R2)(n - 1)/(n - p - 1)`` with
            ``n`` the number of values seen (falling back to the plain score, with a warning,
            when ``p >= n - 1``, as Keras).
    """

    default_name = "r2_score"
    direction = "up"
    _state_keys = ("sum", "squared_sum", "total_mse", "count", "num_samples")
    _signed_keys = frozenset({"sum"})
    _scalar_keys = frozenset({"num_samples"})
    _AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str | None = None,
    ) -> None:
        if class_aggregation not in self._AGGREGATIONS:
            raise ValueError(
                "Invalid value for argument `class_aggregation`. Expected one of "
                f"{self._AGGREGATIONS}. Received: class_aggregation={class_aggregation}"
            )
        if (
            isinstance(num_regressors, bool)
            or not isinstance(num_regressors, numbers.Integral)
            or num_regressors < 0
        ):
            raise ValueError(
                "Invalid value for argument `num_regressors`. Expected a value >= 0. "
                f"Received: num_regressors={num_regressors}"
            )
        self.class_aggregation: str | None = class_aggregation
        self.num_regressors: int = int(num_regressors)
        super().__init__(name)

    def _initial_state(self) -> None:
        return None

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        p = np.asarray(y_pred, dtype=np.float64)
        t = np.asarray(y_true, dtype=np.float64)
        if t.size == p.size and t.shape != p.shape:
            t = t.reshape(p.shape)
        _check_2d("R2Score", p, t)
        if "sum" in self._state and self._state["sum"].shape != (p.shape[1],):
            raise ValueError(
                f"{self.name}: {p.shape[1]} outputs, but earlier batches had "
                f"{self._state['sum'].shape[0]}"
            )
        w = (
            np.ones(p.shape)
            if sample_weight is None
            else _weights(sample_weight, p.shape, self.name)
        )
        weighted = t * w
        updates = {
            "sum": weighted.sum(axis=0),
            "squared_sum": (t * weighted).sum(axis=0),
            "total_mse": (np.square(t - p) * w).sum(axis=0),
            "count": w.sum(axis=0),
            "num_samples": np.asarray(float(t.size)),
        }
        _accumulate(self._state, updates)

    def result(self) -> Result:
        if not self._state:
            return 0.0
        s, count = self._state["sum"], self._state["count"]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s / count
            total = self._state["squared_sum"] - s * mean
            raw = 1 - self._state["total_mse"] / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        score: Result
        if self.class_aggregation == "uniform_average":
            score = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            score = float(np.sum(total * raw) / np.sum(total))
        else:
            score = raw
        p, n = self.num_regressors, float(self._state["num_samples"])
        if p:
            if p > n - 1:
                warnings.warn(
                    "More independent predictors than datapoints in adjusted R2 score. "
                    "Falling back to standard R2 score.",
                    stacklevel=2,
                )
            elif p == n - 1:
                warnings.warn(
                    "Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                    stacklevel=2,
                )
            else:
                score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return score

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }


def _snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: ``"RootMeanSquaredError"`` -> ``"root_mean_squared_error"``,
    ``"AUC"`` -> ``"auc"``, ``"F1Score"`` -> ``"f1_score"``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


REGISTRY: Registry[Metric] = Registry(
    "metric",
    Metric,
    # Keras 3's aliases (keras.metrics.get); any case is accepted here
    aliases={
        "mse": "mean_squared_error",
        "mae": "mean_absolute_error",
        "mape": "mean_absolute_percentage_error",
        "msle": "mean_squared_logarithmic_error",
        "bce": "binary_crossentropy",
    },
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
    RootMeanSquaredError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    LogCoshError,
    R2Score,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Precision,
    Recall,
    AUC,
    TruePositives,
    FalsePositives,
    TrueNegatives,
    FalseNegatives,
    FBetaScore,
    F1Score,
):
    # Keras looks metrics up by class name and by its snake case; the default (log) name
    # is accepted too where it differs ("fbeta_score", "logcosh")
    REGISTRY.register(_cls, names=dict.fromkeys((_snake_case(_cls.__name__), _cls.default_name)))
_ACCURACY_BY_TARGET: dict[str, type[Metric]] = {
    "categorical": CategoricalAccuracy,
    "sparse": SparseCategoricalAccuracy,
    "binary": BinaryAccuracy,
}
_CROSSENTROPY_BY_TARGET: dict[str, type[_CrossentropyMetric]] = {
    "categorical": CategoricalCrossentropy,
    "sparse": SparseCategoricalCrossentropy,
    "binary": BinaryCrossentropy,
}


def direction(name: str) -> str | None:
    """``"up"`` or ``"down"`` for a logged metric name (a ``val_`` prefix ignored) that names
    a known metric, else None."""
    name = name[4:] if name.startswith("val_") else name
    try:
        return REGISTRY.lookup(name).direction
    except ValueError:
        return None


def get(identifier: str | Metric | Config, loss: object = None) -> Metric:
    """A `Metric` from a name, a config dict or an instance; ``"accuracy"``/``"acc"`` is the
    accuracy that matches ``loss`` (a `Loss`), ``"crossentropy"``/``"ce"`` the cross-entropy
    that matches it (with its ``from_logits``).

    Keras chooses both from the shapes of the targets and outputs; the loss says the same
    here. Keras' "crossentropy" ignores ``from_logits`` (it would read logits as
    probabilities); this one follows the loss, so it equals the loss without regularization.
    """
    if not isinstance(identifier, str):
        return REGISTRY.get(identifier)
    if identifier.lower() in ("crossentropy", "ce"):
        kind = getattr(loss, "target_kind", "categorical")
        crossentropy = _CROSSENTROPY_BY_TARGET.get(kind)
        if crossentropy is None:
            raise ValueError(
                f"{identifier!r} is not defined for the loss {getattr(loss, 'name', loss)!r}"
            )
        return crossentropy(name=identifier, from_logits=getattr(loss, "from_logits", False))
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
    return REGISTRY.lookup(identifier, extra_names=["accuracy", "crossentropy"])(name=identifier)


def serialize(metric: Metric) -> Config:
    """``{"class_name": ..., "config": ...}``."""
    return REGISTRY.serialize(metric)


def deserialize(config: Config) -> Metric:
    return REGISTRY.deserialize(config)
