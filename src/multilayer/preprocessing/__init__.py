"""Keras 2's ``keras.preprocessing``, kept for old programs (``preprocessing.sequence``)."""

from multilayer.preprocessing import sequence

__all__ = ["sequence"]
