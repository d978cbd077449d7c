"""``keras.random``: random arrays with Keras 3's seeding rules, on NumPy.

Every function takes ``seed=``, which is one of

* an ``int``: the draw is *stateless*, the same seed gives the same values on every call
  (as in Keras);
* a `SeedGenerator`: each call advances it, so successive calls differ, and the sequence
  repeats when a generator is created again with the same seed;
* ``None`` (the default): a library-wide `SeedGenerator`, which
  `multilayer.utils.set_random_seed` and `multilayer.backend.clear_session` reset, so a
  program that calls ``set_random_seed(42)`` first draws the same values on every run.

The values are NumPy's (PCG64 seeded from ``[seed, counter]``), not the values TensorFlow or
JAX would draw for the same seed: the same seed repeats a multilayer run, not a Keras one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multilayer.engine import config
from multilayer.engine.random import global_generator

__all__ = [
    "SeedGenerator",
    "dropout",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]


class SeedGenerator:
    """The state of a sequence of random draws: ``SeedGenerator(seed=42)``.

    Pass it as ``seed=`` to the functions of this module; each call advances it. Without a
    seed, the initial seed is drawn from the library's global generator (which
    `multilayer.utils.set_random_seed` seeds), as Keras draws it from Python's.

    Args:
        seed: a non-negative integer, or None.
        name: a name (unused by the computation; kept for Keras' signature).
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs):
        if kwargs:
            raise ValueError(f"SeedGenerator: unrecognized keyword arguments: {sorted(kwargs)}")
        self._initial_seed = seed
        if seed is None:
            seed = int(global_generator().integers(1, 10**9))
        self.seed = _check_seed_int(seed, "SeedGenerator")
        self.name = name or "seed_generator"
        self.counter = 0

    def next(self) -> tuple[int, int]:
        """The ``(seed, counter)`` pair of the next draw; advances the generator."""
        state = (self.seed, self.counter)
        self.counter += 1
        return state

    def get_config(self) -> dict:
        return {"seed": self._initial_seed}

    @classmethod
    def from_config(cls, config: dict) -> SeedGenerator:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<SeedGenerator seed={self.seed} counter={self.counter}>"


# The generator behind seed=None, and the global generator it was derived from: when
# set_random_seed replaces that one, this one is derived again, so draws repeat after a reseed.
_global_seed_generator: SeedGenerator | None = None
_derived_from: np.random.Generator | None = None


def global_seed_generator() -> SeedGenerator:
    """The `SeedGenerator` used when ``seed=None``."""
    global _global_seed_generator, _derived_from
    source = global_generator()
    if _global_seed_generator is None or _derived_from is not source:
        _global_seed_generator = SeedGenerator()
        _derived_from = source
    return _global_seed_generator


def reset_global_seed_generator() -> None:
    """Forget the generator behind ``seed=None`` (part of ``clear_session``)."""
    global _global_seed_generator, _derived_from
    _global_seed_generator = _derived_from = None


def _check_seed_int(seed, who: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{who}: seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _rng(seed) -> np.random.Generator:
    """The NumPy generator of one draw for Keras' ``seed`` argument."""
    if isinstance(seed, SeedGenerator):
        state = seed.next()
    elif seed is None:
        state = global_seed_generator().next()
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        state = (_check_seed_int(seed, "seed"), 0)
    else:
        raise ValueError(
            "seed must be an integer, a keras.random.SeedGenerator or None, "
            f"got {seed!r} (of type {type(seed).__name__})"
        )
    return np.random.default_rng(list(state))


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        result = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}") from None
    if any(s < 0 for s in result) or any(isinstance(s, float) for s in shape):
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}")
    return result


def _float_dtype(dtype, who: str) -> np.dtype:
    resolved = np.dtype(dtype or config.floatx())
    if not np.issubdtype(resolved, np.floating):
        raise ValueError(f"keras.random.{who} requires a floating point dtype, got dtype={dtype}")
    return resolved


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> np.ndarray:
    """Samples of a normal distribution N(``mean``, ``stddev``²), of float type ``dtype``
    (`floatx` by default)."""
    dtype = _float_dtype(dtype, "normal")
    values = _rng(seed).normal(float(mean), float(stddev), size=_shape(shape))
    return values.astype(dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> np.ndarray:
    """Samples of the uniform distribution on [``minval``, ``maxval``)."""
    dtype = _float_dtype(dtype, "uniform")
    values = _rng(seed).uniform(float(minval), float(maxval), size=_shape(shape))
    return values.astype(dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> np.ndarray:
    """Normal samples redrawn until within two standard deviations of ``mean`` (as Keras)."""
    dtype = _float_dtype(dtype, "truncated_normal")
    rng, size = _rng(seed), _shape(shape)
    values = rng.standard_normal(size)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return (values * float(stddev) + float(mean)).astype(dtype)


def randint(shape, minval, maxval, dtype="int32", seed=None) -> np.ndarray:
    """Integers drawn uniformly from [``minval``, ``maxval``)."""
    resolved = np.dtype(dtype)
    if not np.issubdtype(resolved, np.integer):
        raise ValueError(f"keras.random.randint requires an integer dtype, got dtype={dtype}")
    if not int(minval) < int(maxval):
        raise ValueError(f"randint: need minval < maxval, got minval={minval}, maxval={maxval}")
    return _rng(seed).integers(int(minval), int(maxval), size=_shape(shape)).astype(resolved)


def dropout(inputs, rate, noise_shape: Sequence[int] | None = None, seed=None) -> np.ndarray:
    """Zero a fraction ``rate`` of ``inputs`` and scale the rest by ``1 / (1 - rate)``."""
    x = np.asarray(inputs)
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate!r}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(config.floatx())
    shape = (
        x.shape
        if noise_shape is None
        else tuple(x.shape[i] if s is None else int(s) for i, s in enumerate(noise_shape))
    )
    keep = _rng(seed).random(shape) >= float(rate)
    return np.where(keep, x / (1.0 - float(rate)), 0).astype(x.dtype)


def shuffle(x, axis: int = 0, seed=None) -> np.ndarray:
    """A copy of ``x`` with its entries along ``axis`` in random order."""
    x = np.asarray(x)
    return _rng(seed).permutation(x, axis=axis)
