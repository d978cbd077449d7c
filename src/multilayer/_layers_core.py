"""Keras 2's ``keras.layers.core``, kept for old programs: ``from keras.layers.core import
Dense, Dropout, Activation, Flatten``. Registered as ``multilayer.layers.core`` by
`multilayer.layers`; the classes are the current layers themselves."""

from multilayer.engine.layers import Activation, Dense, Dropout, Flatten

__all__ = ["Activation", "Dense", "Dropout", "Flatten"]
