"""A whole model's parameter gradients against central finite differences of its loss."""

from __future__ import annotations

import numpy as np

from multilayer.engine.optimizers import SGD

#: The finite-difference step.
STEP = 1e-6


def _objective(model, x, y) -> float:
    return float(np.mean(model._losses[0].per_sample(y, model._forward(x, training=True))))


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
    numeric = np.empty_like(values)
    for i in range(values.size):
        original = values[i]
        values[i] = original + STEP
        plus = _objective(model, x, y)
        values[i] = original - STEP
        minus = _objective(model, x, y)
        values[i] = original
        numeric[i] = (plus - minus) / (2 * STEP)
    assert np.any(analytic != 0)
    error = np.linalg.norm(analytic - numeric) / (
        np.linalg.norm(analytic) + np.linalg.norm(numeric)
    )
    assert error < 1e-7, f"relative error {error:.2e}"
