"""Global numeric settings (Keras' ``floatx``): float32 by default, float64 for gradient checks."""

from __future__ import annotations

import os

import numpy as np

_FLOATX = "float32"
_SUPPORTED = ("float32", "float64")
#: The fuzz factor of Keras' ``epsilon()``: probabilities are clipped to [eps, 1 - eps] before
#: a log in the cross-entropy losses.
_EPSILON = 1e-7


def floatx() -> str:
    """The default float type of new models: ``"float32"`` unless changed with `set_floatx`."""
    return _FLOATX


def set_floatx(dtype: str) -> None:
    """Set the default float type of models built afterwards (``"float32"`` or ``"float64"``)."""
    global _FLOATX
    name = np.dtype(dtype).name
    if name not in _SUPPORTED:
        raise ValueError(f"set_floatx: dtype must be one of {_SUPPORTED}, got {dtype!r}")
    _FLOATX = name


def epsilon() -> float:
    """The fuzz factor used by the losses (Keras' ``epsilon()``): ``1e-7`` unless changed."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor of `epsilon` (a positive number smaller than 0.5)."""
    global _EPSILON
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"set_epsilon: expected a number, got {value!r}")
    if not 0 < float(value) < 0.5:
        raise ValueError(f"set_epsilon: epsilon must be in (0, 0.5), got {value!r}")
    _EPSILON = float(value)


def resolve_dtype(dtype: str | np.dtype | None) -> np.dtype:
    """``dtype`` as a NumPy float dtype, or the current `floatx` when it is None."""
    if dtype is None:
        return np.dtype(_FLOATX)
    resolved = np.dtype(dtype)
    if resolved.name not in _SUPPORTED:
        raise ValueError(f"dtype must be one of {_SUPPORTED}, got {dtype!r}")
    return resolved


# -- threads of the element-wise optimizer step --------------------------------------------------
# NumPy's ufuncs run on one core and release the GIL on large arrays, so an element-wise update
# split into contiguous chunks runs in parallel on a few Python threads, with the same operations
# on every element (hence bitwise the same result). BLAS has its own threads; this is only for
# the optimizer step. Off by default: on our 2-vCPU build machine two threads were never faster
# than one (1.5-2.1 ms per Adam step either way: the passes are bound by memory/cache
# bandwidth shared by both vCPUs), see docs/benchmarks.md.
_NUM_THREADS: int | None = None  # None: from MULTILAYER_THREADS, else 1
_POOL = None


def num_threads() -> int:
    """Threads used by the optimizer step: `set_num_threads`, else the environment variable
    ``MULTILAYER_THREADS``, else 1."""
    if _NUM_THREADS is not None:
        return _NUM_THREADS
    value = os.environ.get("MULTILAYER_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(
                f"MULTILAYER_THREADS must be a positive integer, got {value!r}"
            ) from None
    return 1


def set_num_threads(threads: int | None) -> None:
    """Set the threads of the optimizer step (1 = single-threaded; None = the default)."""
    global _NUM_THREADS
    if threads is not None and (isinstance(threads, bool) or not int(threads) >= 1):
        raise ValueError(f"set_num_threads: expected a positive integer or None, got {threads!r}")
    _NUM_THREADS = None if threads is None else int(threads)


def thread_pool(workers: int):
    """A persistent pool of at least ``workers`` threads (created on first use)."""
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        from concurrent.futures import ThreadPoolExecutor

        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="multilayer")
    return _POOL


def _forget_pool_after_fork() -> None:
    # a forked child has none of the parent's threads: a pool inherited from it would hang
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
