"""`OpLayer`: a ``keras.ops`` function applied to symbolic tensors, as a layer of the graph.

``ops.softmax(Dense(10)(inputs))`` inside a functional model records an `OpLayer` that runs
``ops.softmax`` in `forward` and its exact vector-Jacobian product
(`multilayer.engine.op_gradients`) in `backward`, so the model still trains. The call's other
arguments (axes, numbers, small constant arrays) are kept in the layer's configuration, which
saves and loads with the model.

Only what is well defined per sample can be a layer: the op must keep the batch axis first
(``ops.mean(x, axis=-1)`` can, ``ops.mean(x)`` over the whole batch cannot) and map a batch
to outputs of one sample shape. Output shapes are inferred by running the op on two small
batches of ones, after checking that those and the result stay within `MAX_PROBE_SIZE`
numbers, so a hostile model file cannot make the shape inference allocate without bound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from multilayer.engine import ops as numpy_ops
from multilayer.engine.config import floatx
from multilayer.engine.layers.base import Layer, next_uid
from multilayer.engine.op_gradients import SUPPORTED, vjp

#: The most numbers a batch of 3 samples (inputs or result) may hold for shape inference.
MAX_PROBE_SIZE = 2**24
#: The most numbers a constant array argument may hold.
MAX_CONSTANT_SIZE = 2**16

_TENSOR = "__tensor__"
_ARRAY = "__array__"
_ELEMENTWISE = frozenset(
    {
        "add",
        "subtract",
        "multiply",
        "divide",
        "maximum",
        "minimum",
        "power",
        "equal",
        "not_equal",
        "greater",
        "greater_equal",
        "less",
        "less_equal",
        "where",
        "clip",
    }
)
_NUMERIC_KINDS = "biuf"


def _placeholder(value: Any) -> int | None:
    if isinstance(value, dict) and set(value) == {_TENSOR}:
        index = value[_TENSOR]
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            return index
    return None


def _encode(value: Any, where: str) -> Any:
    """A constant argument as JSON-serialisable data (dicts, i.e. placeholders and arrays
    already encoded, pass through: `_decode` validates them)."""
    if isinstance(value, dict):
        return dict(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if isinstance(value, (list, tuple)):
        return [_encode(item, where) for item in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{where}: a constant array of dtype {value.dtype} cannot be saved")
        if value.size > MAX_CONSTANT_SIZE:
            raise ValueError(
                f"{where}: constant arrays in a model are limited to {MAX_CONSTANT_SIZE} "
                f"numbers, got one of shape {value.shape}; use a layer with weights instead"
            )
        return {_ARRAY: value.tolist(), "dtype": value.dtype.name}
    raise ValueError(
        f"{where}: an argument of type {type(value).__name__} ({value!r}) cannot be part of a "
        "model; use numbers, strings, lists or NumPy arrays"
    )


def _decode(value: Any, where: str) -> Any:
    """The argument `_encode` produced, validated (a configuration is untrusted input)."""
    if isinstance(value, dict):
        if _placeholder(value) is not None:
            return value
        if set(value) == {_ARRAY, "dtype"} and isinstance(value["dtype"], str):
            try:
                dtype = np.dtype(value["dtype"])
            except TypeError:
                dtype = None
            if dtype is None or dtype.kind not in _NUMERIC_KINDS:
                raise ValueError(f"{where}: invalid constant dtype {value['dtype']!r}")
            size = _json_size(value[_ARRAY])
            if size > MAX_CONSTANT_SIZE:
                raise ValueError(
                    f"{where}: a constant array of more than {MAX_CONSTANT_SIZE} numbers"
                )
            try:
                return np.array(value[_ARRAY], dtype=dtype)
            except (ValueError, TypeError, OverflowError):
                raise ValueError(
                    f"{where}: a constant array is not a regular array of numbers"
                ) from None
        raise ValueError(f"{where}: invalid argument {value!r}")
    if isinstance(value, list):
        return [_decode(item, where) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where}: invalid argument {value!r}")


def _json_size(value: Any) -> int:
    stack, count = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            count += 1
    return count


def _fill(value: Any, arrays: list) -> Any:
    """``value`` with each placeholder replaced by its array (one level into lists)."""
    index = _placeholder(value)
    if index is not None:
        return arrays[index]
    if isinstance(value, list):
        return [_fill(item, arrays) for item in value]
    return value


def _positions(args: list) -> list[tuple[int, int | None, int]]:
    """Where the placeholders are: (argument, item of a list argument or None, tensor)."""
    found: list[tuple[int, int | None, int]] = []
    for i, arg in enumerate(args):
        index = _placeholder(arg)
        if index is not None:
            found.append((i, None, index))
        elif isinstance(arg, list):
            for j, item in enumerate(arg):
                index = _placeholder(item)
                if index is not None:
                    found.append((i, j, index))
    return found


class OpLayer(Layer):
    """``keras.ops.<op>`` applied to a model's tensors (created by calling the op on them).

    Args:
        op: the name of the function of `multilayer.ops`.
        args: its positional arguments, with ``{"__tensor__": i}`` standing for the i-th
            input tensor of the layer (directly, or as an item of a list argument).
        kwargs: its keyword arguments (constants only).
        name: the layer's name (the op's name, made unique, by default).
    """

    def __init__(
        self,
        op: str,
        args: Any = (),
        kwargs: Any = None,
        name: str | None = None,
        **layer_kwargs: Any,
    ) -> None:
        if not isinstance(op, str) or op not in SUPPORTED:
            raise ValueError(
                f"OpLayer: keras.ops.{op} cannot be a layer of a model; the ops that can are "
                f"{', '.join(sorted(SUPPORTED))}"
            )
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs or {}, dict):
            raise ValueError("OpLayer: args must be a list and kwargs a dict")
        where = f"keras.ops.{op}"
        self.op = op
        self.args = [_decode(_encode(a, where), where) for a in args]
        self.kwargs = {str(k): _decode(_encode(v, where), where) for k, v in (kwargs or {}).items()}
        if any(_placeholder(v) is not None for v in self.kwargs.values()):
            raise ValueError(f"{where}: pass the model's tensors as positional arguments")
        indices = sorted({index for _, _, index in _positions(self.args)})
        if not indices or indices != list(range(len(indices))):
            raise ValueError(f"{where}: the tensor placeholders must be numbered 0..k-1")
        self.count = len(indices)
        if name is None:
            uid = next_uid(op)
            name = op if uid == 1 else f"{op}_{uid - 1}"
        super().__init__(name=name, **layer_kwargs)
        self.multi_input = self.count > 1

    def _function(self) -> Any:
        return getattr(numpy_ops, self.op)

    def _call(self, arrays: list[np.ndarray]) -> Any:
        args = [_fill(a, arrays) for a in self.args]
        with np.errstate(all="ignore"):
            return args, self._function()(*args, **self.kwargs)

    # -- shapes ---------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        shapes = [tuple(s) for s in input_shape] if self.multi_input else [tuple(input_shape)]
        where = f"keras.ops.{self.op} on tensors of shape {_batch_shapes(shapes)}"
        bound = self._output_bound(shapes, where)
        if bound > MAX_PROBE_SIZE:
            raise ValueError(
                f"{where}: its result could hold {bound} numbers for 3 samples, more than the "
                f"{MAX_PROBE_SIZE} an op layer may"
            )
        outputs = []
        for batch in (2, 3):
            arrays = [np.ones((batch, *s), dtype=floatx()) for s in shapes]
            try:
                _, out = self._call(arrays)
            except (ValueError, TypeError, IndexError) as error:
                raise ValueError(f"{where}: {error}") from None
            if not isinstance(out, np.ndarray) or out.ndim == 0 or out.shape[0] != batch:
                got = tuple(np.shape(out))
                raise ValueError(
                    f"{where} does not keep the batch axis first (for {batch} samples it gives "
                    f"shape {got}), so it cannot be a layer: an op in a model must give one "
                    "output per sample (reduce over axis=-1, say, not over the batch)"
                )
            outputs.append(out.shape[1:])
        if outputs[0] != outputs[1]:
            raise ValueError(
                f"{where}: its output shape per sample depends on the batch size "
                f"({outputs[0]} for 2 samples, {outputs[1]} for 3), so it cannot be a layer"
            )
        self.input_shape = shapes if self.multi_input else shapes[0]  # type: ignore[assignment]
        self.output_shape = tuple(outputs[0])
        self.built = True

    def _output_bound(self, shapes: list[tuple[int, ...]], where: str) -> int:
        """An upper bound on the numbers of the inputs and the result for 3 samples."""
        sizes = [3 * math.prod(s) for s in shapes]
        constants = [np.shape(a) for a in self.args if isinstance(a, np.ndarray)]
        if max(sizes) > MAX_PROBE_SIZE:
            return max(sizes)
        if self.op == "one_hot":
            classes = self.args[1] if len(self.args) > 1 else self.kwargs.get("num_classes")
            if isinstance(classes, int) and not isinstance(classes, bool) and classes > 0:
                return sizes[0] * classes
            return sizes[0]
        if self.op in ("concatenate", "stack"):
            return sum(sizes) + sum(math.prod(c) for c in constants)
        operands = [
            (3, *shapes[index]) if index is not None else np.shape(arg)
            for arg, index in ((a, _placeholder(a)) for a in self.args)
            if index is not None or isinstance(arg, (np.ndarray, int, float))
        ]
        try:
            if self.op == "matmul" and len(operands) == 2:
                return max(*sizes, math.prod(_matmul_shape(*operands)))
            if self.op in _ELEMENTWISE:
                return max(*sizes, math.prod(np.broadcast_shapes(*operands)))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        return max(sizes)

    # -- computation ----------------------------------------------------------------------
    def forward(self, inputs: Any, training: Any = False) -> Any:
        arrays = list(inputs) if self.multi_input else [inputs]
        self._args, out = self._call(arrays)
        self._arrays, self._out = arrays, out
        return out

    def backward(self, grad: Any, need_input_grad: Any = True, fused: Any = False) -> Any:
        if not need_input_grad:
            return None
        grads = vjp(self.op, grad, tuple(self._args), self.kwargs, self._out)
        totals: list[np.ndarray | None] = [None] * self.count
        for i, j, index in _positions(self.args):
            g = grads[i] if j is None else (grads[i][j] if grads[i] is not None else None)
            if g is None:
                continue
            totals[index] = g if totals[index] is None else totals[index] + g
        result = []
        for index, x in enumerate(self._arrays):
            dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else grad.dtype
            g = totals[index]
            # each input gets a buffer of its own (the graph may add into it in place)
            result.append(np.zeros(x.shape, dtype=dtype) if g is None else np.array(g, dtype=dtype))
        return result if self.multi_input else result[0]

    def get_config(self) -> dict:
        where = f"keras.ops.{self.op}"
        return {
            "name": self.name,
            "op": self.op,
            "args": [_encode(a, where) for a in self.args],
            "kwargs": {k: _encode(v, where) for k, v in self.kwargs.items()},
        }

    def __repr__(self) -> str:
        return f"<OpLayer keras.ops.{self.op} name={self.name!r} output_shape={self.output_shape}>"


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``np.matmul`` of arrays of shapes ``a`` and ``b``, computed, not run."""
    if not a or not b:
        raise ValueError("matmul: the inputs must have at least one axis")
    left, right = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    if left[-1] != right[-2]:
        raise ValueError(f"matmul: shapes {a} and {b} do not fit ({left[-1]} != {right[-2]})")
    batch = np.broadcast_shapes(left[:-2], right[:-2])
    out = (*batch, left[-2], right[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return tuple(out)


def _batch_shapes(shapes: Any) -> str:
    text = [str((None, *s)) for s in shapes]
    return text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"
