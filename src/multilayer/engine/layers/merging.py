"""Merge layers: combine several inputs into one (Keras' ``Add``, ``Concatenate``, ``Dot``...).

Each layer takes a list of input batches and returns one batch; `backward` returns the list
of gradients with respect to the inputs. Element-wise merges broadcast as NumPy does (an
input of shape ``(n, 1)`` against ``(n, 4)``), and the gradient of a broadcast input is
summed back to its shape. For `Maximum` and `Minimum`, where inputs tie the gradient goes to
the first of them (TensorFlow's convention).
"""

from __future__ import annotations

import numpy as np

from multilayer.engine.layers.base import Layer


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Merge(Layer):
    """Base class of the merge layers: several inputs, one output."""

    #: the number of inputs the layer needs (None: two or more)
    arity: int | None = None

    def _check_inputs(self, shapes) -> list[tuple[int, ...]]:
        if (
            not isinstance(shapes, (list, tuple))
            or not shapes
            or not all(isinstance(s, (list, tuple)) for s in shapes)
        ):
            raise ValueError(
                f"A {type(self).__name__} layer should be called on a list of inputs. "
                f"Received: input_shape={shapes!r}"
            )
        shapes = [tuple(s) for s in shapes]
        if self.arity is not None and len(shapes) != self.arity:
            raise ValueError(
                f"A {type(self).__name__} layer should be called on exactly {self.arity} "
                f"inputs. Received: {len(shapes)} inputs"
            )
        if len(shapes) < 2:
            raise ValueError(
                f"A {type(self).__name__} layer should be called on a list of at least 2 "
                f"inputs. Received: {len(shapes)} input"
            )
        return shapes

    def build(self, input_shape) -> None:
        shapes = self._check_inputs(input_shape)
        self.input_shape = shapes  # type: ignore[assignment]  # one shape per input
        self.output_shape = self.compute_output_shape(shapes)
        self.built = True

    def compute_output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            raise ValueError(
                f"A {type(self).__name__} layer needs inputs of one shape (or shapes that "
                f"broadcast). Received: input_shape={shapes}"
            ) from None


class _Elementwise(Merge):
    def forward(self, inputs, training=False):
        self._shapes = [x.shape for x in inputs]
        self._inputs = list(inputs)
        return self._merge(self._inputs)

    def backward(self, grad, need_input_grad=True):
        if not need_input_grad:
            return None
        grads = self._grads(grad, self._inputs)
        return [_unbroadcast(g, s) for g, s in zip(grads, self._shapes, strict=True)]


class Add(_Elementwise):
    """The sum of the inputs: ``Add()([x1, x2, x3])``."""

    def _merge(self, xs):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out

    def _grads(self, grad, xs):
        return [grad for _ in xs]


class Subtract(_Elementwise):
    """``x1 - x2``, for exactly two inputs."""

    arity = 2

    def _merge(self, xs):
        return xs[0] - xs[1]

    def _grads(self, grad, xs):
        return [grad, -grad]


class Multiply(_Elementwise):
    """The element-wise product of the inputs."""

    def _merge(self, xs):
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out = out * x
        return out

    def _grads(self, grad, xs):
        grads = []
        for i in range(len(xs)):
            g = grad
            for j, x in enumerate(xs):
                if j != i:
                    g = g * x
            grads.append(g)
        return grads


class Average(_Elementwise):
    """The element-wise mean of the inputs."""

    def _merge(self, xs):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out / len(xs)

    def _grads(self, grad, xs):
        return [grad / len(xs) for _ in xs]


class _Extremum(_Elementwise):
    _pick = staticmethod(np.argmax)

    def _merge(self, xs):
        stacked = np.stack(np.broadcast_arrays(*xs))
        self._winner = self._pick(stacked, axis=0)  # first index on ties
        return np.take_along_axis(stacked, self._winner[None], axis=0)[0]

    def _grads(self, grad, xs):
        return [np.where(self._winner == i, grad, 0).astype(grad.dtype) for i in range(len(xs))]


class Maximum(_Extremum):
    """The element-wise maximum of the inputs (ties: the gradient goes to the first)."""

    _pick = staticmethod(np.argmax)


class Minimum(_Extremum):
    """The element-wise minimum of the inputs (ties: the gradient goes to the first)."""

    _pick = staticmethod(np.argmin)


class Concatenate(Merge):
    """The inputs joined along ``axis`` (default -1, the features)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _sample_axis(self, ndim: int) -> int:
        """``axis`` among the axes of one sample (the batch axis excluded)."""
        axis = self.axis if self.axis < 0 else self.axis - 1
        if self.axis == 0 or not -ndim <= axis < ndim:
            raise ValueError(
                f"Concatenate: axis={self.axis} is not an axis of samples with {ndim} axes "
                "(the batch axis 0 cannot be concatenated)"
            )
        return axis % ndim

    def compute_output_shape(self, shapes):
        ndim = len(shapes[0])
        axis = self._sample_axis(ndim)
        for shape in shapes:
            if len(shape) != ndim or any(
                a != b for i, (a, b) in enumerate(zip(shape, shapes[0], strict=True)) if i != axis
            ):
                raise ValueError(
                    "A `Concatenate` layer requires inputs with matching shapes except for "
                    f"the concatenation axis. Received: input_shape={shapes}"
                )
        out = list(shapes[0])
        out[axis] = sum(shape[axis] for shape in shapes)
        return tuple(out)

    def forward(self, inputs, training=False):
        self._sizes = [x.shape[self.axis] for x in inputs]
        return np.concatenate(inputs, axis=self.axis)

    def backward(self, grad, need_input_grad=True):
        if not need_input_grad:
            return None
        return np.split(grad, np.cumsum(self._sizes)[:-1], axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(Merge):
    """The dot product of two inputs sample by sample, over ``axes`` (Keras' ``batch_dot``).

    ``Dot(axes=1)([a, b])`` with ``a``, ``b`` of shape ``(n, d)`` gives shape ``(n, 1)``;
    ``axes=(2, 1)`` on ``(n, p, d)`` and ``(n, d, q)`` gives ``(n, p, q)``. With
    ``normalize=True`` both inputs are first L2-normalised along their dot axes, so the
    result is the cosine similarity.
    """

    arity = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (int, np.integer)):
            axes = (int(axes), int(axes))
        if not isinstance(axes, (list, tuple)) or len(axes) != 2:
            raise ValueError(
                f"Invalid format for argument `axes`: expected an int or a list/tuple of 2 "
                f"ints. Received: axes={axes!r}"
            )
        self.axes = (int(axes[0]), int(axes[1]))
        self.normalize = bool(normalize)

    def _resolved_axes(self, ndims: tuple[int, int]) -> tuple[int, int]:
        """The dot axes of the two batches (positive, never the batch axis 0)."""
        resolved = []
        for axis, ndim in zip(self.axes, ndims, strict=True):
            full = axis % ndim if axis < 0 else axis
            if not 1 <= full < ndim:
                raise ValueError(
                    f"Dot: axes={self.axes} is not valid for inputs with {ndims[0] - 1} and "
                    f"{ndims[1] - 1} axes per sample (axis 0 is the batch)"
                )
            resolved.append(full)
        return resolved[0], resolved[1]

    def _subscripts(self, ndims: tuple[int, int]) -> tuple[str, str, str]:
        a1, a2 = self._resolved_axes(ndims)
        letters = iter("cdefghijklmnopqrstuvwxy")
        s1 = ["b"] + [next(letters) for _ in range(ndims[0] - 1)]
        s2 = ["b"] + [next(letters) for _ in range(ndims[1] - 1)]
        s1[a1] = s2[a2] = "z"
        out = ["b"] + [c for c in s1[1:] if c != "z"] + [c for c in s2[1:] if c != "z"]
        return "".join(s1), "".join(s2), "".join(out)

    def compute_output_shape(self, shapes):
        s1, s2 = ((None, *shapes[0]), (None, *shapes[1]))
        a1, a2 = self._resolved_axes((len(s1), len(s2)))
        if s1[a1] != s2[a2]:
            raise ValueError(
                f"Incompatible input shapes for Dot: axis {a1} of {tuple(s1[1:])} has "
                f"{s1[a1]} entries and axis {a2} of {tuple(s2[1:])} has {s2[a2]}"
            )
        out = [d for i, d in enumerate(s1[1:], 1) if i != a1]
        out += [d for i, d in enumerate(s2[1:], 1) if i != a2]
        return tuple(out) or (1,)

    def forward(self, inputs, training=False):
        x1, x2 = inputs
        sub1, sub2, out = self._subscripts((x1.ndim, x2.ndim))
        self._sub = (sub1, sub2, out)
        if self.normalize:
            a1, a2 = self._resolved_axes((x1.ndim, x2.ndim))
            self._norm1 = np.sqrt(np.maximum((x1 * x1).sum(axis=a1, keepdims=True), 1e-12))
            self._norm2 = np.sqrt(np.maximum((x2 * x2).sum(axis=a2, keepdims=True), 1e-12))
            x1, x2 = x1 / self._norm1, x2 / self._norm2
        self._x1, self._x2 = x1, x2
        y = np.einsum(f"{sub1},{sub2}->{out}", x1, x2)
        return y[:, None] if y.ndim == 1 else y

    def backward(self, grad, need_input_grad=True):
        if not need_input_grad:
            return None
        sub1, sub2, out = self._sub
        if len(out) == 1:
            grad = grad[:, 0]
        g1 = np.einsum(f"{out},{sub2}->{sub1}", grad, self._x2)
        g2 = np.einsum(f"{out},{sub1}->{sub2}", grad, self._x1)
        if self.normalize:
            a1, a2 = self._resolved_axes((self._x1.ndim, self._x2.ndim))
            # d(x / |x|) applied to g: (g - x^ (x^ . g)) / |x|
            g1 = (g1 - self._x1 * (self._x1 * g1).sum(axis=a1, keepdims=True)) / self._norm1
            g2 = (g2 - self._x2 * (self._x2 * g2).sum(axis=a2, keepdims=True)) / self._norm2
        return [g1, g2]

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}
