"""The gradients of keras.ops (used when ops run inside a model) against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer import ops
from multilayer.engine.op_gradients import DIFFERENTIABLE, SUPPORTED, vjp

RNG = np.random.default_rng(1)


def _away_from_kinks(shape, low=0.3):
    """Random values with |x| >= low (no ties, no kinks of abs/relu/clip near them)."""
    x = RNG.uniform(low, 2.0, size=shape) * RNG.choice([-1.0, 1.0], size=shape)
    return x


def _positive(shape):
    return RNG.uniform(0.5, 2.0, size=shape)


CASES = [
    ("reshape", lambda: ((RNG.normal(size=(2, 6)), (3, 4)), {})),
    ("expand_dims", lambda: ((RNG.normal(size=(2, 3)), 1), {})),
    ("squeeze", lambda: ((RNG.normal(size=(2, 1, 3)),), {"axis": 1})),
    ("transpose", lambda: ((RNG.normal(size=(2, 3, 4)), (2, 0, 1)), {})),
    ("transpose", lambda: ((RNG.normal(size=(2, 3)),), {})),
    ("concatenate", lambda: (([RNG.normal(size=(2, 3)), RNG.normal(size=(2, 2))],), {"axis": 1})),
    ("stack", lambda: (([RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))],), {"axis": -1})),
    ("mean", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 0})),
    ("mean", lambda: ((RNG.normal(size=(3, 4)),), {"axis": -1, "keepdims": True})),
    ("mean", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("sum", lambda: ((RNG.normal(size=(3, 4)), (0, 1)), {})),
    ("sum", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 1})),
    ("max", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 1})),
    ("min", lambda: ((RNG.normal(size=(3, 4)),), {"keepdims": True})),
    ("abs", lambda: ((_away_from_kinks((3, 4)),), {})),
    ("square", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("sqrt", lambda: ((_positive((3, 4)),), {})),
    ("exp", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("log", lambda: ((_positive((3, 4)),), {})),
    ("relu", lambda: ((_away_from_kinks((3, 4)),), {})),
    ("sigmoid", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("tanh", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("softmax", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("softmax", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 0})),
    ("log_softmax", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("log_softmax", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 0})),
    ("var", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 1})),
    ("var", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("std", lambda: ((RNG.normal(size=(3, 4)),), {"axis": 0, "keepdims": True})),
    ("negative", lambda: ((RNG.normal(size=(3, 4)),), {})),
    ("power", lambda: ((_positive((3, 4)), RNG.normal(size=(3, 4))), {})),
    ("power", lambda: ((RNG.normal(size=(3, 4)), 3.0), {})),
    ("clip", lambda: ((_away_from_kinks((3, 4)), -1.1, 1.2), {})),
    (
        "where",
        lambda: (
            (RNG.normal(size=(3, 4)) > 0, RNG.normal(size=(3, 4)), RNG.normal(size=(1, 4))),
            {},
        ),
    ),
    ("matmul", lambda: ((RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))), {})),
    ("matmul", lambda: ((RNG.normal(size=(5, 3, 4)), RNG.normal(size=(4, 2))), {})),
    ("matmul", lambda: ((RNG.normal(size=(3, 4)), RNG.normal(size=(4,))), {})),
    ("cast", lambda: ((RNG.normal(size=(3, 4)), "float64"), {})),
    ("add", lambda: ((RNG.normal(size=(3, 4)), RNG.normal(size=(4,))), {})),
    ("subtract", lambda: ((RNG.normal(size=(3, 4)), RNG.normal(size=(3, 1))), {})),
    ("multiply", lambda: ((RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))), {})),
    ("multiply", lambda: ((RNG.normal(size=(3, 4)), 2.5), {})),
    ("divide", lambda: ((RNG.normal(size=(3, 4)), _positive((3, 4))), {})),
    ("maximum", lambda: ((RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))), {})),
    ("minimum", lambda: ((RNG.normal(size=(3, 4)), 0.1), {})),
]


def _arrays(args):
    """(path, array) of every array argument (one level into lists)."""
    for i, arg in enumerate(args):
        if isinstance(arg, np.ndarray) and arg.dtype != bool:
            yield (i, None), arg
        elif isinstance(arg, list):
            for j, item in enumerate(arg):
                yield (i, j), item


@pytest.mark.parametrize(("name", "make"), CASES, ids=[c[0] for c in CASES])
def test_vjp_against_finite_differences(name, make):
    args, kwargs = make()
    function = getattr(ops, name)
    output = function(*args, **kwargs)
    upstream = RNG.normal(size=output.shape)
    grads = vjp(name, upstream, args, kwargs, output)
    assert len(grads) == len(args)
    eps = 1e-6
    for (i, j), x in _arrays(args):
        analytic = grads[i] if j is None else grads[i][j]
        assert analytic.shape == x.shape
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            saved = x[index]
            x[index] = saved + eps
            plus = np.sum(upstream * function(*args, **kwargs))
            x[index] = saved - eps
            minus = np.sum(upstream * function(*args, **kwargs))
            x[index] = saved
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(
            analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=f"{name} arg {i}"
        )


def test_ties_share_the_gradient_of_max():
    x = np.array([[1.0, 3.0, 3.0]])
    (g,) = vjp("max", np.array([1.0]), (x,), {"axis": 1}, ops.max(x, axis=1))
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5]])


def test_integer_results_have_no_gradient():
    x = np.array([[1.0, 3.0]])
    assert vjp("argmax", np.zeros(1), (x,), {"axis": 1}, ops.argmax(x, axis=1)) == (None,)
    assert vjp("cast", np.zeros((1, 2)), (x, "int32"), {}, ops.cast(x, "int32")) == (None, None)
    assert "argmax" in SUPPORTED and "argmax" not in DIFFERENTIABLE
    with pytest.raises(ValueError, match="no gradient is defined for keras.ops.fft"):
        vjp("fft", np.zeros(1), (x,), {}, x)
