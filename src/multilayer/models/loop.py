"""The training loop's state: where `fit` is, as one explicit object.

`fit` keeps its position in a `TrainingState` (``model.loop``) and updates it after every
batch; a checkpoint stores a copy (`multilayer.models.checkpoint`), and restoring that copy
makes `fit` continue at the same batch with the same sample order and running sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainingState:
    """Where `fit` is: ``step`` batches of epoch ``epoch`` are done (0-based epoch).

    ``order`` is that epoch's sample order when ``step > 0`` (None at an epoch boundary);
    ``loss_sum``/``seen`` and ``metrics`` (each running mean's ``get_state()``, a JSON-able
    dict: the per-output losses of a multi-output model, then the metrics; checkpoints
    written before read ``[total, count]`` pairs) are the partial epoch's running sums. ``history``/``history_epochs`` are the epochs finished so far;
    ``batch_size``, ``n_samples`` and ``shuffle`` are the fit arguments a resumed run must
    repeat. ``segments`` are the training seconds of each segment of the run (the first
    ``fit``, then one per resume), the last one up to this checkpoint.
    """

    epoch: int
    step: int = 0
    order: np.ndarray | None = None
    loss_sum: float = 0.0
    seen: int = 0
    metrics: list = field(default_factory=list)
    history: dict = field(default_factory=dict)
    history_epochs: list = field(default_factory=list)
    batch_size: int = 32
    n_samples: int = 0
    shuffle: bool = True
    segments: list[float] = field(default_factory=list)
    #: batches of ``order`` used by the epochs before this one (``fit(steps_per_epoch=...)``
    #: makes a shuffled pass span epochs); 0 otherwise
    pass_step: int = 0
