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


def generator_state(generator: np.random.Generator) -> dict:
    """The state of ``generator`` as a JSON-serialisable dict (numpy's ``bit_generator.state``)."""
    return dict(generator.bit_generator.state)


def set_generator_state(generator: np.random.Generator, state: dict) -> None:
    """Put a `generator_state` dict back into ``generator``, after checking its type.

    Raises:
        ValueError: not a state of this kind of generator, or a malformed one.
    """
    expected = type(generator.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        found = state.get("bit_generator") if isinstance(state, dict) else state
        raise ValueError(f"generator type {found!r} differs from {expected!r}")
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"invalid {expected} generator state ({error})") from None
