"""Losses and metrics against their direct formulas (Keras' definitions), written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multilayer import losses, metrics
from multilayer.layers import Dense
from multilayer.models import Sequential

Y_ONE_HOT = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
Y_LABELS = np.array([1, 0])
PROBS = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
LOGITS = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])


def log_softmax_row(z):
    return z - math.log(sum(math.exp(v) for v in z))


# -- cross-entropies ------------------------------------------------------------------------


def test_categorical_crossentropy_on_probabilities():
    expected = [-math.log(0.7), -math.log(0.6)]
    np.testing.assert_allclose(losses.categorical_crossentropy(Y_ONE_HOT, PROBS), expected)
    assert losses.CategoricalCrossentropy()(Y_ONE_HOT, PROBS) == pytest.approx(np.mean(expected))


def test_categorical_crossentropy_normalises_and_clips_like_keras():
    # Keras divides by the row sum, then clips to [1e-7, 1 - 1e-7] before the log.
    unnormalised = np.array([[0.4, 1.4, 0.2]])
    assert losses.categorical_crossentropy([[0, 1, 0]], unnormalised)[0] == pytest.approx(
        -math.log(0.7)
    )
    zero = np.array([[1.0, 0.0, 0.0]])
    assert losses.categorical_crossentropy([[0, 1, 0]], zero)[0] == pytest.approx(-math.log(1e-7))


def test_categorical_crossentropy_from_logits():
    expected = [-log_softmax_row(LOGITS[0])[1], -log_softmax_row(LOGITS[1])[0]]
    np.testing.assert_allclose(
        losses.categorical_crossentropy(Y_ONE_HOT, LOGITS, from_logits=True), expected
    )


def test_categorical_crossentropy_from_logits_is_stable_for_huge_logits():
    value = losses.categorical_crossentropy([[1.0, 0.0]], [[1000.0, -1000.0]], from_logits=True)
    assert np.isfinite(value).all() and value[0] == pytest.approx(0.0)
    value = losses.categorical_crossentropy([[0.0, 1.0]], [[1000.0, -1000.0]], from_logits=True)
    assert value[0] == pytest.approx(2000.0)


def test_categorical_crossentropy_label_smoothing():
    s, k = 0.1, 3
    smoothed = Y_ONE_HOT * (1 - s) + s / k
    expected = -(smoothed * np.log(PROBS)).sum(axis=1)
    np.testing.assert_allclose(
        losses.categorical_crossentropy(Y_ONE_HOT, PROBS, label_smoothing=s), expected
    )


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_equals_categorical_on_one_hot(from_logits):
    y_pred = LOGITS if from_logits else PROBS
    np.testing.assert_allclose(
        losses.sparse_categorical_crossentropy(Y_LABELS, y_pred, from_logits=from_logits),
        losses.categorical_crossentropy(Y_ONE_HOT, y_pred, from_logits=from_logits),
    )


def test_sparse_label_smoothing_equals_categorical_label_smoothing():
    sparse = losses.SparseCategoricalCrossentropy(label_smoothing=0.2)
    dense = losses.CategoricalCrossentropy(label_smoothing=0.2)
    assert sparse(Y_LABELS, PROBS) == pytest.approx(dense(Y_ONE_HOT, PROBS))


def test_binary_crossentropy():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.9, 0.2], [0.4, 0.6]])
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(losses.binary_crossentropy(y, p), expected)
    # from logits: the same with p = sigmoid(z)
    z = np.log(p / (1 - p))
    np.testing.assert_allclose(losses.binary_crossentropy(y, z, from_logits=True), expected)
    # label smoothing: y -> y (1 - s) + s / 2
    ys = y * 0.8 + 0.1
    smoothed = -(ys * np.log(p) + (1 - ys) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(losses.binary_crossentropy(y, p, label_smoothing=0.2), smoothed)


def test_binary_crossentropy_clips_like_keras():
    value = losses.binary_crossentropy([[1.0]], [[0.0]])[0]
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_binary_crossentropy_flat_targets_meet_column_outputs():
    y, p = np.array([1.0, 0.0, 1.0]), np.array([[0.8], [0.3], [0.6]])
    expected = -np.mean(np.log([0.8, 0.7, 0.6]))
    assert losses.BinaryCrossentropy()(y, p) == pytest.approx(expected)


def test_label_smoothing_is_validated():
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)


# -- regression and hinge ---------------------------------------------------------------------


def test_mean_squared_and_absolute_error():
    y = np.array([[1.0, 2.0], [0.0, -1.0]])
    p = np.array([[1.5, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(losses.mse(y, p), [(0.25 + 1.0) / 2, 4.0 / 2])
    np.testing.assert_allclose(losses.mae(y, p), [(0.5 + 1.0) / 2, 2.0 / 2])
    assert losses.get("mse")(y, p) == pytest.approx((0.625 + 2.0) / 2)
    assert losses.get("mean_absolute_error")(y, p) == pytest.approx((0.75 + 1.0) / 2)


def test_hinge_with_signed_and_binary_targets():
    y_signed = np.array([[1.0, -1.0, 1.0]])
    p = np.array([[0.3, 0.5, 2.0]])
    expected = np.mean([max(1 - 0.3, 0), max(1 + 0.5, 0), max(1 - 2.0, 0)])
    assert losses.hinge(y_signed, p)[0] == pytest.approx(expected)
    # Keras maps {0, 1} targets to {-1, 1}
    assert losses.hinge(np.array([[1.0, 0.0, 1.0]]), p)[0] == pytest.approx(expected)


def test_loss_names_and_errors():
    assert isinstance(losses.get("categorical_crossentropy"), losses.CategoricalCrossentropy)
    assert isinstance(losses.get("MAE"), losses.MeanAbsoluteError)
    with pytest.raises(
        ValueError,
        match=r"Unknown loss 'categorical_crossentropyy'\. Did you mean 'categorical_crossentropy'\?",
    ):
        losses.get("categorical_crossentropyy")


def test_loss_gradients_match_their_formulas():
    """A direct check of the analytic gradients (the model-level check is in test_gradients)."""
    n = len(PROBS)
    np.testing.assert_allclose(
        losses.CategoricalCrossentropy(from_logits=True).gradient(Y_ONE_HOT, LOGITS),
        (np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True) - Y_ONE_HOT) / n,
    )
    fused = losses.CategoricalCrossentropy().fused_gradient(Y_ONE_HOT, PROBS.copy())
    np.testing.assert_allclose(fused, (PROBS - Y_ONE_HOT) / n)
    sparse = losses.SparseCategoricalCrossentropy().fused_gradient(Y_LABELS, PROBS.copy())
    np.testing.assert_allclose(sparse, (PROBS - Y_ONE_HOT) / n)


# -- metrics -------------------------------------------------------------------------------------


def metric_value(metric, y_true, y_pred):
    metric.reset_state()
    metric.update_state(y_true, y_pred)
    return metric.result()


def test_categorical_and_sparse_accuracy():
    y_pred = np.array([[0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.3, 0.6, 0.1]])
    labels = np.array([1, 1, 2, 0])
    one_hot = np.eye(3)[labels]
    assert metric_value(metrics.CategoricalAccuracy(), one_hot, y_pred) == 0.5
    assert metric_value(metrics.SparseCategoricalAccuracy(), labels, y_pred) == 0.5


def test_binary_accuracy_threshold():
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.7], [0.4], [0.3], [0.6]])
    assert metric_value(metrics.BinaryAccuracy(), y, p) == 0.5
    assert metric_value(metrics.BinaryAccuracy(threshold=0.65), y, p) == 0.75


def test_metric_is_a_running_mean_over_batches():
    metric = metrics.SparseCategoricalAccuracy()
    metric.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))  # 1 of 2
    metric.update_state(np.array([1, 1, 1]), np.array([[0.1, 0.9]] * 3))  # 3 of 3
    assert metric.result() == pytest.approx(4 / 5)
    metric.reset_state()
    assert metric.result() == 0.0


def test_top_k_categorical_accuracy():
    y_pred = np.array(
        [
            [0.05, 0.1, 0.5, 0.35],  # true 3: 2nd best
            [0.4, 0.3, 0.2, 0.1],  # true 3: 4th
            [0.1, 0.6, 0.2, 0.1],  # true 1: best
        ]
    )
    labels = np.array([3, 3, 1])
    one_hot = np.eye(4)[labels]
    expected = {1: 1 / 3, 2: 2 / 3, 3: 2 / 3, 4: 1.0}
    for k, value in expected.items():
        assert metric_value(metrics.TopKCategoricalAccuracy(k=k), one_hot, y_pred) == pytest.approx(
            value
        )
        assert metric_value(
            metrics.SparseTopKCategoricalAccuracy(k=k), labels, y_pred
        ) == pytest.approx(value)
    assert metrics.TopKCategoricalAccuracy().k == 5  # Keras' default


def test_regression_metrics():
    y, p = np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])
    assert metric_value(metrics.MeanSquaredError(), y, p) == pytest.approx(2.5)
    assert metric_value(metrics.get("mae"), y, p) == pytest.approx(1.5)


@pytest.mark.parametrize(
    "loss, expected",
    [
        ("categorical_crossentropy", metrics.CategoricalAccuracy),
        ("sparse_categorical_crossentropy", metrics.SparseCategoricalAccuracy),
        ("binary_crossentropy", metrics.BinaryAccuracy),
    ],
)
def test_accuracy_is_resolved_from_the_loss(loss, expected):
    metric = metrics.get("accuracy", losses.get(loss))
    assert type(metric) is expected
    assert metric.name == "accuracy"  # logs keep the name the user wrote
    model = Sequential([Dense(3, activation="softmax", input_shape=(2,))])
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    assert type(model.metrics[0]) is expected


def test_binary_accuracy_from_logits_thresholds_at_zero():
    metric = metrics.get("accuracy", losses.BinaryCrossentropy(from_logits=True))
    assert metric_value(metric, np.array([[1.0], [0.0]]), np.array([[0.2], [-0.2]])) == 1.0


def test_accuracy_is_refused_for_regression_losses():
    with pytest.raises(
        ValueError, match="'accuracy' is not defined for the loss 'mean_squared_error'"
    ):
        metrics.get("accuracy", losses.get("mse"))


def test_unknown_metric_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'\. Did you mean 'accuracy'\?"):
        metrics.get("acuracy")
