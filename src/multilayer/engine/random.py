"""One source of randomness for the whole library, so that one seed repeats a run bit for bit.

`set_random_seed` resets it (and Python's and NumPy's legacy generators, as Keras does). Each
model draws its own generator from it when built, and uses that for initialisation, shuffling
and dropout; a model's generator state is saved in checkpoints so a resumed run continues the
same random sequence.
"""

from __future__ import annotations

import random as _pyrandom

import numpy as np

_global = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed every random number generator the library uses (and Python's and NumPy's)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be a non-negative integer, got {seed!r}")
    global _global
    _global = np.random.default_rng(int(seed))
    _pyrandom.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - seeds user code that uses the legacy API


def global_generator() -> np.random.Generator:
    """The library-wide generator that `set_random_seed` resets."""
    return _global


def new_generator(seed: int | None = None) -> np.random.Generator:
    """A fresh generator: from ``seed`` if given, else drawn from the global generator."""
    if seed is None:
        seed = int(_global.integers(0, 2**63 - 1))
    return np.random.default_rng(seed)
