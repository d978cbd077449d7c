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
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from multilayer.data import tables
from multilayer.engine import losses as loss_module
from multilayer.engine import metrics as metric_module
from multilayer.engine import optimizers as optimizer_module
from multilayer.engine.parameters import ParameterBuffer
from multilayer.errors import TrainingError
from multilayer.models import data_adapters, validation
from multilayer.models.callbacks import CallbackList, History
from multilayer.models.input_scale import InputScale
from multilayer.models.loop import TrainingState
from multilayer.models.progress import ProgressLogger, format_logs

if TYPE_CHECKING:
    from multilayer.answers import Answers
    from multilayer.models.adversarial import AdversarialTraining

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

    def _run_backward_inputs(
        self, output_grads: list[np.ndarray], fused: list[bool]
    ) -> list[np.ndarray | None]:
        """`_run_backward`, also returning the gradient of each input (None for one that
        has none, such as integer indices)."""
        raise NotImplementedError

    def _fusable(self, k: int) -> str | None:
        raise NotImplementedError

    def regularization_loss(self) -> float:
        raise NotImplementedError

    def activity_loss(self) -> float:
        raise NotImplementedError

    def _leaf_trainability(self, parent: bool = True) -> dict[int, bool]:
        raise NotImplementedError

    def _raw_inputs(self) -> list[bool]:
        """Per input: whether it may hold raw table values (text, None, NaN), because every
        layer reading it takes them (``Layer.accepts_raw_input``). Known once built."""
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
        #: calibrated temperature and "not a digit" detector (saved with it), or None
        self.answers: Answers | None = None
        self._compile_args: dict | None = None
        self._losses: list[loss_module.Loss] = []
        self._loss_weights: list[float] = []
        self._loss_trackers: list[metric_module.Mean] = []
        self._metric_outputs: list[int] = []
        #: per output, whether its loss absorbs the activation of the layer producing it
        self._fused_outputs: list[bool] | None = None
        self._optimizer_built = False
        #: the layers' trainable flags when compile() ran (by layer id; Keras reads them then)
        self._compiled_trainability: dict[int, bool] = {}
        #: positions in the parameter vector the optimizer updates; None: all of them
        self._update_index: np.ndarray | None = None
        self._trainability_warned = False
        self._update_values: np.ndarray | None = None
        self._update_grads: np.ndarray | None = None
        #: FGSM adversarial training during fit, or None (`multilayer.models.adversarial`);
        #: a training setting, not saved with the model
        self.adversarial_training: AdversarialTraining | None = None
        self._clean_grads: np.ndarray | None = None

    # -- compile ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None) -> None:
        """Choose the optimizer, the loss(es) and the metrics (Keras' defaults: RMSprop, no
        metrics). ``metrics=["accuracy"]`` picks the accuracy that matches the loss.

        For several outputs: ``loss`` one loss for all, a list or a dict by output name;
        ``metrics`` a flat list (for every output), a list of lists or a dict;
        ``loss_weights`` a list or dict of floats (default 1).
        """
        if loss is None or (isinstance(loss, (list, tuple, dict)) and len(loss) == 0):
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
        self._compiled_trainability = self._leaf_trainability()
        self._trainability_warned = False
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
        """Build the optimizer for the trainable parameters: those of the layers that were
        trainable when compile() ran (layers the model did not hold then: their flag now).
        Frozen parameters are never handed to the optimizer, so no update, weight decay or
        momentum touches them."""
        self._ensure_bound()
        current = self._leaf_trainability()
        if not self._trainability_warned and any(
            self._compiled_trainability.get(key, flag) != flag for key, flag in current.items()
        ):
            self._trainability_warned = True
            warnings.warn(
                f"model {self.name!r}: a layer's trainable flag changed after compile(); as in "
                "Keras, the change takes effect when compile() is called again",
                UserWarning,
                stacklevel=3,
            )
        if not self._optimizer_built:
            parameters = self._buffer_of_parameters()
            kept = [
                (offset, spec.size)
                for layer, spec, offset in parameters.entries
                if self._compiled_trainability.get(id(layer), current.get(id(layer), True))
            ]
            if len(kept) == len(parameters.entries):
                self._update_index = None
                segments = [slice(offset, offset + size) for offset, size in kept]
                size = parameters.size
            else:
                ranges = [np.arange(offset, offset + size) for offset, size in kept]
                self._update_index = np.concatenate(ranges) if ranges else np.zeros(0, np.intp)
                size = self._update_index.size
                self._update_values = np.empty(size, dtype=parameters.values.dtype)
                self._update_grads = np.empty(size, dtype=parameters.values.dtype)
                starts = np.cumsum([0] + [size for _, size in kept])
                segments = [slice(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]
            self._compiled_optimizer().build(size, self._model_dtype(), segments)
            self._optimizer_built = True

    def _update_trainable(self, update: Callable[[np.ndarray], None]) -> None:
        """Run ``update`` in place on the vector the optimizer works on: every parameter,
        or (frozen layers) the trainable ones gathered and written back. For code that sets
        parameters from optimizer state, e.g. replacing them with a moving average."""
        self._build_optimizer()
        parameters = self._buffer_of_parameters()
        index = self._update_index
        if index is None:
            update(parameters.values)
            return
        values = parameters.values[index]
        update(values)
        parameters.values[index] = values

    def _apply_update(self, parameters: ParameterBuffer) -> None:
        """One optimizer step on the trainable parameters (all, or those gathered by
        ``_update_index`` and written back), then the weight constraints (as Keras does)."""
        index = self._update_index
        if index is None:
            self._compiled_optimizer().apply(parameters.values, parameters.grads)
        else:
            values, grads = self._update_values, self._update_grads
            assert values is not None and grads is not None  # set with the index
            np.take(parameters.values, index, out=values)
            np.take(parameters.grads, index, out=grads)
            self._compiled_optimizer().apply(values, grads)
            parameters.values[index] = values
        parameters.apply_constraints()

    # -- one step -----------------------------------------------------------------------------
    def _forward(self, x, training: bool = False):
        """The outputs for a batch (an array, or a list of them for several inputs)."""
        outputs = self._run_forward(x if isinstance(x, list) else [x], training)
        return outputs[0] if len(outputs) == 1 else outputs

    def _regularization_loss(self) -> float:
        """Weight penalties plus the activity penalties of the last forward pass."""
        return self.regularization_loss() + self.activity_loss()

    def train_step(self, x, y, sample_weight: np.ndarray | None = None) -> float:
        """One optimizer step on a batch; returns the batch loss (before the update).

        With ``sample_weight`` (one float per sample), each output's loss is Keras'
        ``"sum_over_batch_size"`` reduction: ``sum(w_i * loss_i) / n``; its gradient scales
        each sample's row by ``w_i``. The metrics are not weighted (Keras' ``metrics``).
        With `adversarial_training` set, the loss is that of
        `multilayer.models.adversarial` (the metrics are the clean batch's).
        """
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        if not self._losses:
            self._resolve_outputs()
        adversarial = self.adversarial_training
        clean_share = 1.0 if adversarial is None else 1.0 - adversarial.weight
        values, grads = self._loss_gradients(xs, ys, sample_weight, clean_share, metrics=True)
        penalty = self._regularization_loss()
        fused = self._fusion()
        if adversarial is None:
            self._run_backward(grads, fused)
        else:
            values = self._adversarial_backward(adversarial, xs, ys, sample_weight, values, grads)
        loss = penalty
        for k, value in enumerate(values):
            if self._loss_trackers:
                self._loss_trackers[k].update_state(value, len(xs[0]))
            loss += value if self._loss_weights[k] == 1.0 else self._loss_weights[k] * value
        self._check_divergence(loss)
        self._apply_update(self._buffer_of_parameters())
        return loss

    def _loss_gradients(
        self,
        xs: list[np.ndarray],
        ys: list,
        sample_weight: np.ndarray | None,
        scale: float,
        metrics: bool,
    ) -> tuple[list[float], list[np.ndarray]]:
        """A training-mode forward pass: each output's loss, and the gradients of ``scale``
        times the weighted sum of the losses with respect to the outputs (which may be
        computed in the outputs' buffers); ``metrics``: update the metrics first."""
        outputs = self._run_forward(xs, training=True)
        n = len(xs[0])
        values, grads = [], []
        for k, (output, target) in enumerate(zip(outputs, ys, strict=True)):
            per_sample = self._losses[k].per_sample(target, output)
            if sample_weight is None:
                values.append(float(np.mean(per_sample, dtype=np.float64)))
            else:
                values.append(_weighted_sum(per_sample, _column(sample_weight, k)) / n)
        if metrics:
            for metric, k in zip(self.metrics, self._metric_outputs, strict=True):
                metric.update_state(ys[k], outputs[k])
        fused = self._fusion()
        for k, (output, target) in enumerate(zip(outputs, ys, strict=True)):
            if fused[k]:
                grad = self._losses[k].fused_gradient(target, output)
            else:
                grad = self._losses[k].gradient(target, output).astype(self.dtype)
            factor = self._loss_weights[k] * scale
            if factor != 1.0:
                grad *= factor
            if sample_weight is not None:
                weights = _column(sample_weight, k)
                grad *= weights.reshape((n,) + (1,) * (grad.ndim - 1)).astype(grad.dtype)
            grads.append(grad)
        return values, grads

    def _adversarial_backward(
        self, adversarial, xs, ys, sample_weight, values: list[float], grads: list[np.ndarray]
    ) -> list[float]:
        """The backward passes of FGSM adversarial training: the clean term's (which also
        gives the input gradients), then the moved batch's forward and backward; the
        parameter gradients are their sum. Returns each output's combined loss.

        Raises:
            ValueError: a model with weight or activity penalties (each backward pass adds
                their gradient, so the sum would count them twice).
        """
        if getattr(self, "losses", None):
            raise ValueError(
                "adversarial training does not support weight or activity regularizers "
                "(each of its two backward passes would add their gradient); use a weight "
                "constraint (e.g. MaxNorm) or the optimizer's weight_decay instead"
            )
        fused = self._fusion()
        input_grads = self._run_backward_inputs(grads, fused)
        parameters = self._buffer_of_parameters()
        if self._clean_grads is None or self._clean_grads.shape != parameters.grads.shape:
            self._clean_grads = np.empty_like(parameters.grads)
        np.copyto(self._clean_grads, parameters.grads)
        moved = adversarial.perturb(xs, input_grads, self._model_dtype())
        moved_values, moved_grads = self._loss_gradients(
            moved, ys, sample_weight, adversarial.weight, metrics=False
        )
        self._run_backward(moved_grads, fused)
        parameters.grads += self._clean_grads
        w = adversarial.weight
        return [(1 - w) * a + w * b for a, b in zip(values, moved_values, strict=True)]

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
        class_weight: dict | None = None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int | list[int] = 1,
        checkpoint=None,
    ) -> History:
        """Train for ``epochs`` epochs (Keras 3's signature and defaults: batch_size 32).

        Args:
            x: inputs, shape ``(n, *input_shape)``, any numeric dtype (uint8 images are fine);
                a list (or dict by input name) of such arrays for several inputs. Or a
                `multilayer.utils.PyDataset` or a Python generator yielding ``(x, y)`` or
                ``(x, y, sample_weight)`` batches (then ``y`` is None).
            y: targets as the loss expects them (one-hot, integer labels, values); a list or
                dict for several outputs.
            validation_split: fraction of the *last* samples held out for validation (before
                shuffling, as Keras does); the sample weights are split alike.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``, or
                a `PyDataset`/generator; overrides validation_split.
            class_weight: ``{class_index: weight}``: each sample's loss is weighted by its
                class's weight (1 for a class not listed); single-output models only.
            sample_weight: one weight per training sample (shape ``(n,)``): the loss of a
                batch is ``sum(w_i * loss_i) / batch_size`` (Keras' "sum_over_batch_size").
            steps_per_epoch: batches per epoch. With arrays, an epoch stops after that many
                batches and the next one continues the same shuffled pass (a new pass, newly
                shuffled, starts when one is used up), as in Keras 3.
            validation_steps: validation batches per validation (default: all).
            validation_batch_size: the batch size of validation (default: 1024, see
                `INFERENCE_BATCH_SIZE`; results equal up to float rounding).
            validation_freq: validate every ``validation_freq`` epochs, or after the
                (1-based) epochs listed.
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
            ValueError: invalid arguments (each with its own message).
        """
        from multilayer.models.backup import BackupAndRestore

        self._require_compiled("fit")
        batch_size = validation.positive_int(32 if batch_size is None else batch_size, "batch_size")
        epochs = validation.positive_int(epochs, "epochs")
        initial_epoch = validation.non_negative_int(initial_epoch, "initial_epoch")
        if steps_per_epoch is not None:
            steps_per_epoch = validation.positive_int(steps_per_epoch, "steps_per_epoch")
        if validation_steps is not None:
            validation_steps = validation.positive_int(validation_steps, "validation_steps")
        val_batch_size = validation.inference_batch_size(
            validation_batch_size, INFERENCE_BATCH_SIZE
        )
        validation_freq = _check_validation_freq(validation_freq)
        callbacks = validation.check_callbacks(callbacks)
        verbose = 1 if verbose == "auto" else verbose
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        batched = data_adapters.is_batched(x)
        if batched:
            _check_batched_arguments(y, sample_weight, class_weight, validation_split, x)
        elif x is None or y is None:
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
        if backups and (batched or steps_per_epoch is not None):
            raise ValueError(
                "fit: BackupAndRestore (or checkpoint=) needs in-memory arrays and no "
                "steps_per_epoch: only then is the position in an epoch restored exactly"
            )
        batches: _Batches | None = None
        source: data_adapters.BatchSource | None = None
        if batched:
            source = data_adapters.BatchSource(x, steps_per_epoch)
            n, steps, total_batches = 0, source.num_batches, 0
            val = self._batched_validation(validation_data)
        else:
            xs, ys = self._check_data(x, y)
            sw = self._sample_weights(sample_weight, class_weight, ys, len(xs[0]), "sample_weight")
            xs, ys, sw, val = self._validation_arrays(xs, ys, sw, validation_split, validation_data)
            self._build_optimizer()
            n = len(xs[0])
            total_batches = -(-n // batch_size)
            steps = total_batches if steps_per_epoch is None else steps_per_epoch
            batches = _Batches(xs, ys, sw, min(batch_size, n))  # no buffers larger than the data
        if not (initial_epoch > 0 and self.history is not None):
            self.history = History()
        history = self.history
        self.loop = TrainingState(
            epoch=initial_epoch, batch_size=batch_size, n_samples=n, shuffle=shuffle
        )
        extra = [ProgressLogger(epochs, steps or 0, verbose)] if verbose else []
        callback_list = CallbackList([history, *callbacks, *extra, *backups], self)
        callback_list.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        training_logs: dict[str, metric_module.Result] | None = None
        try:
            callback_list.on_train_begin()
            while self._current_loop().epoch < epochs and not self.stop_training:
                epoch = self._current_loop().epoch
                if batches is not None:
                    logs = self._train_epoch(batches, total_batches, steps, callback_list)
                else:
                    assert source is not None
                    batched_logs = self._train_batched_epoch(source, class_weight, callback_list)
                    if batched_logs is None:  # the generator had nothing left
                        break
                    logs = batched_logs
                if val is not None and _should_validate(epoch, validation_freq):
                    results = self._run_evaluation(
                        val, val_batch_size, validation_steps, callback_list
                    )
                    logs.update({f"val_{key}": value for key, value in results.items()})
                callback_list.on_epoch_end(epoch, logs)
                training_logs = logs
                if source is not None and source.exhausted and not self.stop_training:
                    if source.steps is None and epoch + 1 < epochs:
                        warnings.warn(data_adapters.RAN_OUT, stacklevel=2)
                    self.stop_training = True
        except BaseException:
            callback_list.on_train_end()  # close progress bars, files and signal handlers
            self.loop = None  # it references the training data
            raise
        if self._optimizer_built:
            # Keras 3: with use_ema, the weights become their moving average
            # (on the trainable parameters only: the optimizer's vector skips frozen layers)
            self._update_trainable(self._compiled_optimizer().finalize_variable_values)
        callback_list.on_train_end(training_logs)
        self.loop = None
        return history

    def _train_epoch(
        self, batches: _Batches, total_batches: int, steps: int | None, callback_list
    ) -> dict[str, metric_module.Result]:
        """The rest of the epoch ``loop`` stands in (all of it, or what a resumed checkpoint
        left); returns its logs and leaves ``loop`` at the start of the next epoch.

        ``steps`` batches of the pass of ``total_batches`` batches; a pass may span epochs
        (``steps_per_epoch`` smaller than the data), and ends an epoch early when used up.
        """
        loop = self._current_loop()
        epoch, mid_epoch = loop.epoch, loop.step > 0
        if not mid_epoch:
            for tracker in self._trackers():
                tracker.reset_state()
        callback_list.on_epoch_begin(epoch)
        if not mid_epoch:
            if loop.order is None:
                n = loop.n_samples
                loop.order = self._generator().permutation(n) if loop.shuffle else np.arange(n)
                loop.pass_step = 0
            loop.loss_sum, loop.seen = 0.0, 0
        order = loop.order
        assert order is not None  # drawn above, or restored with a mid-epoch checkpoint
        hooks = callback_list.wants_train_batches
        size, first = loop.batch_size, loop.pass_step
        weights = batches.sw is not None
        done = first
        for step in range(loop.step, total_batches if steps is None else steps):
            index = first + step
            if index >= total_batches:
                warnings.warn(data_adapters.RAN_OUT, stacklevel=3)
                break
            xb, yb, wb = batches.take(order[index * size : (index + 1) * size])
            if hooks:
                callback_list.on_train_batch_begin(step)
            batch_loss = self.train_step(xb, yb, wb) if weights else self.train_step(xb, yb)
            loop.loss_sum += batch_loss * len(xb[0])
            loop.seen += len(xb[0])
            loop.step = step + 1
            done = index + 1
            if hooks:
                callback_list.on_train_batch_end(step, self._logs())
            if self.stop_training:
                break
        logs = self._logs()
        loop.epoch, loop.step, loop.loss_sum, loop.seen = epoch + 1, 0, 0.0, 0
        if done >= total_batches:
            loop.order, loop.pass_step = None, 0
        else:
            loop.pass_step = done
        return logs

    def _train_batched_epoch(
        self, source: data_adapters.BatchSource, class_weight, callback_list
    ) -> dict[str, metric_module.Result] | None:
        """One epoch over the batches of a `PyDataset` or generator; None if it had none."""
        loop = self._current_loop()
        epoch = loop.epoch
        for tracker in self._trackers():
            tracker.reset_state()
        callback_list.on_epoch_begin(epoch)
        loop.loss_sum, loop.seen, loop.step = 0.0, 0, 0
        hooks = callback_list.wants_train_batches
        for step, batch in enumerate(source.epoch()):
            bx, by, bw = data_adapters.unpack(batch)
            if by is None:
                raise ValueError(
                    f"fit: batch {step} of x has no targets: it must be (x, y) or "
                    "(x, y, sample_weight)"
                )
            xs, ys = self._check_data(bx, by, "batch x", "batch y")
            wb = self._sample_weights(bw, class_weight, ys, len(xs[0]), "batch sample_weight")
            self._build_optimizer()
            if hooks:
                callback_list.on_train_batch_begin(step)
            batch_loss = self.train_step(xs, ys, wb)
            loop.loss_sum += batch_loss * len(xs[0])
            loop.seen += len(xs[0])
            loop.step = step + 1
            if hooks:
                callback_list.on_train_batch_end(step, self._logs())
            if self.stop_training:
                break
        if loop.step == 0:
            return None
        logs = self._logs()
        loop.epoch, loop.step, loop.loss_sum, loop.seen = epoch + 1, 0, 0.0, 0
        return logs

    def _sample_weights(self, sample_weight, class_weight, ys, n: int, what: str):
        """The per-sample loss weights (float64) from ``sample_weight`` or ``class_weight``,
        or None for unweighted: shape ``(n,)`` for every output, or ``(n, outputs)`` when a
        multi-output model gets a list or dict of weights (one array per output, or None
        for an unweighted output)."""
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("give class_weight or sample_weight, not both")
            if len(ys) > 1:
                raise ValueError("class_weight is only supported for models with a single output")
            return _class_weights(class_weight, ys[0])
        if sample_weight is None:
            return None
        if len(ys) > 1 and isinstance(sample_weight, (list, tuple, dict)):
            parts = self._split(sample_weight, self.output_names, len(ys), f"{what} output")
            columns = [
                np.ones(n) if part is None else _weight_array(part, n, f"{what}[{k}]")
                for k, part in enumerate(parts)
            ]
            return np.stack(columns, axis=1)
        return _weight_array(sample_weight, n, what)

    def _validation_arrays(self, xs, ys, sw, validation_split: float, validation_data):
        """``(xs, ys, sw, val)``: val is ``validation_data`` checked (a tuple
        ``(x_val, y_val, w_val)`` of arrays, or a `BatchSource`) if given, else the last
        ``validation_split`` of the samples (before shuffling, as Keras does), else None."""
        if validation_data is not None:
            return xs, ys, sw, self._batched_validation(validation_data)
        if not validation_split:
            return xs, ys, sw, None
        n = len(xs[0])
        split = int(n * (1.0 - validation_split))
        if split == 0 or split == n:
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation samples"
            )
        return (
            [a[:split] for a in xs],
            [a[:split] for a in ys],
            None if sw is None else sw[:split],
            (
                [a[split:] for a in xs],
                [a[split:] for a in ys],
                None if sw is None else sw[split:],
            ),
        )

    def _batched_validation(self, validation_data):
        """validation_data as given (a `PyDataset` or generator) or checked (a tuple), or None."""
        if validation_data is None:
            return None
        if data_adapters.is_batched(validation_data):
            return validation_data
        if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
            x_val, y_val = self._check_data(
                validation_data[0], validation_data[1], "validation x", "validation y"
            )
            w_val = self._sample_weights(
                validation_data[2] if len(validation_data) == 3 else None,
                None,
                y_val,
                len(x_val[0]),
                "validation sample_weight",
            )
            return (x_val, y_val, w_val)
        raise ValueError(
            "validation_data must be a tuple (x_val, y_val) or "
            "(x_val, y_val, sample_weight_val), a PyDataset or a generator"
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
        if tables.is_frame(x):  # pandas/polars: numeric columns in order, or by input name
            x = tables.frame_inputs(x, self.input_names if shapes is not None else None)
        if isinstance(x, np.ndarray) and shapes is not None and len(shapes) == 1:
            parts = [x]  # the common case, kept cheap for one-image predict calls
        else:
            names = self.input_names if shapes is not None else None
            parts = self._split(x, names, None if shapes is None else len(shapes), "input")
        label = [x_name] if len(parts) == 1 else [f"{x_name}[{i}]" for i in range(len(parts))]
        arrays = [
            validation.as_array(part, name, text=True)
            for part, name in zip(parts, label, strict=True)
        ]
        for array, name in zip(arrays[1:], label[1:], strict=True):
            validation.check_lengths(arrays[0], array, label[0], name)
        if not self.built:
            self._ensure_built([tuple(a.shape[1:]) for a in arrays])
            shapes = self.input_shapes()
        shapes = self._known(shapes)
        if len(shapes) != len(arrays):
            raise ValueError(f"the model has {len(shapes)} inputs, got {len(arrays)} arrays")
        arrays = [
            validation.expand_1d(array, shape) for array, shape in zip(arrays, shapes, strict=True)
        ]
        raw = self._raw_inputs()
        for array, shape, name, is_raw in zip(arrays, shapes, label, raw, strict=True):
            if not is_raw:  # text and missing values only reach layers that take them
                validation.check_numeric(array, name)
            validation.check_input_shape(array, shape, name)
            if not is_raw:
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
            if tables.is_frame(part):
                part = tables.from_frame(part, name).to_numpy()
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

    def _evaluate_arrays(
        self,
        xs,
        ys,
        batch_size: int,
        sample_weight: np.ndarray | None = None,
        steps: int | None = None,
        callback_list: CallbackList | None = None,
    ) -> dict[str, metric_module.Result]:
        """Loss and metrics over ``(xs, ys)`` (the first ``steps`` batches if given); with
        ``callback_list``, its test hooks are called as Keras calls them."""
        n = len(xs[0])
        batches = list(self._batches(n, batch_size))[:steps]

        def parts():
            for batch in batches:
                weights = None if sample_weight is None else sample_weight[batch]
                yield [a[batch] for a in xs], [a[batch] for a in ys], weights

        return self._evaluate_batches(parts(), callback_list)

    def _evaluate_batches(
        self, parts, callback_list: CallbackList | None
    ) -> dict[str, metric_module.Result]:
        """Loss and metrics over the checked batches ``(xs, ys, weights)`` of ``parts``."""
        metrics = [type(m)(**m.get_config()) for m in self.metrics]  # fresh running means
        totals = [0.0] * max(len(self._losses), 1)
        activity = 0.0  # activity penalties are per batch, weighted by its size as Keras'
        seen = 0
        hooks = callback_list is not None and callback_list.wants_test_batches
        if callback_list is not None:
            callback_list.on_test_begin()
        for step, (xb, yb, wb) in enumerate(parts):
            if hooks:
                callback_list.on_test_batch_begin(step)  # type: ignore[union-attr]
            outputs = self._run_forward(xb, training=False)
            activity += self.activity_loss() * len(outputs[0])
            for k, output in enumerate(outputs):
                per_sample = self._losses[k].per_sample(yb[k], output)
                if wb is None:
                    totals[k] += float(np.sum(per_sample, dtype=np.float64))
                else:
                    totals[k] += _weighted_sum(per_sample, _column(wb, k))
            for metric, k in zip(metrics, self._metric_outputs, strict=True):
                metric.update_state(yb[k], outputs[k])
            seen += len(xb[0])
            if hooks:
                callback_list.on_test_batch_end(  # type: ignore[union-attr]
                    step, self._evaluation_logs(totals, seen, metrics, activity)
                )
        results = self._evaluation_logs(totals, seen, metrics, activity)
        if callback_list is not None:
            callback_list.on_test_end(results)
        return results

    def _evaluation_logs(
        self, totals: list[float], seen: int, metrics, activity: float = 0.0
    ) -> dict[str, metric_module.Result]:
        """Mean losses over ``seen`` samples plus the weight penalties and the mean activity
        penalty (``activity`` summed over batches, each weighted by its size)."""
        means = [total / max(seen, 1) for total in totals]
        penalty = self.regularization_loss() + activity / max(seen, 1)
        results: dict[str, metric_module.Result]
        if len(means) == 1:
            results = {"loss": means[0] + penalty}
        else:
            weighted = sum(w * m for w, m in zip(self._loss_weights, means, strict=True))
            results = {"loss": weighted + penalty}
            results.update(
                {f"{name}_loss": m for name, m in zip(self.output_names, means, strict=True)}
            )
        results.update({metric.name: metric.result() for metric in metrics})
        return results

    def _run_evaluation(self, data, batch_size: int, steps: int | None, callback_list):
        """Evaluate checked arrays ``(xs, ys, weights)`` or a `PyDataset`/generator."""
        if isinstance(data, tuple):
            xs, ys, weights = data
            return self._evaluate_arrays(xs, ys, batch_size, weights, steps, callback_list)
        return self._evaluate_batches(self._checked_batches(data, steps), callback_list)

    def _checked_batches(self, data, steps: int | None):
        """The checked ``(xs, ys, weights)`` batches of a `PyDataset` or generator."""
        source = data_adapters.BatchSource(data, steps)
        for step, batch in enumerate(source.epoch()):
            bx, by, bw = data_adapters.unpack(batch)
            if by is None:
                raise ValueError(
                    f"evaluate: batch {step} has no targets: it must be (x, y) or "
                    "(x, y, sample_weight)"
                )
            xs, ys = self._check_data(bx, by, "batch x", "batch y")
            yield xs, ys, self._sample_weights(bw, None, ys, len(xs[0]), "batch sample_weight")

    def _inference_callbacks(self, callbacks) -> CallbackList | None:
        callbacks = validation.check_callbacks(callbacks)
        return CallbackList(callbacks, self) if callbacks else None

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        verbose="auto",
        sample_weight=None,
        steps: int | None = None,
        callbacks=None,
        return_dict: bool = False,
    ):
        """Loss and metrics on ``(x, y)``: a list ``[loss, *metrics]`` (or a dict, with
        ``return_dict=True``; the loss alone for a model without metrics).

        ``x`` may be a `PyDataset` or generator of ``(x, y[, sample_weight])`` batches (then
        ``y`` is None). ``sample_weight`` weights each sample's loss (Keras' reduction:
        ``sum(w_i * loss_i) / n``). ``steps``: evaluate only that many batches.
        ``callbacks`` get ``on_test_begin``, ``on_test_batch_begin/end`` and ``on_test_end``.
        """
        self._require_compiled("evaluate")
        batch_size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
        if steps is not None:
            steps = validation.positive_int(steps, "steps")
        callback_list = self._inference_callbacks(callbacks)
        if data_adapters.is_batched(x):
            _check_batched_arguments(y, sample_weight, None, 0.0, x)
            results = self._evaluate_batches(self._checked_batches(x, steps), callback_list)
            count = None
        else:
            xs, ys = self._check_data(x, y)
            weights = self._sample_weights(sample_weight, None, ys, len(xs[0]), "sample_weight")
            results = self._evaluate_arrays(xs, ys, batch_size, weights, steps, callback_list)
            count = len(xs[0])
        if verbose:  # "auto" counts as 1, as in Keras
            prefix = "" if count is None else f"{count}/{count} - "
            print(f"{prefix}{format_logs(results)}")
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self, x, batch_size: int | None = None, verbose=0, steps: int | None = None, callbacks=None
    ):
        """The model's outputs for ``x``: shape ``(n, *output_shape)`` (a list, or a dict by
        output name, for several outputs).

        ``x`` may be a `PyDataset` or generator of batches (``x`` or ``(x, ...)``; targets
        are ignored). ``steps``: predict only that many batches. ``callbacks`` get
        ``on_predict_begin``, ``on_predict_batch_begin/end`` (with ``{"outputs": ...}``) and
        ``on_predict_end``. ``verbose`` is accepted and prints nothing.
        """
        if steps is not None:
            steps = validation.positive_int(steps, "steps")
        if (
            callbacks is None
            and steps is None
            and isinstance(x, np.ndarray)
            and self.built
            and self._output_structure == "tensor"
            and not any(self._raw_inputs())
        ):
            shapes = self._known(self.input_shapes())
            if len(shapes) == 1:  # one array in, one out: no lists (one-image calls stay cheap)
                x = validation.expand_1d(validation.as_array(x, "x"), shapes[0])
                validation.check_input_shape(x, shapes[0], "x")
                validation.check_finite(x, "x")
                size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
                out = np.empty((len(x), *self._known(self.output_shapes())[0]), dtype=self.dtype)
                for start in range(0, len(x), size):
                    out[start : start + size] = self._run_forward([x[start : start + size]], False)[
                        0
                    ]
                return out
        callback_list = self._inference_callbacks(callbacks)
        batch_size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
        if data_adapters.is_batched(x):
            parts = (
                self._check_inputs(data_adapters.unpack(batch)[0], "batch x", cast=False)
                for batch in data_adapters.BatchSource(x, steps).epoch()
            )
            outputs = self._predict_batches(parts, callback_list)
        else:
            xs = self._check_inputs(x, cast=False)  # layers cast what they need
            batches = list(self._batches(len(xs[0]), batch_size))[:steps]
            outputs = self._predict_batches(
                ([a[batch] for a in xs] for batch in batches), callback_list
            )
        return self._structure_outputs(outputs)

    def _predict_batches(self, parts, callback_list: CallbackList | None) -> list[np.ndarray]:
        hooks = callback_list is not None and callback_list.wants_predict_batches
        if callback_list is not None:
            callback_list.on_predict_begin()
        chunks: list[list[np.ndarray]] = []
        for step, xb in enumerate(parts):
            if hooks:
                callback_list.on_predict_batch_begin(step)  # type: ignore[union-attr]
            outputs = [out.copy() for out in self._run_forward(xb, training=False)]
            chunks.append(outputs)
            if hooks:
                logs = {"outputs": outputs[0] if len(outputs) == 1 else outputs}
                callback_list.on_predict_batch_end(step, logs)  # type: ignore[union-attr]
        if callback_list is not None:
            callback_list.on_predict_end()
        shapes = self._known(self.output_shapes())
        if not chunks:
            return [np.empty((0, *shape), dtype=self.dtype) for shape in shapes]
        return [np.concatenate([c[k] for c in chunks]) for k in range(len(shapes))]

    def _training_mode_outputs(self, x):
        """The outputs for ``x`` computed as during training (dropout and noise layers
        active), in one batch; no weight changes. What ``model(x, training=True)`` returns."""
        xs = self._check_inputs(x, cast=False)
        return self._structure_outputs([out.copy() for out in self._run_forward(xs, training=True)])

    def _structure_outputs(self, outputs: list[np.ndarray]):
        structure = self._output_structure
        if structure == "tensor":
            return outputs[0]
        if structure == "list":
            return outputs
        return dict(zip(structure, outputs, strict=True))

    # -- one batch ----------------------------------------------------------------------------
    def train_on_batch(
        self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False
    ):
        """One optimizer step on ``(x, y)``; returns the loss (and metrics) of that batch.
        ``sample_weight``/``class_weight`` weight the loss as in `fit`."""
        self._require_compiled("train_on_batch")
        xs, ys = self._check_data(x, y)
        weights = self._sample_weights(sample_weight, class_weight, ys, len(xs[0]), "sample_weight")
        self._build_optimizer()
        for tracker in self._trackers():
            tracker.reset_state()
        loss = self.train_step(xs, ys, weights)
        results = {"loss": loss, **{t.name: t.result() for t in self._trackers()}}
        return _results(results, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss (and metrics) of the model on one batch ``(x, y)``, without training."""
        self._require_compiled("test_on_batch")
        xs, ys = self._check_data(x, y)
        weights = self._sample_weights(sample_weight, None, ys, len(xs[0]), "sample_weight")
        return _results(self._evaluate_arrays(xs, ys, len(xs[0]), weights), return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch ``x``."""
        xs = self._check_inputs(x, cast=False)
        return self._structure_outputs(
            [out.copy() for out in self._run_forward(xs, training=False)]
        )


class _Batches:
    """Gathers the samples (and weights) of a batch into buffers allocated once per fit call."""

    def __init__(
        self,
        xs: list[np.ndarray],
        ys: list[np.ndarray],
        sw: np.ndarray | None,
        batch_size: int,
    ):
        self.xs, self.ys, self.sw = xs, ys, sw
        self.x_buffers = [np.empty((batch_size, *a.shape[1:]), dtype=a.dtype) for a in xs]
        self.y_buffers = [np.empty((batch_size, *a.shape[1:]), dtype=a.dtype) for a in ys]
        self.w_buffer = None if sw is None else np.empty((batch_size, *sw.shape[1:]))

    def take(
        self, index: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]:
        n = len(index)
        xb = [
            np.take(a, index, axis=0, out=b[:n])
            for a, b in zip(self.xs, self.x_buffers, strict=False)
        ]
        yb = [
            np.take(a, index, axis=0, out=b[:n])
            for a, b in zip(self.ys, self.y_buffers, strict=False)
        ]
        wb = (
            None
            if self.sw is None or self.w_buffer is None
            else np.take(self.sw, index, axis=0, out=self.w_buffer[:n])
        )
        return xb, yb, wb


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


def _check_validation_freq(value) -> int | list[int]:
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise ValueError(f"validation_freq must be an int or a list of ints, got {value!r}")
    if isinstance(value, int):
        return validation.positive_int(value, "validation_freq")
    return [validation.positive_int(v, "validation_freq entries") for v in value]


def _should_validate(epoch: int, freq: int | list[int]) -> bool:
    """Whether to validate after ``epoch`` (0-based), as Keras' ``_should_eval``."""
    if isinstance(freq, int):
        return (epoch + 1) % freq == 0
    return epoch + 1 in freq


def _check_batched_arguments(y, sample_weight, class_weight, validation_split, x) -> None:
    """Arguments that a `PyDataset` or generator ``x`` carries itself (Keras refuses them)."""
    kind = "a PyDataset" if isinstance(x, data_adapters.PyDataset) else "a generator"
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(
                f"{name} must be None when x is {kind}: its batches carry "
                "(x, y) or (x, y, sample_weight)"
            )
    if class_weight is not None and not isinstance(x, data_adapters.PyDataset):
        raise ValueError("class_weight is not supported when x is a generator")
    if validation_split:
        raise ValueError(
            f"validation_split needs arrays; x is {kind}: pass validation_data instead"
        )


def _class_weights(class_weight, y: np.ndarray) -> np.ndarray:
    """One weight per sample from ``{class_index: weight}`` (Keras' conversion: the class is
    the argmax of one-hot targets, else the rounded label; unlisted classes weigh 1)."""
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}"
        )
    table: dict[int, float] = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise ValueError(f"class_weight keys must be class indices (ints), got {key!r}")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
        ):
            raise ValueError(f"class_weight[{key}] must be a finite number, got {value!r}")
        table[int(key)] = float(value)
    labels = y
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    labels = np.round(labels).astype(np.int64).reshape(len(y))
    classes, inverse = np.unique(labels, return_inverse=True)
    per_class = np.array([table.get(int(c), 1.0) for c in classes], dtype=np.float64)
    return per_class[inverse.reshape(-1)]


def _weighted_sum(per_sample: np.ndarray, weights: np.ndarray) -> float:
    """``sum(w_i * loss_i)``; a loss with more than one value per sample (an output of rank
    > 2) counts each sample's mean, as Keras' "sum_over_batch_size" divides by them all."""
    values = per_sample.astype(np.float64).reshape(len(weights), -1).mean(axis=1)
    return float(np.dot(values, weights))


def _weight_array(value, n: int, what: str) -> np.ndarray:
    """One finite float64 weight per sample (shape ``(n,)``; ``(n, 1)`` accepted)."""
    weights = validation.as_array(value, what)
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.ndim != 1 or len(weights) != n:
        raise ValueError(
            f"{what} must have one weight per sample, shape ({n},); got shape {weights.shape}"
        )
    if weights.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numbers, got dtype {weights.dtype}")
    weights = weights.astype(np.float64)
    validation.check_finite(weights, what)
    return weights


def _column(weights: np.ndarray, k: int) -> np.ndarray:
    """Output ``k``'s sample weights: ``weights`` itself if one array serves every output."""
    return weights if weights.ndim == 1 else weights[:, k]
