"""multilayer.tabular.metrics against scikit-learn's functions, and its documented edge cases."""

import json
import math

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")
calibration = pytest.importorskip("sklearn.calibration")

from multilayer.tabular.metrics import (  # noqa: E402
    calibration_curve,
    roc_auc,
    roc_curve,
    task_metrics,
)

SEEDS = range(5)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.5, size=200)
    got = task_metrics("regression", y, p[:, None])
    assert got["samples"] == 200
    assert got["rmse"] == pytest.approx(
        math.sqrt(sklearn_metrics.mean_squared_error(y, p)), rel=1e-12
    )
    assert got["mae"] == pytest.approx(sklearn_metrics.mean_absolute_error(y, p), rel=1e-12)
    assert got["r2"] == pytest.approx(sklearn_metrics.r2_score(y, p), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=300)
    # Rounded to 1 decimal: many tied scores, including ties across the two classes.
    p = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, size=300), 0, 1), 1)
    got = task_metrics("binary", y, p[:, None], ["no", "yes"])
    predicted = (p > 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, predicted))
    assert got["log_loss"] == pytest.approx(sklearn_metrics.log_loss(y, p), rel=1e-12)
    assert got["roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, p), rel=1e-12)
    assert got["f1"] == pytest.approx(sklearn_metrics.f1_score(y, predicted), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 4
    y = rng.integers(0, k, size=400)
    logits = rng.normal(size=(400, k))
    logits[np.arange(400), y] += 1.0
    p = _softmax(logits)
    got = task_metrics("multiclass", y, p, list("abcd"))
    assert got["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, p.argmax(1)))
    assert got["log_loss"] == pytest.approx(
        sklearn_metrics.log_loss(y, p, labels=range(k)), rel=1e-12
    )
    assert got["roc_auc"] == pytest.approx(
        sklearn_metrics.roc_auc_score(y, p, multi_class="ovr", average="macro"), rel=1e-12
    )
    assert got["f1"] == pytest.approx(
        sklearn_metrics.f1_score(y, p.argmax(1), average="macro"), rel=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(250, 3))
    p = np.round(np.clip(0.4 * y + rng.uniform(0, 0.6, size=(250, 3)), 0, 1), 2)
    predicted = (p > 0.5).astype(int)
    got = task_metrics("multilabel", y, p, ["a", "b", "c"])
    assert got["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, predicted))
    per_label = [sklearn_metrics.log_loss(y[:, j], p[:, j]) for j in range(3)]
    assert got["log_loss"] == pytest.approx(np.mean(per_label), rel=1e-12)
    assert got["roc_auc"] == pytest.approx(
        sklearn_metrics.roc_auc_score(y, p, average="macro"), rel=1e-12
    )
    assert got["f1"] == pytest.approx(
        sklearn_metrics.f1_score(y, predicted, average="macro"), rel=1e-12
    )


def test_multiclass_f1_counts_classes_present_or_predicted_like_sklearn():
    y = np.array([0, 0, 1, 1, 1])
    p = np.eye(4)[[0, 1, 1, 1, 3]] * 0.97 + 0.01  # class 2 never present nor predicted
    got = task_metrics("multiclass", y, p, [0, 1, 2, 3])
    assert got["f1"] == pytest.approx(
        sklearn_metrics.f1_score(y, p.argmax(1), average="macro"), rel=1e-12
    )


def test_certain_mistake_costs_a_finite_log_loss_like_sklearn():
    y = np.array([0, 1])
    p = np.array([1.0, 0.0])
    got = task_metrics("binary", y, p, [0, 1])
    assert math.isfinite(got["log_loss"])
    assert got["log_loss"] == pytest.approx(sklearn_metrics.log_loss(y, p), rel=1e-12)


def test_one_class_gives_none_auc_and_the_dict_is_strict_json():
    got = task_metrics("binary", np.ones(4, int), np.array([0.2, 0.6, 0.9, 0.7]), [0, 1])
    assert got["roc_auc"] is None
    assert got["accuracy"] == 0.75
    json.dumps(got, allow_nan=False)  # no NaN anywhere (scikit-learn: NaN or an error)


def test_auc_averages_the_classes_where_it_is_defined():
    y = np.array([0, 0, 1, 1])  # class 2 absent from y_true
    p = _softmax(np.random.default_rng(0).normal(size=(4, 3)))
    got = task_metrics("multiclass", y, p, ["a", "b", "c"])
    expected = np.mean([roc_auc(y == 0, p[:, 0]), roc_auc(y == 1, p[:, 1])])
    assert got["roc_auc"] == pytest.approx(expected, rel=1e-12)
    all_ones = task_metrics("multilabel", np.ones((3, 2)), np.full((3, 2), 0.7), ["a", "b"])
    assert all_ones["roc_auc"] is None
    assert all_ones["accuracy"] == 1.0 and all_ones["f1"] == 1.0


def test_constant_regression_target_gives_none_r2():
    got = task_metrics("regression", np.full(5, 3.0), np.array([3.0, 3.5, 3.0, 2.5, 3.0]))
    assert got["r2"] is None
    assert got["mae"] == pytest.approx(0.2)
    json.dumps(got, allow_nan=False)


def test_no_positive_anywhere_gives_f1_zero_like_sklearn_zero_division():
    y = np.zeros(4, int)
    p = np.full(4, 0.1)
    assert task_metrics("binary", y, p, [0, 1])["f1"] == 0.0
    assert sklearn_metrics.f1_score(y, (p > 0.5).astype(int), zero_division=0) == 0.0


@pytest.mark.parametrize(
    ("task", "y", "p", "classes", "message"),
    [
        ("ranking", [0], [0.5], [], "task must be one of"),
        ("binary", [0, 1], [0.5], [0, 1], "y_true has 2 rows but the outputs have 1"),
        ("binary", [], [], [0, 1], "no rows to compute metrics on"),
        ("binary", [0, 2], [0.5, 0.5], [0, 1], "y_true must hold class indices 0 .. 1"),
        ("binary", [0, 1], [0.5, 1.5], [0, 1], "probabilities in \\[0, 1\\]"),
        ("regression", [0.0, 1.0], [np.nan, 1.0], [], "NaN or infinite"),
        ("multiclass", [0, 1], [[0.5, 0.5], [0.5, 0.5]], [0, 1, 2], "shape \\(rows, 3\\)"),
        ("multilabel", [[0, 2]], [[0.5, 0.5]], ["a", "b"], "0 and 1 only"),
    ],
)
def test_bad_inputs_are_named(task, y, p, classes, message):
    with pytest.raises(ValueError, match=message):
        task_metrics(task, np.asarray(y), np.asarray(p, dtype=float), classes)


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=120)
    s = np.round(rng.uniform(size=120) + 0.3 * y, 1)
    fpr, tpr, thresholds = roc_curve(y, s)
    want_fpr, want_tpr, want_thresholds = sklearn_metrics.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, want_tpr, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thresholds[1:], want_thresholds[1:])
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, s), rel=1e-12)
    with pytest.raises(ValueError, match="both positive and negative rows"):
        roc_curve(np.ones(3), [0.1, 0.2, 0.3])


@pytest.mark.parametrize("seed", SEEDS)
def test_calibration_curve_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=500)
    p[:5] = [0.0, 1.0, 0.1, 0.5, 0.9]  # bin edges
    y = (rng.uniform(size=500) < p).astype(int)
    fraction, mean, counts = calibration_curve(y, p, bins=10)
    want_fraction, want_mean = calibration.calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(fraction, want_fraction, rtol=1e-12)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    assert counts.sum() == 500
