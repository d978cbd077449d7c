"""Offline data for the Keras-program tests (shared by the multilayer and the Keras runs).

Data loading is not the idiom under test, so both runs read the same arrays from here.
"""

from __future__ import annotations

import numpy as np


def mnist_subset(n_train: int = 6000, n_test: int = 1000):
    """A slice of the real MNIST (read from MULTILAYER_DATA), as Keras' mnist.load_data gives it."""
    from multilayer.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return (x_train[:n_train], y_train[:n_train]), (x_test[:n_test], y_test[:n_test])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
