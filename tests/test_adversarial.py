"""FGSM adversarial training (multilayer.models.adversarial): the objective's gradient
against finite differences, the moved batch, the logged loss, refusals, and that it does
what it is for (robustness to the attack it trains against) on real digits."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.gradients import central_differences
from multilayer.engine.layers import Dense, Dropout, Rescaling
from multilayer.engine.optimizers import SGD
from multilayer.models.adversarial import AdversarialTraining
from multilayer.models.sequential import Sequential


def _model(seed: int = 0, dtype: str = "float64", regularizer=None) -> Sequential:
    model = Sequential(
        [
            Dense(5, activation="tanh", input_shape=(4,), kernel_regularizer=regularizer),
            Dense(3, activation="softmax"),
        ],
        dtype=dtype,
        seed=seed,
    )
    model.compile(optimizer=SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    model._build_optimizer()
    return model


def _loss(model, x, y) -> float:
    return float(np.mean(model._losses[0].per_sample(y, model._forward(x, training=True))))


def _input_gradient(model, x, y) -> np.ndarray:
    """dJ/dx of the clean loss by central differences."""
    moved = x.copy()
    return central_differences(moved, lambda: _loss(model, moved, y))


def _data(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (6, 4)), rng.integers(0, 3, 6)


@pytest.mark.parametrize("weight", [0.5, 0.3, 0.9])
def test_the_step_descends_the_adversarial_objective_exactly(weight):
    """SGD(1) moves the weights by minus the gradient of (1-w) J(x) + w J(x + eps sign(dJ/dx))
    (x's move held fixed, as the paper's objective does), computed here by finite differences
    with the moved batch built from a finite-difference input gradient; the loss returned
    is that objective before the update."""
    model = _model()
    x, y = _data()
    epsilon = 0.05
    model.adversarial_training = AdversarialTraining(epsilon, weight=weight)
    before = model.parameters.values.copy()
    moved = x + epsilon * np.sign(_input_gradient(model, x, y))

    def objective() -> float:
        return (1 - weight) * _loss(model, x, y) + weight * _loss(model, moved, y)

    expected_loss = objective()
    numeric = central_differences(model.parameters.values, objective)

    loss = model.train_step(x, y)
    analytic = before - model.parameters.values
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    error = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert error < 1e-7, f"relative error {error:.2e}"
    # and it is not the plain gradient
    plain = _model()
    plain.train_step(x, y)
    assert not np.allclose(before - plain.parameters.values, analytic, rtol=1e-3)


def test_the_logged_loss_is_the_objective_and_metrics_are_the_clean_batch():
    model = _model()
    model.compile(
        optimizer=SGD(learning_rate=1e-12),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = _data()
    clean = _loss(model, x, y)
    accuracy = float(np.mean(np.argmax(model._forward(x), axis=1) == y))
    model.adversarial_training = AdversarialTraining(0.2)
    history = model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    assert history.history["loss"][0] > clean  # the moved half raises it
    assert history.history["accuracy"][0] == pytest.approx(accuracy)


def test_perturb_moves_every_value_by_epsilon_within_the_clip():
    adversarial = AdversarialTraining(25.5, clip=(0.0, 255.0))
    images = np.array([[0, 100, 250, 30]], dtype=np.uint8)
    grad = np.array([[-1.0, 2.0, 0.5, 0.0]])
    ids = np.array([[3, 1]])
    moved, same = adversarial.perturb([images, ids], [grad, None], np.dtype("float32"))
    assert moved.dtype == np.float32
    np.testing.assert_array_equal(moved, [[0.0, 125.5, 255.0, 30.0]])
    assert same is ids
    assert images.tolist() == [[0, 100, 250, 30]]  # the batch itself is not changed


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"epsilon": 0}, "epsilon must be > 0, got 0"),
        ({"epsilon": float("nan")}, "epsilon must be a finite number, got nan"),
        ({"epsilon": "0.1"}, "epsilon must be a finite number, got '0.1'"),
        ({"epsilon": 0.1, "weight": 0}, "weight must be in (0, 1), got 0"),
        ({"epsilon": 0.1, "weight": 1}, "weight must be in (0, 1), got 1"),
        (
            {"epsilon": 0.1, "clip": (1.0, 0.0)},
            "clip must be (low, high) finite with low < high, got (1.0, 0.0)",
        ),
    ],
)
def test_bad_settings_are_refused(arguments, message):
    with pytest.raises(ValueError) as error:
        AdversarialTraining(**arguments)
    assert str(error.value) == message


def test_penalties_are_refused_rather_than_counted_twice():
    model = _model(regularizer="l2")
    model.adversarial_training = AdversarialTraining(0.1)
    x, y = _data()
    with pytest.raises(ValueError) as error:
        model.train_step(x, y)
    assert str(error.value) == (
        "adversarial training does not support weight or activity regularizers (each of its "
        "two backward passes would add their gradient); use a weight constraint (e.g. "
        "MaxNorm) or the optimizer's weight_decay instead"
    )


def _fgsm_accuracy(model, x, y, epsilon: float) -> float:
    """Accuracy on the fast-gradient-sign attack against ``model`` itself."""
    model.adversarial_training = None
    probabilities = model._forward(x.astype(np.float32), training=False)
    n = len(x)
    grad = probabilities.copy()
    grad[np.arange(n), y] -= 1  # softmax + cross-entropy: dJ/dlogits
    grads = model._run_backward_inputs([grad.astype(np.float32)], [True])
    moved = np.clip(x + epsilon * np.sign(grads[0].reshape(x.shape)), 0, 255)
    return float(np.mean(np.argmax(model.predict(moved, verbose=0), axis=1) == y))


@pytest.mark.slow
def test_on_real_digits_it_resists_the_attack_it_trains_against():
    """Trained the same way on 6,000 MNIST digits, the adversarially trained MLP keeps far
    more of its accuracy under an FGSM attack (eps = 0.1 of the pixel range) than the plain
    one, and about the same clean accuracy."""
    from multilayer.datasets import load_dataset

    mnist = load_dataset("mnist")
    x, y = mnist.x_train[:6000].reshape(6000, -1), mnist.y_train[:6000]
    xt, yt = mnist.x_test[:2000].reshape(2000, -1), mnist.y_test[:2000]
    results = {}
    for name, adversarial in [("plain", None), ("adversarial", AdversarialTraining(25.5))]:
        model = Sequential(
            [
                Rescaling(1 / 255, input_shape=(784,)),
                Dense(128, activation="relu"),
                Dropout(0.1),
                Dense(10, activation="softmax"),
            ],
            seed=0,
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.adversarial_training = adversarial
        model.fit(x, y, batch_size=64, epochs=5, verbose=0)
        clean = float(np.mean(np.argmax(model.predict(xt, verbose=0), axis=1) == yt))
        results[name] = (clean, _fgsm_accuracy(model, xt, yt, 25.5))
    assert results["adversarial"][0] > results["plain"][0] - 0.02
    assert results["adversarial"][1] > results["plain"][1] + 0.2, results
