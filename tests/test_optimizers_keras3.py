"""Nadam, Adamax, Adadelta, Lion, Lamb; clipvalue, weight decay and the weights' moving
average (use_ema) on every optimizer; PolynomialDecay, InverseTimeDecay, CosineDecayRestarts.

Each update is compared step by step with a reference written out from the paper's equations
(in Keras 3's variant where Keras differs), independently of the engine's in-place code. Where
Keras 3 is installed (with JAX), the same runs are also compared with Keras itself.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest

from multilayer.layers import Dense, Dropout, Input
from multilayer.models import Sequential, load_model
from multilayer.models.checkpoint import CheckpointConfig, list_checkpoints
from multilayer.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lamb,
    Lion,
    Nadam,
    RMSprop,
    get,
)
from multilayer.optimizers.schedules import (
    CosineDecayRestarts,
    InverseTimeDecay,
    PolynomialDecay,
)

P0 = np.array([0.5, -1.0, 2.0, 0.0, -0.3])
GRADIENTS = [
    np.array([0.1, -0.2, 0.3, 0.0, 1.5]),
    np.array([-0.4, 0.05, 0.3, 0.2, -1.0]),
    np.array([0.25, 0.5, -0.1, -0.3, 0.7]),
    np.array([0.0, -0.6, 0.2, 0.1, 0.4]),
]


def run(optimizer, p0=P0, gradients=GRADIENTS, segments=None) -> list[np.ndarray]:
    """Parameters after each update."""
    p = p0.astype(np.float64).copy()
    optimizer.build(p.size, np.float64, segments)
    trajectory = []
    for g in gradients:
        optimizer.apply(p, g.copy())
        trajectory.append(p.copy())
    return trajectory


def assert_trajectory(actual, expected, rtol=1e-12):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected, strict=True)):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=1e-15, err_msg=f"step {step + 1}")


# -- the five new optimizers against their equations ------------------------------------------


def test_nadam_with_keras_momentum_schedule():
    # Dozat (2016) with mu_t = beta_1 * (1 - 0.5 * 0.96 ** t), as Keras 3 implements it
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    p, m, v, expected = P0.copy(), np.zeros(5), np.zeros(5), []
    mu = [None] + [b1 * (1 - 0.5 * 0.96**t) for t in range(1, 10)]
    for t, g in enumerate(GRADIENTS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        product_t = math.prod(mu[1 : t + 1])
        product_next = math.prod(mu[1 : t + 2])
        m_hat = mu[t + 1] * m / (1 - product_next) + (1 - mu[t]) * g / (1 - product_t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        expected.append(p)
    assert_trajectory(run(Nadam(learning_rate=lr)), expected)


def test_nadam_resumed_mid_run_recomputes_its_momentum_product_exactly():
    whole = run(Nadam(0.01), gradients=GRADIENTS)
    first = Nadam(0.01)
    p = P0.copy()
    first.build(5, np.float64)
    for g in GRADIENTS[:2]:
        first.apply(p, g.copy())
    second = Nadam(0.01)  # a fresh object, as after loading a checkpoint
    second.build(5, np.float64)
    for slot, value in first.state.items():
        second.state[slot][...] = value
    second.iterations = first.iterations
    for g in GRADIENTS[2:]:
        second.apply(p, g.copy())
    assert p.tobytes() == whole[-1].tobytes()


def test_adamax_infinity_norm():
    # Kingma & Ba (2015), algorithm 2; Keras adds epsilon to u
    lr, b1, b2, eps = 0.02, 0.9, 0.999, 1e-7
    p, m, u, expected = P0.copy(), np.zeros(5), np.zeros(5), []
    for t, g in enumerate(GRADIENTS, start=1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g))
        p = p - (lr / (1 - b1**t)) * m / (u + eps)
        expected.append(p)
    assert_trajectory(run(Adamax(learning_rate=lr)), expected)


@pytest.mark.parametrize("lr", [1.0, 0.001])
def test_adadelta(lr):
    # Zeiler (2012), algorithm 1, with the step scaled by the learning rate (Keras)
    rho, eps = 0.95, 1e-7
    p, eg2, edx2, expected = P0.copy(), np.zeros(5), np.zeros(5), []
    for g in GRADIENTS:
        eg2 = rho * eg2 + (1 - rho) * g**2
        dx = -np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * dx**2
        p = p + lr * dx
        expected.append(p)
    assert_trajectory(run(Adadelta(learning_rate=lr)), expected)


def test_lion_sign_update():
    # Chen et al. (2023), algorithm 2 (without weight decay)
    lr, b1, b2 = 0.01, 0.9, 0.99
    p, m, expected = P0.copy(), np.zeros(5), []
    for g in GRADIENTS:
        c = b1 * m + (1 - b1) * g
        p = p - lr * np.sign(c)
        m = b2 * m + (1 - b2) * g
        expected.append(p)
    actual = run(Lion(learning_rate=lr))
    assert_trajectory(actual, expected)
    # every element moves by exactly lr or not at all (sign(0) = 0 for the zero gradient)
    assert set(np.round(np.abs(actual[0] - P0) / lr, 12)) <= {0.0, 1.0}


def test_lamb_trust_ratio_per_tensor():
    # You et al. (2020), algorithm 2: the Adam direction scaled per tensor by ||w|| / ||r||
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    segments = [slice(0, 3), slice(3, 5)]
    p, m, v, expected = P0.copy(), np.zeros(5), np.zeros(5), []
    for t, g in enumerate(GRADIENTS, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        p = p.copy()
        for s in segments:
            w_norm, r_norm = np.linalg.norm(p[s]), np.linalg.norm(r[s])
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            p[s] = p[s] - lr * ratio * r[s]
        expected.append(p)
    assert_trajectory(run(Lamb(learning_rate=lr), segments=segments), expected)


def test_lamb_ratio_is_one_for_a_zero_tensor():
    # a tensor of zeros (a fresh bias) moves by the plain Adam step: ratio 1, not 0
    p0 = np.array([0.0, 0.0, 1.0])
    gradients, segments = [np.array([0.5, -2.0, 1.0])], [slice(0, 2), slice(2, 3)]
    (after,) = run(Lamb(learning_rate=0.1), p0=p0, gradients=gradients, segments=segments)
    np.testing.assert_allclose(after, [-0.1, 0.1, 0.9], rtol=1e-6)  # ||w|| / ||r|| = 1 / 1


def test_keras_3_defaults_of_the_new_optimizers():
    # keras/src/optimizers/{nadam,adamax,adadelta,lion,lamb}.py
    nadam, adamax, adadelta = Nadam(), Adamax(), Adadelta()
    lion, lamb = Lion(), Lamb()
    for optimizer in (nadam, adamax, lamb):
        assert (optimizer.learning_rate, optimizer.beta_1, optimizer.beta_2) == (0.001, 0.9, 0.999)
        assert optimizer.epsilon == 1e-7
    assert (adadelta.learning_rate, adadelta.rho, adadelta.epsilon) == (0.001, 0.95, 1e-7)
    assert (lion.learning_rate, lion.beta_1, lion.beta_2) == (0.001, 0.9, 0.99)
    for optimizer in (nadam, adamax, adadelta, lion, lamb, SGD(), Adam()):
        assert optimizer.weight_decay is None and optimizer.clipvalue is None
        assert (optimizer.use_ema, optimizer.ema_momentum) == (False, 0.99)
        assert optimizer.ema_overwrite_frequency is None


@pytest.mark.parametrize(
    ("name", "cls"),
    [("nadam", Nadam), ("Adamax", Adamax), ("adadelta", Adadelta), ("lion", Lion), ("Lamb", Lamb)],
)
def test_new_optimizers_by_name(name, cls):
    assert type(get(name)) is cls


# -- clipvalue, weight decay ------------------------------------------------------------------


def test_clipvalue_clips_each_element():
    lr, c, p, expected = 0.1, 0.25, P0.copy(), []
    for g in GRADIENTS:
        p = p - lr * np.clip(g, -c, c)
        expected.append(p)
    assert_trajectory(run(SGD(learning_rate=lr, clipvalue=c)), expected)


def test_weight_decay_is_applied_before_the_step_on_every_optimizer():
    # Keras 3's base optimizer: p -= lr * weight_decay * p, then the optimizer's own update
    lr, wd, b1, b2 = 0.01, 0.1, 0.9, 0.99
    p, m, expected = P0.copy(), np.zeros(5), []
    for g in GRADIENTS:
        p = p - lr * wd * p
        p = p - lr * np.sign(b1 * m + (1 - b1) * g)
        m = b2 * m + (1 - b2) * g
        expected.append(p)
    assert_trajectory(run(Lion(learning_rate=lr, weight_decay=wd)), expected)


# -- moving average of the weights --------------------------------------------------------------


def _ema_reference(trajectory, momentum, frequency=None):
    """(weights after each step, average after each step) from the plain trajectory of an
    optimizer whose update does not depend on the weights (SGD)."""
    weights, averages = [], []
    p, average = P0.copy(), None
    for step, g in enumerate(GRADIENTS):
        p = p - 0.1 * g
        average = p.copy() if step == 0 else momentum * average + (1 - momentum) * p
        if frequency and (step + 1) % frequency == 0:
            p = average.copy()
        weights.append(p)
        averages.append(average)
    return weights, averages


@pytest.mark.parametrize("frequency", [None, 1, 2])
def test_ema_average_and_overwrite_frequency(frequency):
    optimizer = SGD(0.1, use_ema=True, ema_momentum=0.6, ema_overwrite_frequency=frequency)
    p = P0.copy()
    optimizer.build(5, np.float64)
    weights, averages = [], []
    for g in GRADIENTS:
        optimizer.apply(p, g.copy())
        weights.append(p.copy())
        averages.append(optimizer.state["ema"].copy())
    expected_weights, expected_averages = _ema_reference(GRADIENTS, 0.6, frequency)
    assert_trajectory(weights, expected_weights)
    assert_trajectory(averages, expected_averages)
    optimizer.finalize_variable_values(p)
    np.testing.assert_array_equal(p, expected_averages[-1])


def test_finalize_does_nothing_without_ema_or_before_the_first_step():
    p = P0.copy()
    plain = Adam()
    plain.build(5, np.float64)
    plain.apply(p, GRADIENTS[0].copy())
    after = p.copy()
    plain.finalize_variable_values(p)
    np.testing.assert_array_equal(p, after)
    unused = Adam(use_ema=True)
    unused.build(5, np.float64)
    unused.finalize_variable_values(p)  # the average is still all zeros: not copied
    np.testing.assert_array_equal(p, after)
    assert "ema" not in plain.state and "ema" in unused.state


def _model(optimizer, seed=5):
    model = Sequential(
        [Input(shape=(12,)), Dense(16, activation="relu"), Dropout(0.3), Dense(4)], seed=seed
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12)).astype("float32")
    return x, rng.normal(size=(200, 4)).astype("float32")


def test_fit_ends_with_the_moving_average_as_the_weights():
    x, y = _data()
    model = _model(Adam(0.01, use_ema=True, ema_momentum=0.9))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    np.testing.assert_array_equal(model.parameters.values, model.optimizer.state["ema"])
    plain = _model(Adam(0.01))
    plain.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert not np.array_equal(plain.parameters.values, model.parameters.values)


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: Nadam(0.01, use_ema=True, ema_overwrite_frequency=3, clipvalue=0.5),
        lambda: Lamb(0.01, weight_decay=0.01, use_ema=True),
        lambda: Adadelta(1.0, global_clipnorm=1.0),
        lambda: Adamax(0.01, clipnorm=0.5),
        lambda: Lion(0.001, weight_decay=0.1),
    ],
    ids=["nadam-ema", "lamb-ema", "adadelta", "adamax", "lion"],
)
def test_checkpoint_resume_is_bitwise_identical(tmp_path, optimizer):
    x, y = _data()
    reference = _model(optimizer())
    reference.fit(x, y, epochs=3, batch_size=32, verbose=0)
    _model(optimizer()).fit(
        x,
        y,
        epochs=3,
        batch_size=32,
        verbose=0,
        checkpoint=CheckpointConfig(tmp_path, 5, "step", keep=10),
    )
    written = list_checkpoints(tmp_path)  # newest first
    assert len(written) > 3
    for path in written[:2]:  # as if killed two checkpoints before the end
        path.unlink()
    resumed = _model(optimizer(), seed=99)
    resumed.fit(
        x,
        y,
        epochs=3,
        batch_size=32,
        verbose=0,
        checkpoint=CheckpointConfig(tmp_path, 5, "step", resume=True),
    )
    assert resumed.parameters.values.tobytes() == reference.parameters.values.tobytes()
    for slot, value in reference.optimizer.state.items():
        assert resumed.optimizer.state[slot].tobytes() == value.tobytes(), slot


def test_saved_model_keeps_the_moving_average_and_the_options(tmp_path):
    x, y = _data()
    optimizer = Lamb(0.01, clipvalue=0.5, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=4)
    model = _model(optimizer)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded.optimizer) is Lamb
    assert loaded.optimizer.get_config() == optimizer.get_config()
    assert loaded.optimizer.iterations == optimizer.iterations
    assert loaded.optimizer.state["ema"].tobytes() == optimizer.state["ema"].tobytes()


# -- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SGD(clipvalue=0.0), "clipvalue must be > 0, got 0.0"),
        (lambda: SGD(clipvalue=float("inf")), "clipvalue must be a finite number, got inf"),
        (
            lambda: Adam(clipvalue=1.0, clipnorm=1.0),
            "give at most one of clipnorm, clipvalue and global_clipnorm, "
            "got ['clipnorm', 'clipvalue']",
        ),
        (lambda: Lion(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
        (lambda: Lamb(weight_decay=float("nan")), "weight_decay must be a finite number, got nan"),
        (lambda: Nadam(use_ema="yes"), "use_ema must be True or False, got 'yes'"),
        (lambda: Adamax(ema_momentum=1.5), "ema_momentum must be in [0, 1], got 1.5"),
        (
            lambda: Adadelta(ema_overwrite_frequency=0),
            "ema_overwrite_frequency must be a positive integer, got 0",
        ),
        (
            lambda: Adagrad(ema_overwrite_frequency=2.5),
            "ema_overwrite_frequency must be a positive integer, got 2.5",
        ),
        (
            lambda: Lion(beta_1=0.0),
            "Lion: beta_1 must be in (0, 1] (0 would make it SignSGD), got 0.0",
        ),
        (lambda: Nadam(beta_1=float("nan")), "Nadam: beta_1 must be a finite number, got nan"),
        (lambda: Adadelta(rho=None), "Adadelta: rho must be a finite number, got None"),
        (lambda: Lamb(epsilon="1e-7"), "Lamb: epsilon must be a finite number, got '1e-7'"),
        (lambda: RMSprop(rho=float("inf")), "RMSprop: rho must be a finite number, got inf"),
        (lambda: AdamW(learning_rate=float("nan")), "learning_rate must be a positive number"),
    ],
)
def test_arguments_are_checked_with_exact_messages(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


# -- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 5, 9, 10, 11, 50])
def test_polynomial_decay(step):
    initial, end, steps, power = 0.1, 0.01, 10, 2.0
    held = min(step, steps)
    expected = (initial - end) * (1 - held / steps) ** power + end
    assert PolynomialDecay(initial, steps, end, power)(step) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    ("step", "period_end"), [(0, 10), (1, 10), (10, 10), (11, 20), (20, 20), (21, 30)]
)
def test_polynomial_decay_cycle(step, period_end):
    # cycle: decay_steps becomes the first multiple of it at or after the step (10 at step 0)
    expected = (0.1 - 0.01) * (1 - step / period_end) ** 0.5 + 0.01
    schedule = PolynomialDecay(0.1, 10, 0.01, power=0.5, cycle=True)
    assert schedule(step) == pytest.approx(expected, rel=1e-14)


def test_polynomial_decay_keras_default_end():
    assert PolynomialDecay(0.1, 10)(10) == pytest.approx(0.0001)


@pytest.mark.parametrize("step", [0, 3, 7, 8, 100])
def test_inverse_time_decay(step):
    assert InverseTimeDecay(0.1, 7, 0.5)(step) == pytest.approx(0.1 / (1 + 0.5 * step / 7))
    staircase = InverseTimeDecay(0.1, 7, 0.5, staircase=True)(step)
    assert staircase == pytest.approx(0.1 / (1 + 0.5 * (step // 7)))


def _sgdr_reference(initial, first, t_mul, m_mul, alpha, step):
    """SGDR (Loshchilov & Hutter, 2017) by walking through the periods one by one."""
    start, length, restart = 0.0, float(first), 0
    while step >= start + length:
        start += length
        length *= t_mul
        restart += 1
    fraction = (step - start) / length
    cosine = 0.5 * m_mul**restart * (1 + math.cos(math.pi * fraction))
    return initial * ((1 - alpha) * cosine + alpha)


@pytest.mark.parametrize(
    "arguments", [(10, 2.0, 1.0, 0.0), (10, 1.0, 0.5, 0.1), (8, 2.0, 0.8, 0.05), (7, 1.5, 0.9, 0.0)]
)
def test_cosine_decay_restarts(arguments):
    first, t_mul = arguments[0], arguments[1]
    schedule = CosineDecayRestarts(0.1, *arguments)
    boundaries, start, length = set(), 0.0, float(first)
    while start < 400:
        boundaries.add(start)
        start, length = start + length, length * t_mul
    for step in range(300):
        if t_mul != 2.0 and t_mul != 1.0 and step in boundaries:
            continue  # a restart at a non-integer power of t_mul: floor(log) may round either way
        expected = _sgdr_reference(0.1, *arguments, step)
        assert schedule(step) == pytest.approx(expected, rel=1e-9, abs=1e-15), step


def test_cosine_decay_restarts_landmarks():
    schedule = CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5)
    assert schedule(0) == 1.0
    assert schedule(5) == pytest.approx(0.5)  # half way through the first period
    assert schedule(10) == pytest.approx(0.5)  # first restart, at m_mul times the peak
    assert schedule(30) == pytest.approx(0.25)  # second restart after a period twice as long


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: PolynomialDecay(0.1, 0),
            "PolynomialDecay: decay_steps must be a positive integer",
        ),
        (lambda: PolynomialDecay(0.1, 10, power=float("nan")), "power must be a finite number"),
        (lambda: InverseTimeDecay(0.1, 10, -1.0), "InverseTimeDecay: decay_rate must be >= 0"),
        (
            lambda: CosineDecayRestarts(0.1, 2.5),
            "CosineDecayRestarts: first_decay_steps must be a positive integer, got 2.5",
        ),
        (lambda: CosineDecayRestarts(0.1, 10, t_mul=0.0), "t_mul must be > 0, got 0.0"),
        (lambda: CosineDecayRestarts(0.1, 10, m_mul=float("inf")), "m_mul must be a finite"),
    ],
)
def test_schedule_arguments_are_checked(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


# -- Keras 3 as an oracle (skipped where it is not installed) ----------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:  # Keras and its backend: optional, not in the test extra
        import keras
    except ImportError as error:
        pytest.skip(f"Keras 3 with JAX is not installed ({error})")
    return keras


RNG = np.random.default_rng(0)
KERNEL = RNG.normal(size=(3, 2)).astype("float32")
BIAS = RNG.normal(size=2).astype("float32")
KERAS_GRADIENTS = [
    (3 * RNG.normal(size=(3, 2)).astype("float32"), RNG.normal(size=2).astype("float32"))
    for _ in range(6)
]

KERAS_CASES = [
    ("SGD", {"momentum": 0.9, "nesterov": True, "clipnorm": 1.0}),
    ("SGD", {"momentum": 0.9, "use_ema": True, "ema_momentum": 0.7}),
    ("Adam", {"weight_decay": 0.1, "clipvalue": 1.0, "use_ema": True, "ema_momentum": 0.5,
              "ema_overwrite_frequency": 4}),
    ("AdamW", {"amsgrad": True, "global_clipnorm": 2.0}),
    ("RMSprop", {"centered": True, "momentum": 0.3, "global_clipnorm": 1.0}),
    ("Adagrad", {"clipvalue": 0.5, "use_ema": True}),
    ("Nadam", {}),
    ("Nadam", {"learning_rate": 0.01, "weight_decay": 0.05, "use_ema": True,
               "ema_overwrite_frequency": 2}),
    ("Adamax", {"clipnorm": 0.5}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adadelta", {"rho": 0.9, "use_ema": True, "ema_momentum": 0.8}),
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.01, "weight_decay": 0.5, "beta_1": 0.8}),
    ("Lamb", {}),
    ("Lamb", {"learning_rate": 0.05, "weight_decay": 0.01, "clipvalue": 0.3, "use_ema": True}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "arguments"), KERAS_CASES)
def test_same_weights_as_keras(keras, name, arguments):
    import multilayer.optimizers

    variables = [keras.Variable(KERNEL), keras.Variable(BIAS)]
    theirs = getattr(keras.optimizers, name)(**arguments)
    ours = getattr(multilayer.optimizers, name)(**arguments)
    p = np.concatenate([KERNEL.ravel(), BIAS])
    ours.build(p.size, np.float32, [slice(0, 6), slice(6, 8)])
    for step, (kernel_grad, bias_grad) in enumerate(KERAS_GRADIENTS, start=1):
        theirs.apply([kernel_grad, bias_grad], variables)
        ours.apply(p, np.concatenate([kernel_grad.ravel(), bias_grad]))
        expected = np.concatenate([np.asarray(v.value).ravel() for v in variables])
        np.testing.assert_allclose(p, expected, rtol=2e-6, atol=2e-7, err_msg=f"step {step}")
    theirs.finalize_variable_values(variables)
    ours.finalize_variable_values(p)
    expected = np.concatenate([np.asarray(v.value).ravel() for v in variables])
    np.testing.assert_allclose(p, expected, rtol=2e-6, atol=2e-7, err_msg="finalized")


SCHEDULE_CASES = [
    ("PolynomialDecay", (0.1, 10), {"end_learning_rate": 0.01, "power": 2.0}),
    ("PolynomialDecay", (0.1, 10), {"power": 0.5, "cycle": True}),
    ("InverseTimeDecay", (0.1, 7, 0.5), {}),
    ("InverseTimeDecay", (0.1, 7, 0.5), {"staircase": True}),
    ("CosineDecayRestarts", (0.1, 10), {}),
    ("CosineDecayRestarts", (0.1, 10), {"t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1}),
    ("CosineDecayRestarts", (0.1, 7), {"t_mul": 1.5, "m_mul": 0.8, "alpha": 0.05}),
    ("PiecewiseConstantDecay", ([5, 10], [0.1, 0.05, 0.01]), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), SCHEDULE_CASES)
def test_same_schedule_as_keras(keras, name, args, kwargs):
    import multilayer.optimizers.schedules

    theirs = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    ours = getattr(multilayer.optimizers.schedules, name)(*args, **kwargs)
    expected = np.asarray(theirs(np.arange(200)))  # all steps at once: one Keras call
    actual = np.array([ours(step) for step in range(200)])
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-8)  # float32 in Keras


@pytest.mark.parametrize("cls", [Nadam, Adamax, Adadelta, Lion, Lamb, SGD, Adam, RMSprop, Adagrad])
def test_get_state_set_state_resumes_bitwise_with_the_moving_average(cls):
    def make():
        return cls(learning_rate=0.01, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=3)

    segments = [slice(0, 3), slice(3, 5)]
    whole = run(make(), segments=segments)
    first, p = make(), P0.copy()
    first.build(5, np.float64, segments)
    for g in GRADIENTS[:2]:
        first.apply(p, g.copy())
    state = first.get_state()
    assert set(state["slots"]) == set(make().slots) | {"ema"}
    second = make()  # a fresh object, as after loading a checkpoint
    second.build(5, np.float64, segments)
    second.set_state(state)
    for g in GRADIENTS[2:]:
        second.apply(p, g.copy())
    assert p.tobytes() == whole[-1].tobytes()
