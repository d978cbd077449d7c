"""Exact gradients (vector-Jacobian products) of the ``keras.ops`` functions.

``vjp(name, grad, args, kwargs, output)`` turns dL/d(output) of ``multilayer.ops.<name>(*args,
**kwargs)`` into dL/d(each argument): a tuple aligned with ``args`` holding an array for an
array argument, a list of arrays for a list argument (``concatenate``, ``stack``) and None for
what has no gradient (numbers, shapes, axes, integer results such as ``argmax``). They let a
model use these functions on its symbolic tensors and still train.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: ``derivative(g, a, b)``: a gradient from the output's gradient and the operands
Derivative = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
#: ``vjp(grad, args, kwargs, output)``: the gradients of the arguments
Vjp = Callable[[np.ndarray, tuple, dict, np.ndarray], tuple]


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an argument of ``shape`` was broadcast."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad.reshape(shape)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _as_array(x: object) -> np.ndarray | None:
    return x if isinstance(x, np.ndarray) else None


def _binary(grad: np.ndarray, args: tuple, d1: Derivative, d2: Derivative) -> tuple:
    x1, x2 = np.asarray(args[0]), np.asarray(args[1])
    return (
        _unbroadcast(d1(grad, x1, x2), x1.shape) if _as_array(args[0]) is not None else None,
        _unbroadcast(d2(grad, x1, x2), x2.shape) if _as_array(args[1]) is not None else None,
    )


def _expand_reduced(grad: np.ndarray, x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """``grad`` of a reduction over ``axis``, broadcast back to the shape of ``x``."""
    if axis is None:
        return np.broadcast_to(np.reshape(grad, (1,) * x.ndim), x.shape)
    axes = tuple(a % x.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, x.shape)


def _extremum(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x = args[0]
    axis, keepdims = _arg(args, kwargs, 1, "axis"), _arg(args, kwargs, 2, "keepdims", False)
    y = _expand_reduced(output, x, axis, keepdims)
    hits = (x == y).astype(grad.dtype)
    # ties share the gradient equally (as TensorFlow and JAX do for reduce_max)
    count = _expand_reduced(
        np.sum(hits, axis=None if axis is None else tuple(np.atleast_1d(axis)), keepdims=keepdims),
        x,
        axis,
        keepdims,
    )
    return (_expand_reduced(grad, x, axis, keepdims) * hits / count,)


def _mean(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x = args[0]
    axis, keepdims = _arg(args, kwargs, 1, "axis"), _arg(args, kwargs, 2, "keepdims", False)
    count = x.size / max(np.size(output), 1)
    return (_expand_reduced(grad, x, axis, keepdims) / count,)


def _sum(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x = args[0]
    axis, keepdims = _arg(args, kwargs, 1, "axis"), _arg(args, kwargs, 2, "keepdims", False)
    return (np.array(_expand_reduced(grad, x, axis, keepdims), dtype=grad.dtype),)


def _concatenate(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    xs, axis = args[0], _arg(args, kwargs, 1, "axis", 0)
    sizes = [np.shape(x)[axis] for x in xs]
    parts = np.split(grad, np.cumsum(sizes)[:-1], axis=axis)
    return ([p if isinstance(x, np.ndarray) else None for p, x in zip(parts, xs, strict=True)],)


def _stack(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    xs, axis = args[0], _arg(args, kwargs, 1, "axis", 0)
    return ([np.take(grad, i, axis=axis) for i in range(len(xs))],)


def _transpose(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    axes = _arg(args, kwargs, 1, "axes")
    if axes is None:
        return (np.transpose(grad),)
    return (np.transpose(grad, np.argsort(axes)),)


def _reshaped(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    return (np.reshape(grad, np.shape(args[0])),) + (None,) * (len(args) - 1)


def _where(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    condition = np.asarray(args[0]).astype(bool)
    grads: list = [None]
    for value, mask in ((args[1], condition), (args[2], ~condition)):
        if isinstance(value, np.ndarray):
            grads.append(_unbroadcast(np.where(mask, grad, 0).astype(grad.dtype), value.shape))
        else:
            grads.append(None)
    return tuple(grads)


def _matmul(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x1, x2 = np.asarray(args[0]), np.asarray(args[1])
    a, b = (x1[None] if x1.ndim == 1 else x1), (x2[:, None] if x2.ndim == 1 else x2)
    g = grad
    if x1.ndim == 1:
        g = np.expand_dims(g, -2)
    if x2.ndim == 1:
        g = np.expand_dims(g, -1)
    g1 = g @ np.swapaxes(b, -1, -2)
    g2 = np.swapaxes(a, -1, -2) @ g
    g1 = _unbroadcast(g1, a.shape).reshape(x1.shape)
    g2 = _unbroadcast(g2, b.shape).reshape(x2.shape)
    return (
        g1 if isinstance(args[0], np.ndarray) else None,
        g2 if isinstance(args[1], np.ndarray) else None,
    )


def _softmax(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    axis = _arg(args, kwargs, 1, "axis", -1)
    return (output * (grad - np.sum(grad * output, axis=axis, keepdims=True)),)


def _log_softmax(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    axis = _arg(args, kwargs, 1, "axis", -1)
    return (grad - np.exp(output) * np.sum(grad, axis=axis, keepdims=True),)


def _var(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x = args[0]
    axis, keepdims = _arg(args, kwargs, 1, "axis"), _arg(args, kwargs, 2, "keepdims", False)
    count = x.size / max(np.size(output), 1)
    mean = np.mean(x, axis=_axis_tuple(axis), keepdims=True)
    return (_expand_reduced(grad, x, axis, keepdims) * 2 * (x - mean) / count,)


def _std(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    axis, keepdims = _arg(args, kwargs, 1, "axis"), _arg(args, kwargs, 2, "keepdims", False)
    x = args[0]
    (g,) = _var(grad, args, kwargs, output)
    return (g / (2 * _expand_reduced(output, x, axis, keepdims)),)


def _axis_tuple(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _clip(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x = args[0]
    inside = (x >= args[1]) & (x <= args[2])
    return (np.where(inside, grad, 0).astype(grad.dtype), None, None)


def _cast(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    x = args[0]
    if np.issubdtype(output.dtype, np.inexact) and np.issubdtype(x.dtype, np.inexact):
        return (grad.astype(x.dtype), None)
    return (None, None)


def _none(grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    return (None,) * len(args)


def _maximum_like(pick_first: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Vjp:
    def d1(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(pick_first(a, b), g, 0)

    def d2(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(pick_first(a, b), 0, g)

    return lambda grad, args, kwargs, output: _binary(grad, args, d1, d2)


def _unary(derivative: Derivative) -> Vjp:
    """A VJP for ``f(x)`` from ``derivative(grad, x, y)``."""
    return lambda grad, args, kwargs, output: (derivative(grad, args[0], output),)


_VJPS: dict[str, Vjp] = {
    "reshape": _reshaped,
    "expand_dims": _reshaped,
    "squeeze": _reshaped,
    "transpose": _transpose,
    "concatenate": _concatenate,
    "stack": _stack,
    "mean": _mean,
    "sum": _sum,
    "max": _extremum,
    "min": _extremum,
    "abs": _unary(lambda g, x, y: g * np.sign(x)),
    "absolute": _unary(lambda g, x, y: g * np.sign(x)),
    "square": _unary(lambda g, x, y: 2 * x * g),
    "sqrt": _unary(lambda g, x, y: g / (2 * y)),
    "exp": _unary(lambda g, x, y: g * y),
    "log": _unary(lambda g, x, y: g / x),
    "relu": _unary(lambda g, x, y: g * (x > 0)),
    "sigmoid": _unary(lambda g, x, y: g * y * (1 - y)),
    "tanh": _unary(lambda g, x, y: g * (1 - y * y)),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "var": _var,
    "std": _std,
    "negative": _unary(lambda g, x, y: -g),
    "power": lambda g, args, kw, y: _binary(
        g,
        args,
        lambda g, a, b: g * b * np.power(a, b - 1),
        lambda g, a, b: g * np.power(a, b) * np.log(np.where(a > 0, a, 1)),
    ),
    "clip": _clip,
    "where": _where,
    "matmul": _matmul,
    "cast": _cast,
    "add": lambda g, args, kw, y: _binary(g, args, lambda g, a, b: g, lambda g, a, b: g),
    "subtract": lambda g, args, kw, y: _binary(g, args, lambda g, a, b: g, lambda g, a, b: -g),
    "multiply": lambda g, args, kw, y: _binary(
        g, args, lambda g, a, b: g * b, lambda g, a, b: g * a
    ),
    "divide": lambda g, args, kw, y: _binary(
        g, args, lambda g, a, b: g / b, lambda g, a, b: -g * a / (b * b)
    ),
    "maximum": _maximum_like(lambda a, b: a >= b),
    "minimum": _maximum_like(lambda a, b: a <= b),
    # integer or shape results: no gradient flows through them
    "argmax": _none,
    "argmin": _none,
    "one_hot": _none,
    "shape": _none,
    "equal": _none,
    "not_equal": _none,
    "greater": _none,
    "greater_equal": _none,
    "less": _none,
    "less_equal": _none,
    "any": _none,
    "all": _none,
    "zeros_like": _none,
    "ones_like": _none,
}

#: The ops whose gradient is known (so they can be used inside a trained model).
DIFFERENTIABLE = frozenset(name for name, vjp in _VJPS.items() if vjp is not _none)
#: The ops that can appear in a model (without a gradient through them for the rest).
SUPPORTED = frozenset(_VJPS)


def vjp(name: str, grad: np.ndarray, args: tuple, kwargs: dict, output: np.ndarray) -> tuple:
    """dL/d(args) of ``ops.<name>(*args, **kwargs) = output`` given ``grad`` = dL/d(output)."""
    if name not in _VJPS:
        raise ValueError(f"no gradient is defined for keras.ops.{name}")
    grads = tuple(_VJPS[name](grad, tuple(args), dict(kwargs), output))
    return grads + (None,) * (len(args) - len(grads))  # axes, shapes...: no gradient
