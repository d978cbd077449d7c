"""The playground's library side: datasets, features, the session (MLP and perceptron), and
the "as Python" program."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multilayer
from multilayer.playground import (
    DATASETS,
    FEATURES,
    PlaygroundConfig,
    Session,
    features,
    make_dataset,
)

ALL_FEATURES = tuple(FEATURES)


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_seeded_split_and_in_the_square(name):
    data = make_dataset(name, n_points=200, noise=0.1, train_fraction=0.7, seed=3)
    again = make_dataset(name, n_points=200, noise=0.1, train_fraction=0.7, seed=3)
    other = make_dataset(name, n_points=200, noise=0.1, train_fraction=0.7, seed=4)
    assert data.x_train.shape == (140, 2) and data.x_test.shape == (60, 2)
    assert data.y_train.shape == (140,) and data.y_test.shape == (60,)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.x_train, other.x_train)
    assert np.abs(np.concatenate([data.x_train, data.x_test])).max() < 8
    if name == "regression":
        assert data.regression
        assert np.abs(data.y_train).max() <= 1.5
    else:
        labels = np.concatenate([data.y_train, data.y_test])
        assert set(np.unique(labels)) == {0.0, 1.0}
        assert 0.3 < labels.mean() < 0.7


def test_labels_follow_the_datasets_rules_without_noise():
    xor = make_dataset("xor", 300, noise=0.0, seed=1)
    np.testing.assert_array_equal(xor.y_train, xor.x_train[:, 0] * xor.x_train[:, 1] > 0)
    circles = make_dataset("circles", 300, noise=0.0, seed=1)
    inner = np.hypot(circles.x_train[:, 0], circles.x_train[:, 1]) <= 2.5
    np.testing.assert_array_equal(circles.y_train, inner)
    line = make_dataset("separable", 300, noise=0.0, seed=1)
    x1, x2 = line.x_train[:, 0], line.x_train[:, 1]
    np.testing.assert_array_equal(line.y_train, x2 - 0.5 * x1 - 0.5 > 0)


def test_noise_moves_the_points():
    clean = make_dataset("xor", 200, noise=0.0, seed=5)
    noisy = make_dataset("xor", 200, noise=0.3, seed=5)
    np.testing.assert_array_equal(clean.y_train, noisy.y_train)
    assert not np.allclose(clean.x_train, noisy.x_train)


def test_features_are_the_named_functions():
    points = np.array([[1.0, 2.0], [-3.0, 0.5]])
    x = features(points, ALL_FEATURES)
    x1, x2 = points[:, 0], points[:, 1]
    expected = np.stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(x1), np.sin(x2)], axis=1)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset": "moons"}, "unknown dataset 'moons': choose from separable, xor, circles"),
        ({"noise": 0.9}, "noise must be between 0 and 0.5, got 0.9"),
        ({"noise": float("nan")}, "noise must be between 0 and 0.5, got nan"),
        ({"features": ()}, "choose at least one input feature"),
        ({"features": ("x3",)}, "unknown feature 'x3': choose from x1, x2, x1^2"),
        ({"features": ("x1", "x1")}, "a feature is listed twice: ['x1', 'x1']"),
        ({"hidden": (4,) * 7}, "at most 6 hidden layers, got 7"),
        ({"hidden": (9,)}, "neurons in a hidden layer must be between 1 and 8, got 9"),
        ({"hidden": (0,)}, "neurons in a hidden layer must be between 1 and 8, got 0"),
        ({"hidden": (2.5,)}, "neurons in a hidden layer must be an integer, got 2.5"),
        ({"activation": "swish"}, "unknown activation 'swish': choose from tanh, relu"),
        ({"activation": "step"}, "the step activation has no gradient to train hidden layers"),
        (
            {"activation": "step", "hidden": (), "dataset": "regression"},
            "the perceptron classifies: choose a classification dataset",
        ),
        ({"learning_rate": 0}, "learning_rate must be between 1e-05 and 10, got 0"),
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs': choose from sgd, adam"),
        ({"batch_size": 0}, "batch_size must be between 1 and 100, got 0"),
        ({"batch_size": True}, "batch_size must be an integer, got True"),
        ({"l2": -1}, "l2 must be between 0 and 1, got -1"),
        ({"n_points": 5000}, "n_points must be between 20 and 1000, got 5000"),
    ],
)
def test_bad_configurations_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError) as error:
        PlaygroundConfig(**kwargs)
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"depth": 3}, "unknown setting 'depth'"),
        ({"hidden": 4}, "hidden must be a list, got 4"),
        ({"features": "x1"}, "features must be a list, got 'x1'"),
        ({"features": [1]}, "features must be names, got 1"),
        ({"dataset": 3}, "dataset must be a string, got 3"),
        ({"hidden": list(range(1000))}, "hidden is too long: 1000 items"),
    ],
)
def test_configurations_from_json_are_checked(values, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        PlaygroundConfig.from_dict(values)
    with pytest.raises(ValueError, match="must be a JSON object"):
        PlaygroundConfig.from_dict([1, 2])  # type: ignore[arg-type]


def test_config_round_trips_through_json():
    config = PlaygroundConfig(dataset="spirals", hidden=(8, 8), features=("x1", "sin(x2)"))
    assert PlaygroundConfig.from_dict(config.to_dict()) == config


def test_frame_shapes_neurons_and_weights():
    config = PlaygroundConfig(hidden=(3, 2), features=("x1", "x2", "x1*x2"))
    session = Session(config, grid=20)
    session.step(5)
    frame = session.frame()
    assert frame.step == 5 and frame.epoch == pytest.approx(5 * 10 / 250)
    assert frame.boundary.shape == (20, 20)
    assert [len(layer) for layer in frame.neurons] == [3, 3, 2, 1]
    assert all(m.shape == (20, 20) for layer in frame.neurons for m in layer)
    assert [(k.shape, b.shape) for k, b in frame.weights] == [
        ((3, 3), (3,)),
        ((3, 2), (2,)),
        ((2, 1), (1,)),
    ]
    # The first "layer" is the input features: row 0 is the top of the plane (x2 = +6).
    np.testing.assert_allclose(frame.neurons[0][0][0], np.linspace(-6, 6, 20), rtol=1e-6)
    np.testing.assert_allclose(frame.neurons[0][1][:, 0], np.linspace(6, -6, 20), rtol=1e-6)
    # The boundary is the model's own prediction on the grid.
    grid_x = features(session.grid_points, config.features)
    predicted = session.model.predict(grid_x, verbose=0)[:, 0].reshape(20, 20)
    np.testing.assert_allclose(frame.boundary, predicted, rtol=1e-5, atol=1e-6)
    # And the losses are the model's unregularised binary cross-entropy.
    loss = session.model.evaluate(session.x_test, session.y_test[:, None], verbose=0)
    assert frame.test_loss == pytest.approx(float(np.ravel(loss)[0]), rel=1e-4)


def test_training_lowers_the_loss_and_regression_reports_mse():
    session = Session(
        PlaygroundConfig(dataset="regression", hidden=(6, 6), optimizer="adam", learning_rate=0.01)
    )
    before = session.frame()
    assert before.train_accuracy is None
    session.step(1500)
    after = session.frame()
    assert after.train_loss < before.train_loss / 3
    assert after.test_loss < 0.02


def test_the_perceptron_converges_on_separable_data():
    session = Session(PlaygroundConfig(dataset="separable", hidden=(), activation="step"))
    assert session.model is None and isinstance(session.perceptron, multilayer.Perceptron)
    for _ in range(200):
        session.step(25)  # an epoch
        if session.frame().train_accuracy == 1.0:
            break
    frame = session.frame()
    assert frame.train_accuracy == 1.0 and frame.train_loss == 0.0
    assert frame.test_accuracy > 0.95
    assert set(np.unique(frame.boundary)) <= {0.0, 1.0}
    weights = frame.weights[0][0][:, 0]
    np.testing.assert_array_equal(weights, session.perceptron.weights)


def test_the_perceptron_never_solves_xor():
    session = Session(PlaygroundConfig(dataset="xor", hidden=(), activation="step"))
    accuracies, weights = [], []
    for _ in range(400):  # 400 epochs of 25 updates of 10 points
        session.step(25)
        accuracies.append(session.frame().train_accuracy)
        weights.append(session.perceptron.weights.copy())
    assert max(accuracies) < 1.0
    assert max(accuracies) < 0.8  # no line gets XOR much better than half right
    # It keeps cycling: every epoch still makes mistakes, so the weights never settle.
    assert all(
        sum(session.perceptron.errors_per_epoch[-25 * k - 25 :][:25]) > 0 for k in range(100)
    )
    assert all(
        not np.array_equal(a, b) for a, b in zip(weights[-100:-1], weights[-99:], strict=True)
    )


def test_one_hidden_layer_of_four_solves_xor():
    session = Session(PlaygroundConfig(dataset="xor", hidden=(4,)))
    for _ in range(40):
        session.step(250)
        if session.frame().test_accuracy >= 0.95:
            break
    assert session.frame().test_accuracy >= 0.95, session.steps


def test_two_hidden_layers_of_eight_solve_the_spirals():
    config = PlaygroundConfig(
        dataset="spirals",
        hidden=(8, 8),
        features=ALL_FEATURES,
        optimizer="adam",
        learning_rate=0.03,
    )
    session = Session(config)
    for _ in range(30):
        session.step(200)
        if session.frame().test_accuracy >= 0.9:
            break
    assert session.frame().test_accuracy >= 0.9, session.steps


def _accuracies(output: str) -> tuple[float, float]:
    words = output.split()
    return float(words[2].rstrip(",")), float(words[5])


@pytest.mark.parametrize(
    "config, updates",
    [
        (PlaygroundConfig(dataset="xor", hidden=(4,), features=("x1", "x2", "x1*x2")), 700),
        (
            PlaygroundConfig(
                dataset="circles", hidden=(), activation="step", features=("x1^2", "x2^2")
            ),
            120,
        ),
        (PlaygroundConfig(dataset="regression", hidden=(3,), optimizer="adam", l2=0.001), 300),
    ],
)
def test_as_python_runs_and_reaches_the_same_result(config, updates, tmp_path):
    session = Session(config)
    session.step(updates)
    frame = session.frame()
    source = session.as_python()
    script = tmp_path / "playground_program.py"
    script.write_text(source)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    if config.dataset == "regression":
        assert result.stdout.split() == [
            "train",
            "mse",
            f"{frame.train_loss:.4f},",
            "test",
            "mse",
            f"{frame.test_loss:.4f}",
        ]
    else:
        assert _accuracies(result.stdout) == (
            round(frame.train_accuracy, 4),
            round(frame.test_accuracy, 4),
        )
        assert frame.train_accuracy > 0.9


def test_partial_fit_is_one_pass_of_the_rule():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 0, 0, 1])
    stepped = multilayer.Perceptron(shuffle=False)
    for _ in range(20):
        stepped.partial_fit(x, y, classes=[0, 1])
        if stepped.converged:
            break
    fitted = multilayer.Perceptron(shuffle=False, max_epochs=20).fit(x, y)
    np.testing.assert_array_equal(stepped.weights, fitted.weights)
    assert stepped.bias == fitted.bias
    assert stepped.errors_per_epoch == fitted.errors_per_epoch
    with pytest.raises(ValueError, match=r"^the first partial_fit call needs classes"):
        multilayer.Perceptron().partial_fit(x, y)
    with pytest.raises(ValueError, match=r"^y holds 2, not one of the classes \[0 1\]"):
        stepped.partial_fit(x, [0, 1, 2, 0])


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.sampled_from([*FEATURES, "xor", "spirals", "tanh", "step", "adam", ""])
)
_values = st.recursive(_scalars, lambda children: st.lists(children, max_size=4), max_leaves=8)
_keys = st.sampled_from([*PlaygroundConfig().to_dict(), "other"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_json_configuration_is_valid_or_a_value_error(values):
    try:
        config = PlaygroundConfig.from_dict(values)
    except ValueError:
        return
    assert PlaygroundConfig.from_dict(config.to_dict()) == config
