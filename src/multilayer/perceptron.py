"""Rosenblatt's perceptron (1958): the single neuron that multi-layer perceptrons grew from.

A perceptron takes inputs ``x``, weights them, adds a bias, and fires if the sum is positive:

    z = w . x + b            (the linear combination)
    y = step(z) = 1 if z > 0 else 0        (the activation)

It learns with the perceptron rule: for each misclassified sample, nudge the weights
towards it, ``w += lr * (target - y) * x`` and ``b += lr * (target - y)``. If the two classes
can be separated by a straight line (a hyperplane), the rule finds one in a finite number of
steps (Novikoff, 1962). If they cannot, as for XOR, it never settles: that limit is why
hidden layers, and so multi-layer perceptrons, were needed.
"""

from __future__ import annotations

import numpy as np

from multilayer.engine.registry import positive_int


class Perceptron:
    """A single-layer binary classifier trained with the perceptron learning rule.

    Args:
        learning_rate: step size of each update (for a perceptron started at zero, any
            positive value finds the same separating direction; it only scales the weights).
        max_epochs: maximum number of passes over the data.
        shuffle: visit the samples in a new random order each epoch.
        seed: seed of the shuffling.

    After `fit`: ``weights`` (d,), ``bias``, ``errors_per_epoch`` (mistakes in each pass),
    ``converged`` (True if a pass made no mistake), ``classes`` (the two labels).
    """

    # set by `fit` (``weights`` is absent until then, see `_check_x`)
    weights: np.ndarray
    bias: float
    errors_per_epoch: list[int]
    converged: bool
    classes: np.ndarray

    def __init__(
        self,
        learning_rate: float = 1.0,
        max_epochs: int = 100,
        shuffle: bool = True,
        seed: int | None = None,
    ) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.max_epochs = positive_int(max_epochs, "max_epochs")
        self.shuffle = shuffle
        self.seed = seed

    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(
                f"x must be a non-empty 2-D array of shape (samples, features), got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains NaN or infinite values")
        if hasattr(self, "weights") and x.shape[1] != len(self.weights):
            raise ValueError(
                f"x has {x.shape[1]} features, but the perceptron was fitted on {len(self.weights)}"
            )
        return x

    def fit(self, x, y) -> Perceptron:
        """Learn weights and bias from ``x`` (n, d) and two-class labels ``y`` (n,)."""
        if hasattr(self, "weights"):
            del self.weights
        x = self._check_x(x)
        y = np.asarray(y)
        if y.shape != (len(x),):
            raise ValueError(f"y must have shape ({len(x)},) to match x, got {y.shape}")
        self.classes = np.unique(y)
        if len(self.classes) != 2:
            raise ValueError(
                f"a perceptron separates exactly two classes, y has {len(self.classes)}: {self.classes}"
            )
        targets = (y == self.classes[1]).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        self.weights = np.zeros(x.shape[1])
        self.bias = 0.0
        self.errors_per_epoch = []
        self.converged = False
        for _ in range(self.max_epochs):
            order = rng.permutation(len(x)) if self.shuffle else range(len(x))
            errors = self._epoch(x, targets, order)
            self.errors_per_epoch.append(errors)
            if errors == 0:
                self.converged = True
                break
        return self

    def partial_fit(self, x, y, classes=None) -> Perceptron:
        """One pass of the perceptron rule over ``x``, ``y`` in the order given, continuing
        from the current weights: the step by step form of `fit` (the playground uses it).

        The first call starts from zero weights and needs ``classes``, the two labels (a
        batch may hold only one of them). Appends the pass's mistakes to ``errors_per_epoch``;
        ``converged`` tells whether that pass made none.
        """
        x = self._check_x(x)
        if not hasattr(self, "weights"):
            if classes is None:
                raise ValueError("the first partial_fit call needs classes=[label0, label1]")
            self.classes = np.unique(np.asarray(classes))
            if len(self.classes) != 2:
                raise ValueError(
                    f"a perceptron separates exactly two classes, got {len(self.classes)}: "
                    f"{self.classes}"
                )
            self.weights = np.zeros(x.shape[1])
            self.bias = 0.0
            self.errors_per_epoch = []
        y = np.asarray(y)
        if y.shape != (len(x),):
            raise ValueError(f"y must have shape ({len(x)},) to match x, got {y.shape}")
        unknown = ~np.isin(y, self.classes)
        if unknown.any():
            raise ValueError(
                f"y holds {y[unknown][0].item()!r}, not one of the classes {self.classes}"
            )
        targets = (y == self.classes[1]).astype(np.float64)
        errors = self._epoch(x, targets, range(len(x)))
        self.errors_per_epoch.append(errors)
        self.converged = errors == 0
        return self

    def _epoch(self, x: np.ndarray, targets: np.ndarray, order) -> int:
        """One pass of the rule over the samples ``order``; returns the number of mistakes."""
        errors = 0
        for i in order:
            update = self.learning_rate * (targets[i] - self._fire(x[i]))
            if update:
                self.weights += update * x[i]
                self.bias += update
                errors += 1
        return errors

    def _fire(self, sample: np.ndarray) -> float:
        return 1.0 if sample @ self.weights + self.bias > 0 else 0.0

    def net_input(self, x) -> np.ndarray:
        """The linear combination ``x @ weights + bias`` for each sample: shape (n,)."""
        if not hasattr(self, "weights"):
            raise RuntimeError("call fit() before using the perceptron")
        return self._check_x(x) @ self.weights + self.bias

    def predict(self, x) -> np.ndarray:
        """The predicted label (one of ``classes``) for each sample."""
        return np.where(self.net_input(x) > 0, self.classes[1], self.classes[0])

    def score(self, x, y) -> float:
        """Fraction of samples classified correctly."""
        return float(np.mean(self.predict(x) == np.asarray(y)))
