"""The Keras metrics added for issue 10: confusion counts, Precision, Recall, AUC (ROC, PR,
PR-gain), F1Score/FBetaScore, R2Score, RootMeanSquaredError, MAPE/MSLE and the loss-valued
metrics (cross-entropies, hinges, KL divergence, Poisson, log-cosh).

Checked against their definitions (hand-computed cases, explicit loops), against scikit-learn
where it has the metric, as streams (batch by batch equals all at once; `get_state`/`set_state`
through JSON resumes exactly), by the names Keras accepts, and, where Keras is installed,
against Keras 3 itself (JAX backend) as an oracle.

Keras' PR-AUC interpolates precision between its 200 thresholds (Davis & Goadrich), while
scikit-learn's average precision is a step sum over every distinct score: the two agree only
approximately (compared within 0.01 here); the Keras oracle test pins the exact Keras value.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sklearn_metrics

from multilayer import losses, metrics
from multilayer.engine.metrics import confusion_counts


def scores(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and informative scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    p = np.clip(0.35 * y + 0.65 * rng.uniform(size=n), 0.0, 1.0)
    return y, p


def result_of(metric, y_true, y_pred, sample_weight=None):
    metric.reset_state()
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return metric.result()


# -- confusion counts ---------------------------------------------------------------------------


def counts_by_loop(y, p, threshold, w=None):
    w = np.ones(len(y)) if w is None else w
    tp = fp = tn = fn = 0.0
    for label, score, weight in zip(y, p, w, strict=True):
        predicted = score > threshold  # strictly greater, as Keras
        if label and predicted:
            tp += weight
        elif label:
            fn += weight
        elif predicted:
            fp += weight
        else:
            tn += weight
    return tp, fp, tn, fn


@pytest.mark.parametrize("weighted", [False, True])
def test_condition_counts_at_several_thresholds_match_a_loop(weighted):
    y, p = scores(50)
    p[:5] = 0.5  # exactly at a threshold: negative there
    w = np.random.default_rng(1).uniform(0, 2, size=50) if weighted else None
    thresholds = [0.7, 0.1, 0.5]  # any order: results follow it
    expected = np.array([counts_by_loop(y, p, t, w) for t in thresholds])
    for column, cls in enumerate(
        [
            metrics.TruePositives,
            metrics.FalsePositives,
            metrics.TrueNegatives,
            metrics.FalseNegatives,
        ]
    ):
        value = result_of(cls(thresholds=thresholds), y, p, w)
        np.testing.assert_allclose(value, expected[:, column], rtol=1e-12)
        single = result_of(cls(), y, p, w)  # default threshold 0.5: one number
        assert isinstance(single, float)
        assert single == pytest.approx(counts_by_loop(y, p, 0.5, w)[column], rel=1e-12)


def test_precision_and_recall_match_scikit_learn():
    y, p = scores()
    predicted = (p > 0.5).astype(int)
    assert result_of(metrics.Precision(), y, p) == pytest.approx(
        sklearn_metrics.precision_score(y, predicted), rel=1e-12
    )
    assert result_of(metrics.Recall(), y, p) == pytest.approx(
        sklearn_metrics.recall_score(y, predicted), rel=1e-12
    )
    w = np.random.default_rng(2).uniform(0, 3, size=len(y))
    assert result_of(metrics.Precision(), y, p, w) == pytest.approx(
        sklearn_metrics.precision_score(y, predicted, sample_weight=w), rel=1e-12
    )
    several = result_of(metrics.Recall(thresholds=[0.3, 0.8]), y, p)
    np.testing.assert_allclose(
        several,
        [sklearn_metrics.recall_score(y, (p > t).astype(int)) for t in (0.3, 0.8)],
        rtol=1e-12,
    )


def test_precision_is_zero_when_nothing_is_predicted_positive():
    assert result_of(metrics.Precision(), [1, 0], [0.1, 0.2]) == 0.0
    assert result_of(metrics.Recall(), [0, 0], [0.9, 0.2]) == 0.0


def test_class_id_and_top_k():
    y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    p = np.array([[0.1, 0.6, 0.3], [0.2, 0.7, 0.1], [0.35, 0.3, 0.35], [0.5, 0.2, 0.3]])
    # class 1 alone: predicted positive (> 0.5) in rows 0 and 1, truly positive in rows 0 and 3
    assert result_of(metrics.Precision(class_id=1), y, p) == pytest.approx(0.5)
    assert result_of(metrics.Recall(class_id=1), y, p) == pytest.approx(0.5)
    # top_k=1: only the highest score of each row counts (the first of a tie), any score
    # above -inf is positive: rows 0, 1, 2, 3 predict classes 1, 1, 0, 0 -> 1 hit of 4
    assert result_of(metrics.Precision(top_k=1), y, p) == pytest.approx(0.25)
    assert result_of(metrics.Recall(top_k=2), y, p) == pytest.approx(3 / 4)


# -- AUC ------------------------------------------------------------------------------------------


def test_auc_keras_documented_example_by_hand():
    """Thresholds [-1e-7, 0.5, 1 + 1e-7]: tp = [2, 1, 0], fp = [2, 0, 0], fn = [0, 1, 2],
    tn = [0, 2, 2]; TPR = [1, .5, 0], FPR = [1, 0, 0]."""
    y, p = [0, 0, 1, 1], [0.0, 0.5, 0.3, 0.9]
    assert result_of(metrics.AUC(num_thresholds=3), y, p) == pytest.approx(0.75)
    assert result_of(metrics.AUC(num_thresholds=3, summation_method="minoring"), y, p) == 0.5
    assert result_of(metrics.AUC(num_thresholds=3, summation_method="majoring"), y, p) == 1.0
    # PR, interpolated: P = tp + fp = [4, 1, 0]; per interval slope = dtp/dP, intercept
    # = tp_B - slope * P_B, area = slope * (dtp + intercept * log(P_A / P_B)) / (tp_B + fn_B)
    first = (1 / 3) * (1 + (2 / 3) * math.log(4)) / 2
    second = 1.0 * (1 + 0.0) / 2  # P_B = 0: log ratio taken as 0
    pr = result_of(metrics.AUC(num_thresholds=3, curve="PR"), y, p)
    assert pr == pytest.approx(first + second, rel=1e-12)


def test_roc_auc_is_exact_when_every_score_has_its_own_bucket():
    """Scores in the middle of distinct threshold intervals: the thresholded ROC curve is the
    exact one, so the trapezoids equal scikit-learn's roc_auc_score."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=150)
    buckets = rng.permutation(199)[:150]
    p = (buckets + 0.5) / 199.0
    p = np.where(y == 1, np.sqrt(p), p)  # informative, still distinct buckets? recompute:
    p = (np.floor(p * 199) + 0.5) / 199.0
    assert result_of(metrics.AUC(), y, p) == pytest.approx(
        sklearn_metrics.roc_auc_score(y, p), abs=1e-12
    )


def test_auc_against_scikit_learn_on_continuous_scores():
    y, p = scores(2000, seed=4)
    roc = result_of(metrics.AUC(), y, p)
    assert roc == pytest.approx(sklearn_metrics.roc_auc_score(y, p), abs=2e-3)
    pr = result_of(metrics.AUC(curve="PR"), y, p)
    assert pr == pytest.approx(sklearn_metrics.average_precision_score(y, p), abs=1e-2)
    w = np.random.default_rng(5).uniform(0, 2, size=len(y))
    weighted = result_of(metrics.AUC(num_thresholds=1000), y, p, w)
    assert weighted == pytest.approx(sklearn_metrics.roc_auc_score(y, p, sample_weight=w), abs=1e-3)


def test_auc_from_logits_applies_a_sigmoid():
    y, p = scores()
    logits = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
    direct = result_of(metrics.AUC(), y, np.clip(p, 1e-6, 1 - 1e-6))
    assert result_of(metrics.AUC(from_logits=True), y, logits) == pytest.approx(direct, abs=1e-12)


def test_auc_with_explicit_thresholds_and_prgain():
    y, p = scores(300, seed=6)
    auc = metrics.AUC(thresholds=[0.25, 0.5, 0.75])
    assert auc.num_thresholds == 5
    assert auc.thresholds == [-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7]
    assert 0.5 < result_of(auc, y, p) <= 1.0
    gain = result_of(metrics.AUC(curve="PRGAIN"), y, p)
    assert 0.0 < gain <= 1.0


# -- F scores -----------------------------------------------------------------------------------


def multiclass(n: int = 300, classes: int = 4, seed: int = 7):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    y = np.eye(classes)[labels]
    p = rng.dirichlet(np.ones(classes), size=n) + 0.5 * y
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f1_with_threshold_matches_scikit_learn(average):
    y, p = multiclass()
    predicted = (p > 0.3).astype(int)
    expected = sklearn_metrics.f1_score(y, predicted, average=average, zero_division=0)
    value = result_of(metrics.F1Score(average=average, threshold=0.3), y, p)
    np.testing.assert_allclose(value, expected, rtol=1e-5)  # Keras' 1e-7 in each denominator


@pytest.mark.parametrize("average", [None, "macro"])
def test_fbeta_with_the_argmax_matches_scikit_learn(average):
    y, p = multiclass(seed=8)
    predicted = np.eye(4)[p.argmax(axis=1)]  # threshold None: the row's highest score
    expected = sklearn_metrics.fbeta_score(y, predicted, beta=2.0, average=average)
    value = result_of(metrics.FBetaScore(average=average, beta=2.0), y, p)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_fbeta_sample_weight_matches_scikit_learn():
    y, p = multiclass(seed=9)
    w = np.random.default_rng(9).uniform(0, 2, size=len(y))
    predicted = (p > 0.4).astype(int)
    expected = sklearn_metrics.fbeta_score(y, predicted, beta=0.5, average="macro", sample_weight=w)
    value = result_of(metrics.FBetaScore(average="macro", beta=0.5, threshold=0.4), y, p, w)
    assert value == pytest.approx(expected, rel=1e-5)


# -- regression ---------------------------------------------------------------------------------


def regression(n: int = 200, outputs: int = 3, seed: int = 10):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, outputs)) * np.array([1.0, 3.0, 0.5])[:outputs]
    return y, y + rng.normal(scale=0.7, size=(n, outputs))


@pytest.mark.parametrize(
    ("aggregation", "multioutput"),
    [
        ("uniform_average", "uniform_average"),
        ("variance_weighted_average", "variance_weighted"),
        (None, "raw_values"),
    ],
)
def test_r2_matches_scikit_learn(aggregation, multioutput):
    y, p = regression()
    w = np.random.default_rng(11).uniform(0.5, 2, size=len(y))
    for weights in (None, w):
        value = result_of(metrics.R2Score(class_aggregation=aggregation), y, p, weights)
        expected = sklearn_metrics.r2_score(y, p, sample_weight=weights, multioutput=multioutput)
        np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_adjusted_r2_by_its_definition_and_the_fallbacks():
    y, p = regression(outputs=1)
    r2 = sklearn_metrics.r2_score(y, p)
    n = y.size
    value = result_of(metrics.R2Score(num_regressors=5), y, p)
    assert value == pytest.approx(1 - (1 - r2) * (n - 1) / (n - 5 - 1), rel=1e-10)
    with pytest.warns(UserWarning, match="More independent predictors than datapoints"):
        assert result_of(metrics.R2Score(num_regressors=3), y[:3], p[:3]) == pytest.approx(
            sklearn_metrics.r2_score(y[:3], p[:3])
        )


def test_rmse_mape_msle_by_definition_and_scikit_learn():
    y, p = regression()
    assert result_of(metrics.RootMeanSquaredError(), y, p) == pytest.approx(
        math.sqrt(np.mean((y - p) ** 2)), rel=1e-12
    )
    assert result_of(metrics.MeanAbsolutePercentageError(), y, p) == pytest.approx(
        100 * sklearn_metrics.mean_absolute_percentage_error(y, p), rel=1e-9
    )
    positive_y, positive_p = np.abs(y), np.abs(p)
    assert result_of(
        metrics.MeanSquaredLogarithmicError(), positive_y, positive_p
    ) == pytest.approx(sklearn_metrics.mean_squared_log_error(positive_y, positive_p), rel=1e-9)


def test_weighted_mean_follows_keras_mean():
    """A weight per row: rows averaged over their outputs, the mean weighted by the rows."""
    y = np.zeros((3, 2))
    p = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]])
    w = np.array([1.0, 2.0, 0.0])
    mse_rows = np.mean(p**2, axis=1)  # 5, 4, 8
    expected = np.sum(mse_rows * w) / np.sum(w)
    assert result_of(metrics.MeanSquaredError(), y, p, w) == pytest.approx(expected)
    assert result_of(metrics.RootMeanSquaredError(), y, p, w) == pytest.approx(math.sqrt(expected))


@pytest.mark.parametrize(
    ("metric", "loss", "y", "p"),
    [
        (
            metrics.BinaryCrossentropy(label_smoothing=0.1),
            losses.BinaryCrossentropy(label_smoothing=0.1),
            [[1.0], [0.0], [1.0]],
            [[0.8], [0.3], [0.4]],
        ),
        (
            metrics.CategoricalCrossentropy(from_logits=True),
            losses.CategoricalCrossentropy(from_logits=True),
            [[0, 1, 0], [1, 0, 0]],
            [[1.0, 2.0, -1.0], [0.5, 0.1, 0.2]],
        ),
        (
            metrics.SparseCategoricalCrossentropy(),
            losses.SparseCategoricalCrossentropy(),
            [1, 0],
            [[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]],
        ),
        (metrics.Hinge(), losses.Hinge(), [[1, -1]], [[0.3, 0.2]]),
        (metrics.SquaredHinge(), losses.SquaredHinge(), [[1, -1]], [[0.3, 0.2]]),
        (metrics.CategoricalHinge(), losses.CategoricalHinge(), [[0, 1]], [[0.3, 0.2]]),
        (metrics.KLDivergence(), losses.KLDivergence(), [[0.3, 0.7]], [[0.5, 0.5]]),
        (metrics.Poisson(), losses.Poisson(), [[2.0, 1.0]], [[1.5, 0.5]]),
        (metrics.LogCoshError(), losses.LogCosh(), [[2.0, 1.0]], [[1.5, 0.5]]),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, metrics.Metric) else "",
)
def test_loss_valued_metrics_equal_the_loss(metric, loss, y, p):
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    assert result_of(metric, y, p) == pytest.approx(loss(y, p), rel=1e-12)


# -- streams and state --------------------------------------------------------------------------

STREAMED = [
    lambda: metrics.Precision(thresholds=[0.2, 0.5]),
    lambda: metrics.Recall(),
    lambda: metrics.TruePositives(),
    lambda: metrics.AUC(),
    lambda: metrics.AUC(curve="PR"),
    lambda: metrics.F1Score(average="macro", threshold=0.5),
    lambda: metrics.FBetaScore(beta=2.0),
    lambda: metrics.R2Score(),
    lambda: metrics.RootMeanSquaredError(),
    lambda: metrics.MeanAbsolutePercentageError(),
    lambda: metrics.BinaryCrossentropy(),
]


def stream_data(metric):
    rng = np.random.default_rng(12)
    if isinstance(metric, metrics.FBetaScore):
        y, p = multiclass(120, classes=3, seed=12)
    elif isinstance(metric, (metrics.R2Score, metrics.RootMeanSquaredError)):
        y, p = regression(120, outputs=2)
    else:
        y, p = scores(120, seed=12)
        y, p = y.reshape(-1, 1).astype(float), p.reshape(-1, 1)
    return y, p, rng.uniform(0.5, 2.0, size=len(y))


@pytest.mark.parametrize("make", STREAMED, ids=lambda f: type(f()).__name__)
def test_batches_equal_one_pass_and_state_resumes_through_json(make):
    y, p, w = stream_data(make())
    whole = result_of(make(), y, p, w)
    streamed, resumed = make(), make()
    for start in range(0, 60, 20):
        streamed.update_state(y[start : start + 20], p[start : start + 20], w[start : start + 20])
    streamed.update_state(y[60:], p[60:], w[60:])
    np.testing.assert_allclose(streamed.result(), whole, rtol=1e-12)
    # stop half-way, save, restore into a new metric, go on: the same result
    half = make()
    half.update_state(y[:60], p[:60], w[:60])
    resumed.set_state(json.loads(json.dumps(half.get_state())))
    resumed.update_state(y[60:], p[60:], w[60:])
    np.testing.assert_allclose(resumed.result(), whole, rtol=1e-12)
    resumed.reset_state()
    resumed.update_state(y, p, w)
    np.testing.assert_allclose(resumed.result(), whole, rtol=1e-12)


@pytest.mark.parametrize(
    ("metric", "state", "message"),
    [
        (metrics.Precision(), {"tp": [1.0]}, r"a state must have the keys \['fp', 'tp'\]"),
        (metrics.Precision(), {"tp": [1.0, 2.0], "fp": [0.0]}, r"tp must have shape \(1,\)"),
        (
            metrics.AUC(num_thresholds=3),
            {"tp": [1, 1, -1], "fp": [0] * 3, "tn": [0] * 3, "fn": [0] * 3},
            "tp must be finite and non-negative",
        ),
        (
            metrics.Recall(),
            {"tp": [float("nan")], "fn": [0.0]},
            "tp must be finite and non-negative",
        ),
        (metrics.Recall(), {"tp": ["x"], "fn": [0.0]}, "tp must be numbers"),
        (
            metrics.F1Score(),
            {
                "true_positives": [1.0],
                "false_positives": [[1.0]],
                "false_negatives": [1.0],
                "intermediate_weights": [1.0],
            },
            r"false_positives must have shape \(1,\)",
        ),
        (
            metrics.R2Score(),
            {
                "sum": [-1.0],
                "squared_sum": [1.0],
                "total_mse": [1.0],
                "count": [1.0],
                "num_samples": [2.0],
            },
            r"num_samples must have shape \(\)",
        ),
        (
            metrics.RootMeanSquaredError(),
            {"total": 1.0, "count": -1},
            "count must be finite and non-negative",
        ),
        (
            metrics.RootMeanSquaredError(),
            {"total": float("inf"), "count": 1},
            "total must be finite",
        ),
        (metrics.RootMeanSquaredError(), [1.0, 2], r"a state must be \{'total', 'count'\}"),
    ],
)
def test_set_state_refuses_bad_states(metric, state, message):
    with pytest.raises(ValueError, match=message):
        metric.set_state(state)


def test_lazily_built_metrics_restore_an_empty_state():
    f1 = metrics.F1Score()
    f1.set_state({})
    assert f1.get_state() == {} and f1.result() == 0.0


# -- names and arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("AUC", metrics.AUC),
        ("auc", metrics.AUC),
        ("Precision", metrics.Precision),
        ("precision", metrics.Precision),
        ("recall", metrics.Recall),
        ("true_positives", metrics.TruePositives),
        ("TrueNegatives", metrics.TrueNegatives),
        ("false_positives", metrics.FalsePositives),
        ("false_negatives", metrics.FalseNegatives),
        ("f1_score", metrics.F1Score),
        ("F1Score", metrics.F1Score),
        ("f_beta_score", metrics.FBetaScore),
        ("r2_score", metrics.R2Score),
        ("R2Score", metrics.R2Score),
        ("root_mean_squared_error", metrics.RootMeanSquaredError),
        ("RootMeanSquaredError", metrics.RootMeanSquaredError),
        ("mape", metrics.MeanAbsolutePercentageError),
        ("MAPE", metrics.MeanAbsolutePercentageError),
        ("mean_absolute_percentage_error", metrics.MeanAbsolutePercentageError),
        ("msle", metrics.MeanSquaredLogarithmicError),
        ("bce", metrics.BinaryCrossentropy),
        ("binary_crossentropy", metrics.BinaryCrossentropy),
        ("categorical_crossentropy", metrics.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", metrics.SparseCategoricalCrossentropy),
        ("log_cosh_error", metrics.LogCoshError),
        ("kl_divergence", metrics.KLDivergence),
        ("poisson", metrics.Poisson),
        ("hinge", metrics.Hinge),
        ("squared_hinge", metrics.SquaredHinge),
        ("categorical_hinge", metrics.CategoricalHinge),
    ],
)
def test_names_keras_accepts_and_the_log_name_is_the_string(name, cls):
    metric = metrics.get(name)
    assert type(metric) is cls and metric.name == name


def test_rmse_is_refused_as_keras_refuses_it():
    with pytest.raises(ValueError, match=r"^Unknown metric 'rmse'\. Did you mean 'mse'\?"):
        metrics.get("rmse")


@pytest.mark.parametrize(
    ("loss", "cls", "from_logits"),
    [
        (losses.CategoricalCrossentropy(), metrics.CategoricalCrossentropy, False),
        (
            losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics.SparseCategoricalCrossentropy,
            True,
        ),
        (losses.BinaryCrossentropy(from_logits=True), metrics.BinaryCrossentropy, True),
    ],
)
def test_crossentropy_name_follows_the_loss(loss, cls, from_logits):
    for name in ("crossentropy", "ce"):
        metric = metrics.get(name, loss)
        assert type(metric) is cls and metric.name == name
        assert metric.get_config()["from_logits"] is from_logits
    with pytest.raises(ValueError, match=r"^'ce' is not defined for the loss 'mean_squared_error'"):
        metrics.get("ce", losses.MeanSquaredError())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: metrics.Precision(thresholds=1.5),
            r"^Threshold values must be in \[0, 1\]\. Received: \[1\.5\]$",
        ),
        (
            lambda: metrics.TruePositives(thresholds=[0.2, -0.1]),
            r"^Threshold values must be in \[0, 1\]\. Received: \[-0\.1\]$",
        ),
        (
            lambda: metrics.Recall(thresholds=float("nan")),
            r"^a threshold must be a finite number, got nan$",
        ),
        (lambda: metrics.Precision(top_k=0), r"^top_k must be a positive integer, got 0$"),
        (
            lambda: metrics.Precision(class_id=-1),
            r"^class_id must be a non-negative integer, got -1$",
        ),
        (
            lambda: metrics.AUC(num_thresholds=1),
            r"^Argument `num_thresholds` must be an integer > 1\. Received: num_thresholds=1$",
        ),
        (lambda: metrics.AUC(curve="XY"), r'^Invalid AUC curve value: "XY"'),
        (
            lambda: metrics.AUC(summation_method="left"),
            r'^Invalid `summation_method` argument value "left"',
        ),
        (
            lambda: metrics.AUC(multi_label=True),
            r"^AUC: multi_label, num_labels and label_weights are not supported",
        ),
        (
            lambda: metrics.F1Score(average="samples"),
            r"^Invalid `average` argument value\. Expected one of: \{None, 'micro', 'macro', 'weighted'\}\. Received: average=samples$",
        ),
        (
            lambda: metrics.FBetaScore(beta=0.0),
            r"^Invalid `beta` argument value\. It should be > 0\. Received: beta=0\.0$",
        ),
        (
            lambda: metrics.F1Score(threshold=1.5),
            r"^Invalid `threshold` argument value\. It should verify 0 < threshold <= 1\. Received: threshold=1\.5$",
        ),
        (
            lambda: metrics.R2Score(class_aggregation="sum"),
            r"^Invalid value for argument `class_aggregation`",
        ),
        (
            lambda: metrics.R2Score(num_regressors=-1),
            r"^Invalid value for argument `num_regressors`\. Expected a value >= 0\. Received: num_regressors=-1$",
        ),
    ],
)
def test_bad_arguments_get_keras_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("metric", "y", "p", "message"),
    [
        (
            metrics.Precision(),
            [1, 0, 1],
            [0.2, 0.9],
            r"^precision: y_true has 3 values but y_pred has 2",
        ),
        (metrics.AUC(), [1, 0], [0.2, 0.9], None),
        (
            metrics.Precision(class_id=3),
            [[1, 0]],
            [[0.2, 0.9]],
            r"^precision: class_id=3 needs predictions of shape \(n, classes\) with more than 3 classes, got \(1, 2\)$",
        ),
        (
            metrics.F1Score(),
            [1, 0],
            [0.2, 0.9],
            r"^F1Score expects 2D inputs with shape \(batch_size, output_dim\)",
        ),
        (metrics.R2Score(), [1, 0], [0.2, 0.9], r"^R2Score expects 2D inputs"),
    ],
)
def test_bad_inputs_get_clear_errors(metric, y, p, message):
    if message is None:
        metric.update_state(y, p)  # fine
        with pytest.raises(
            ValueError,
            match=r"sample_weight of shape \(3,\) does not fit predictions of shape \(2,\)",
        ):
            metric.update_state(y, p, sample_weight=[1, 2, 3])
        return
    with pytest.raises(ValueError, match=message):
        metric.update_state(y, p)


def test_compile_with_keras_metric_names_trains_and_logs_them():
    from multilayer.layers import Dense
    from multilayer.models import Sequential

    rng = np.random.default_rng(13)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype(np.float32)
    model = Sequential([Dense(8, activation="relu"), Dense(1, activation="sigmoid")], seed=0)
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=["AUC", "precision", "recall", metrics.F1Score(threshold=0.5), "ce"],
    )
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    for key in ("AUC", "precision", "recall", "f1_score", "ce"):
        assert key in history.history, key
    assert history.history["AUC"][-1] > 0.7
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    # evaluate's numbers are the metrics' own on the whole set
    predictions = model.predict(x, verbose=0)
    assert results["AUC"] == pytest.approx(result_of(metrics.AUC(), y, predictions), rel=1e-6)
    assert results["ce"] == pytest.approx(results["loss"], rel=1e-5)


# -- Keras as an oracle (skipped where Keras is not installed) -----------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the oracle tests use Keras' JAX backend")
    return keras


ORACLE = [
    ("AUC", {}, "binary"),
    ("AUC", {"curve": "PR"}, "binary"),
    ("AUC", {"curve": "PR", "summation_method": "minoring", "num_thresholds": 37}, "binary"),
    ("AUC", {"curve": "ROC", "summation_method": "majoring"}, "binary"),
    ("AUC", {"curve": "PRGAIN"}, "binary"),
    ("AUC", {"thresholds": [0.1, 0.4, 0.45, 0.9]}, "binary"),
    ("AUC", {"from_logits": True}, "logits"),
    ("Precision", {}, "binary"),
    ("Precision", {"thresholds": [0.1, 0.5, 0.7]}, "binary"),
    ("Precision", {"top_k": 2}, "multiclass"),
    ("Recall", {"class_id": 2}, "multiclass"),
    ("Recall", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "binary"),
    ("TruePositives", {"thresholds": [0.3, 0.6]}, "binary"),
    ("FalsePositives", {}, "binary"),
    ("TrueNegatives", {}, "binary"),
    ("FalseNegatives", {"thresholds": 0.8}, "binary"),
    ("F1Score", {}, "multiclass"),
    ("F1Score", {"average": "micro", "threshold": 0.3}, "multiclass"),
    ("F1Score", {"average": "weighted", "threshold": 0.3}, "multiclass"),
    ("FBetaScore", {"average": "macro", "beta": 2.0}, "multiclass"),
    ("R2Score", {}, "regression"),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}, "regression"),
    ("R2Score", {"class_aggregation": None, "num_regressors": 2}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "positive"),
    ("LogCoshError", {}, "regression"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "binary"),
    ("CategoricalCrossentropy", {"from_logits": True}, "logits_multiclass"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("KLDivergence", {}, "multiclass"),
    ("Poisson", {}, "positive"),
    ("CategoricalHinge", {}, "multiclass"),
]


def oracle_data(kind: str):
    rng = np.random.default_rng(14)
    if kind in ("binary", "logits"):
        y, p = scores(300, seed=14)
        y, p = y.reshape(-1, 1).astype(np.float32), p.reshape(-1, 1).astype(np.float32)
        if kind == "logits":
            p = (4 * p - 2).astype(np.float32)
    elif kind in ("multiclass", "logits_multiclass", "sparse"):
        y, p = multiclass(300, classes=4, seed=14)
        y, p = y.astype(np.float32), p.astype(np.float32)
        if kind == "logits_multiclass":
            p = np.log(p).astype(np.float32)
        if kind == "sparse":
            y = y.argmax(axis=1).astype(np.float32)
    elif kind == "regression":
        y, p = regression(300)
        y, p = y.astype(np.float32), p.astype(np.float32)
    else:
        y = rng.uniform(0, 3, size=(300, 2)).astype(np.float32)
        p = rng.uniform(0.1, 3, size=(300, 2)).astype(np.float32)
    return y, p, rng.uniform(0.5, 2.0, size=len(y)).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "kwargs", "kind"), ORACLE, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(ORACLE)]
)
def test_streamed_weighted_results_equal_keras(keras, name, kwargs, kind):
    y, p, w = oracle_data(kind)
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for start in range(0, len(y), 128):
        batch = slice(start, start + 128)
        ours.update_state(y[batch], p[batch], sample_weight=w[batch])
        theirs.update_state(y[batch], p[batch], sample_weight=w[batch])
    np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=2e-5, atol=2e-6)


# -- checkpoints ------------------------------------------------------------------------------


def _checkpointed_model(seed=5):
    from multilayer.layers import Dense
    from multilayer.models import Sequential

    model = Sequential([Dense(8, activation="relu"), Dense(3, activation="softmax")], seed=seed)
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=["AUC", metrics.F1Score(), metrics.Precision(thresholds=[0.3, 0.6]), "acc"],
    )
    return model


def _checkpoint_data():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[x[:, :3].argmax(axis=1)]


def test_mid_epoch_resume_restores_array_metric_states_exactly(tmp_path):
    from multilayer.models.checkpoint import CheckpointConfig, list_checkpoints, read_checkpoint

    x, y = _checkpoint_data()
    expected = _checkpointed_model().fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert isinstance(expected.history["f1_score"][0], list)  # one score per class
    _checkpointed_model().fit(
        x, y, epochs=2, batch_size=32, verbose=0,
        checkpoint=CheckpointConfig(tmp_path, every=3, unit="step", keep=10),
    )  # fmt: skip
    for path in list_checkpoints(tmp_path)[:2]:  # killed after a mid-epoch checkpoint
        path.unlink()
    assert read_checkpoint(list_checkpoints(tmp_path)[0]).state.step > 0  # mid-epoch
    resumed = _checkpointed_model(seed=99).fit(
        x, y, epochs=2, batch_size=32, verbose=0,
        checkpoint=CheckpointConfig(tmp_path, every=3, unit="step", resume=True),
    )  # fmt: skip
    assert resumed.history == expected.history


def test_a_checkpoint_with_a_bad_metric_state_is_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from multilayer.errors import TrainingError
    from multilayer.models.checkpoint import CheckpointConfig, list_checkpoints

    x, y = _checkpoint_data()
    config = CheckpointConfig(tmp_path, every=3, unit="step", keep=10)
    _checkpointed_model().fit(x, y, epochs=1, batch_size=32, verbose=0, checkpoint=config)
    for path in list_checkpoints(tmp_path)[:1]:  # keep the mid-epoch ones only
        path.unlink()
    path = list_checkpoints(tmp_path)[0]
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    state = json.loads(metadata["state"])
    state["metrics"][0]["tp"] = state["metrics"][0]["tp"][:5]  # AUC: 5 of 200 thresholds
    metadata["state"] = json.dumps(state)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(
        TrainingError,
        match=r"cannot resume from .*: metric 'AUC': tp must have shape \(200,\), got \(5,\)",
    ):
        _checkpointed_model().fit(
            x, y, epochs=1, batch_size=32, verbose=0,
            checkpoint=CheckpointConfig(tmp_path, every=3, unit="step", resume=True),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [
        ("val_precision", "max"),
        ("recall", "max"),
        ("val_AUC", "max"),
        ("val_f1_score", "max"),
        ("r2_score", "max"),
        ("val_root_mean_squared_error", "min"),
        ("val_mape", "min"),
        ("false_negatives", "min"),
        ("val_loss", "min"),
    ],
)
def test_callbacks_mode_auto_follows_the_metric_direction(monitor, mode):
    from multilayer.callbacks import EarlyStopping

    assert EarlyStopping(monitor=monitor).mode == mode


def test_a_saved_model_keeps_its_metric_objects_arguments(tmp_path):
    from multilayer.errors import ModelFileError
    from multilayer.models import load_model

    model = _checkpointed_model()
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=[metrics.AUC(curve="PR", num_thresholds=50), "precision", "acc"],
    )
    x, y = _checkpoint_data()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert [m.name for m in loaded.metrics] == ["auc", "precision", "acc"]
    assert loaded.metrics[0].get_config() == model.metrics[0].get_config()
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)

    # a hostile metric object in the header is a documented error
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    compile_config = json.loads(metadata["compile"])
    compile_config["metrics"][0]["config"]["num_thresholds"] = 1
    metadata["compile"] = json.dumps(compile_config)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(
        ModelFileError,
        match=r"bad\.safetensors: invalid compile configuration: Argument `num_thresholds` "
        r"must be an integer > 1\. Received: num_thresholds=1$",
    ):
        load_model(tmp_path / "bad.safetensors")


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 1),
            st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 0.3, 0.999, float("nan")]),
            st.floats(0.0, 3.0),
        ),
        min_size=1,
        max_size=30,
    ),
    thresholds=st.lists(st.sampled_from([0.0, 0.25, 0.3, 0.5, 0.75, 1.0]), min_size=1, max_size=4),
)
def test_confusion_counts_equal_a_loop_for_any_data(rows, thresholds):
    """Ties at thresholds, NaN scores (never positive), zero weights, repeated thresholds."""
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    w = np.array([r[2] for r in rows])
    counts = confusion_counts(y, p, thresholds, w)
    for i, t in enumerate(thresholds):
        expected = counts_by_loop(y, np.nan_to_num(p, nan=-np.inf), t, w)
        got = (counts["tp"][i], counts["fp"][i], counts["tn"][i], counts["fn"][i])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# -- the metrics through the functional Model's Trainer, loop state and BackupAndRestore --------


def test_a_checkpoint_with_old_total_count_pairs_still_resumes(tmp_path):
    """Checkpoints written before metric states were dicts hold ``[total, count]`` per
    metric; a resume reads them into the same running means."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from multilayer.layers import Dense
    from multilayer.models import Sequential
    from multilayer.models.checkpoint import CheckpointConfig, list_checkpoints

    def model(seed=5):
        m = Sequential([Dense(8, activation="relu"), Dense(3, activation="softmax")], seed=seed)
        m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["acc", "mse"])
        return m

    x, y = _checkpoint_data()
    expected = model().fit(x, y, epochs=2, batch_size=32, verbose=0)
    model().fit(
        x, y, epochs=2, batch_size=32, verbose=0,
        checkpoint=CheckpointConfig(tmp_path, every=3, unit="step", keep=10),
    )  # fmt: skip
    for path in list_checkpoints(tmp_path)[:2]:
        path.unlink()
    path = list_checkpoints(tmp_path)[0]
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    state = json.loads(metadata["state"])
    assert state["step"] > 0 and all(set(m) == {"total", "count"} for m in state["metrics"])
    state["metrics"] = [[m["total"], m["count"]] for m in state["metrics"]]  # the old form
    metadata["state"] = json.dumps(state)
    save_file(tensors, str(path), metadata=metadata)
    resumed = model(seed=99).fit(
        x, y, epochs=2, batch_size=32, verbose=0,
        checkpoint=CheckpointConfig(tmp_path, every=3, unit="step", resume=True),
    )  # fmt: skip
    assert resumed.history == expected.history


def _two_output_model(seed=0):
    import multilayer as keras
    from multilayer.layers import Dense
    from multilayer.models import Model

    inputs = keras.Input(shape=(5,))
    hidden = Dense(8, activation="relu")(inputs)
    model = Model(
        inputs,
        [Dense(3, activation="softmax", name="cls")(hidden), Dense(1, name="reg")(hidden)],
        seed=seed,
    )
    model.compile(
        optimizer="adam",
        loss=["categorical_crossentropy", "mse"],
        metrics={
            "cls": [metrics.AUC(curve="PR"), "acc", metrics.F1Score(average=None)],
            "reg": ["RootMeanSquaredError", metrics.R2Score()],
        },
    )
    return model


def _two_output_data():
    x, y = _checkpoint_data()
    return x, [y, (x[:, 3] - x[:, 4])[:, None].astype(np.float32)]


def test_multi_output_compile_takes_metric_objects_and_names_per_output():
    model = _two_output_model()
    x, ys = _two_output_data()
    history = model.fit(x, ys, epochs=1, batch_size=32, verbose=0)
    assert list(history.history) == [
        "loss", "cls_loss", "reg_loss", "cls_auc", "cls_acc", "cls_f1_score",
        "reg_RootMeanSquaredError", "reg_r2_score",
    ]  # fmt: skip
    assert len(history.history["cls_f1_score"][0]) == 3  # one per class
    assert model.metrics[0].curve == "PR"
    assert model.compile_config["metrics"] == [
        [
            metrics.serialize(metrics.AUC(curve="PR")),
            "acc",
            metrics.serialize(metrics.F1Score(average=None)),
        ],
        ["RootMeanSquaredError", metrics.serialize(metrics.R2Score())],
    ]
    results = model.evaluate(x, ys, verbose=0, return_dict=True)
    auc = metrics.AUC(curve="PR")
    auc.update_state(ys[0], model.predict(x)[0])
    assert results["cls_auc"] == pytest.approx(auc.result(), rel=1e-6)


def test_multi_output_metric_objects_survive_save_and_load(tmp_path):
    from multilayer.models import load_model

    model = _two_output_model()
    x, ys = _two_output_data()
    model.fit(x, ys, epochs=1, batch_size=50, verbose=0)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.compile_config == model.compile_config
    before = model.evaluate(x, ys, verbose=0, return_dict=True)
    after = loaded.evaluate(x, ys, verbose=0, return_dict=True)
    assert list(after) == list(before)
    assert all(np.array_equal(after[key], before[key]) for key in before)
    assert loaded.metrics[0].curve == "PR"


def test_backup_and_restore_resumes_multi_output_array_metrics_exactly(tmp_path):
    from multilayer.callbacks import Callback
    from multilayer.models.backup import BackupAndRestore
    from multilayer.models.checkpoint import list_checkpoints, read_checkpoint

    class Kill(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.trained_model().optimizer.iterations == 11:  # after the backup at 10
                raise KeyboardInterrupt

    x, ys = _two_output_data()
    expected = _two_output_model().fit(x, ys, epochs=3, batch_size=32, verbose=0).history
    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        _two_output_model().fit(
            x, ys, epochs=3, batch_size=32, verbose=0,
            callbacks=[Kill(), BackupAndRestore(backup, save_freq=5)],
        )  # fmt: skip
    state = read_checkpoint(list_checkpoints(backup)[0]).state
    assert state.step == 3  # 10 steps: 7 in epoch 1, checkpoint after step 10 = epoch 2 step 3
    # per-output loss means, then every metric's whole state (AUC's confusion counts)
    assert [sorted(m) for m in state.metrics[:2]] == [["count", "total"]] * 2
    assert sorted(state.metrics[2]) == ["fn", "fp", "tn", "tp"]
    assert len(state.metrics[2]["tp"]) == 200  # AUC(curve="PR"): one count per threshold
    resumed = _two_output_model(seed=7).fit(
        x, ys, epochs=3, batch_size=32, verbose=0, callbacks=[BackupAndRestore(backup)]
    )
    assert resumed.history == expected
