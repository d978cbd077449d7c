"""The MLP playground's library side: 2-D datasets, input features, and a session training a
small network (or Rosenblatt's perceptron) one update at a time with the real engine.

The browser page (``mlp playground``) lives in `multilayer.app.playground`; this package needs
only NumPy.
"""

from multilayer.playground.data import DATASETS, EXTENT, FEATURES, Dataset, features, make_dataset
from multilayer.playground.session import (
    ACTIVATIONS,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
    OPTIMIZERS,
    Frame,
    PlaygroundConfig,
    Session,
)

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "EXTENT",
    "FEATURES",
    "MAX_HIDDEN_LAYERS",
    "MAX_UNITS",
    "OPTIMIZERS",
    "Dataset",
    "Frame",
    "PlaygroundConfig",
    "Session",
    "features",
    "make_dataset",
]
