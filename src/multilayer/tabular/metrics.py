"""The metrics of a table's task, in NumPy: what ``mlp evaluate`` prints and metrics.json holds.

`task_metrics` gives, for classification, ``accuracy``, ``log_loss``, ``roc_auc`` and ``f1``;
for regression ``rmse``, ``mae`` and ``r2``; and ``samples`` (the number of rows) for both.
They agree with scikit-learn's functions of the same names (the tests compare them), with
these choices where scikit-learn raises, warns or returns NaN:

- ``roc_auc`` is ``None`` where it is undefined: for a binary task whose ``y_true`` has one
  class only, and for multi-class (one class against the rest) and multi-label tasks when no
  class or label has both positive and negative rows. Otherwise it is the mean over the
  classes or labels that have both (scikit-learn gives NaN or raises if any has not). Ties in the scores
  count one half, as in the area under the ROC curve.
- ``r2`` is ``None`` when ``y_true`` is constant (scikit-learn returns 0.0 or 1.0 there).
- ``f1`` is the F1 score of ``classes[1]`` for a binary task, and the unweighted mean over
  classes (multi-class: those in ``y_true`` or predicted, as scikit-learn's ``average="macro"``)
  or labels (multi-label: all of them) otherwise. A class never present nor predicted scores
  0.0 (scikit-learn's ``zero_division=0``).
- ``accuracy`` of a multi-label task is the share of rows with every label right (scikit-learn's
  ``accuracy_score``); ``log_loss`` there is the mean binary cross-entropy over all labels.
- ``log_loss`` clips probabilities to ``[eps, 1 - eps]`` with ``eps`` of float64, so a wrong
  prediction made with certainty costs about 36, never infinity.

Every value is a Python ``float``, ``int`` or ``None``: the dict goes into strict JSON as is.

Inputs (``y_true``), as :meth:`multilayer.data.tables.Table.target` gives them: regression,
the values; binary and multi-class, the class index (0 .. k-1) per row; multi-label, a 0/1
matrix (rows, labels). ``outputs`` are the model's final units: regression, the predicted
values (n,) or (n, 1); binary, the probability of ``classes[1]``, (n,) or (n, 1); multi-class,
(n, k) probabilities; multi-label, (n, k) probabilities, one per label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multilayer.tabular.spec import TableSpec

__all__ = [
    "THRESHOLD",
    "TASKS",
    "calibration_curve",
    "roc_auc",
    "roc_curve",
    "spec_metrics",
    "task_metrics",
]

TASKS = ("regression", "binary", "multiclass", "multilabel")
#: A binary or multi-label probability above this is the positive class.
THRESHOLD = 0.5
_EPS = float(np.finfo(np.float64).eps)


def task_metrics(
    task: str, y_true: Any, outputs: Any, classes: Sequence[Any] = ()
) -> dict[str, float | int | None]:
    """The task's metrics for ``outputs`` against ``y_true`` (see the module docstring).

    Raises:
        ValueError: an unknown task, no rows, ``y_true`` and ``outputs`` of different lengths
            or shapes that do not fit the task, class indices outside ``classes``, labels that
            are not 0/1, or outputs that are not finite (probabilities outside [0, 1]).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    y = np.asarray(y_true)
    p = np.asarray(outputs, dtype=np.float64)
    if y.shape[:1] != p.shape[:1]:
        raise ValueError(
            f"y_true has {y.shape[0] if y.ndim else 0} rows but the outputs have "
            f"{p.shape[0] if p.ndim else 0}"
        )
    if y.ndim == 0 or len(y) == 0:
        raise ValueError("no rows to compute metrics on")
    if not np.all(np.isfinite(p)):
        raise ValueError("the outputs hold NaN or infinite values")
    if task == "regression":
        return _regression(_column(y.astype(np.float64), "y_true"), _column(p, "outputs"))
    if task == "binary":
        return _binary(_indices(y, 2), _probabilities(_column(p, "outputs")))
    k = len(classes)
    if task == "multiclass":
        if p.ndim != 2 or p.shape[1] != k:
            raise ValueError(f"multiclass outputs must have shape (rows, {k}), got {p.shape}")
        return _multiclass(_indices(y, k), _probabilities(p))
    if y.ndim != 2 or p.shape != y.shape or (k and y.shape[1] != k):
        raise ValueError(
            f"multilabel y_true and outputs must both have shape (rows, {k or 'labels'}), "
            f"got {y.shape} and {p.shape}"
        )
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("multilabel y_true must hold 0 and 1 only")
    return _multilabel(y.astype(np.int64), _probabilities(p))


def spec_metrics(
    spec: TableSpec, y_true: Any, outputs: Any, prefix: str = "test_"
) -> dict[str, float | int | None]:
    """`task_metrics` for a table model's ``outputs`` (final units, (rows, spec.n_outputs))
    against ``y_true`` as `task_metrics` takes it, keys prefixed with ``prefix`` and without
    ``samples``: what a table run writes into metrics.json (``test_rmse``, ``test_roc_auc``...).
    """
    p = np.asarray(outputs)
    if spec.n_outputs == 1 and p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    values = task_metrics(spec.task, y_true, p, spec.classes)
    return {f"{prefix}{key}": value for key, value in values.items() if key != "samples"}


def _column(values: np.ndarray, name: str) -> np.ndarray:
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{name} must have shape (rows,) or (rows, 1), got {values.shape}")
    return values


def _indices(y: np.ndarray, k: int) -> np.ndarray:
    y = _column(y, "y_true")
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() >= k)):
        raise ValueError(f"y_true must hold class indices 0 .. {k - 1}")
    return y.astype(np.int64)


def _probabilities(p: np.ndarray) -> np.ndarray:
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError("classification outputs must be probabilities in [0, 1]")
    return p


# -- regression --------------------------------------------------------------------------------
def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float | int | None]:
    error = p - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "samples": len(y),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": None if total == 0.0 else 1.0 - float(np.sum(error**2)) / total,
    }


# -- classification ----------------------------------------------------------------------------
def _binary(y: np.ndarray, p: np.ndarray) -> dict[str, float | int | None]:
    predicted = (p > THRESHOLD).astype(np.int64)
    return {
        "samples": len(y),
        "accuracy": float(np.mean(predicted == y)),
        "log_loss": _binary_log_loss(y, p),
        "roc_auc": roc_auc(y, p),
        "f1": _f1(y == 1, predicted == 1),
    }


def _multiclass(y: np.ndarray, p: np.ndarray) -> dict[str, float | int | None]:
    k = p.shape[1]
    predicted = np.argmax(p, axis=1)
    # scikit-learn's log_loss scales each row to sum to 1 before clipping.
    scaled = p / np.maximum(p.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
    picked = np.clip(scaled[np.arange(len(y)), y], _EPS, 1 - _EPS)
    present = np.union1d(np.unique(y), np.unique(predicted))
    return {
        "samples": len(y),
        "accuracy": float(np.mean(predicted == y)),
        "log_loss": float(-np.mean(np.log(picked))),
        "roc_auc": _mean_defined([roc_auc(y == c, p[:, c]) for c in range(k)]),
        "f1": float(np.mean([_f1(y == c, predicted == c) for c in present])),
    }


def _multilabel(y: np.ndarray, p: np.ndarray) -> dict[str, float | int | None]:
    predicted = (p > THRESHOLD).astype(np.int64)
    labels = range(y.shape[1])
    return {
        "samples": len(y),
        "accuracy": float(np.mean(np.all(predicted == y, axis=1))),
        "log_loss": float(np.mean([_binary_log_loss(y[:, j], p[:, j]) for j in labels])),
        "roc_auc": _mean_defined([roc_auc(y[:, j], p[:, j]) for j in labels]),
        "f1": float(np.mean([_f1(y[:, j] == 1, predicted[:, j] == 1) for j in labels])),
    }


def _binary_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = int(np.sum(truth & predicted))
    wrong = int(np.sum(truth != predicted))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + wrong)


def _mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(y_true: Any, scores: Any) -> float | None:
    """Area under the ROC curve of ``scores`` for the positive rows of ``y_true`` (truthy),
    ties counting one half (the Mann-Whitney statistic); None if ``y_true`` has one class."""
    positive = np.asarray(y_true).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct threshold, highest first, starting at
    (0, 0) with the threshold +inf: scikit-learn's ``roc_curve(drop_intermediate=False)``.

    Raises ValueError if ``y_true`` has one class only (a rate would divide by zero).
    """
    positive = np.asarray(y_true).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if positive.all() or not positive.any():
        raise ValueError("a ROC curve needs both positive and negative rows")
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    hits = positive[order]
    last = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    tps = np.cumsum(hits)[last]
    fps = (last + 1) - tps
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return fpr, tpr, np.r_[np.inf, ordered[last]]


def calibration_curve(
    y_true: Any, probabilities: Any, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reliability diagram: for each of ``bins`` equal-width probability bins that holds
    rows, the share of positive rows, the mean predicted probability and the row count
    (scikit-learn's ``calibration_curve(strategy="uniform")`` gives the first two)."""
    positive = np.asarray(y_true).astype(np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p)  # bins (a, b], the first [0, b]
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=positive, minlength=bins)
    sums = np.bincount(index, weights=p, minlength=bins)
    kept = counts > 0
    return hits[kept] / counts[kept], sums[kept] / counts[kept], counts[kept]
