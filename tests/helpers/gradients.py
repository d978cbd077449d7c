"""A whole model's parameter gradients against central finite differences of its loss."""

from __future__ import annotations

import numpy as np

from multilayer.engine.optimizers import SGD

#: The finite-difference step.
STEP = 1e-6


def _objective(model, x, y) -> float:
    return float(np.mean(model._losses[0].per_sample(y, model._forward(x, training=True))))


def central_differences(values: np.ndarray, objective, step: float = STEP) -> np.ndarray:
    """d objective() / d values[i] for every entry i by central differences; ``values`` (an
    array the objective reads, e.g. ``model.parameters.values`` or a layer's input) is
    changed in place one entry at a time and restored."""
    numeric = np.empty_like(values)
    for index in np.ndindex(values.shape):
        original = values[index]
        values[index] = original + step
        plus = objective()
        values[index] = original - step
        minus = objective()
        values[index] = original
        numeric[index] = (plus - minus) / (2 * step)
    return numeric


def model_gradients_match(model, x, y) -> None:
    """Compile ``model`` with MSE, take one training step's analytic gradients and assert
    they are non-zero and within 1e-7 relative error of central finite differences."""
    model.compile(optimizer=SGD(learning_rate=1e-3), loss="mse")
    model._build_optimizer()
    values = model.parameters.values
    before = values.copy()
    model.train_step(x, y)
    analytic = model.parameters.grads.copy()
    values[...] = before
    numeric = central_differences(values, lambda: _objective(model, x, y))
    assert np.any(analytic != 0)
    error = np.linalg.norm(analytic - numeric) / (
        np.linalg.norm(analytic) + np.linalg.norm(numeric)
    )
    assert error < 1e-7, f"relative error {error:.2e}"
