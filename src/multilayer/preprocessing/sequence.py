"""``keras.preprocessing.sequence.pad_sequences`` (Keras 2's spelling of
`multilayer.utils.pad_sequences`, which it is)."""

from multilayer.utils.sequence_utils import pad_sequences

__all__ = ["pad_sequences"]
