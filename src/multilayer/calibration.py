"""Probabilities that mean what they say: temperature scaling and the calibration error.

A network trained with cross-entropy (and label smoothing, as the ``fast`` recipe is) gives
probabilities that are not frequencies: of the test digits it calls "90% sure", more or fewer
than 90% may be right. *Temperature scaling* (Guo et al., 2017) divides the logits ``z`` by
one number ``T`` before the softmax, ``softmax(z / T)``, with ``T`` chosen to minimise the
negative log-likelihood (NLL) on the validation split. It never changes which class is most
probable, only how sure the model says it is.

    from multilayer.calibration import expected_calibration_error, fit_temperature

    T = fit_temperature(validation_logits, validation_labels)
    ece = expected_calibration_error(softmax_t(test_logits, T), test_labels)

The NLL is a convex function of ``1 / T``, so a bounded 1-D minimisation (SciPy's
``minimize_scalar``, Brent's method on ``log T`` within `TEMPERATURE_BOUNDS`) finds its
minimum; SciPy ships with the ``cli`` extra (``pip install 'multilayer[calibration]'``).

The *expected calibration error* (ECE) uses `ECE_BINS` = 15 equal-width bins of the top
class's probability over [0, 1] (the first bin closed, ``[0, 1/15]``, the others half-open
``(a, b]``): ``ECE = sum over bins of (n_bin / n) * |accuracy(bin) - mean confidence(bin)|``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ECE_BINS",
    "TEMPERATURE_BOUNDS",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "reliability_bins",
    "softmax_t",
]

#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15
#: The temperatures `fit_temperature` searches.
TEMPERATURE_BOUNDS = (0.05, 20.0)


def _logits(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or len(z) == 0:
        raise ValueError(f"expected logits of shape (n, classes >= 2), got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("the logits contain NaN or infinite values")
    return z


def _labels(labels, n: int, classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ValueError(f"expected {n} integer labels, got shape {y.shape} dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"labels must be in 0..{classes - 1}")
    return y.astype(np.intp)


def softmax_t(logits, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` row by row, in float64."""
    z = _logits(logits) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    """Mean ``-log softmax(logits / T)[label]`` (natural log)."""
    z = _logits(logits) / float(temperature)
    y = _labels(labels, len(z), z.shape[1])
    top = z.max(axis=1)
    log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), y]))


def fit_temperature(logits, labels) -> float:
    """The temperature ``T`` minimising `negative_log_likelihood` of ``labels`` (the
    validation split's), searched within `TEMPERATURE_BOUNDS`.

    Raises:
        ValueError: malformed logits or labels.
        ImportError: SciPy is missing.
    """
    try:
        from scipy.optimize import minimize_scalar
    except ImportError:
        raise ImportError(
            "fitting a temperature needs SciPy: pip install 'multilayer[calibration]'"
        ) from None
    z = _logits(logits)
    y = _labels(labels, len(z), z.shape[1])
    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(z, y, math.exp(log_t)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-7},
    )
    return float(math.exp(result.x))


def _confidences(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"expected probabilities of shape (n, classes), got {p.shape}")
    y = _labels(labels, len(p), p.shape[1])
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)


def reliability_bins(probabilities, labels, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin (see the module docstring): ``"edges"`` (bins + 1),
    ``"count"``, ``"confidence"`` (mean top probability) and ``"accuracy"`` (NaN in an
    empty bin)."""
    confidence, correct = _confidences(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin b holds (edges[b], edges[b + 1]]; a confidence of exactly 0 goes to the first.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=bins) / count
        accuracy = np.bincount(index, correct, minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_confidence, "accuracy": accuracy}


def expected_calibration_error(probabilities, labels, bins: int = ECE_BINS) -> float:
    """The expected calibration error (see the module docstring), a fraction in [0, 1]."""
    table = reliability_bins(probabilities, labels, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float(np.sum(table["count"][filled] * gaps) / np.sum(table["count"]))
