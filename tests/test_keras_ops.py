"""keras.ops on arrays: values against NumPy, result dtypes against Keras 3's rules, and the
errors for what is not supported."""

from __future__ import annotations

import numpy as np
import pytest

import multilayer as keras
from multilayer import ops
from multilayer.layers import Dense, Input


@pytest.fixture(autouse=True)
def _float32():
    yield
    keras.config.set_floatx("float32")


def test_a_classifier_postprocessing_program():
    # logits -> probabilities -> predicted classes -> accuracy, the usual few lines.
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.2], [1.0, 1.0, 3.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    probabilities = ops.softmax(logits)
    np.testing.assert_allclose(ops.sum(probabilities, axis=-1), 1.0, rtol=1e-6)
    predicted = ops.argmax(probabilities, axis=-1)
    assert predicted.dtype == np.int32
    np.testing.assert_array_equal(predicted, [0, 1, 2])
    accuracy = ops.mean(ops.cast(predicted == labels, "float32"))
    assert float(accuracy) == pytest.approx(2 / 3)
    targets = ops.one_hot(labels, 3)
    loss = -ops.mean(ops.sum(targets * ops.log(probabilities), axis=-1))
    expected = -np.mean(
        np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[[0, 1, 2], labels]
    )
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_ops_on_model_outputs():
    model = keras.Sequential([Input(shape=(4,)), Dense(3, activation="softmax")])
    x = keras.random.normal((5, 4), seed=0)
    out = model.predict(x)
    assert ops.shape(out) == (5, 3)
    array = ops.convert_to_numpy(out)
    assert isinstance(array, np.ndarray) and array is not out
    np.testing.assert_array_equal(array, out)


def test_softmax_is_stable_and_takes_an_axis():
    x = np.array([[1000.0, 0.0], [-1000.0, 0.0]])
    np.testing.assert_allclose(ops.softmax(x), [[1.0, 0.0], [0.0, 1.0]])
    y = np.arange(6.0).reshape(2, 3)
    by_column = ops.softmax(y, axis=0)
    np.testing.assert_allclose(by_column.sum(axis=0), 1.0)
    np.testing.assert_allclose(by_column[:, 0], np.exp([0, 3]) / np.exp([0, 3]).sum())
    np.testing.assert_allclose(ops.softmax(y, axis=(0, 1)).sum(), 1.0)


def test_sigmoid_and_relu():
    x = np.array([-800.0, -1.0, 0.0, 2.0, 800.0])
    np.testing.assert_allclose(
        ops.sigmoid(x), [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2)), 1.0]
    )
    np.testing.assert_array_equal(ops.relu(x), [0, 0, 0, 2, 800])
    assert ops.relu(np.array([-2, 3])).dtype == np.int64  # keeps the dtype, as Keras
    assert ops.sigmoid([0, 1]).dtype == np.float32


def test_one_hot():
    encoded = ops.one_hot(np.array([[0, 2], [1, 0]]), 3)
    assert encoded.shape == (2, 2, 3) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded[0, 1], [0, 0, 1])
    # indices outside [0, num_classes) give zeros, as TensorFlow and JAX
    np.testing.assert_array_equal(ops.one_hot([-1, 3, 1], 3), [[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    assert ops.one_hot([1], 2, dtype="int32").dtype == np.int32
    np.testing.assert_array_equal(ops.one_hot([0, 1], 2, axis=0), [[1, 0], [0, 1]])
    np.testing.assert_array_equal(ops.one_hot(np.array([2.0]), 3), [[0, 0, 1]])
    with pytest.raises(ValueError, match=r"one_hot: num_classes must be a positive integer, got 0"):
        ops.one_hot([1], 0)
    with pytest.raises(
        ValueError, match=r"one_hot: x must hold integer class indices, found fractions"
    ):
        ops.one_hot([0.5], 2)


def test_reductions_and_their_dtypes():
    x = np.array([[1, 5, 3], [4, 2, 6]], dtype=np.int32)
    assert ops.mean(x).dtype == np.float32 and float(ops.mean(x)) == 3.5
    np.testing.assert_array_equal(ops.mean(x, axis=0, keepdims=True), [[2.5, 3.5, 4.5]])
    assert ops.sum(np.array([True, True, False])) == 2
    assert ops.sum(np.array([True])).dtype == np.int32
    assert ops.sum(np.array([200, 100], dtype=np.uint8)) == 300
    np.testing.assert_array_equal(ops.max(x, axis=1), [5, 6])
    np.testing.assert_array_equal(ops.min(x, axis=0), [1, 2, 3])
    assert ops.max(np.array([]), initial=-1.0) == -1.0
    assert ops.argmax(x) == 5 and ops.argmin(x, axis=1).tolist() == [0, 1]
    assert ops.argmax(x, keepdims=True).shape == (1, 1)
    # -0.0 counts as smaller than 0.0
    assert ops.argmax(np.array([-0.0, 0.0])) == 1 and ops.argmin(np.array([0.0, -0.0])) == 1
    with pytest.raises(
        ValueError, match=r"max: x is empty; pass initial= to give the result of an empty max"
    ):
        ops.max(np.array([]))


def test_elementwise_math_and_dtypes():
    assert ops.sqrt([4, 9]).tolist() == [2, 3] and ops.sqrt([4, 9]).dtype == np.float32
    assert ops.sqrt(np.array([4.0])).dtype == np.float64  # arrays keep their float type
    np.testing.assert_allclose(ops.exp(np.array([0.0, 1.0])), [1.0, np.e])
    np.testing.assert_allclose(ops.log(np.array([1.0, np.e])), [0.0, 1.0])
    assert ops.log(np.array([0.0]))[0] == -np.inf
    np.testing.assert_array_equal(ops.abs([-2, 3]), [2, 3])
    np.testing.assert_array_equal(ops.square(np.array([True, False])), [1, 0])
    clipped = ops.clip(np.array([-5, 0, 5]), -1, 1)
    assert clipped.tolist() == [-1, 0, 1] and clipped.dtype == np.int64
    np.testing.assert_allclose(
        ops.clip(np.array([0.0, 0.5, 1.0]), 1e-7, 1 - 1e-7), [1e-7, 0.5, 1 - 1e-7]
    )


def test_promotion_follows_keras_not_numpy():
    assert ops.convert_to_tensor([1, 2]).dtype == np.int32
    assert ops.convert_to_tensor([1.0, 2]).dtype == np.float32
    assert ops.convert_to_tensor(np.arange(3)).dtype == np.int64
    assert ops.add(np.arange(3, dtype=np.int64), np.ones(3, np.float32)).dtype == np.float32
    assert ops.multiply(np.arange(3, dtype=np.int32), 0.5).dtype == np.float32
    assert ops.add(np.array([1], np.int8), 1).dtype == np.int8
    assert ops.matmul(np.ones((2, 2), np.int8), np.ones((2, 2), np.int8)).dtype == np.int32
    assert ops.divide([1, 2], [2, 4]).dtype == np.float32
    assert ops.concatenate([np.ones(2, np.int32), np.ones(1, np.float32)]).dtype == np.float32
    keras.config.set_floatx("float64")
    assert ops.convert_to_tensor([0.5]).dtype == np.float64
    assert ops.sqrt([4]).dtype == np.float64


def test_shape_manipulation():
    a, b = np.arange(6).reshape(2, 3), np.arange(6, 12).reshape(2, 3)
    np.testing.assert_array_equal(ops.concatenate([a, b], axis=1), np.concatenate([a, b], 1))
    assert ops.stack([a, b]).shape == (2, 2, 3) and ops.stack([a, b], axis=-1).shape == (2, 3, 2)
    assert ops.reshape(a, (3, -1)).shape == (3, 2)
    assert ops.expand_dims(a, 0).shape == (1, 2, 3) and ops.expand_dims(a, (0, 3)).shape == (
        1,
        2,
        3,
        1,
    )
    assert ops.squeeze(np.ones((1, 3, 1))).shape == (3,)
    assert ops.squeeze(np.ones((1, 3, 1)), axis=-1).shape == (1, 3)
    assert ops.transpose(a).shape == (3, 2)
    with pytest.raises(ValueError, match=r"Cannot squeeze axis=1, because the dimension is not 1."):
        ops.squeeze(np.ones((1, 3)), axis=1)
    assert ops.shape(np.zeros((4, 5))) == (4, 5) and isinstance(ops.shape([1, 2]), tuple)


def test_where_matmul_cast():
    condition = np.array([True, False, True])
    np.testing.assert_array_equal(ops.where(condition, 1.0, 0.0), [1.0, 0.0, 1.0])
    assert ops.where(condition, 1.0, 0.0).dtype == np.float32
    (indices,) = ops.where(condition)
    np.testing.assert_array_equal(indices, [0, 2])
    with pytest.raises(ValueError, match="where: give both x1 and x2, or neither"):
        ops.where(condition, 1.0)
    w = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(ops.matmul(np.ones((4, 3)), w), np.ones((4, 3)) @ w)
    assert ops.matmul(np.ones((5, 4, 3)), w).shape == (5, 4, 2)
    assert ops.cast([1.7, -1.7], "int32").tolist() == [1, -1]
    assert ops.cast(np.array([1, 0]), "bool").dtype == np.bool_


def test_unprovided_ops_say_what_to_use():
    with pytest.raises(AttributeError) as error:
        ops.fft  # noqa: B018
    message = str(error.value)
    assert message.startswith("multilayer.ops has no 'fft': it provides the keras.ops that MLP")
    assert message.endswith("on arrays, use numpy.fft instead")


def test_convert_to_tensor_refuses_sparse_and_ragged():
    with pytest.raises(
        ValueError, match=r"convert_to_tensor: sparse=True is not supported \(NumPy backend\)"
    ):
        ops.convert_to_tensor([1], sparse=True)
    with pytest.raises(
        ValueError, match=r"convert_to_tensor: ragged=True is not supported \(NumPy backend\)"
    ):
        ops.convert_to_tensor([1], ragged=True)


def test_comparisons_for_a_hand_written_accuracy():
    y_true = np.array([0, 1, 2, 1])
    y_pred = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1]])
    hits = ops.equal(y_true, ops.argmax(y_pred, axis=-1))
    assert hits.dtype == np.bool_ and hits.tolist() == [True, True, False, True]
    assert float(ops.mean(ops.cast(hits, "float32"))) == 0.75
    assert ops.not_equal([1, 2], [1, 3]).tolist() == [False, True]
    assert ops.greater([1, 2], 1.5).tolist() == [False, True]
    assert ops.greater_equal([1, 2], 2).tolist() == [False, True]
    assert ops.less(np.array([0.5]), 1).tolist() == [True]
    assert ops.less_equal([3], [3]).tolist() == [True]
    assert bool(ops.any(hits)) and not bool(ops.all(hits))
    assert ops.all(np.ones((2, 3)), axis=1).tolist() == [True, True]


def test_constructors_and_statistics():
    assert ops.zeros((2, 3)).dtype == np.float32 and ops.ones(4, dtype="int32").tolist() == [1] * 4
    assert ops.zeros_like(np.ones(3, np.int64)).dtype == np.int64
    assert ops.ones_like([1.0, 2.0]).dtype == np.float32
    assert ops.arange(4).tolist() == [0, 1, 2, 3] and ops.arange(4).dtype == np.int32
    assert ops.arange(1, 2, 0.5).dtype == np.float32 and ops.arange(1, 2, 0.5).tolist() == [
        1.0,
        1.5,
    ]
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert float(ops.var(x)) == 1.25 and float(ops.std(x)) == pytest.approx(np.sqrt(1.25))
    assert ops.var([1, 2, 3, 4]).dtype == np.float32
    assert ops.negative([1, -2]).tolist() == [-1, 2]
    assert ops.power(np.array([2.0, 3.0]), 2).tolist() == [4.0, 9.0]
    np.testing.assert_allclose(ops.log_softmax(np.array([[1000.0, 0.0]])), [[0.0, -1000.0]])
    np.testing.assert_allclose(np.exp(ops.log_softmax(x)), ops.softmax(x))
