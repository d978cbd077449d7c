"""The playground's 2-D datasets and input features.

Every dataset lives on the square ``[-6, 6] x [-6, 6]`` (the points themselves within
``[-5, 5]`` before noise), as in TensorFlow Playground, so that its pictures and its features
(``sin x1`` has a period of about 6.3) mean the same thing. Classification labels are 0 and 1;
the regression surface's targets lie in ``[-1, 1]``. Everything is drawn from one seeded
`numpy.random.Generator`: the same arguments give the same points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DATASETS",
    "EXTENT",
    "FEATURES",
    "REGRESSION_DATASETS",
    "Dataset",
    "features",
    "make_dataset",
]

#: Half the side of the square shown (and the grid's extent): x1, x2 in [-EXTENT, EXTENT].
EXTENT = 6.0
MAX_POINTS = 2000


def _separable(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Uniform points, labelled by the side of the line x2 = 0.5 x1 + 0.5, with a margin of 0.5
    # kept clear: without noise the classes are linearly separable.
    points = np.empty((0, 2))
    while len(points) < n:
        batch = rng.uniform(-5, 5, size=(2 * n, 2))
        distance = (batch[:, 1] - 0.5 * batch[:, 0] - 0.5) / np.sqrt(1.25)
        points = np.concatenate([points, batch[np.abs(distance) > 0.5]])
    points = points[:n]
    labels = (points[:, 1] - 0.5 * points[:, 0] - 0.5 > 0).astype(np.float64)
    return points + rng.normal(0, 1.5 * noise, size=points.shape), labels


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    points = rng.uniform(-5, 5, size=(n, 2))
    points += np.where(points > 0, 0.3, -0.3)  # keep a gap along the axes
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.float64)
    return points + rng.uniform(-5, 5, size=points.shape) * noise, labels


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(np.float64)  # 1: the inner disc
    radius = np.where(labels == 1, rng.uniform(0, 2.5, n), rng.uniform(3.5, 5, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points + rng.uniform(-5, 5, size=points.shape) * noise, labels


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(np.float64)
    t = np.repeat(np.arange((n + 1) // 2), 2)[:n] / ((n + 1) // 2)
    radius = 5 * t
    angle = 1.75 * 2 * np.pi * t + np.pi * labels
    points = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return points + rng.uniform(-1, 1, size=points.shape) * noise * 2, labels


def _blobs(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(n) % 2).astype(np.float64)
    centres = np.where(labels[:, None] == 1, 2.0, -2.0)
    spread = 0.7 + 2.3 * noise  # standard deviation: the blobs overlap as the noise grows
    return centres + rng.normal(0, spread, size=(n, 2)), labels


def surface(points: np.ndarray) -> np.ndarray:
    """The regression surface: a bump at (2, 2) minus a bump at (-2, -2), in [-1, 1]."""
    x1, x2 = points[:, 0], points[:, 1]
    return np.exp(-((x1 - 2) ** 2 + (x2 - 2) ** 2) / 8) - np.exp(
        -((x1 + 2) ** 2 + (x2 + 2) ** 2) / 8
    )


def _regression(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    points = rng.uniform(-5, 5, size=(n, 2))
    return points, surface(points) + rng.normal(0, 0.5 * noise, size=n)


_MAKERS: dict[str, Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "separable": _separable,
    "xor": _xor,
    "circles": _circles,
    "spirals": _spirals,
    "blobs": _blobs,
    "regression": _regression,
}
#: The dataset names, in the order the page shows them.
DATASETS: tuple[str, ...] = tuple(_MAKERS)
REGRESSION_DATASETS = frozenset({"regression"})

#: Input feature name -> function of (x1, x2).
_FEATURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1^2": lambda x1, x2: x1 * x1,
    "x2^2": lambda x1, x2: x2 * x2,
    "x1*x2": lambda x1, x2: x1 * x2,
    "sin(x1)": lambda x1, x2: np.sin(x1),
    "sin(x2)": lambda x1, x2: np.sin(x2),
}
FEATURES: tuple[str, ...] = tuple(_FEATURES)


def check_features(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, checked: known, not repeated, at least one."""
    names = tuple(names)
    if not names:
        raise ValueError("choose at least one input feature")
    for name in names:
        if name not in _FEATURES:
            raise ValueError(f"unknown feature {name!r}: choose from {', '.join(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a feature is listed twice: {list(names)}")
    return names


def features(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The input features ``names`` of ``points`` (n, 2): an array (n, len(names)), float32."""
    names = check_features(names)
    points = np.asarray(points, dtype=np.float64)
    x1, x2 = points[:, 0], points[:, 1]
    return np.stack([_FEATURES[name](x1, x2) for name in names], axis=1).astype(np.float32)


@dataclass(frozen=True)
class Dataset:
    """Points (n, 2) and targets (n,) split into a training and a test part."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def regression(self) -> bool:
        return self.name in REGRESSION_DATASETS


def make_dataset(
    name: str,
    n_points: int = 500,
    noise: float = 0.0,
    train_fraction: float = 0.5,
    seed: int = 0,
) -> Dataset:
    """``n_points`` points of dataset ``name`` (one of `DATASETS`), shuffled and split.

    Args:
        noise: 0 (none) to 0.5 (much): how far points stray (classification) or how noisy the
            targets are (regression).
        train_fraction: share of the points used for training (0.1 to 0.9); the rest test.
        seed: seeds the points, their noise and the split.
    """
    if name not in _MAKERS:
        raise ValueError(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}")
    if isinstance(n_points, bool) or not isinstance(n_points, int | np.integer):
        raise ValueError(f"n_points must be an integer, got {n_points!r}")
    if not 10 <= n_points <= MAX_POINTS:
        raise ValueError(f"n_points must be between 10 and {MAX_POINTS}, got {n_points}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise must be between 0 and 0.5, got {noise!r}")
    if not 0.1 <= train_fraction <= 0.9:
        raise ValueError(f"train_fraction must be between 0.1 and 0.9, got {train_fraction!r}")
    rng = np.random.default_rng(seed)
    points, targets = _MAKERS[name](int(n_points), float(noise), rng)
    order = rng.permutation(len(points))
    points, targets = points[order], targets[order]
    n_train = int(round(train_fraction * len(points)))
    return Dataset(
        name,
        points[:n_train],
        targets[:n_train],
        points[n_train:],
        targets[n_train:],
    )
