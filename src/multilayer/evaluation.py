"""Classification results beyond accuracy: the confusion matrix and per-class precision/recall.

Pure NumPy, shared by ``mlp train`` / ``mlp evaluate``, the reports and the web app.

Conventions: rows of a confusion matrix are the true classes, columns the predicted ones
(``matrix[i, j]`` = how many samples of class ``i`` were predicted as ``j``), as in
scikit-learn. A class that is never predicted has an undefined precision and a class that
never occurs an undefined recall: both are NaN here (``None`` in `classification_report`,
which is meant for JSON), rather than a made-up 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multilayer.engine.registry import positive_int

__all__ = ["classification_report", "confusion_matrix", "precision_recall"]


def _labels(values, name: str, num_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {array.shape}")
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and bool(np.all(np.mod(array, 1) == 0))
    )
    if array.size and not integral:
        raise ValueError(f"{name} must hold integer class labels, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        bad = array.min() if array.min() < 0 else array.max()
        raise ValueError(f"{name} has a label out of range: {bad}, expected 0 to {num_classes - 1}")
    return array


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Args:
        y_true: shape (n,), integer labels in ``0 .. num_classes - 1``.
        y_pred: shape (n,), integer labels in the same range.
        num_classes: the number of classes (the matrix is always this size, even if some
            classes do not occur).

    Returns:
        int64 array of shape (num_classes, num_classes): rows true, columns predicted.

    Raises:
        ValueError: not 1-D, different lengths, non-integer labels or labels out of range.
    """
    num_classes = positive_int(num_classes, "num_classes")
    true = _labels(y_true, "y_true", num_classes)
    pred = _labels(y_pred, "y_pred", num_classes)
    if len(true) != len(pred):
        raise ValueError(f"y_true and y_pred have different lengths: {len(true)} and {len(pred)}")
    # One bincount over the flattened (true, predicted) pair index: O(n), no Python loop.
    counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def precision_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall from a confusion matrix (rows true, columns predicted).

    precision[c] = matrix[c, c] / (column c's sum: everything predicted as c);
    recall[c] = matrix[c, c] / (row c's sum: every sample of class c). NaN where undefined.

    Returns:
        ``(precision, recall)``: float64 arrays of shape (num_classes,).
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    correct = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, correct / predicted, np.nan)
        recall = np.where(actual > 0, correct / actual, np.nan)
    return precision, recall


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def classification_report(
    y_true,
    scores,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Accuracy, confusion matrix and per-class precision/recall, as JSON-ready values.

    Args:
        y_true: shape (n,), integer labels.
        scores: shape (n, num_classes) probabilities or scores (the arg-max is the
            prediction), or shape (n,) predicted labels.
        num_classes: defaults to ``scores.shape[1]``; required when ``scores`` are labels.
        class_names: optional names, one per class (default: the class numbers).

    Returns:
        ``{"accuracy": float, "confusion_matrix": [[int]], "per_class": [{"class": int,
        "name": str, "precision": float | None, "recall": float | None, "support": int}]}``.
    """
    scores = np.asarray(scores)
    if scores.ndim == 2:
        num_classes = scores.shape[1] if num_classes is None else num_classes
        predicted = np.argmax(scores, axis=1)
    elif num_classes is None:
        raise ValueError("num_classes is required when scores are predicted labels")
    else:
        predicted = scores
    matrix = confusion_matrix(y_true, predicted, num_classes)
    precision, recall = precision_recall(matrix)
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"expected {num_classes} class names, got {len(names)}")
    total = int(matrix.sum())
    return {
        "accuracy": float(np.trace(matrix) / total) if total else float("nan"),
        "confusion_matrix": matrix.tolist(),
        "per_class": [
            {
                "class": c,
                "name": names[c],
                "precision": _none_if_nan(precision[c]),
                "recall": _none_if_nan(recall[c]),
                "support": int(matrix[c].sum()),
            }
            for c in range(num_classes)
        ],
    }
