"""`OutputArray`: what ``model(x)`` returns (and ``Normalization.mean``), so ``.numpy()`` works.

Keras returns a backend tensor, and programs write ``model(x).numpy()``. multilayer returns
its outputs as this NumPy array subclass: it *is* an ``ndarray`` (indexing, ``np.argmax``,
``==``...) with one extra method, ``numpy()``. Only ``model(x)`` returns it; anything computed
from it (``model(x) * 2``, ``np.argmax(model(x), axis=1)``) is a plain ``ndarray`` again, and
it prints as one, so NumPy behaves as usual everywhere else.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class OutputArray(np.ndarray):
    """An ``ndarray`` with Keras' tensor method ``numpy()`` (see the module docstring)."""

    def numpy(self) -> np.ndarray:
        """The values as a plain NumPy array (the same memory, as Keras' CPU tensors)."""
        return self.view(np.ndarray)

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # Results of NumPy functions and operators are plain arrays (or scalars).
        result = np.asarray(array).view(np.ndarray)
        if return_scalar or result.ndim == 0:
            return result[()]
        return result

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))

    def __reduce__(self) -> Any:
        # Pickled (or copied by copy.deepcopy) as the plain array it holds.
        return self.view(np.ndarray).__reduce__()
