"""The perceptron: its learning rule, convergence on separable data, failure on XOR; and a
small MLP that learns XOR."""

from __future__ import annotations

import numpy as np
import pytest

from multilayer import Perceptron, utils
from multilayer.layers import Dense
from multilayer.models import Sequential
from multilayer.optimizers import Adam

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0])
AND_Y = np.array([0, 0, 0, 1])


def separable(n: int = 200, seed: int = 0):
    """Two classes on either side of the line x0 + 2 x1 = 1, with a margin of at least 0.2."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(4 * n, 2))
    side = x[:, 0] + 2 * x[:, 1] - 1
    keep = np.abs(side) > 0.2 * np.sqrt(5)
    x, side = x[keep][:n], side[keep][:n]
    return x, np.where(side > 0, "pos", "neg")


def test_learning_rule_by_hand():
    """AND, samples in order, lr 1, weights and bias from 0, fire iff w.x + b > 0.

    Epoch 1: only (1,1) is wrong (z = 0 -> 0, target 1): w = (1, 1), b = 1.
    Epoch 2: (0,0) fires wrongly: w = (1, 1), b = 0; (0,1) fires wrongly: w = (1, 0), b = -1;
    (1,0) gives z = 0 -> 0, right; (1,1) gives z = 0 -> 0, wrong: w = (2, 1), b = 0.
    """
    one = Perceptron(learning_rate=1.0, max_epochs=1, shuffle=False).fit(XOR_X, AND_Y)
    np.testing.assert_array_equal(one.weights, [1.0, 1.0])
    assert one.bias == 1.0 and one.errors_per_epoch == [1] and not one.converged
    two = Perceptron(learning_rate=1.0, max_epochs=2, shuffle=False).fit(XOR_X, AND_Y)
    np.testing.assert_array_equal(two.weights, [2.0, 1.0])
    assert two.bias == 0.0 and two.errors_per_epoch == [1, 3]


def test_converges_on_linearly_separable_data():
    x, y = separable()
    perceptron = Perceptron(max_epochs=1000, seed=0).fit(x, y)
    assert perceptron.converged
    assert perceptron.errors_per_epoch[-1] == 0
    assert perceptron.score(x, y) == 1.0
    assert set(perceptron.predict(x)) == {"neg", "pos"}
    # the learned line points the same way as the true one, x0 + 2 x1
    direction = perceptron.weights / np.linalg.norm(perceptron.weights)
    assert direction @ (np.array([1.0, 2.0]) / np.sqrt(5)) > 0.9


@pytest.mark.parametrize("y", [AND_Y, np.array([0, 1, 1, 1])], ids=["AND", "OR"])
def test_learns_and_and_or(y):
    perceptron = Perceptron(seed=0).fit(XOR_X, y)
    assert perceptron.converged and perceptron.score(XOR_X, y) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cannot_learn_xor(seed):
    perceptron = Perceptron(max_epochs=500, seed=seed).fit(XOR_X, XOR_Y)
    assert not perceptron.converged
    assert len(perceptron.errors_per_epoch) == 500
    assert min(perceptron.errors_per_epoch) > 0  # not a single mistake-free pass
    assert perceptron.score(XOR_X, XOR_Y) <= 0.75


def test_two_hidden_units_can_represent_xor():
    """XOR = OR and not AND: two tanh units, one for each, and an output that subtracts them."""
    model = Sequential(
        [Dense(2, activation="tanh", input_shape=(2,)), Dense(1, activation="sigmoid")],
        dtype="float64",
    )
    k = 10.0
    model.set_weights(
        [
            np.array([[k, k], [k, k]]),  # both units see x0 + x1 ...
            np.array([-0.5 * k, -1.5 * k]),  # ... one fires above 0.5 (OR), one above 1.5 (AND)
            np.array([[k], [-k]]),
            np.array([-k]),
        ]
    )
    assert np.array_equal(model.predict(XOR_X)[:, 0] > 0.5, XOR_Y == 1)


def test_small_mlp_learns_xor():
    utils.set_random_seed(0)
    model = Sequential(
        [Dense(8, activation="tanh", input_shape=(2,)), Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=Adam(learning_rate=0.05), loss="binary_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(XOR_X, XOR_Y, epochs=300, batch_size=4, verbose=0)
    loss, accuracy = model.evaluate(XOR_X, XOR_Y, verbose=0)
    assert accuracy == 1.0
    assert loss < 0.1 < history.history["loss"][0]
    probabilities = model.predict(XOR_X)[:, 0]
    assert np.all((probabilities > 0.5) == (XOR_Y == 1))


def test_perceptron_input_errors():
    with pytest.raises(ValueError, match="a perceptron separates exactly two classes, y has 3"):
        Perceptron().fit(XOR_X[:3], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y must have shape \(4,\) to match x"):
        Perceptron().fit(XOR_X, np.array([0, 1]))
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        Perceptron().fit(np.array([[0.0, np.nan], [1.0, 1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        Perceptron(learning_rate=0)
    with pytest.raises(RuntimeError, match="call fit"):
        Perceptron().predict(XOR_X)
    fitted = Perceptron().fit(XOR_X, AND_Y)
    with pytest.raises(ValueError, match="x has 3 features, but the perceptron was fitted on 2"):
        fitted.predict(np.zeros((1, 3)))
