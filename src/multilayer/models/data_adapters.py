"""Data that arrives in batches: `PyDataset` (Keras' ``keras.utils.PyDataset``, formerly
``Sequence``) and Python generators, for data that does not fit in memory.

A batch is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` as in Keras, each part
an array, a list of arrays or a dict by input/output name. The trainer checks every batch as
it checks whole arrays (shapes, finite values, targets the loss accepts).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator

import numpy as np

RAN_OUT = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or "
    "generator can generate at least steps_per_epoch * epochs batches."
)


class PyDataset:
    """Base class for data loaded batch by batch (Keras 3's ``keras.utils.PyDataset``).

    Subclasses implement ``__len__`` (the number of batches of an epoch) and
    ``__getitem__(index)`` (batch ``index``: ``(x, y)``, ``(x, y, sample_weight)`` or ``x``),
    and may override ``on_epoch_begin`` / ``on_epoch_end`` (e.g. to reshuffle). Call
    ``super().__init__(**kwargs)`` from your ``__init__``.

    ``workers``, ``use_multiprocessing`` and ``max_queue_size`` are accepted for Keras
    compatibility and ignored: batches are loaded one after the other, in the training
    thread (multilayer trains on one core; loading in parallel would compete with it).
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    @property
    def workers(self) -> int:
        return getattr(self, "_workers", 1)

    @property
    def use_multiprocessing(self) -> bool:
        return getattr(self, "_use_multiprocessing", False)

    @property
    def max_queue_size(self) -> int:
        return getattr(self, "_max_queue_size", 10)

    def __getitem__(self, index: int):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    @property
    def num_batches(self) -> int | None:
        """The number of batches of an epoch (``len(self)``)."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch (reshuffle here)."""


def is_batched(x) -> bool:
    """Whether ``x`` is batched data: a `PyDataset` or a Python generator/iterator."""
    return isinstance(x, (PyDataset, types.GeneratorType, Iterator))


def unpack(batch) -> tuple:
    """``(x, y, sample_weight)`` of one batch (missing parts None), as Keras unpacks it."""
    if isinstance(batch, list) and batch and all(isinstance(b, np.ndarray) for b in batch):
        batch = tuple(batch)  # a list of arrays yielded as (x, y[, w]) is taken as a tuple
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) == 1:
        return batch[0], None, None
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch
    raise ValueError(
        f"a batch must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of {len(batch)}"
    )


class BatchSource:
    """The batches of `PyDataset` or generator ``data``, epoch after epoch.

    ``steps`` batches per epoch (None: all of a `PyDataset`, or a generator until it is
    exhausted). A `PyDataset` starts at batch 0 every epoch; a generator continues where the
    previous epoch stopped, as in Keras.
    """

    def __init__(self, data, steps: int | None, what: str = "x"):
        self.data = data
        self.steps = steps
        if isinstance(data, PyDataset):
            length = data.__len__()  # len() itself refuses a negative length vaguely
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise ValueError(f"len({what}) must be a non-negative int, got {length!r}")
            self.length: int | None = length
        else:
            self.length = None
        self._iterator = None if isinstance(data, PyDataset) else iter(data)

    @property
    def num_batches(self) -> int | None:
        if self.steps is not None:
            return self.steps if self.length is None else min(self.steps, self.length)
        return self.length

    def epoch(self):
        """The raw batches of one epoch (``on_epoch_begin``/``on_epoch_end`` around them)."""
        if isinstance(self.data, PyDataset):
            self.data.on_epoch_begin()
            count = self.num_batches or 0
            if self.steps is not None and self.length is not None and self.steps > self.length:
                warnings.warn(RAN_OUT, stacklevel=3)
            for index in range(count):
                yield self.data[index]
            self.data.on_epoch_end()
            return
        assert self._iterator is not None
        step = 0
        while self.steps is None or step < self.steps:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self.steps is not None:  # fewer batches than asked for
                    warnings.warn(RAN_OUT, stacklevel=3)
                self.exhausted = True
                return
            step += 1
            yield batch

    exhausted = False
