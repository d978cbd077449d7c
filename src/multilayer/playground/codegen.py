"""`program`: the playground's current network and dataset as a runnable multilayer program.

The program repeats the session's training loop exactly (same dataset, features, seed, batch
order and number of updates), so it ends with the same weights and prints the accuracies (or,
for the regression surface, the mean squared errors) the page shows.
"""

from __future__ import annotations

from multilayer.playground.session import OPTIMIZERS, PlaygroundConfig

__all__ = ["program"]

#: Feature name -> its expression in the generated program (the same operations as
#: `multilayer.playground.data.features`, so the values are bit for bit the same).
_EXPRESSIONS = {
    "x1": "x1",
    "x2": "x2",
    "x1^2": "x1 * x1",
    "x2^2": "x2 * x2",
    "x1*x2": "x1 * x2",
    "sin(x1)": "np.sin(x1)",
    "sin(x2)": "np.sin(x2)",
}


def _data_block(config: PlaygroundConfig) -> str:
    columns = ", ".join(_EXPRESSIONS[name] for name in config.features)
    return f'''data = make_dataset(
    {config.dataset!r}, n_points={config.n_points}, noise={config.noise!r},
    train_fraction={config.train_fraction!r}, seed={config.seed},
)


def inputs(points):
    """The input features {", ".join(config.features)} of points (n, 2)."""
    x1, x2 = points[:, 0], points[:, 1]
    return np.stack([{columns}], axis=1).astype("float32")


x_train, y_train = inputs(data.x_train), data.y_train.astype("float32")
x_test, y_test = inputs(data.x_test), data.y_test.astype("float32")
'''


def _loop(config: PlaygroundConfig, updates: int, train_call: str) -> str:
    return f"""# One update is one batch; each epoch visits the training points in a new order.
rng = np.random.default_rng({config.seed})
updates, batch_size = {updates}, {config.batch_size}
order, position = np.arange(0), 0
for _ in range(updates):
    if position >= len(order):
        order, position = rng.permutation(len(x_train)), 0
    batch = order[position : position + batch_size]
    position += len(batch)
    {train_call}
"""


def program(config: PlaygroundConfig, updates: int) -> str:
    """The source of a program training ``config``'s network for ``updates`` batches."""
    if config.perceptron:
        return f'''"""Rosenblatt's perceptron on the {config.dataset!r} dataset, as in the playground."""

import numpy as np

import multilayer
from multilayer.playground import make_dataset

{_data_block(config)}
perceptron = multilayer.Perceptron(learning_rate={config.learning_rate!r}, shuffle=False)

{_loop(config, updates, "perceptron.partial_fit(x_train[batch], y_train[batch], classes=[0.0, 1.0])")}
if updates:
    train_accuracy = perceptron.score(x_train, y_train)
    test_accuracy = perceptron.score(x_test, y_test)
else:  # untrained: the zero weights say 0 everywhere
    train_accuracy = float(np.mean(y_train == 0))
    test_accuracy = float(np.mean(y_test == 0))
print(f"train accuracy {{train_accuracy:.4f}}, test accuracy {{test_accuracy:.4f}}")
'''
    regression = config.dataset == "regression"
    regularized = bool(config.l1 or config.l2)
    regularizer = (
        f", kernel_regularizer=L1L2(l1={config.l1!r}, l2={config.l2!r})" if regularized else ""
    )
    lines = []
    width = len(config.features)
    for units in config.hidden:
        lines.append(
            f"        Dense({units}, activation={config.activation!r}, input_shape=({width},)"
            f"{regularizer}),"
        )
        width = units
    output = "linear" if regression else "sigmoid"
    lines.append(f"        Dense(1, activation={output!r}, input_shape=({width},){regularizer}),")
    layers = "\n".join(lines)
    loss = "mse" if regression else "binary_crossentropy"
    if regression:
        result = """train_error = float(np.mean((model.predict(x_train, verbose=0)[:, 0] - y_train) ** 2))
test_error = float(np.mean((model.predict(x_test, verbose=0)[:, 0] - y_test) ** 2))
print(f"train mse {train_error:.4f}, test mse {test_error:.4f}")
"""
    else:
        result = """train_accuracy = np.mean((model.predict(x_train, verbose=0)[:, 0] > 0.5) == (y_train > 0.5))
test_accuracy = np.mean((model.predict(x_test, verbose=0)[:, 0] > 0.5) == (y_test > 0.5))
print(f"train accuracy {train_accuracy:.4f}, test accuracy {test_accuracy:.4f}")
"""
    hidden = " x ".join(str(units) for units in config.hidden) or "no"
    return f'''"""A multi-layer perceptron ({hidden} hidden neurons, {config.activation}) on the
{config.dataset!r} dataset, as in the playground."""

import numpy as np

import multilayer as keras
from multilayer.layers import Dense
from multilayer.playground import make_dataset
{"from multilayer.regularizers import L1L2" + chr(10) if regularized else ""}
{_data_block(config)}
keras.utils.set_random_seed({config.seed})
model = keras.Sequential(
    [
{layers}
    ]
)
model.compile(
    optimizer=keras.optimizers.{OPTIMIZERS[config.optimizer]}(learning_rate={config.learning_rate!r}),
    loss={loss!r},
)

{_loop(config, updates, "model.train_on_batch(x_train[batch], y_train[batch, None])")}
{result}'''
