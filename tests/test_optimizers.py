"""Optimizers and learning-rate schedules against their published update equations.

Every reference below is written out from the paper / Keras documentation, independently of
the engine's in-place implementation, and compared over the first three steps with a different
gradient at each step (so that the optimizer state really matters).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from multilayer.layers import Dense
from multilayer.models import Sequential
from multilayer.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop, get
from multilayer.optimizers.schedules import (
    CosineDecay,
    ExponentialDecay,
    OneCycle,
    PiecewiseConstantDecay,
)

P0 = np.array([0.5, -1.0, 2.0, 0.0, -0.3])
GRADIENTS = [
    np.array([0.1, -0.2, 0.3, 0.0, 1.5]),
    np.array([-0.4, 0.05, 0.3, 0.2, -1.0]),
    np.array([0.25, 0.5, -0.1, -0.3, 0.7]),
]


def run(optimizer, steps: int = 3, p0=P0, gradients=GRADIENTS) -> list[np.ndarray]:
    """Parameters after each of the first ``steps`` updates."""
    p = p0.astype(np.float64).copy()
    optimizer.build(p.size, np.float64)
    trajectory = []
    for g in gradients[:steps]:
        optimizer.apply(p, g.copy())
        trajectory.append(p.copy())
    return trajectory


def assert_trajectory(actual, expected):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected, strict=True)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-15, err_msg=f"step {step + 1}")


# -- SGD --------------------------------------------------------------------------------


def test_sgd_plain():
    lr, p, expected = 0.1, P0.copy(), []
    for g in GRADIENTS:
        p = p - lr * g
        expected.append(p)
    assert_trajectory(run(SGD(learning_rate=lr)), expected)


def test_sgd_momentum_keras_form():
    # Keras: velocity = momentum * velocity - lr * g;  p = p + velocity
    lr, mu, p, v, expected = 0.1, 0.9, P0.copy(), np.zeros(5), []
    for g in GRADIENTS:
        v = mu * v - lr * g
        p = p + v
        expected.append(p)
    assert_trajectory(run(SGD(learning_rate=lr, momentum=mu)), expected)


def test_sgd_nesterov_keras_form():
    # Keras: velocity = momentum * velocity - lr * g;  p = p + momentum * velocity - lr * g
    lr, mu, p, v, expected = 0.05, 0.8, P0.copy(), np.zeros(5), []
    for g in GRADIENTS:
        v = mu * v - lr * g
        p = p + mu * v - lr * g
        expected.append(p)
    actual = run(SGD(learning_rate=lr, momentum=mu, nesterov=True))
    assert_trajectory(actual, expected)
    # and it is not the same as classical momentum
    assert not np.allclose(actual[-1], run(SGD(learning_rate=lr, momentum=mu))[-1])


# -- Adam family ------------------------------------------------------------------------------


def adam_reference(lr, b1, b2, eps, amsgrad=False, weight_decay=0.0, steps=3):
    """Kingma & Ba (2015), Algorithm 1 with the "epsilon hat" ordering of section 2 that Keras
    uses: alpha_t = lr * sqrt(1 - b2^t) / (1 - b1^t); p -= alpha_t * m / (sqrt(v) + eps).
    AdamW (Loshchilov & Hutter, 2019), Keras form: p -= lr * weight_decay * p first."""
    p, m, v, v_max, expected = P0.copy(), np.zeros(5), np.zeros(5), np.zeros(5), []
    for t, g in enumerate(GRADIENTS[:steps], start=1):
        p = p - lr * weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        p = p - alpha * m / (np.sqrt(v_max if amsgrad else v) + eps)
        expected.append(p)
    return expected


def test_adam_with_bias_correction():
    assert_trajectory(
        run(Adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7)),
        adam_reference(0.01, 0.9, 0.999, 1e-7),
    )


def test_adam_first_step_is_lr_times_sign_of_gradient():
    # With bias correction, the first step is lr * g / (|g| + eps'): about lr in every
    # coordinate with a non-zero gradient, whatever the gradient's scale.
    p = run(Adam(learning_rate=0.01, epsilon=1e-12), steps=1)[0]
    moved = P0 - p
    np.testing.assert_allclose(
        moved[GRADIENTS[0] != 0], 0.01 * np.sign(GRADIENTS[0][GRADIENTS[0] != 0])
    )
    assert moved[3] == 0.0


def test_adam_matches_textbook_form_when_epsilon_is_negligible():
    # Algorithm 1 of the paper: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
    lr, b1, b2 = 0.01, 0.9, 0.999
    p, m, v = P0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(GRADIENTS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + 1e-300)
    np.testing.assert_allclose(run(Adam(learning_rate=lr, epsilon=1e-300))[-1], p, rtol=1e-12)


def test_adam_amsgrad():
    # the second gradient is smaller in coordinate 4: v drops but v_max does not
    expected = adam_reference(0.02, 0.5, 0.6, 1e-7, amsgrad=True)
    actual = run(Adam(learning_rate=0.02, beta_1=0.5, beta_2=0.6, amsgrad=True))
    assert_trajectory(actual, expected)
    plain = run(Adam(learning_rate=0.02, beta_1=0.5, beta_2=0.6))
    assert not np.allclose(actual[-1], plain[-1])


def test_adamw_decoupled_weight_decay():
    expected = adam_reference(0.01, 0.9, 0.999, 1e-7, weight_decay=0.1)
    assert_trajectory(run(AdamW(learning_rate=0.01, weight_decay=0.1)), expected)
    # the decay is decoupled: it is not the same as adding weight_decay * p to the gradient
    coupled = Adam(learning_rate=0.01)
    p = P0.copy()
    coupled.build(5, np.float64)
    for g in GRADIENTS:
        coupled.apply(p, g + 0.1 * p)
    assert not np.allclose(p, expected[-1])


def test_adamw_zero_gradient_only_decays():
    p = run(AdamW(learning_rate=0.5, weight_decay=0.2), steps=1, gradients=[np.zeros(5)])[0]
    np.testing.assert_allclose(p, P0 * (1 - 0.5 * 0.2))


# -- RMSprop and Adagrad --------------------------------------------------------------------------


def rmsprop_reference(lr, rho, eps, momentum=0.0, centered=False):
    """Hinton (2012), Keras form: v = rho v + (1 - rho) g^2;  (centered: mg = rho mg + (1 - rho) g,
    denominator v - mg^2);  increment = lr g / sqrt(denominator + eps);
    with momentum: mom = momentum * mom + increment, p -= mom; else p -= increment."""
    p, v, mg, mom, expected = P0.copy(), np.zeros(5), np.zeros(5), np.zeros(5), []
    for g in GRADIENTS:
        v = rho * v + (1 - rho) * g**2
        mg = rho * mg + (1 - rho) * g
        denominator = v - mg**2 if centered else v
        increment = lr * g / np.sqrt(denominator + eps)
        if momentum:
            mom = momentum * mom + increment
            p = p - mom
        else:
            p = p - increment
        expected.append(p)
    return expected


@pytest.mark.parametrize(
    "momentum, centered", [(0.0, False), (0.0, True), (0.9, False), (0.5, True)]
)
def test_rmsprop(momentum, centered):
    expected = rmsprop_reference(0.01, 0.9, 1e-7, momentum=momentum, centered=centered)
    actual = run(RMSprop(learning_rate=0.01, rho=0.9, momentum=momentum, centered=centered))
    assert_trajectory(actual, expected)


def test_adagrad_with_initial_accumulator():
    # Duchi et al. (2011), Keras form: a starts at 0.1; a += g^2; p -= lr g / sqrt(a + eps)
    lr, eps, p, a, expected = 0.1, 1e-7, P0.copy(), np.full(5, 0.1), []
    for g in GRADIENTS:
        a = a + g**2
        p = p - lr * g / np.sqrt(a + eps)
        expected.append(p)
    assert_trajectory(run(Adagrad(learning_rate=lr)), expected)


# -- clipping ---------------------------------------------------------------------------------


def test_clipnorm_clips_each_tensor_separately():
    g = np.array([3.0, 4.0, 0.3, 0.4, 0.0])  # tensor norms 5 and 0.5
    optimizer = SGD(learning_rate=1.0, clipnorm=1.0)
    p = np.zeros(5)
    optimizer.build(5, np.float64, segments=[slice(0, 2), slice(2, 5)])
    optimizer.apply(p, g.copy())
    # the first tensor is scaled to norm 1; the second, already below, is untouched
    np.testing.assert_allclose(-p, [0.6, 0.8, 0.3, 0.4, 0.0], rtol=1e-12)


def test_global_clipnorm_clips_all_tensors_together():
    g = np.array([3.0, 4.0, 0.0, 12.0, 0.0])  # global norm 13
    optimizer = SGD(learning_rate=1.0, global_clipnorm=2.6)
    p = np.zeros(5)
    optimizer.build(5, np.float64, segments=[slice(0, 2), slice(2, 5)])
    optimizer.apply(p, g.copy())
    np.testing.assert_allclose(-p, g * 2.6 / 13.0, rtol=1e-12)


def test_clipping_leaves_small_gradients_alone():
    g = np.array([0.1, 0.2, 0.0, 0.1, 0.0])
    for optimizer in (
        SGD(learning_rate=1.0, clipnorm=1.0),
        SGD(learning_rate=1.0, global_clipnorm=1.0),
    ):
        p = np.zeros(5)
        optimizer.build(5, np.float64, segments=[slice(0, 2), slice(2, 5)])
        optimizer.apply(p, g.copy())
        np.testing.assert_allclose(-p, g)


def test_model_segments_are_the_layer_tensors():
    """Inside a model, clipnorm sees one segment per kernel and bias."""
    model = Sequential([Dense(3, input_shape=(2,)), Dense(1)], dtype="float64", seed=0)
    model.build()
    model.compile(optimizer=SGD(clipnorm=1.0), loss="mse")
    model._build_optimizer()
    sizes = [s.stop - s.start for s in model.optimizer._segments]
    assert sizes == [6, 3, 3, 1]


def test_clipping_arguments_are_validated():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "give at most one of clipnorm, clipvalue and global_clipnorm, "
            "got ['clipnorm', 'global_clipnorm']"
        ),
    ):
        SGD(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="clipnorm must be > 0"):
        Adam(clipnorm=0.0)


# -- learning rate, defaults, names ------------------------------------------------------------


def test_optimizer_updates_the_model_parameters_by_lr_times_gradient():
    model = Sequential(
        [Dense(3, activation="tanh", input_shape=(4,)), Dense(2)], dtype="float64", seed=0
    )
    model.build()
    model.compile(optimizer=SGD(learning_rate=0.5), loss="mse")
    model._build_optimizer()
    x = np.random.default_rng(0).normal(size=(8, 4))
    y = np.random.default_rng(1).normal(size=(8, 2))
    before = model.parameters.values.copy()
    model.train_step(x, y)
    np.testing.assert_allclose(
        model.parameters.values, before - 0.5 * model.parameters.grads, rtol=1e-13
    )
    assert model.optimizer.iterations == 1


def test_keras_default_hyperparameters():
    # Values from the Keras 3 API documentation (keras.io/api/optimizers/...).
    sgd = SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    adam = Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    adamw = AdamW()
    assert (adamw.learning_rate, adamw.weight_decay, adamw.beta_1, adamw.beta_2, adamw.epsilon) == (
        0.001,
        0.004,
        0.9,
        0.999,
        1e-7,
    )
    rmsprop = RMSprop()
    assert (
        rmsprop.learning_rate,
        rmsprop.rho,
        rmsprop.momentum,
        rmsprop.epsilon,
        rmsprop.centered,
    ) == (
        0.001,
        0.9,
        0.0,
        1e-7,
        False,
    )
    adagrad = Adagrad()
    assert (adagrad.learning_rate, adagrad.initial_accumulator_value, adagrad.epsilon) == (
        0.001,
        0.1,
        1e-7,
    )
    for optimizer in (sgd, adam, rmsprop, adagrad):
        assert optimizer.clipnorm is None and optimizer.global_clipnorm is None


@pytest.mark.parametrize(
    "name, cls",
    [("sgd", SGD), ("adam", Adam), ("AdamW", AdamW), ("rmsprop", RMSprop), ("adagrad", Adagrad)],
)
def test_optimizer_by_name(name, cls):
    assert type(get(name)) is cls


def test_unknown_optimizer_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adan'\. Did you mean 'adam'\?"):
        get("adan")


def test_learning_rate_can_be_set_and_is_validated():
    optimizer = Adam()
    optimizer.learning_rate = 0.05
    assert optimizer.learning_rate == 0.05
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        Adam(learning_rate=-1.0)
    scheduled = Adam(learning_rate=ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match="is a schedule"):
        scheduled.learning_rate = 0.1


def test_optimizer_uses_the_schedule_at_the_step_count():
    """Step t (0-based) uses schedule(t), as Keras does."""
    schedule = ExponentialDecay(initial_learning_rate=0.1, decay_steps=1, decay_rate=0.5)
    lr_values = [0.1, 0.05, 0.025]
    p, expected = P0.copy(), []
    for lr, g in zip(lr_values, GRADIENTS, strict=True):
        p = p - lr * g
        expected.append(p)
    optimizer = SGD(learning_rate=schedule)
    assert_trajectory(run(optimizer), expected)
    assert optimizer.learning_rate == pytest.approx(0.0125)


# -- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 7, 10, 25, 1000])
def test_exponential_decay(step):
    schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.96)
    assert schedule(step) == pytest.approx(0.1 * 0.96 ** (step / 10), rel=1e-12)
    staircase = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.96, staircase=True)
    assert staircase(step) == pytest.approx(0.1 * 0.96 ** (step // 10), rel=1e-12)


def test_piecewise_constant_decay():
    # Keras: values[0] while step <= boundaries[0], values[1] while step <= boundaries[1], ...
    schedule = PiecewiseConstantDecay(boundaries=[100, 110], values=[1.0, 0.5, 0.1])
    expected = {0: 1.0, 99: 1.0, 100: 1.0, 101: 0.5, 110: 0.5, 111: 0.1, 10_000: 0.1}
    assert {step: schedule(step) for step in expected} == expected
    with pytest.raises(ValueError, match="len\\(values\\) == len\\(boundaries\\) \\+ 1"):
        PiecewiseConstantDecay([1, 2], [1.0])


def cosine_reference(step, initial, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    """Keras 3 CosineDecay: linear warm-up from initial to warmup_target over warmup_steps,
    then peak * ((1 - alpha) * 0.5 * (1 + cos(pi * min(s, decay_steps) / decay_steps)) + alpha)."""
    if warmup_target is not None and step < warmup_steps:
        return initial + (warmup_target - initial) * step / warmup_steps
    peak = initial if warmup_target is None else warmup_target
    s = min(step - (warmup_steps if warmup_target is not None else 0), decay_steps)
    return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)


@pytest.mark.parametrize("step", [0, 1, 5, 10, 11, 50, 109, 110, 500])
def test_cosine_decay_with_warmup(step):
    schedule = CosineDecay(0.0, decay_steps=100, alpha=0.1, warmup_target=0.2, warmup_steps=10)
    expected = cosine_reference(step, 0.0, 100, alpha=0.1, warmup_target=0.2, warmup_steps=10)
    assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_decay_landmarks():
    schedule = CosineDecay(0.0, decay_steps=100, alpha=0.1, warmup_target=0.2, warmup_steps=10)
    assert schedule(0) == 0.0
    assert schedule(5) == pytest.approx(0.1)  # half-way up the warm-up
    assert schedule(10) == pytest.approx(0.2)  # the peak
    assert schedule(60) == pytest.approx(0.2 * (0.9 * 0.5 + 0.1))  # half-way down
    assert schedule(110) == pytest.approx(0.02)  # alpha * peak, and it stays there
    assert schedule(10_000) == pytest.approx(0.02)
    plain = CosineDecay(0.1, decay_steps=20)
    assert [plain(s) for s in (0, 10, 20)] == pytest.approx([0.1, 0.05, 0.0])


def one_cycle_reference(step, max_lr, total, pct_start=0.3, div=25.0, final_div=1e4):
    """Smith & Topin (2018) as in PyTorch's OneCycleLR (cosine annealing, two phases):
    phase 1 ends at step pct_start*total - 1 (initial -> max), phase 2 at total - 1
    (max -> initial / final_div); cos_anneal(a, b, f) = b + (a - b) / 2 * (1 + cos(pi f))."""
    initial = max_lr / div
    minimum = initial / final_div
    end_1 = pct_start * total - 1
    if step <= end_1:
        a, b, f = initial, max_lr, step / end_1
    else:
        a, b, f = max_lr, minimum, (step - end_1) / (total - 1 - end_1)
    return b + (a - b) / 2 * (1 + math.cos(math.pi * f))


@pytest.mark.parametrize("step", [0, 1, 10, 29, 30, 31, 64, 99])
def test_one_cycle(step):
    schedule = OneCycle(max_learning_rate=0.5, total_steps=100)
    assert schedule(step) == pytest.approx(one_cycle_reference(step, 0.5, 100), rel=1e-12)


def test_one_cycle_landmarks():
    schedule = OneCycle(max_learning_rate=0.5, total_steps=100)
    assert schedule(0) == pytest.approx(0.5 / 25)
    assert max(schedule(s) for s in range(100)) == pytest.approx(0.5)
    assert schedule(99) == pytest.approx(0.5 / 25 / 1e4)


def test_schedules_round_trip_through_the_optimizer_config():
    for schedule in (
        ExponentialDecay(0.1, 10, 0.5, staircase=True),
        PiecewiseConstantDecay([5, 10], [0.3, 0.2, 0.1]),
        CosineDecay(0.0, 50, alpha=0.05, warmup_target=0.1, warmup_steps=5),
        OneCycle(0.4, 80),
    ):
        optimizer = get({"name": "sgd", "config": SGD(learning_rate=schedule).get_config()})
        assert [optimizer.learning_rate_at(s) for s in range(0, 100, 7)] == [
            schedule(s) for s in range(0, 100, 7)
        ]
