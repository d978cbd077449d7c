"""The one trainer of every model: compile, fit, evaluate, predict and the ``*_on_batch`` calls.

`Model` (and so `Sequential`) inherits it; the trainer only needs the model's graph hooks
(`_run_forward`, `_run_backward`, `_fusable`) and its flat parameter buffer. The loop is
plain: shuffle the indices, gather a batch into reused buffers, run the graph forward, take
each output's loss gradient, run the graph backward, and let the optimizer update the one
flat parameter vector. Its position is one explicit object, ``model.loop`` (a
`TrainingState`), which callbacks read and `BackupAndRestore` saves and restores
(`multilayer.models.backup`).

Multi-output models take ``loss``, ``metrics`` and ``loss_weights`` as lists (in output
order) or dicts (by output name). The loss minimised is ``sum(weight_k * loss_k)`` plus the
regularisation; the logs hold it as ``loss``, each output's own as ``{output}_loss`` and the
metrics as ``{output}_{metric}`` (Keras 3's names).
"""

from __future__ import annotations

import math

import numpy as np

from multilayer.engine import losses as loss_module
from multilayer.engine import metrics as metric_module
from multilayer.engine import optimizers as optimizer_module
from multilayer.engine.parameters import ParameterBuffer
from multilayer.errors import TrainingError
from multilayer.models import validation
from multilayer.models.callbacks import CallbackList, History
from multilayer.models.input_scale import InputScale
from multilayer.models.loop import TrainingState
from multilayer.models.progress import ProgressLogger, format_logs

#: Batch size used by evaluate / predict / validation when none is given. Larger batches are
#: faster and give the same results up to float rounding.
INFERENCE_BATCH_SIZE = 1024


class Trainer:
    """compile / fit / evaluate / predict for a model (see the module docstring).

    The model provides the attributes annotated below and the methods that raise
    NotImplementedError here (`multilayer.models.functional.Model` does).
    """

    name: str
    dtype: np.dtype | None  # a model always has one; a plain layer may not (see Layer)
    built: bool
    rng: np.random.Generator | None
    parameters: ParameterBuffer | None
    _output_structure: str | list[str]

    # -- the model's hooks ------------------------------------------------------------------
    @property
    def output_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def input_names(self) -> list[str]:
        raise NotImplementedError

    def input_shapes(self) -> list[tuple[int, ...]] | None:
        raise NotImplementedError

    def output_shapes(self) -> list[tuple[int, ...]] | None:
        raise NotImplementedError

    def _output_count(self) -> int | None:
        raise NotImplementedError

    def _ensure_built(self, shapes: list[tuple[int, ...]]) -> None:
        raise NotImplementedError

    def _build_if_possible(self) -> None:
        raise NotImplementedError

    def _ensure_bound(self) -> None:
        raise NotImplementedError

    def _run_forward(self, inputs: list[np.ndarray], training: bool) -> list[np.ndarray]:
        raise NotImplementedError

    def _run_backward(self, output_grads: list[np.ndarray], fused: list[bool]) -> None:
        raise NotImplementedError

    def _fusable(self, k: int) -> str | None:
        raise NotImplementedError

    def regularization_loss(self) -> float:
        raise NotImplementedError

    # -- narrowing helpers ------------------------------------------------------------------
    def _buffer_of_parameters(self) -> ParameterBuffer:
        if self.parameters is None:
            self._build_if_possible()
        if self.parameters is None:
            raise RuntimeError(f"model {self.name!r} is not built: it has no parameters yet")
        return self.parameters

    def _compiled_optimizer(self) -> optimizer_module.Optimizer:
        if self.optimizer is None:
            raise RuntimeError("call compile(optimizer=..., loss=...) first")
        return self.optimizer

    def _current_loop(self) -> TrainingState:
        if self.loop is None:
            raise RuntimeError("the loop state only exists while fit() runs")
        return self.loop

    def _model_dtype(self) -> np.dtype:
        if self.dtype is None:  # Model.__init__ always sets it
            raise RuntimeError(f"model {self.name!r} has no dtype")
        return self.dtype

    def _known(self, shapes: list[tuple[int, ...]] | None) -> list[tuple[int, ...]]:
        if shapes is None:
            raise RuntimeError(f"model {self.name!r} is not built: its shapes are not known yet")
        return shapes

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            self._build_if_possible()
        if self.rng is None:
            raise RuntimeError(f"model {self.name!r} is not built: it has no generator yet")
        return self.rng

    def __init__(self) -> None:
        self.optimizer: optimizer_module.Optimizer | None = None
        #: the loss (one `Loss`), or the list of per-output losses of a multi-output model
        self.loss: loss_module.Loss | list[loss_module.Loss] | None = None
        #: every metric, all outputs together, in log order
        self.metrics: list[metric_module.Metric] = []
        #: what `compile` was given, serialised (saved with the model)
        self.compile_config: dict | None = None
        self.history: History | None = None
        self.stop_training = False
        #: where `fit` is (None outside fit): read by callbacks, saved by checkpoints
        self.loop: TrainingState | None = None
        #: what trained the model (dataset, recipe, results): saved in the model file
        self.training_info: dict = {}
        #: the pixel values the model takes (saved with it); None when not recorded
        self.input_scale: InputScale | None = None
        self._compile_args: dict | None = None
        self._losses: list[loss_module.Loss] = []
        self._loss_weights: list[float] = []
        self._loss_trackers: list[metric_module.Mean] = []
        self._metric_outputs: list[int] = []
        #: per output, whether its loss absorbs the activation of the layer producing it
        self._fused_outputs: list[bool] | None = None
        self._optimizer_built = False

    # -- compile ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None) -> None:
        """Choose the optimizer, the loss(es) and the metrics (Keras' defaults: RMSprop, no
        metrics). ``metrics=["accuracy"]`` picks the accuracy that matches the loss.

        For several outputs: ``loss`` one loss for all, a list or a dict by output name;
        ``metrics`` a flat list (for every output), a list of lists or a dict;
        ``loss_weights`` a list or dict of floats (default 1).
        """
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizer_module.get(optimizer)
        if isinstance(loss, (list, tuple)):
            self.loss = [loss_module.get(item) for item in loss]
        elif isinstance(loss, dict) and not _is_serialized_loss(loss):
            self.loss = [loss_module.get(item) for item in loss.values()]
        else:
            self.loss = loss_module.get(loss)
        first_loss = self.loss[0] if isinstance(self.loss, list) else self.loss
        for item in _metric_items(metrics):  # unknown names fail here, not at fit time
            metric_module.get(item, first_loss)
        self._compile_args = {"loss": loss, "metrics": metrics, "loss_weights": loss_weights}
        self._losses = []
        self._optimizer_built = False
        self._resolve_outputs()

    def _resolve_outputs(self) -> None:
        """Match losses, weights and metrics to the outputs (once the graph is known)."""
        count = self._output_count()
        if count is None or self._compile_args is None or self._losses:
            return
        names = self.output_names
        args = self._compile_args
        self._losses = [
            loss_module.get(item) for item in _per_output(args["loss"], names, "loss", True)
        ]
        weights = args["loss_weights"]
        self._loss_weights = (
            [1.0] * count
            if weights is None
            else [_weight(w) for w in _per_output(weights, names, "loss_weights", False)]
        )
        metrics = args["metrics"]
        if isinstance(metrics, (str, metric_module.Metric)) or _is_serialized_metric(metrics):
            metrics = [metrics]
        if metrics is None:
            per_output: list[list] = [[] for _ in range(count)]
        elif isinstance(metrics, dict):
            per_output = [_as_list(m) for m in _per_output(metrics, names, "metrics", False, [])]
        elif count > 1 and all(isinstance(m, (list, tuple)) for m in metrics):
            per_output = [list(m) for m in _per_output(list(metrics), names, "metrics", False)]
        else:
            per_output = [list(metrics)] * count
        self.metrics, self._metric_outputs = [], []
        for k, items in enumerate(per_output):
            for item in items:
                metric = metric_module.get(item, self._losses[k])
                if count > 1:
                    metric = type(metric)(**metric.get_config())
                    metric.name = f"{names[k]}_{metric.name}"
                self.metrics.append(metric)
                self._metric_outputs.append(k)
        self._loss_trackers = (
            [metric_module.Mean(name=f"{name}_loss") for name in names] if count > 1 else []
        )
        if count > 1:
            self.loss = list(self._losses)
        self._fused_outputs = None

        def names_of(items) -> list:
            # a name as given; an object (or a {class_name, config} dict) with its arguments,
            # so that AUC(curve="PR") does not come back as the default AUC
            return [
                m if isinstance(m, str) else metric_module.serialize(metric_module.get(m))
                for m in items
            ]

        single = count == 1
        self.compile_config = {
            "optimizer": optimizer_module.serialize(self._compiled_optimizer()),
            "loss": loss_module.serialize(self._losses[0])
            if single
            else [loss_module.serialize(loss) for loss in self._losses],
            "metrics": names_of(per_output[0]) if single else [names_of(m) for m in per_output],
        }
        if weights is not None:
            self.compile_config["loss_weights"] = self._loss_weights

    def _require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"call compile(optimizer=..., loss=...) before {method}()")

    def _fused(self) -> bool:
        """Whether the (first) loss absorbs its output layer's activation."""
        self._build_if_possible()
        self._resolve_outputs()
        return bool(self._losses and self.built and self._fusion()[0])

    def _fusion(self) -> list[bool]:
        """Per output: does its loss absorb the producing layer's activation (softmax or
        sigmoid before a cross-entropy)? Known once the graph is."""
        if self._fused_outputs is None:
            self._fused_outputs = [
                loss.fused_activation is not None
                and not loss.from_logits
                and self._fusable(k) == loss.fused_activation
                for k, loss in enumerate(self._losses)
            ]
        return self._fused_outputs

    def _build_optimizer(self) -> None:
        self._ensure_bound()
        if not self._optimizer_built:
            parameters = self._buffer_of_parameters()
            segments = [slice(offset, offset + spec.size) for _, spec, offset in parameters.entries]
            self._compiled_optimizer().build(parameters.size, self._model_dtype(), segments)
            self._optimizer_built = True

    # -- one step -----------------------------------------------------------------------------
    def _forward(self, x, training: bool = False):
        """The outputs for a batch (an array, or a list of them for several inputs)."""
        outputs = self._run_forward(x if isinstance(x, list) else [x], training)
        return outputs[0] if len(outputs) == 1 else outputs

    def _regularization_loss(self) -> float:
        return self.regularization_loss()

    def train_step(self, x, y) -> float:
        """One optimizer step on a batch; returns the batch loss (before the update)."""
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        if not self._losses:
            self._resolve_outputs()
        outputs = self._run_forward(xs, training=True)
        n = len(xs[0])
        loss = 0.0
        for k, (output, target) in enumerate(zip(outputs, ys, strict=True)):
            value = float(np.mean(self._losses[k].per_sample(target, output), dtype=np.float64))
            if self._loss_trackers:
                self._loss_trackers[k].update_state(value, n)
            loss += value if self._loss_weights[k] == 1.0 else self._loss_weights[k] * value
        loss += self._regularization_loss()
        for metric, k in zip(self.metrics, self._metric_outputs, strict=True):
            metric.update_state(ys[k], outputs[k])
        grads = []
        fused = self._fusion()
        for k, (output, target) in enumerate(zip(outputs, ys, strict=True)):
            if fused[k]:
                grad = self._losses[k].fused_gradient(target, output)
            else:
                grad = self._losses[k].gradient(target, output).astype(self.dtype)
            if self._loss_weights[k] != 1.0:
                grad *= self._loss_weights[k]
            grads.append(grad)
        self._run_backward(grads, fused)
        self._check_divergence(loss)
        parameters = self._buffer_of_parameters()
        self._compiled_optimizer().apply(parameters.values, parameters.grads)
        return loss

    def _check_divergence(self, loss: float) -> None:
        """Refuse to apply an update computed from a non-finite loss or gradient, so the
        model keeps the last good weights. One dot product per step; details only on failure."""
        parameters = self._buffer_of_parameters()
        grads = parameters.grads
        if math.isfinite(loss) and math.isfinite(float(np.dot(grads, grads))):
            return
        if math.isfinite(loss) and np.isfinite(grads).all():
            return  # the squared norm overflowed, but every gradient value is finite
        what = (
            f"the loss became {loss}"
            if not math.isfinite(loss)
            else "the gradient became NaN or infinite"
        )
        kept = (
            "the model keeps the weights from before this batch"
            if np.isfinite(parameters.values).all()
            else "the weights themselves are no longer finite: reload the last checkpoint"
        )
        raise TrainingError(
            f"training diverged: {what} at optimizer step "
            f"{self._compiled_optimizer().iterations + 1}; "
            f"training stopped and {kept}. Try a lower learning rate, inputs scaled to about "
            "[0, 1] (e.g. Rescaling(1/255)), or gradient clipping (clipnorm=1.0)."
        )

    # -- loop state -----------------------------------------------------------------------------
    def _trackers(self) -> list[metric_module.Metric]:
        """Every running mean of an epoch: the per-output losses, then the metrics."""
        return [*self._loss_trackers, *self.metrics]

    def training_state(self) -> TrainingState:
        """A copy of ``loop`` for a checkpoint, with the history so far."""
        loop = self.loop
        if loop is None:
            raise RuntimeError("training_state() is only available while fit() runs")
        history = self.history
        mid_epoch = loop.step > 0
        return TrainingState(
            epoch=loop.epoch,
            step=loop.step,
            order=loop.order if mid_epoch else None,
            loss_sum=loop.loss_sum,
            seen=loop.seen,
            # each running mean's whole state (a metric's confusion counts, per-class sums)
            metrics=[t.get_state() for t in self._trackers()] if mid_epoch else [],
            history={key: list(values) for key, values in history.history.items()}
            if history
            else {},
            history_epochs=list(history.epoch) if history else [],
            batch_size=loop.batch_size,
            n_samples=loop.n_samples,
            shuffle=loop.shuffle,
        )

    def restore_training_state(self, state: TrainingState) -> None:
        """Continue `fit` from ``state`` (called by `BackupAndRestore` at the start of fit).

        Raises:
            ValueError: ``state`` does not match this fit call or this model's metrics.
        """
        loop = self.loop
        if loop is None:
            raise RuntimeError("restore_training_state() is only available while fit() runs")
        for name, saved, now in (
            ("batch_size", state.batch_size, loop.batch_size),
            ("the number of training samples", state.n_samples, loop.n_samples),
            ("shuffle", state.shuffle, loop.shuffle),
        ):
            if saved != now:
                raise ValueError(f"it was written with {name} = {saved!r}, this run has {now!r}")
        trackers = self._trackers()
        if state.step and len(state.metrics) != len(trackers):
            raise ValueError(
                f"it tracked {len(state.metrics)} metrics, this model has {len(trackers)}"
            )
        if state.step:  # each saved state checked on a fresh copy before anything changes
            for tracker, saved in zip(trackers, state.metrics, strict=True):
                type(tracker)(**tracker.get_config()).set_state(saved)
        self.loop = TrainingState(
            epoch=state.epoch,
            step=state.step,
            order=state.order,
            loss_sum=state.loss_sum,
            seen=state.seen,
            batch_size=loop.batch_size,
            n_samples=loop.n_samples,
            shuffle=loop.shuffle,
        )
        if state.step:
            for tracker, saved in zip(trackers, state.metrics, strict=True):
                tracker.set_state(saved)
        if self.history is not None:
            self.history.history = {k: list(v) for k, v in state.history.items()}
            self.history.epoch = list(state.history_epochs)

    def _logs(self) -> dict[str, metric_module.Result]:
        loop = self._current_loop()
        logs: dict[str, metric_module.Result] = {"loss": loop.loss_sum / max(loop.seen, 1)}
        logs.update({t.name: t.result() for t in self._trackers()})
        return logs

    # -- fit ----------------------------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle: bool = True,
        initial_epoch: int = 0,
        checkpoint=None,
    ) -> History:
        """Train for ``epochs`` epochs (Keras' signature and defaults: batch_size 32).

        Args:
            x: inputs, shape ``(n, *input_shape)``, any numeric dtype (uint8 images are fine);
                a list (or dict by input name) of such arrays for several inputs.
            y: targets as the loss expects them (one-hot, integer labels, values); a list or
                dict for several outputs.
            validation_split: fraction of the *last* samples held out for validation (before
                shuffling, as Keras does).
            validation_data: ``(x_val, y_val)``; overrides validation_split.
            verbose: 0 silent, 1 progress bar, 2 one line per epoch; "auto" is 1.
            checkpoint: a `multilayer.models.checkpoint.CheckpointConfig` to write crash-safe
                checkpoints (weights, optimizer and random-generator state, position in the
                epoch, history) and, with ``resume=True``, to continue from the newest one.
                With it, Ctrl-C writes a checkpoint and raises `TrainingInterrupted`. (It
                adds a `BackupAndRestore` callback.)

        Returns:
            a `History` whose ``history`` maps each log key to its per-epoch values.

        Raises:
            TrainingError: the loss became NaN or infinite (the weights stay those from
                before the offending batch), or a checkpoint does not match this run.
        """
        from multilayer.models.backup import BackupAndRestore

        self._require_compiled("fit")
        batch_size = validation.positive_int(32 if batch_size is None else batch_size, "batch_size")
        epochs = validation.positive_int(epochs, "epochs")
        initial_epoch = validation.non_negative_int(initial_epoch, "initial_epoch")
        callbacks = validation.check_callbacks(callbacks)
        verbose = 1 if verbose == "auto" else verbose
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if x is None or y is None:
            raise ValueError("fit needs both x and y")
        backups = [c for c in callbacks if isinstance(c, BackupAndRestore)]
        callbacks = [c for c in callbacks if not isinstance(c, BackupAndRestore)]
        if checkpoint is not None:
            from multilayer.models.backup import CheckpointConfig

            if not isinstance(checkpoint, CheckpointConfig):
                raise TypeError(
                    f"checkpoint must be a CheckpointConfig or None, got {type(checkpoint).__name__}"
                )
            backups.append(BackupAndRestore(checkpoint))
        if len(backups) > 1:
            raise ValueError(
                "fit: one BackupAndRestore at most (fit(checkpoint=...) adds one; do not also "
                "pass one in callbacks)"
            )
        xs, ys = self._check_data(x, y)
        xs, ys, val = self._validation_arrays(xs, ys, validation_split, validation_data)
        self._build_optimizer()
        n = len(xs[0])
        steps = -(-n // batch_size)
        if not (initial_epoch > 0 and self.history is not None):
            self.history = History()
        history = self.history
        self.loop = TrainingState(
            epoch=initial_epoch, batch_size=batch_size, n_samples=n, shuffle=shuffle
        )
        extra = [ProgressLogger(epochs, steps, verbose)] if verbose else []
        callback_list = CallbackList([history, *callbacks, *extra, *backups], self)
        callback_list.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        batches = _Batches(xs, ys, min(batch_size, n))  # no buffers larger than the data
        try:
            callback_list.on_train_begin()
            while self._current_loop().epoch < epochs and not self.stop_training:
                epoch = self._current_loop().epoch
                logs = self._train_epoch(batches, steps, callback_list)
                if val is not None:
                    results = self._evaluate_arrays(val[0], val[1], INFERENCE_BATCH_SIZE)
                    logs.update({f"val_{key}": value for key, value in results.items()})
                callback_list.on_epoch_end(epoch, logs)
        except BaseException:
            callback_list.on_train_end()  # close progress bars, files and signal handlers
            self.loop = None  # it references the training data
            raise
        callback_list.on_train_end()
        self.loop = None
        return history

    def _train_epoch(
        self, batches: _Batches, steps: int, callback_list
    ) -> dict[str, metric_module.Result]:
        """The rest of the epoch ``loop`` stands in (all of it, or what a resumed checkpoint
        left); returns its logs and leaves ``loop`` at the start of the next epoch."""
        loop = self._current_loop()
        epoch, mid_epoch = loop.epoch, loop.step > 0
        if not mid_epoch:
            for tracker in self._trackers():
                tracker.reset_state()
        callback_list.on_epoch_begin(epoch)
        if not mid_epoch:
            n = loop.n_samples
            loop.order = self._generator().permutation(n) if loop.shuffle else np.arange(n)
            loop.loss_sum, loop.seen = 0.0, 0
        order = loop.order
        assert order is not None  # drawn above, or restored with a mid-epoch checkpoint
        for step in range(loop.step, steps):
            xb, yb = batches.take(order[step * loop.batch_size : (step + 1) * loop.batch_size])
            callback_list.on_train_batch_begin(step)
            batch_loss = self.train_step(xb, yb)
            loop.loss_sum += batch_loss * len(xb[0])
            loop.seen += len(xb[0])
            loop.step = step + 1
            callback_list.on_train_batch_end(step, self._logs())
            if self.stop_training:
                break
        logs = self._logs()
        loop.epoch, loop.step, loop.order, loop.loss_sum, loop.seen = epoch + 1, 0, None, 0.0, 0
        return logs

    def _validation_arrays(self, xs, ys, validation_split: float, validation_data):
        """``(xs, ys, (x_val, y_val) or None)``: validation_data if given, else the last
        ``validation_split`` of the samples (before shuffling, as Keras does), else None."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            x_val, y_val = self._check_data(
                validation_data[0], validation_data[1], "validation x", "validation y"
            )
            return xs, ys, (x_val, y_val)
        if not validation_split:
            return xs, ys, None
        n = len(xs[0])
        split = int(n * (1.0 - validation_split))
        if split == 0 or split == n:
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation samples"
            )
        return (
            [a[:split] for a in xs],
            [a[:split] for a in ys],
            ([a[split:] for a in xs], [a[split:] for a in ys]),
        )

    # -- data ---------------------------------------------------------------------------------
    def _split(self, value, names: list[str] | None, count: int | None, what: str) -> list:
        """An array, list or dict given for ``what`` -> one entry per input (or output)."""
        if isinstance(value, dict):
            if names is None:
                raise ValueError(
                    f"{what} is a dict, but the model's {what} names are not known yet"
                )
            missing = [name for name in names if name not in value]
            unknown = [key for key in value if key not in names]
            if missing or unknown:
                raise ValueError(
                    f"{what} must have the keys {names}; missing {missing}, unexpected {unknown}"
                )
            return [value[name] for name in names]
        several = isinstance(value, (list, tuple)) and (
            (count is not None and count > 1)
            or (count is None and value and all(isinstance(v, np.ndarray) for v in value))
        )
        if several:
            if count is not None and len(value) != count:
                raise ValueError(
                    f"the model has {count} {what}s, got a list of {len(value)} arrays"
                )
            return list(value)
        if count is not None and count > 1:
            raise ValueError(
                f"the model has {count} {what}s {names}: give a list or a dict of {count} arrays"
            )
        return [value]

    def _check_inputs(self, x, x_name: str = "x", cast: bool = True) -> list[np.ndarray]:
        """The input array(s), checked against the model's inputs (the model is built from
        their shapes if needed); with ``cast``, floats in the model's dtype, contiguous."""
        shapes = self.input_shapes()
        if isinstance(x, np.ndarray) and shapes is not None and len(shapes) == 1:
            parts = [x]  # the common case, kept cheap for one-image predict calls
        else:
            names = self.input_names if shapes is not None else None
            parts = self._split(x, names, None if shapes is None else len(shapes), "input")
        label = [x_name] if len(parts) == 1 else [f"{x_name}[{i}]" for i in range(len(parts))]
        arrays = [validation.as_array(part, name) for part, name in zip(parts, label, strict=True)]
        for array, name in zip(arrays[1:], label[1:], strict=True):
            validation.check_lengths(arrays[0], array, label[0], name)
        if not self.built:
            self._ensure_built([tuple(a.shape[1:]) for a in arrays])
            shapes = self.input_shapes()
        shapes = self._known(shapes)
        if len(shapes) != len(arrays):
            raise ValueError(f"the model has {len(shapes)} inputs, got {len(arrays)} arrays")
        for array, shape, name in zip(arrays, shapes, label, strict=True):
            validation.check_input_shape(array, shape, name)
            validation.check_finite(array, name)
        if not cast:
            return arrays
        dtype = self._model_dtype()
        return [
            np.ascontiguousarray(
                a.astype(dtype)
                if (a.dtype.kind == "f" and a.dtype != dtype) or a.dtype == bool
                else a
            )
            for a in arrays
        ]

    def _check_data(self, x, y, x_name: str = "x", y_name: str = "y"):
        if x is None or y is None:
            raise ValueError(f"{x_name} and {y_name} are both required")
        xs = self._check_inputs(x, x_name)
        self._resolve_outputs()
        shapes = self._known(self.output_shapes())
        parts = self._split(y, self.output_names, len(shapes), "output")
        label = [y_name] if len(parts) == 1 else [f"{y_name}[{i}]" for i in range(len(parts))]
        ys = []
        for k, (part, name) in enumerate(zip(parts, label, strict=True)):
            target = validation.as_array(part, name)
            validation.check_lengths(xs[0], target, x_name, name)
            ys.append(
                validation.prepare_targets(target, self._losses[k], shapes[k], self.dtype, name)
            )
        return xs, ys

    # -- evaluate / predict -------------------------------------------------------------------
    @staticmethod
    def _batches(n: int, batch_size: int):
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))

    def _evaluate_arrays(self, xs, ys, batch_size: int) -> dict[str, metric_module.Result]:
        metrics = [type(m)(**m.get_config()) for m in self.metrics]  # fresh running means
        totals = [0.0] * len(ys)
        n = len(xs[0])
        for batch in self._batches(n, batch_size):
            outputs = self._run_forward([a[batch] for a in xs], training=False)
            for k, output in enumerate(outputs):
                per_sample = self._losses[k].per_sample(ys[k][batch], output)
                totals[k] += float(np.sum(per_sample, dtype=np.float64))
            for metric, k in zip(metrics, self._metric_outputs, strict=True):
                metric.update_state(ys[k][batch], outputs[k])
        results: dict[str, metric_module.Result]
        if len(ys) == 1:
            results = {"loss": totals[0] / n + self._regularization_loss()}
        else:
            means = [total / n for total in totals]
            weighted = sum(w * m for w, m in zip(self._loss_weights, means, strict=True))
            results = {"loss": weighted + self._regularization_loss()}
            results.update(
                {f"{name}_loss": m for name, m in zip(self.output_names, means, strict=True)}
            )
        results.update({metric.name: metric.result() for metric in metrics})
        return results

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        verbose="auto",
        return_dict: bool = False,
    ):
        """Loss and metrics on ``(x, y)``: a list ``[loss, *metrics]`` (or a dict)."""
        self._require_compiled("evaluate")
        batch_size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
        xs, ys = self._check_data(x, y)
        results = self._evaluate_arrays(xs, ys, batch_size)
        if verbose:  # "auto" counts as 1, as in Keras
            print(f"{len(xs[0])}/{len(xs[0])} - {format_logs(results)}")
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose=0):
        """The model's outputs for ``x``: shape ``(n, *output_shape)`` (a list, or a dict by
        output name, for several outputs)."""
        if isinstance(x, np.ndarray) and self.built and self._output_structure == "tensor":
            shapes = self._known(self.input_shapes())
            if len(shapes) == 1:  # one array in, one out: no lists (one-image calls stay cheap)
                x = validation.as_array(x, "x")
                validation.check_input_shape(x, shapes[0], "x")
                validation.check_finite(x, "x")
                size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
                out = np.empty((len(x), *self._known(self.output_shapes())[0]), dtype=self.dtype)
                for start in range(0, len(x), size):
                    out[start : start + size] = self._run_forward([x[start : start + size]], False)[
                        0
                    ]
                return out
        xs = self._check_inputs(x, cast=False)  # layers cast what they need
        batch_size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
        n = len(xs[0])
        shapes = self._known(self.output_shapes())
        outputs = [np.empty((n, *shape), dtype=self.dtype) for shape in shapes]
        for batch in self._batches(n, batch_size):
            for out, value in zip(
                outputs, self._run_forward([a[batch] for a in xs], training=False), strict=True
            ):
                out[batch] = value
        return self._structure_outputs(outputs)

    def _structure_outputs(self, outputs: list[np.ndarray]):
        structure = self._output_structure
        if structure == "tensor":
            return outputs[0]
        if structure == "list":
            return outputs
        return dict(zip(structure, outputs, strict=True))

    # -- one batch ----------------------------------------------------------------------------
    def train_on_batch(self, x, y, return_dict: bool = False):
        """One optimizer step on ``(x, y)``; returns the loss (and metrics) of that batch."""
        self._require_compiled("train_on_batch")
        xs, ys = self._check_data(x, y)
        self._build_optimizer()
        for tracker in self._trackers():
            tracker.reset_state()
        loss = self.train_step(xs, ys)
        results = {"loss": loss, **{t.name: t.result() for t in self._trackers()}}
        return _results(results, return_dict)

    def test_on_batch(self, x, y, return_dict: bool = False):
        """The loss (and metrics) of the model on one batch ``(x, y)``, without training."""
        self._require_compiled("test_on_batch")
        xs, ys = self._check_data(x, y)
        return _results(self._evaluate_arrays(xs, ys, len(xs[0])), return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch ``x``."""
        xs = self._check_inputs(x, cast=False)
        return self._structure_outputs(
            [out.copy() for out in self._run_forward(xs, training=False)]
        )


class _Batches:
    """Gathers the samples of a batch into buffers allocated once per fit call."""

    def __init__(self, xs: list[np.ndarray], ys: list[np.ndarray], batch_size: int):
        self.xs, self.ys = xs, ys
        self.x_buffers = [np.empty((batch_size, *a.shape[1:]), dtype=a.dtype) for a in xs]
        self.y_buffers = [np.empty((batch_size, *a.shape[1:]), dtype=a.dtype) for a in ys]

    def take(self, index: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        n = len(index)
        xb = [
            np.take(a, index, axis=0, out=b[:n])
            for a, b in zip(self.xs, self.x_buffers, strict=False)
        ]
        yb = [
            np.take(a, index, axis=0, out=b[:n])
            for a, b in zip(self.ys, self.y_buffers, strict=False)
        ]
        return xb, yb


def _results(results: dict, return_dict: bool):
    if return_dict:
        return results
    values = list(results.values())
    return values[0] if len(values) == 1 else values


def _is_serialized_loss(value: dict) -> bool:
    """A loss configuration (``{"class_name": "CategoricalCrossentropy", "config": {...}}``, or
    the older ``{"name": "categorical_crossentropy", ...}``), not a dict of losses by output
    name."""
    if set(value) == {"class_name", "config"} and isinstance(value["config"], dict):
        return True
    return isinstance(value.get("name"), str)


def _per_output(value, names: list[str], what: str, broadcast: bool, default=None) -> list:
    """``value`` (one for all if ``broadcast``, a list, or a dict by output name) as a list."""
    count = len(names)
    if isinstance(value, dict) and not (what == "loss" and _is_serialized_loss(value)):
        unknown = [key for key in value if key not in names]
        if unknown:
            raise ValueError(f"compile: {what} for unknown outputs {unknown}; outputs: {names}")
        missing = [name for name in names if name not in value]
        if missing and default is None:
            raise ValueError(f"compile: {what} is missing outputs {missing}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(
                f"compile: {what} has {len(value)} entries, the model has {count} outputs {names}"
            )
        return list(value)
    if broadcast:
        return [value] * count
    if count == 1:
        return [value]
    raise ValueError(f"compile: {what} must be a list or a dict for the outputs {names}")


def _is_serialized_metric(value) -> bool:
    """A metric in the registry shape (``{"class_name": "AUC", "config": {...}}``), not a dict
    of metrics by output name."""
    return (
        isinstance(value, dict)
        and set(value) == {"class_name", "config"}
        and isinstance(value["config"], dict)
    )


def _metric_items(metrics) -> list:
    """Every metric name or object in a compile ``metrics`` argument, however nested."""
    if metrics is None:
        return []
    if isinstance(metrics, dict) and not _is_serialized_metric(metrics):
        return [item for value in metrics.values() for item in _metric_items(value)]
    if isinstance(metrics, (list, tuple)):
        return [item for value in metrics for item in _metric_items(value)]
    return [metrics]


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _weight(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"compile: a loss weight must be a finite number, got {value!r}")
    return float(value)
