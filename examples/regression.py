"""A small regression: an MLP learns a noisy sine wave that a straight line cannot fit.

    python examples/regression.py            # about 2 seconds
    MULTILAYER_FAST=1 python examples/regression.py   # fewer samples and epochs, for CI

The target is ``y = sin(2x) + noise`` (noise standard deviation 0.1, so the best possible mean
squared error is about 0.01). The model is two tanh hidden layers and a linear output, trained
with Adam on the mean squared error; early stopping watches the validation loss and keeps the
best weights. It prints the test error next to the best straight line's, and a few predictions.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import multilayer as keras
from multilayer.callbacks import EarlyStopping
from multilayer.layers import Dense

FAST = os.environ.get("MULTILAYER_FAST") == "1" or "--fast" in sys.argv[1:]
NOISE = 0.1


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples: x uniform in [-3, 3], shape (n, 1); y = sin(2x) + noise, shape (n, 1)."""
    x = rng.uniform(-3.0, 3.0, size=(n, 1))
    y = np.sin(2.0 * x) + rng.normal(scale=NOISE, size=(n, 1))
    return x.astype("float32"), y.astype("float32")


def main() -> dict[str, float]:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n_train, epochs = (600, 60) if FAST else (2000, 150)
    x_train, y_train = make_data(n_train, rng)
    x_test, y_test = make_data(500, rng)

    model = keras.Sequential(
        [
            Dense(32, activation="tanh", input_shape=(1,)),
            Dense(32, activation="tanh"),
            Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        validation_split=0.2,
        callbacks=[EarlyStopping(monitor="val_loss", patience=15, restore_best_weights=True)],
        verbose=0,
    )
    test_mse, test_mae = model.evaluate(x_test, y_test, verbose=0)

    # The best straight line y = a x + b, by least squares, for comparison.
    design = np.hstack([x_train, np.ones_like(x_train)])
    coefficients, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    line = np.hstack([x_test, np.ones_like(x_test)]) @ coefficients
    line_mse = float(np.mean((line - y_test) ** 2))

    print(f"trained {len(history.epoch)} epochs on {len(x_train)} samples (20% held out)")
    print(
        f"test MSE  MLP: {test_mse:.4f}   best straight line: {line_mse:.4f}   noise floor: {NOISE**2:.4f}"
    )
    print(f"test MAE  MLP: {test_mae:.4f}")
    print("\n     x    sin(2x)   MLP")
    grid = np.linspace(-3, 3, 7, dtype="float32").reshape(-1, 1)
    for x, prediction in zip(grid[:, 0], model.predict(grid)[:, 0], strict=True):
        print(f"{x:6.2f}   {np.sin(2 * x):6.3f}  {prediction:6.3f}")
    return {"mlp_mse": float(test_mse), "line_mse": line_mse}


if __name__ == "__main__":
    main()
