"""``keras.ops``: the operations MLP programs call on tensors, on NumPy arrays and on the
symbolic tensors of functional models.

On arrays (and Python numbers and lists) each function computes with NumPy, with Keras 3's
argument names and result dtypes (see `multilayer.engine.ops`). On the symbolic tensors of a
model under construction (``x = keras.Input(shape=(8,))``), it adds a layer to the graph
(`multilayer.engine.layers.op_layer.OpLayer`) that runs the function on each batch and has its
exact gradient, so ``outputs = ops.softmax(Dense(10)(x))`` builds a model that trains, saves
and loads. An op that does not keep one output per sample (``ops.mean(x)`` over the batch)
cannot be a layer and says so; ``ops.shape`` of a symbolic tensor is ``(None, ...)``.
"""

from __future__ import annotations

import builtins
import functools

from multilayer.engine import ops as _numpy_ops
from multilayer.engine.layers.op_layer import OpLayer as _OpLayer
from multilayer.engine.layers.symbolic import KerasTensor as _KerasTensor
from multilayer.engine.op_gradients import SUPPORTED as _SUPPORTED

__all__ = list(_numpy_ops.__all__)


def _is_symbolic(value) -> bool:
    if isinstance(value, _KerasTensor):
        return True
    return isinstance(value, (list, tuple)) and builtins.any(
        isinstance(v, _KerasTensor) for v in value
    )


def _on_symbolic(name: str, args: tuple, kwargs: dict):
    """``ops.<name>(*args, **kwargs)`` where some arguments are symbolic tensors."""
    if builtins.any(_is_symbolic(v) for v in kwargs.values()):
        raise ValueError(
            f"keras.ops.{name}: pass a model's tensors as positional arguments "
            f"(got one as {[k for k, v in kwargs.items() if _is_symbolic(v)]})"
        )
    if name == "shape":
        return args[0].shape
    if name == "convert_to_numpy":
        return _numpy_ops.convert_to_numpy(*args)  # raises: a symbolic tensor has no values
    if (
        name == "convert_to_tensor"
        and kwargs.get("dtype", args[1] if len(args) > 1 else None) is None
    ):
        return args[0]
    if name == "convert_to_tensor":
        name, args, kwargs = (
            "cast",
            (args[0], kwargs.get("dtype", args[1] if len(args) > 1 else None)),
            {},
        )
    if name == "where" and len(args) == 1 and not kwargs:
        raise ValueError(
            "keras.ops.where(condition) on a model's tensor gives data-dependent indices, so "
            "it cannot be a layer; use where(condition, x1, x2)"
        )
    if name not in _SUPPORTED:
        raise TypeError(
            f"keras.ops.{name} cannot be applied to a model's symbolic tensors (they hold no "
            f"values until the model runs); the ops that can are {', '.join(sorted(_SUPPORTED))}"
        )
    tensors: list = []

    def placeholder(value):
        if isinstance(value, _KerasTensor):
            for index, known in enumerate(tensors):
                if known is value:
                    return {"__tensor__": index}
            tensors.append(value)
            return {"__tensor__": len(tensors) - 1}
        if isinstance(value, (list, tuple)) and builtins.any(
            isinstance(v, _KerasTensor) for v in value
        ):
            return [placeholder(v) for v in value]
        return value

    layer = _OpLayer(name, [placeholder(a) for a in args], kwargs)
    return layer(tensors if len(tensors) > 1 else tensors[0])


def _symbolic_aware(name: str, function):
    @functools.wraps(function)
    def op(*args, **kwargs):
        if builtins.any(_is_symbolic(a) for a in args) or builtins.any(
            _is_symbolic(v) for v in kwargs.values()
        ):
            return _on_symbolic(name, args, kwargs)
        return function(*args, **kwargs)

    return op


for _name in __all__:
    globals()[_name] = _symbolic_aware(_name, getattr(_numpy_ops, _name))
del _name


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"multilayer.ops has no {name!r}: it provides the keras.ops that MLP programs use "
        f"({', '.join(sorted(__all__))}); on arrays, use numpy.{name} instead"
    )
