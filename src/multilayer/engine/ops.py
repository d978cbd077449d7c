"""The NumPy implementations behind ``keras.ops`` (`multilayer.ops`), on arrays.

Names, arguments and result dtypes follow Keras 3 (its NumPy backend):

* Python numbers and lists become arrays the Keras way: Python floats become `floatx`
  (float32), Python ints ``int32``; NumPy arrays keep their dtype.
* Mixing dtypes promotes as Keras (JAX-style) does, not as NumPy does: ``int64`` with
  ``float32`` gives ``float32``, a Python float with an ``int32`` array gives `floatx`.
* ``sqrt``, ``exp``, ``log``, ``softmax``, ``sigmoid`` of integers give `floatx`; ``mean``
  of integers gives float32; ``argmax``/``argmin`` give ``int32``; ``one_hot`` gives
  `floatx` unless ``dtype`` is given and maps indices outside ``[0, num_classes)`` to a row
  of zeros.

Results are NumPy arrays (the tensors of this backend). `multilayer.ops` wraps each function
so that it also applies to the symbolic tensors of a functional model (as a layer).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from multilayer.engine import config

__all__ = [
    "abs",
    "absolute",
    "add",
    "all",
    "any",
    "arange",
    "argmax",
    "argmin",
    "cast",
    "clip",
    "concatenate",
    "convert_to_numpy",
    "convert_to_tensor",
    "divide",
    "equal",
    "exp",
    "expand_dims",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "multiply",
    "negative",
    "not_equal",
    "one_hot",
    "ones",
    "ones_like",
    "power",
    "relu",
    "reshape",
    "shape",
    "sigmoid",
    "softmax",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "subtract",
    "sum",
    "tanh",
    "transpose",
    "var",
    "where",
    "zeros",
    "zeros_like",
]


# -- dtypes ----------------------------------------------------------------------------------
def _is_python_scalar(x: Any) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def _flatten(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flatten(item)]
    return [x]


def result_type(*items: Any) -> str:
    """The dtype Keras gives to an operation on ``items`` (arrays, dtypes or Python numbers).

    Arrays (strong types) decide: floats win over integers and keep their width (``int64``
    with ``float32`` is ``float32``); integers and booleans promote among themselves as in
    NumPy. Python numbers (weak types) only lift the category: a Python float makes an
    integer or boolean result `floatx`, a Python int makes a boolean one ``int32``.
    """
    strong: list[np.dtype] = []
    weak_float = weak_int = weak_bool = False
    for item in items:
        if item is float or (_is_python_scalar(item) and isinstance(item, float)):
            weak_float = True
        elif item is bool or isinstance(item, bool):
            weak_bool = True
        elif item is int or (_is_python_scalar(item) and isinstance(item, int)):
            weak_int = True
        elif isinstance(item, (list, tuple)):
            strong.append(convert_to_tensor(item).dtype)
        else:
            strong.append(np.dtype(getattr(item, "dtype", item)))
    floats = [d for d in strong if np.issubdtype(d, np.inexact)]
    if floats:
        dtype = np.result_type(*floats)
    elif strong:
        dtype = np.result_type(*strong)
    elif weak_float:
        return config.floatx()
    elif weak_int:
        return "int32"
    elif weak_bool:
        return "bool"
    else:
        return config.floatx()
    if weak_float and not np.issubdtype(dtype, np.inexact):
        return config.floatx()
    if weak_int and dtype == np.bool_:
        return "int32"
    return dtype.name


def convert_to_tensor(
    x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None
) -> np.ndarray:
    """``x`` as an array: of ``dtype`` if given, else with Keras' default dtype for it."""
    if sparse:
        raise ValueError("convert_to_tensor: sparse=True is not supported (NumPy backend)")
    if ragged:
        raise ValueError("convert_to_tensor: ragged=True is not supported (NumPy backend)")
    if dtype is None:
        if isinstance(x, np.ndarray):
            return x
        if isinstance(x, np.generic):
            return np.asarray(x)
        leaves = _flatten(x)
        if leaves and builtins.all(
            _is_python_scalar(leaf) or hasattr(leaf, "dtype") for leaf in leaves
        ):
            dtype = result_type(*leaves)
        else:
            return np.asarray(x)
    return np.asarray(x, dtype=dtype)


def convert_to_numpy(x: Any) -> np.ndarray:
    """``x`` as a NumPy array (a copy, as in Keras)."""
    return np.array(x)


def cast(x: Any, dtype: Any) -> np.ndarray:
    """``x`` converted to ``dtype`` (floats to integers truncate toward zero)."""
    return np.asarray(convert_to_tensor(x), dtype=dtype)


def shape(x: Any) -> tuple[int, ...]:
    """The shape of ``x`` as a tuple of ints."""
    return tuple(np.shape(x))


def _float_input(x: Any) -> np.ndarray:
    """``x`` as an array; integers and booleans become `floatx` (Keras' rule for sqrt, exp...)."""
    x = convert_to_tensor(x)
    if not np.issubdtype(x.dtype, np.inexact):
        x = x.astype(config.floatx())
    return x


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


# -- shapes ----------------------------------------------------------------------------------
def concatenate(xs: Sequence, axis: int = 0) -> np.ndarray:
    """Join arrays along an existing ``axis``; mixed dtypes promote as in Keras."""
    arrays = [convert_to_tensor(x) for x in xs]
    if not arrays:
        raise ValueError("concatenate: need at least one array")
    dtype = result_type(*arrays)
    return np.concatenate([a.astype(dtype, copy=False) for a in arrays], axis=axis)


def stack(x: Sequence, axis: int = 0) -> np.ndarray:
    """Join arrays of one shape along a new ``axis``."""
    arrays = [convert_to_tensor(a) for a in x]
    if not arrays:
        raise ValueError("stack: need at least one array")
    dtype = result_type(*arrays)
    return np.stack([a.astype(dtype, copy=False) for a in arrays], axis=axis)


def reshape(x: Any, newshape: Any) -> np.ndarray:
    """``x`` with shape ``newshape`` (one entry may be -1)."""
    return np.reshape(convert_to_tensor(x), newshape)


def expand_dims(x: Any, axis: Any) -> np.ndarray:
    """``x`` with a new axis of length 1 at ``axis`` (an int or a tuple of ints)."""
    return np.expand_dims(convert_to_tensor(x), _axis(axis))


def squeeze(x: Any, axis: Any = None) -> np.ndarray:
    """``x`` without its axes of length 1 (only ``axis`` if given; it must have length 1)."""
    x = convert_to_tensor(x)
    axis = _axis(axis)
    if axis is not None:
        for a in axis if isinstance(axis, tuple) else (axis,):
            if x.shape[a] != 1:
                raise ValueError(f"Cannot squeeze axis={a}, because the dimension is not 1.")
    return np.squeeze(x, axis=axis)


def transpose(x: Any, axes: Any = None) -> np.ndarray:
    """``x`` with its axes permuted (reversed by default)."""
    return np.transpose(convert_to_tensor(x), axes=_axis(axes))


# -- reductions ------------------------------------------------------------------------------
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The mean over ``axis`` (all axes by default); integers and booleans give float32."""
    x = convert_to_tensor(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.dtype("float32")
    return np.asarray(np.mean(x, axis=_axis(axis), keepdims=keepdims), dtype=dtype)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001 - Keras' name
    """The sum over ``axis``; booleans and small integers sum as ``int32`` (``uint32``)."""
    x = convert_to_tensor(x)
    dtype = x.dtype
    if dtype.name in ("bool", "int8", "int16"):
        dtype = np.dtype("int32")
    elif dtype.name in ("uint8", "uint16"):
        dtype = np.dtype("uint32")
    return np.asarray(np.sum(x, axis=_axis(axis), keepdims=keepdims, dtype=dtype))


def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> np.ndarray:  # noqa: A001
    """The largest value over ``axis``; ``initial`` is the result for an empty ``x``."""
    x = convert_to_tensor(x)
    if x.size == 0 and initial is None:
        raise ValueError("max: x is empty; pass initial= to give the result of an empty max")
    kwargs = {} if initial is None else {"initial": initial}
    return np.asarray(np.max(x, axis=_axis(axis), keepdims=keepdims, **kwargs))


def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> np.ndarray:  # noqa: A001
    """The smallest value over ``axis``; ``initial`` is the result for an empty ``x``."""
    x = convert_to_tensor(x)
    if x.size == 0 and initial is None:
        raise ValueError("min: x is empty; pass initial= to give the result of an empty min")
    kwargs = {} if initial is None else {"initial": initial}
    return np.asarray(np.min(x, axis=_axis(axis), keepdims=keepdims, **kwargs))


def _arg_extreme(function: Any, x: Any, axis: Any, keepdims: Any) -> Any:
    x = convert_to_tensor(x)
    if x.size == 0:
        raise ValueError(f"{function.__name__}: x is empty")
    if np.issubdtype(x.dtype, np.floating) and x.ndim:
        # As Keras: -0.0 counts as smaller than 0.0.
        x = np.where((x == 0) & np.signbit(x), -np.finfo(x.dtype).tiny, x)
    return np.asarray(function(x, axis=axis, keepdims=keepdims), dtype=np.int32)


def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Index of the largest value along ``axis`` (of the flattened array by default), int32."""
    return _arg_extreme(np.argmax, x, axis, keepdims)


def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Index of the smallest value along ``axis`` (of the flattened array by default), int32."""
    return _arg_extreme(np.argmin, x, axis, keepdims)


# -- element-wise ----------------------------------------------------------------------------
def absolute(x: Any) -> np.ndarray:
    """``|x|``."""
    return np.absolute(convert_to_tensor(x))


abs = absolute  # noqa: A001 - Keras' name


def square(x: Any) -> np.ndarray:
    """``x ** 2`` (booleans count as int32)."""
    x = convert_to_tensor(x)
    if x.dtype == np.bool_:
        x = x.astype(np.int32)
    return np.square(x)


def sqrt(x: Any) -> np.ndarray:
    """``√x``; integers give `floatx`."""
    return np.sqrt(_float_input(x))


def exp(x: Any) -> np.ndarray:
    """``e ** x``; integers give `floatx`."""
    return np.exp(_float_input(x))


def log(x: Any) -> np.ndarray:
    """Natural logarithm; integers give `floatx` (``log(0)`` is ``-inf``, as in Keras)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(_float_input(x))


def clip(x: Any, x_min: Any, x_max: Any) -> np.ndarray:
    """``x`` limited to ``[x_min, x_max]``, keeping the dtype of ``x`` (booleans: int32)."""
    x = convert_to_tensor(x)
    dtype = np.dtype(np.int32) if x.dtype == np.bool_ else x.dtype
    return np.clip(x, x_min, x_max).astype(dtype, copy=False)


def _binary(function: Any, x1: Any, x2: Any, *promote_with: Any) -> Any:
    """``function(x1, x2)`` on both converted to their Keras result type (with
    ``promote_with`` joining the promotion: ``float`` makes integers `floatx`)."""
    dtype = result_type(x1, x2, *promote_with)
    return function(convert_to_tensor(x1, dtype), convert_to_tensor(x2, dtype))


def add(x1: Any, x2: Any) -> np.ndarray:
    """``x1 + x2`` with Keras' dtype promotion."""
    return _binary(np.add, x1, x2)


def subtract(x1: Any, x2: Any) -> np.ndarray:
    """``x1 - x2`` with Keras' dtype promotion."""
    return _binary(np.subtract, x1, x2)


def multiply(x1: Any, x2: Any) -> np.ndarray:
    """``x1 * x2`` with Keras' dtype promotion."""
    return _binary(np.multiply, x1, x2)


def divide(x1: Any, x2: Any) -> np.ndarray:
    """``x1 / x2``; integers give `floatx`."""
    return _binary(np.divide, x1, x2, float)


def maximum(x1: Any, x2: Any) -> np.ndarray:
    """Element-wise larger of ``x1`` and ``x2``."""
    return _binary(np.maximum, x1, x2)


def minimum(x1: Any, x2: Any) -> np.ndarray:
    """Element-wise smaller of ``x1`` and ``x2``."""
    return _binary(np.minimum, x1, x2)


def equal(x1: Any, x2: Any) -> np.ndarray:
    """``x1 == x2`` element-wise (booleans)."""
    return _binary(np.equal, x1, x2)


def not_equal(x1: Any, x2: Any) -> np.ndarray:
    """``x1 != x2`` element-wise (booleans)."""
    return _binary(np.not_equal, x1, x2)


def greater(x1: Any, x2: Any) -> np.ndarray:
    """``x1 > x2`` element-wise (booleans)."""
    return _binary(np.greater, x1, x2)


def greater_equal(x1: Any, x2: Any) -> np.ndarray:
    """``x1 >= x2`` element-wise (booleans)."""
    return _binary(np.greater_equal, x1, x2)


def less(x1: Any, x2: Any) -> np.ndarray:
    """``x1 < x2`` element-wise (booleans)."""
    return _binary(np.less, x1, x2)


def less_equal(x1: Any, x2: Any) -> np.ndarray:
    """``x1 <= x2`` element-wise (booleans)."""
    return _binary(np.less_equal, x1, x2)


def any(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001 - Keras' name
    """Whether any entry along ``axis`` is true (non-zero)."""
    return np.asarray(np.any(convert_to_tensor(x), axis=_axis(axis), keepdims=keepdims))


def all(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:  # noqa: A001 - Keras' name
    """Whether every entry along ``axis`` is true (non-zero)."""
    return np.asarray(np.all(convert_to_tensor(x), axis=_axis(axis), keepdims=keepdims))


def negative(x: Any) -> np.ndarray:
    """``-x``."""
    return np.negative(convert_to_tensor(x))


def power(x1: Any, x2: Any) -> np.ndarray:
    """``x1 ** x2`` with Keras' dtype promotion."""
    return _binary(np.power, x1, x2)


def zeros(shape: Any, dtype: Any = None) -> np.ndarray:
    """An array of zeros, `floatx` by default."""
    return np.zeros(shape, dtype=dtype or config.floatx())


def ones(shape: Any, dtype: Any = None) -> np.ndarray:
    """An array of ones, `floatx` by default."""
    return np.ones(shape, dtype=dtype or config.floatx())


def zeros_like(x: Any, dtype: Any = None) -> np.ndarray:
    """Zeros of the shape (and by default the dtype) of ``x``."""
    return np.zeros_like(convert_to_tensor(x), dtype=dtype)


def ones_like(x: Any, dtype: Any = None) -> np.ndarray:
    """Ones of the shape (and by default the dtype) of ``x``."""
    return np.ones_like(convert_to_tensor(x), dtype=dtype)


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> np.ndarray:
    """``start, start + step, ...`` below ``stop`` (``arange(n)`` is ``0..n-1``); Python ints
    give ``int32`` and floats `floatx`, as in Keras."""
    if dtype is None:
        dtype = result_type(*(v for v in (start, stop, step) if v is not None))
    if stop is None:
        start, stop = 0, start
    return np.arange(start, stop, 1 if step is None else step, dtype=dtype)


def var(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The variance over ``axis`` (divided by n); integers give `floatx`."""
    x = _float_input(x)
    return np.asarray(np.var(x, axis=_axis(axis), keepdims=keepdims), dtype=x.dtype)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The standard deviation over ``axis`` (divided by n); integers give `floatx`."""
    x = _float_input(x)
    return np.asarray(np.std(x, axis=_axis(axis), keepdims=keepdims), dtype=x.dtype)


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """``x1`` where ``condition`` holds, else ``x2``; with neither, the indices of the
    non-zero entries of ``condition`` (a tuple of arrays, one per axis)."""
    condition = convert_to_tensor(condition)
    if x1 is None and x2 is None:
        return np.nonzero(condition)
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither")
    dtype = result_type(x1, x2)
    return np.where(condition, convert_to_tensor(x1, dtype), convert_to_tensor(x2, dtype))


def matmul(x1: Any, x2: Any) -> np.ndarray:
    """Matrix product (batched over leading axes); int8 by int8 gives int32."""
    x1, x2 = convert_to_tensor(x1), convert_to_tensor(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("matmul: the inputs must have at least one axis; use multiply")
    both_int8 = x1.dtype == np.int8 and x2.dtype == np.int8
    dtype = "int32" if both_int8 else result_type(x1, x2)
    return np.matmul(x1.astype(dtype, copy=False), x2.astype(dtype, copy=False))


# -- neural network ----------------------------------------------------------------------------
def relu(x: Any) -> np.ndarray:
    """``max(x, 0)``, keeping the dtype of ``x``."""
    x = convert_to_tensor(x)
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def sigmoid(x: Any) -> np.ndarray:
    """``1 / (1 + e^-x)``, computed without overflow; integers give `floatx`."""
    x = _float_input(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def tanh(x: Any) -> np.ndarray:
    """Hyperbolic tangent; integers give `floatx`."""
    return np.tanh(_float_input(x))


def softmax(x: Any, axis: Any = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis`` (an int or a tuple), without overflow."""
    x = _float_input(x)
    if x.ndim == 0:
        raise ValueError("softmax: x must have at least one axis")
    axis = _axis(axis)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Any, axis: Any = -1) -> np.ndarray:
    """``log(softmax(x))`` along ``axis``, computed without overflow or log(0)."""
    x = _float_input(x)
    if x.ndim == 0:
        raise ValueError("log_softmax: x must have at least one axis")
    axis = _axis(axis)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def one_hot(
    x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False
) -> np.ndarray:
    """One-hot encode integer class indices ``x``: the result has a new axis of length
    ``num_classes`` at ``axis``; indices outside ``[0, num_classes)`` give a row of zeros
    (as TensorFlow and JAX do)."""
    if sparse:
        raise ValueError("one_hot: sparse=True is not supported (NumPy backend)")
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"one_hot: num_classes must be a positive integer, got {num_classes!r}")
    x = convert_to_tensor(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x) & (x == np.round(x))):
            raise ValueError("one_hot: x must hold integer class indices, found fractions")
    elif not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise ValueError(f"one_hot: x must hold integer class indices, not {x.dtype}")
    indices = x.astype(np.int64).reshape(-1)
    result = np.zeros((indices.size, int(num_classes)), dtype=dtype or config.floatx())
    valid = (indices >= 0) & (indices < num_classes)
    result[np.flatnonzero(valid), indices[valid]] = 1
    result = result.reshape(*x.shape, int(num_classes))
    if axis != -1:
        result = np.moveaxis(result, -1, axis)
    return result
