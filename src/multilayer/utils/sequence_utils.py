"""``pad_sequences``: variable-length sequences to one array, as ``keras.utils.pad_sequences``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["pad_sequences"]


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: DTypeLike = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad (or cut) each sequence to one length and stack them, as Keras does.

    Args:
        sequences: a list of sequences (lists or arrays; their items may themselves be
            arrays of one common shape).
        maxlen: the length of the result; the longest sequence's by default.
        dtype: dtype of the result (``object`` or a string dtype for strings).
        padding: ``"pre"`` (default) pads at the start, ``"post"`` at the end.
        truncating: ``"pre"`` (default) drops items from the start of longer sequences,
            ``"post"`` from the end.
        value: the padding value.

    Returns:
        An array of shape ``(len(sequences), maxlen, *item_shape)``.

    Raises:
        ValueError: ``sequences`` or one of them is not a sequence, items differ in shape,
            ``padding``/``truncating`` is not ``"pre"`` or ``"post"``, ``maxlen`` is not a
            non-negative integer, a string ``value`` with a numeric ``dtype``, or no
            sequences and no ``maxlen``.
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood: expected "pre" or "post"')
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood: expected "pre" or "post"')
    if not hasattr(sequences, "__len__") or isinstance(sequences, (str, bytes)):
        raise ValueError("pad_sequences: `sequences` must be a list of sequences")
    lengths = []
    item_shape: tuple[int, ...] | None = None
    for index, sequence in enumerate(sequences):
        try:
            lengths.append(len(sequence))
        except TypeError:
            raise ValueError(
                "pad_sequences: `sequences` must be a list of iterables, found a "
                f"{type(sequence).__name__} at position {index}: {sequence!r}"
            ) from None
        if item_shape is None and len(sequence):
            item_shape = np.asarray(sequence).shape[1:]
    item_shape = item_shape or ()
    if maxlen is None:
        if not lengths:
            raise ValueError("pad_sequences: no sequences and no maxlen: the length is unknown")
        maxlen = max(lengths)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be a non-negative integer, got {maxlen!r}")
    maxlen = int(maxlen)
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype), np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text:
        raise ValueError(
            f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
            "You should set `dtype=object` for variable length strings."
        )
    result = np.full((len(lengths), maxlen, *item_shape), value, dtype=dtype)
    if maxlen == 0:
        return result
    for index, sequence in enumerate(sequences):
        if not len(sequence):
            continue
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        kept = np.asarray(kept, dtype=dtype)
        if kept.shape[1:] != item_shape:
            raise ValueError(
                f"Shape of sample {kept.shape[1:]} of sequence at position {index} is "
                f"different from expected shape {item_shape}"
            )
        if padding == "post":
            result[index, : len(kept)] = kept
        else:
            result[index, -len(kept) :] = kept
    return result
