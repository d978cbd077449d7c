"""The Keras losses added for issue 10 (Huber, LogCosh, KLDivergence, Poisson, SquaredHinge,
CategoricalHinge, MAPE, MSLE; Hinge's label mapping): each value against its definition written
out element by element, each gradient against central differences in float64, names as Keras
accepts them, and, where Keras is installed, values and gradients against Keras itself (JAX
backend) as an oracle."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from multilayer import losses

RNG = np.random.default_rng(7)
N, K = 5, 3
EPS = 1e-7


def regression_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(size=(N, K)), rng.normal(scale=2.0, size=(N, K))


def positive_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    return rng.uniform(0.0, 3.0, size=(N, K)), rng.uniform(0.1, 3.0, size=(N, K))


def distribution_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    t = rng.dirichlet(np.ones(K), size=N)
    p = rng.dirichlet(np.ones(K), size=N)
    return t, p


def signed_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(6)
    return np.where(rng.uniform(size=(N, K)) > 0.5, 1.0, -1.0), rng.normal(size=(N, K))


def one_hot_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    return np.eye(K)[rng.integers(0, K, size=N)], rng.normal(size=(N, K))


# -- definitions, one element at a time ------------------------------------------------------


def huber_def(t, p, delta=1.0):
    def h(e):
        return 0.5 * e * e if abs(e) <= delta else delta * abs(e) - 0.5 * delta * delta

    return [
        np.mean([h(pi - ti) for ti, pi in zip(tr, pr, strict=True)])
        for tr, pr in zip(t, p, strict=True)
    ]


def log_cosh_def(t, p):
    return [
        np.mean([math.log(math.cosh(pi - ti)) for ti, pi in zip(tr, pr, strict=True)])
        for tr, pr in zip(t, p, strict=True)
    ]


def kld_def(t, p):
    out = []
    for tr, pr in zip(t, p, strict=True):
        total = 0.0
        for ti, pi in zip(tr, pr, strict=True):
            ti, pi = min(max(ti, EPS), 1.0), min(max(pi, EPS), 1.0)
            total += ti * math.log(ti / pi)
        out.append(total)
    return out


def poisson_def(t, p):
    return [
        np.mean([pi - ti * math.log(pi + EPS) for ti, pi in zip(tr, pr, strict=True)])
        for tr, pr in zip(t, p, strict=True)
    ]


def mape_def(t, p):
    return [
        100 * np.mean([abs(ti - pi) / max(abs(ti), EPS) for ti, pi in zip(tr, pr, strict=True)])
        for tr, pr in zip(t, p, strict=True)
    ]


def msle_def(t, p):
    return [
        np.mean(
            [
                (math.log(max(pi, EPS) + 1) - math.log(max(ti, EPS) + 1)) ** 2
                for ti, pi in zip(tr, pr, strict=True)
            ]
        )
        for tr, pr in zip(t, p, strict=True)
    ]


def squared_hinge_def(t, p):
    return [
        np.mean([max(1 - ti * pi, 0) ** 2 for ti, pi in zip(tr, pr, strict=True)])
        for tr, pr in zip(t, p, strict=True)
    ]


def categorical_hinge_def(t, p):
    out = []
    for tr, pr in zip(t, p, strict=True):
        pos = sum(ti * pi for ti, pi in zip(tr, pr, strict=True))
        neg = max((1 - ti) * pi for ti, pi in zip(tr, pr, strict=True))
        out.append(max(neg - pos + 1, 0))
    return out


CASES = [
    # (loss, definition, data, keras class name, keras kwargs)
    (losses.Huber(), huber_def, regression_case, "Huber", {}),
    (
        losses.Huber(delta=0.3),
        lambda t, p: huber_def(t, p, 0.3),
        regression_case,
        "Huber",
        {"delta": 0.3},
    ),
    (losses.LogCosh(), log_cosh_def, regression_case, "LogCosh", {}),
    (losses.KLDivergence(), kld_def, distribution_case, "KLDivergence", {}),
    (losses.Poisson(), poisson_def, positive_case, "Poisson", {}),
    (
        losses.MeanAbsolutePercentageError(),
        mape_def,
        regression_case,
        "MeanAbsolutePercentageError",
        {},
    ),
    (
        losses.MeanSquaredLogarithmicError(),
        msle_def,
        positive_case,
        "MeanSquaredLogarithmicError",
        {},
    ),
    (losses.SquaredHinge(), squared_hinge_def, signed_case, "SquaredHinge", {}),
    (losses.CategoricalHinge(), categorical_hinge_def, one_hot_case, "CategoricalHinge", {}),
]
IDS = [f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("loss", "definition", "case", "keras_name", "kwargs"), CASES, ids=IDS)
def test_value_matches_the_definition(loss, definition, case, keras_name, kwargs):
    t, p = case()
    np.testing.assert_allclose(loss.per_sample(t, p), definition(t, p), rtol=1e-12, atol=1e-12)
    assert loss(t, p) == pytest.approx(np.mean(definition(t, p)), rel=1e-12)


def central_differences(loss, t: np.ndarray, p: np.ndarray, step: float = 1e-6) -> np.ndarray:
    grad = np.empty_like(p)
    for index in np.ndindex(p.shape):
        plus, minus = p.copy(), p.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (loss(t, plus) - loss(t, minus)) / (2 * step)
    return grad


@pytest.mark.parametrize(("loss", "definition", "case", "keras_name", "kwargs"), CASES, ids=IDS)
def test_gradient_matches_central_differences(loss, definition, case, keras_name, kwargs):
    t, p = case()
    analytic = loss.gradient(t, p)
    assert analytic.shape == p.shape and analytic.dtype == p.dtype
    assert np.any(analytic != 0)
    np.testing.assert_allclose(analytic, central_differences(loss, t, p), rtol=1e-5, atol=1e-8)


def test_huber_gradient_on_both_sides_of_delta():
    t = np.zeros((1, 4))
    p = np.array([[-2.0, -0.5, 0.25, 3.0]])
    # e inside [-delta, delta]: e / n; outside: delta * sign(e) / n
    np.testing.assert_allclose(losses.Huber(1.0).gradient(t, p), [[-0.25, -0.125, 0.0625, 0.25]])


def test_log_cosh_does_not_overflow_for_huge_errors():
    value = losses.log_cosh(np.zeros((1, 1)), np.array([[1000.0]]))
    assert value[0] == pytest.approx(1000.0 - math.log(2.0))


def test_kl_divergence_gradient_is_zero_where_the_clip_holds():
    t = np.array([[0.5, 0.5, 0.0]])
    p = np.array([[1.5, 0.5, 0.0]])  # 1.5 clipped to 1, 0 clipped to EPS: flat there
    grad = losses.KLDivergence().gradient(t, p)
    assert grad[0, 0] == 0.0 and grad[0, 2] == 0.0
    assert grad[0, 1] == pytest.approx(-0.5 / 0.5)


def test_hinge_maps_labels_only_when_the_whole_batch_is_binary():
    p = np.array([[0.3, 0.5]])
    # every label in {0, 1}: 0 -> -1, 1 -> 1
    assert losses.hinge([[1.0, 0.0]], p)[0] == pytest.approx(np.mean([0.7, 1.5]))
    # a -1 in the batch: labels are taken as given, so 0 stays 0 (margin 1), as in Keras
    assert losses.hinge([[-1.0, 0.0]], p)[0] == pytest.approx(np.mean([1.3, 1.0]))
    assert losses.squared_hinge([[1.0, 0.0]], p)[0] == pytest.approx(np.mean([0.49, 2.25]))


def test_categorical_hinge_gradient_picks_the_strongest_wrong_class():
    t = np.array([[0.0, 1.0, 0.0]])
    p = np.array([[0.2, 0.5, 0.9]])  # neg = 0.9 (class 2), pos = 0.5: loss 1.4
    np.testing.assert_allclose(losses.CategoricalHinge().gradient(t, p), [[0.0, -1.0, 1.0]])
    # margin met: no gradient
    assert not np.any(losses.CategoricalHinge().gradient(t, np.array([[0.0, 3.0, 0.5]])))


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("huber", losses.Huber),
        ("Huber", losses.Huber),
        ("huber_loss", losses.Huber),
        ("log_cosh", losses.LogCosh),
        ("logcosh", losses.LogCosh),
        ("LogCosh", losses.LogCosh),
        ("kl_divergence", losses.KLDivergence),
        ("kld", losses.KLDivergence),
        ("KLD", losses.KLDivergence),
        ("kullback_leibler_divergence", losses.KLDivergence),
        ("poisson", losses.Poisson),
        ("squared_hinge", losses.SquaredHinge),
        ("categorical_hinge", losses.CategoricalHinge),
        ("mean_absolute_percentage_error", losses.MeanAbsolutePercentageError),
        ("mape", losses.MeanAbsolutePercentageError),
        ("MAPE", losses.MeanAbsolutePercentageError),
        ("mean_squared_logarithmic_error", losses.MeanSquaredLogarithmicError),
        ("msle", losses.MeanSquaredLogarithmicError),
        ("bce", losses.BinaryCrossentropy),
        ("BCE", losses.BinaryCrossentropy),
    ],
)
def test_names_keras_accepts(name, cls):
    assert type(losses.get(name)) is cls


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan"), float("inf"), "1"])
def test_huber_refuses_a_bad_delta(delta):
    with pytest.raises(ValueError, match=r"^Huber: delta must be (a finite number|positive), got "):
        losses.Huber(delta)


def test_huber_delta_round_trips():
    restored = losses.deserialize(losses.serialize(losses.Huber(0.25)))
    assert isinstance(restored, losses.Huber) and restored.delta == 0.25


def test_model_trains_with_each_new_loss_by_name():
    from multilayer.layers import Dense
    from multilayer.models import Sequential

    x = np.random.default_rng(0).uniform(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [2.0], [0.5]]) + 0.2).astype(np.float32)
    for name in ["huber", "log_cosh", "poisson", "mape", "msle"]:
        model = Sequential([Dense(1, activation="softplus")], seed=0)
        model.compile(optimizer="adam", loss=name)
        history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], name


# -- Keras as an oracle (skipped where Keras is not installed) -------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the oracle tests use Keras' JAX backend")
    return keras


@pytest.mark.parametrize(("loss", "definition", "case", "keras_name", "kwargs"), CASES, ids=IDS)
def test_value_and_gradient_equal_keras(keras, loss, definition, case, keras_name, kwargs):
    """Keras computes in float32: equal to float32 precision."""
    import jax

    t, p = (a.astype(np.float32) for a in case())
    keras_loss = getattr(keras.losses, keras_name)(**kwargs)
    assert loss(t, p) == pytest.approx(float(keras_loss(t, p)), rel=2e-6, abs=1e-7)
    keras_grad = np.asarray(jax.grad(lambda q: keras_loss(t, q))(p))
    np.testing.assert_allclose(loss.gradient(t, p), keras_grad, rtol=2e-5, atol=1e-7)


def test_hinge_equals_keras_on_binary_and_signed_batches(keras):
    p = np.array([[0.3, -0.5, 2.0], [0.1, 0.9, -1.2]], dtype=np.float32)
    for t in ([[1, 0, 1], [0, 0, 1]], [[1, -1, 1], [-1, 0, 1]]):
        t = np.asarray(t, dtype=np.float32)
        np.testing.assert_allclose(
            losses.hinge(t, p), np.asarray(keras.losses.hinge(t, p)), rtol=1e-6
        )
        np.testing.assert_allclose(
            losses.squared_hinge(t, p), np.asarray(keras.losses.squared_hinge(t, p)), rtol=1e-6
        )
