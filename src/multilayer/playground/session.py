"""A playground session: one small network on one 2-D dataset, trained an update at a time by
the real engine, and everything a page draws after each update.

With hidden layers, the network is a `multilayer.Sequential` of `Dense` layers trained with
``train_on_batch`` (binary cross-entropy and a sigmoid output for the classification
datasets, mean squared error and a linear output for the regression surface). With no hidden
layer and the ``"step"`` activation it is Rosenblatt's perceptron, `multilayer.Perceptron`,
trained with its own learning rule (``partial_fit``): it converges on separable data and
cycles for ever on XOR.

An update is one batch. Each epoch visits the training points in a new order drawn from a
generator seeded by the configuration's seed; `Session.as_python` writes the same loop as a
program, which reaches the same weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multilayer.playground.data import (
    DATASETS,
    EXTENT,
    Dataset,
    check_features,
    features,
    make_dataset,
)

__all__ = [
    "ACTIVATIONS",
    "MAX_HIDDEN_LAYERS",
    "MAX_UNITS",
    "OPTIMIZERS",
    "Frame",
    "PlaygroundConfig",
    "Session",
]

MAX_HIDDEN_LAYERS = 6
MAX_UNITS = 8
MAX_BATCH_SIZE = 100
#: Activations of the hidden layers; "step" is the perceptron's (no hidden layer only).
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "step")
#: Optimizer name -> its class name in multilayer.optimizers.
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:  # NaN fails this too
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PlaygroundConfig:
    """What the learner chose: the data, the input features and the network.

    ``hidden`` lists the neurons of each hidden layer (0 to 6 layers of 1 to 8 neurons).
    ``activation`` is the hidden layers' (``"step"`` needs ``hidden=()``: the perceptron).
    ``l1``/``l2`` penalise the kernels (Keras' ``L1L2`` regulariser).
    """

    dataset: str = "xor"
    noise: float = 0.0
    train_fraction: float = 0.5
    n_points: int = 500
    seed: int = 0
    features: tuple[str, ...] = ("x1", "x2")
    hidden: tuple[int, ...] = (4,)
    activation: str = "tanh"
    learning_rate: float = 0.1
    optimizer: str = "sgd"
    batch_size: int = 10
    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}: choose from {', '.join(DATASETS)}")
        _number(self.noise, "noise", 0, 0.5)
        _number(self.train_fraction, "train_fraction", 0.1, 0.9)
        _integer(self.n_points, "n_points", 20, 1000)
        _integer(self.seed, "seed", 0, 2**32 - 1)
        object.__setattr__(self, "features", check_features(self.features))
        hidden = tuple(self.hidden)
        if len(hidden) > MAX_HIDDEN_LAYERS:
            raise ValueError(
                f"at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(hidden)}: {list(hidden)}"
            )
        for units in hidden:
            _integer(units, "neurons in a hidden layer", 1, MAX_UNITS)
        object.__setattr__(self, "hidden", hidden)
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}: choose from {', '.join(ACTIVATIONS)}"
            )
        if self.activation == "step" and hidden:
            raise ValueError(
                "the step activation has no gradient to train hidden layers with: use it with "
                "no hidden layer (Rosenblatt's perceptron), or choose tanh, relu, sigmoid or linear"
            )
        if self.activation == "step" and self.dataset == "regression":
            raise ValueError("the perceptron classifies: choose a classification dataset")
        _number(self.learning_rate, "learning_rate", 1e-5, 10)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}: choose from {', '.join(OPTIMIZERS)}"
            )
        _integer(self.batch_size, "batch_size", 1, MAX_BATCH_SIZE)
        _number(self.l1, "l1", 0, 1)
        _number(self.l2, "l2", 0, 1)

    @property
    def perceptron(self) -> bool:
        """True for Rosenblatt's perceptron: no hidden layer, step activation."""
        return self.activation == "step"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PlaygroundConfig:
        """A configuration from JSON data, refusing unknown keys and wrong types."""
        if not isinstance(values, Mapping):
            raise ValueError(
                f"the configuration must be a JSON object, got {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown setting {unknown[0]!r}: known are {', '.join(sorted(known))}"
            )
        values = dict(values)
        for key in ("features", "hidden"):
            if key in values:
                if not isinstance(values[key], list | tuple):
                    raise ValueError(f"{key} must be a list, got {values[key]!r}")
                if len(values[key]) > 16:
                    raise ValueError(f"{key} is too long: {len(values[key])} items")
                values[key] = tuple(values[key])
        for key in ("dataset", "activation", "optimizer"):
            if key in values and not isinstance(values[key], str):
                raise ValueError(f"{key} must be a string, got {values[key]!r}")
        for name in values.get("features", ()):
            if not isinstance(name, str):
                raise ValueError(f"features must be names, got {name!r}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["features"] = list(self.features)
        values["hidden"] = list(self.hidden)
        return values


@dataclass
class Frame:
    """What the page draws after an update. Grids are (grid, grid) arrays over
    ``[-EXTENT, EXTENT]^2``, row 0 at the top (x2 = +EXTENT), column 0 at x1 = -EXTENT."""

    step: int
    epoch: float
    train_loss: float
    test_loss: float
    train_accuracy: float | None  # None for regression
    test_accuracy: float | None
    boundary: np.ndarray  # the network's output on the grid
    neurons: list[list[np.ndarray]]  # per layer (the input features first), per neuron
    weights: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (kernel, bias)


class Session:
    """One network on one dataset, trained one update (batch) at a time.

    Args:
        config: what to train (`PlaygroundConfig`).
        grid: the side of the grid the boundary and the neurons are computed on.
    """

    def __init__(self, config: PlaygroundConfig, grid: int = 50) -> None:
        self.config = config
        self.grid = _integer(grid, "grid", 2, 200)
        self.data: Dataset = make_dataset(
            config.dataset, config.n_points, config.noise, config.train_fraction, config.seed
        )
        self.x_train = features(self.data.x_train, config.features)
        self.x_test = features(self.data.x_test, config.features)
        self.y_train = self.data.y_train.astype(np.float32)
        self.y_test = self.data.y_test.astype(np.float32)
        axis = np.linspace(-EXTENT, EXTENT, self.grid)
        x1, x2 = np.meshgrid(axis, axis[::-1])
        self.grid_points = np.stack([x1.ravel(), x2.ravel()], axis=1)
        self.x_grid = features(self.grid_points, config.features)
        self._all_x = np.concatenate([self.x_grid, self.x_train, self.x_test])
        self.steps = 0
        self._rng = np.random.default_rng(config.seed)
        self._order = np.arange(0)
        self._position = 0
        self.perceptron = None
        self.model = None
        if config.perceptron:
            from multilayer.perceptron import Perceptron

            self.perceptron = Perceptron(learning_rate=config.learning_rate, shuffle=False)
        else:
            self.model = self._build_model()

    def _build_model(self):
        from multilayer import optimizers
        from multilayer.engine.random import set_random_seed
        from multilayer.layers import Dense
        from multilayer.models import Sequential
        from multilayer.regularizers import L1L2

        config = self.config
        set_random_seed(config.seed)
        regression = self.data.regression
        # A zero penalty is no penalty: only a regularised network gets a regulariser.
        regularizer = L1L2(config.l1, config.l2) if config.l1 or config.l2 else None
        layers = []
        width = len(config.features)
        for units in config.hidden:
            layers.append(
                Dense(
                    units,
                    activation=config.activation,
                    input_shape=(width,),
                    kernel_regularizer=regularizer,
                )
            )
            width = units
        layers.append(
            Dense(
                1,
                activation="linear" if regression else "sigmoid",
                input_shape=(width,),
                kernel_regularizer=regularizer,
            )
        )
        model = Sequential(layers)
        optimizer = getattr(optimizers, OPTIMIZERS[config.optimizer])(
            learning_rate=config.learning_rate
        )
        model.compile(optimizer=optimizer, loss="mse" if regression else "binary_crossentropy")
        model.build()  # the weights exist before the first update: the page draws them
        return model

    @property
    def epoch(self) -> float:
        """Passes over the training points so far (fractional within a pass)."""
        return self.steps * self.config.batch_size / len(self.x_train)

    def _next_batch(self) -> np.ndarray:
        if self._position >= len(self._order):
            self._order = self._rng.permutation(len(self.x_train))
            self._position = 0
        batch = self._order[self._position : self._position + self.config.batch_size]
        self._position += len(batch)
        return batch

    def step(self, updates: int = 1) -> None:
        """Train on ``updates`` batches."""
        for _ in range(_integer(updates, "updates", 1, 10_000)):
            batch = self._next_batch()
            x, y = self.x_train[batch], self.y_train[batch]
            if self.perceptron is not None:
                self.perceptron.partial_fit(x, y, classes=[0.0, 1.0])
            else:
                assert self.model is not None
                self.model.train_on_batch(x, y[:, None])
            self.steps += 1

    def _outputs(self) -> tuple[np.ndarray, list[list[np.ndarray]], list]:
        """The network's output on grid + train + test points, the grid part of every layer's
        output (features first), and the weights."""
        n = self.grid * self.grid
        shape = (self.grid, self.grid)
        x = self._all_x
        neurons = [[x[:n, j].reshape(shape).copy() for j in range(x.shape[1])]]
        weights: list[tuple[np.ndarray, np.ndarray]] = []
        if self.perceptron is not None:
            if not hasattr(self.perceptron, "weights"):  # before the first update: all zero
                z = np.zeros(len(x))
                kernel, bias = np.zeros(x.shape[1]), 0.0
            else:
                z = x @ self.perceptron.weights + self.perceptron.bias
                kernel, bias = self.perceptron.weights, self.perceptron.bias
            out = (z > 0).astype(np.float64)
            weights.append((np.array(kernel, dtype=np.float64)[:, None], np.array([bias])))
            neurons.append([out[:n].reshape(shape)])
            return out, neurons, weights
        assert self.model is not None
        for layer in self.model.layers:
            x = layer.forward(x, training=False)
            neurons.append([x[:n, j].reshape(shape).copy() for j in range(x.shape[1])])
            kernel, bias = layer.get_weights()
            weights.append((kernel, bias))
        return np.array(x[:, 0], dtype=np.float64), neurons, weights

    def frame(self) -> Frame:
        """The current state: losses, accuracies, boundary, neurons and weights."""
        out, neurons, weights = self._outputs()
        n = self.grid * self.grid
        n_train = len(self.x_train)
        train, test = out[n : n + n_train], out[n + n_train :]
        if self.data.regression:
            train_loss = float(np.mean((train - self.y_train) ** 2))
            test_loss = float(np.mean((test - self.y_test) ** 2))
            train_acc = test_acc = None
        else:
            train_acc = float(np.mean((train > 0.5) == (self.y_train > 0.5)))
            test_acc = float(np.mean((test > 0.5) == (self.y_test > 0.5)))
            if self.perceptron is not None:  # the perceptron's loss: its share of mistakes
                train_loss, test_loss = 1 - train_acc, 1 - test_acc
            else:
                train_loss = _cross_entropy(train, self.y_train)
                test_loss = _cross_entropy(test, self.y_test)
        return Frame(
            step=self.steps,
            epoch=self.epoch,
            train_loss=train_loss,
            test_loss=test_loss,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            boundary=out[:n].reshape(self.grid, self.grid),
            neurons=neurons,
            weights=weights,
        )

    def as_python(self) -> str:
        """A runnable multilayer program that trains this network on this dataset the same
        way, for the same number of updates, and prints its train and test accuracy."""
        from multilayer.playground.codegen import program

        return program(self.config, self.steps)


def _cross_entropy(p: np.ndarray, y: np.ndarray) -> float:
    """Binary cross-entropy, with Keras' clipping of probabilities to [1e-7, 1 - 1e-7]."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
