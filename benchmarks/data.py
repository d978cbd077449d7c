"""MNIST for the benchmarks, as stored: uint8 images ``(n, 28, 28)`` and integer labels."""

from __future__ import annotations

import numpy as np


def load_mnist(n_train: int | None = None, n_test: int | None = None):
    """``((x, y), (x_test, y_test))``, optionally cut to the first ``n_train`` / ``n_test``
    samples (the smoke run). Uses multilayer's loader, so ``MULTILAYER_DATA`` applies."""
    from multilayer.datasets import mnist

    (x, y), (x_test, y_test) = mnist.load_data()
    y, y_test = y.astype(np.int64), y_test.astype(np.int64)
    return (x[:n_train], y[:n_train]), (x_test[:n_test], y_test[:n_test])
