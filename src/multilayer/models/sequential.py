"""`Sequential`: a stack of layers, trained with Keras' compile / fit / evaluate / predict.

The training loop is deliberately plain: shuffle the indices, gather a batch, run the layers
forward, get the loss gradient, run the layers backward, and let the optimizer update the one
flat parameter vector. Batches are gathered into reused buffers and every layer writes into
its own reused buffers, so the loop allocates almost nothing.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from functools import partial

import numpy as np

from multilayer.engine import layers as layer_module
from multilayer.engine import losses as loss_module
from multilayer.engine import metrics as metric_module
from multilayer.engine import optimizers as optimizer_module
from multilayer.engine.config import resolve_dtype
from multilayer.engine.layers import InputLayer, Layer
from multilayer.engine.parameters import ParameterBuffer
from multilayer.engine.random import new_generator
from multilayer.errors import TrainingError
from multilayer.models import validation
from multilayer.models.callbacks import CallbackList, History
from multilayer.models.checkpoint import (
    CheckpointConfig,
    Checkpointer,
    TrainingInterrupted,
    TrainingState,
)
from multilayer.models.input_scale import InputScale
from multilayer.models.progress import ProgressLogger, format_logs

#: Batch size used by evaluate / predict / validation when none is given. Larger batches are
#: faster and give the same results up to float rounding.
INFERENCE_BATCH_SIZE = 1024


class Sequential:
    """A linear stack of layers.

    Args:
        layers: the layers, first to last (or add them later with `add`).
        name: the model's name.
        dtype: ``"float32"`` (default) or ``"float64"``.
        seed: seed of the model's own random generator (weights, shuffling, dropout); drawn
            from the global generator (`multilayer.utils.set_random_seed`) when omitted.
    """

    def __init__(
        self,
        layers: list[Layer] | None = None,
        name: str = "sequential",
        dtype=None,
        seed: int | None = None,
    ):
        self.name = name
        self.dtype = resolve_dtype(dtype)
        self.layers: list[Layer] = []
        self._seed = seed
        self.rng: np.random.Generator | None = None
        self.parameters: ParameterBuffer | None = None
        self.built = False
        self.optimizer = None
        self.loss = None
        self.metrics: list = []
        self.stop_training = False
        self.history: History | None = None
        #: The pixel values the model takes (saved with it); None when not recorded.
        self.input_scale: InputScale | None = None
        #: How the model was trained (recipe, dataset, seed, test metrics...), saved with it.
        self.training_info: dict = {}
        for layer in layers or []:
            self.add(layer)

    # -- structure ------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer. A first layer with a known input shape builds the model at once."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if self.built:
            raise RuntimeError("cannot add layers to a model that is already built")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(
                f"a layer named {layer.name!r} is already in the model; layer names must be unique"
            )
        if isinstance(layer, InputLayer) and self.layers:
            raise ValueError("Input(...) can only be the first layer of a Sequential model")
        self.layers.append(layer)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.layers[-1].output_shape if self.built else None

    def build(self, input_shape=None) -> None:
        """Size every layer for samples of ``input_shape`` and allocate the parameters."""
        if self.built:
            return
        if not self.layers:
            raise ValueError("the model has no layers: add some before building or training it")
        shape = tuple(input_shape) if input_shape is not None else self.layers[0].input_shape
        if shape is None:
            raise ValueError(
                "the model's input shape is unknown: give the first layer input_shape=..., start "
                "with Input(shape=...), or call fit / predict with data"
            )
        for layer in self.layers:
            layer.dtype = layer.dtype or self.dtype
            layer.build(tuple(shape))
            shape = layer.output_shape
        self.rng = new_generator(self._seed)
        for layer in self.layers:
            if layer.rng is None:
                layer.rng = self.rng
        self.parameters = ParameterBuffer(self.layers, self.dtype, self.rng)
        # Layers before the first one with parameters need no backward pass at all.
        self._first_trainable = next(
            (i for i, layer in enumerate(self.layers) if layer.parameter_specs), len(self.layers)
        )
        self.built = True

    def _ensure_built(self, x: np.ndarray) -> None:
        if not self.built:
            self.build(self.input_shape or x.shape[1:])

    def _build_if_possible(self) -> None:
        """Build now if the input shape is known (Keras builds as soon as it can)."""
        if not self.built and self.layers and self.input_shape is not None:
            self.build()

    def count_params(self) -> int:
        self._build_if_possible()
        if not self.built:
            raise ValueError("the model is not built yet, so it has no parameters")
        return self.parameters.size

    # -- compile ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer, the loss and the metrics (Keras' defaults: RMSprop, no metrics).

        ``metrics=["accuracy"]`` picks the accuracy that matches the loss.
        """
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizer_module.get(optimizer)
        self.loss = loss_module.get(loss)
        if isinstance(metrics, (str, metric_module.Metric)):
            metrics = [metrics]
        self.metrics = [metric_module.get(m, self.loss) for m in (metrics or [])]
        self._compile_config = {
            "optimizer": optimizer_module.serialize(self.optimizer),
            "loss": loss_module.serialize(self.loss),
            # a name as given, a Metric object with its arguments (AUC(curve="PR") must not
            # come back as the default AUC)
            "metrics": [
                m if isinstance(m, str) else metric_module.serialize(resolved)
                for m, resolved in zip(metrics or [], self.metrics, strict=True)
            ],
        }
        self._optimizer_built = False

    def _require_compiled(self, method: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"call compile(optimizer=..., loss=...) before {method}()")

    def _fused(self) -> bool:
        """Whether the loss absorbs the last layer's activation (softmax/sigmoid + cross-entropy)."""
        activation = getattr(self.layers[-1], "activation", None)
        return (
            self.loss.fused_activation is not None
            and not self.loss.from_logits
            and activation is not None
            and activation.name == self.loss.fused_activation
        )

    def _build_optimizer(self) -> None:
        if not self._optimizer_built:
            segments = [
                slice(offset, offset + spec.size) for _, spec, offset in self.parameters.entries
            ]
            self.optimizer.build(self.parameters.size, self.dtype, segments)
            self._optimizer_built = True

    # -- forward / backward -----------------------------------------------------------------
    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def _backward(self, grad: np.ndarray, fused: bool) -> None:
        last = len(self.layers) - 1
        for index in range(last, self._first_trainable - 1, -1):
            layer = self.layers[index]
            need_input_grad = index > self._first_trainable
            if index == last and fused:
                grad = layer.backward(grad, need_input_grad, fused=True)
            else:
                grad = layer.backward(grad, need_input_grad)

    def _regularization_loss(self) -> float:
        return sum(layer.regularization_loss() for layer in self.layers)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step on a batch; returns the batch loss (before the update)."""
        outputs = self._forward(x, training=True)
        loss = (
            float(np.mean(self.loss.per_sample(y, outputs), dtype=np.float64))
            + self._regularization_loss()
        )
        for metric in self.metrics:
            metric.update_state(y, outputs)
        fused = self._fused()
        grad = (
            self.loss.fused_gradient(y, outputs)
            if fused
            else self.loss.gradient(y, outputs).astype(self.dtype)
        )
        self._backward(grad, fused)
        self._check_divergence(loss)
        self.optimizer.apply(self.parameters.values, self.parameters.grads)
        return loss

    def _check_divergence(self, loss: float) -> None:
        """Refuse to apply an update computed from a non-finite loss or gradient, so the
        model keeps the last good weights. One dot product per step; details only on failure."""
        grads = self.parameters.grads
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
            if np.isfinite(self.parameters.values).all()
            else "the weights themselves are no longer finite: reload the last checkpoint"
        )
        raise TrainingError(
            f"training diverged: {what} at optimizer step {self.optimizer.iterations + 1}; "
            f"training stopped and {kept}. Try a lower learning rate, inputs scaled to about "
            "[0, 1] (e.g. Rescaling(1/255)), or gradient clipping (clipnorm=1.0)."
        )

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
        checkpoint: CheckpointConfig | None = None,
    ) -> History:
        """Train for ``epochs`` epochs (Keras' signature and defaults: batch_size 32).

        Args:
            x: inputs, shape ``(n, *input_shape)``, any numeric dtype (uint8 images are fine).
            y: targets as the loss expects them (one-hot, integer labels, values).
            validation_split: fraction of the *last* samples held out for validation (before
                shuffling, as Keras does).
            validation_data: ``(x_val, y_val)``; overrides validation_split.
            verbose: 0 silent, 1 progress bar, 2 one line per epoch; "auto" is 1.
            checkpoint: a `multilayer.models.checkpoint.CheckpointConfig` to write crash-safe
                checkpoints (weights, optimizer and random-generator state, position in the
                epoch, history) and, with ``resume=True``, to continue from the newest one.
                With it, Ctrl-C writes a checkpoint and raises `TrainingInterrupted`.

        Returns:
            a `History` whose ``history`` maps each log key to its per-epoch values.

        Raises:
            TrainingError: the loss became NaN or infinite (the weights stay those from
                before the offending batch), or a checkpoint does not match this run.
        """
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
        x, y = self._check_data(x, y)
        x, y, x_val, y_val = self._validation_arrays(x, y, validation_split, validation_data)
        self._build_optimizer()

        steps = -(-len(x) // batch_size)
        checkpointer = Checkpointer(checkpoint, self) if checkpoint is not None else None
        resumed = checkpointer.restore(batch_size, len(x), shuffle) if checkpointer else None
        if resumed is not None:
            history = History()
            history.history, history.epoch = resumed.history, resumed.history_epochs
            initial_epoch = resumed.epoch
        elif initial_epoch > 0 and self.history is not None:
            history = self.history
        else:
            history = History()
        self.history = history
        extra = [ProgressLogger(epochs, steps, verbose)] if verbose else []
        callback_list = CallbackList([history, *callbacks, *extra], self)
        self.stop_training = False
        rows = min(batch_size, len(x))  # batch_size may exceed the data: no larger buffers
        x_batch = np.empty((rows, *x.shape[1:]), dtype=x.dtype)
        y_batch = np.empty((rows, *y.shape[1:]), dtype=y.dtype)

        def training_state(epoch, step, order, loss_sum, seen) -> TrainingState:
            # Everything a resumed run needs to repeat this one exactly (see checkpoint.py).
            return TrainingState(
                epoch=epoch,
                step=step,
                order=order if step else None,
                loss_sum=loss_sum,
                seen=seen,
                metrics=[m.get_state() for m in self.metrics] if step else [],
                history={key: list(values) for key, values in history.history.items()},
                history_epochs=list(history.epoch),
                batch_size=batch_size,
                n_samples=len(x),
                shuffle=shuffle,
            )

        self._training_state = training_state  # for ModelCheckpoint(save_training_state=True)
        callback_list.on_train_begin()
        interrupt_guard = checkpointer.catch_interrupt() if checkpointer else nullcontext()
        try:
            with interrupt_guard:
                for epoch in range(initial_epoch, epochs):
                    mid_epoch = resumed is not None and resumed.epoch == epoch and resumed.step > 0
                    for index, metric in enumerate(self.metrics):
                        metric.reset_state()
                        if mid_epoch:  # the running sums of the checkpointed partial epoch
                            metric.set_state(resumed.metrics[index])
                    callback_list.on_epoch_begin(epoch)
                    if mid_epoch:
                        order, first_step = resumed.order, resumed.step
                        loss_sum, seen = resumed.loss_sum, resumed.seen
                    else:
                        order = self.rng.permutation(len(x)) if shuffle else np.arange(len(x))
                        first_step, loss_sum, seen = 0, 0.0, 0
                    for step in range(first_step, steps):
                        index = order[step * batch_size : (step + 1) * batch_size]
                        n = len(index)
                        xb = np.take(x, index, axis=0, out=x_batch[:n])
                        yb = np.take(y, index, axis=0, out=y_batch[:n])
                        callback_list.on_train_batch_begin(step)
                        batch_loss = self.train_step(xb, yb)
                        loss_sum += batch_loss * n
                        seen += n
                        logs = {
                            "loss": loss_sum / seen,
                            **{m.name: m.result() for m in self.metrics},
                        }
                        callback_list.on_train_batch_end(step, logs)
                        if checkpointer:
                            checkpointer.after(
                                checkpointer.due_after_step(),
                                partial(training_state, epoch, step + 1, order, loss_sum, seen),
                            )
                        if self.stop_training:
                            break
                    logs = {
                        "loss": loss_sum / max(seen, 1),
                        **{m.name: m.result() for m in self.metrics},
                    }
                    if x_val is not None:
                        val = self._evaluate_arrays(x_val, y_val, INFERENCE_BATCH_SIZE)
                        logs.update({f"val_{key}": value for key, value in val.items()})
                    callback_list.on_epoch_end(epoch, logs)
                    if checkpointer:
                        last = epoch + 1 == epochs or self.stop_training
                        checkpointer.after(
                            checkpointer.due_after_epoch(epoch, last),
                            partial(training_state, epoch + 1, 0, None, 0.0, 0),
                        )
                    if self.stop_training:
                        break
        except (TrainingError, TrainingInterrupted):
            callback_list.on_train_end()  # close progress bars and log files
            raise
        finally:
            self._training_state = None  # it references the training data
        callback_list.on_train_end()
        return history

    def _validation_arrays(self, x, y, validation_split: float, validation_data):
        """``(x, y, x_val, y_val)``: validation_data if given, else the last
        ``validation_split`` of the samples (before shuffling, as Keras does), else no
        validation (None, None)."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            x_val, y_val = self._check_data(
                *validation_data, x_name="validation x", y_name="validation y"
            )
            return x, y, x_val, y_val
        if not validation_split:
            return x, y, None, None
        split = int(len(x) * (1.0 - validation_split))
        if split == 0 or split == len(x):
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation samples"
            )
        return x[:split], y[:split], x[split:], y[split:]

    def _check_data(self, x, y, x_name: str = "x", y_name: str = "y"):
        x = validation.as_array(x, x_name)
        y = validation.as_array(y, y_name)
        validation.check_lengths(x, y, x_name, y_name)
        self._ensure_built(x)
        validation.check_input_shape(x, self.input_shape, x_name)
        validation.check_finite(x, x_name)
        if np.issubdtype(x.dtype, np.floating) and x.dtype != self.dtype or x.dtype == bool:
            x = x.astype(self.dtype)
        y = validation.prepare_targets(y, self.loss, self.output_shape, self.dtype, y_name)
        return np.ascontiguousarray(x), y

    # -- evaluate / predict -------------------------------------------------------------------
    def _batches(self, n: int, batch_size: int):
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))

    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        metrics = [type(m)(**m.get_config()) for m in self.metrics]  # fresh running means
        total = 0.0
        for batch in self._batches(len(x), batch_size):
            outputs = self._forward(x[batch], training=False)
            total += float(np.sum(self.loss.per_sample(y[batch], outputs), dtype=np.float64))
            for metric in metrics:
                metric.update_state(y[batch], outputs)
        results = {"loss": total / len(x) + self._regularization_loss()}
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
        x, y = self._check_data(x, y)
        results = self._evaluate_arrays(x, y, batch_size)
        if verbose:  # "auto" counts as 1, as in Keras
            print(f"{len(x)}/{len(x)} - {format_logs(results)}")
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose=0) -> np.ndarray:
        """The model's outputs for ``x``: shape ``(n, *output_shape)``."""
        x = validation.as_array(x, "x")
        self._ensure_built(x)
        validation.check_input_shape(x, self.input_shape)
        validation.check_finite(x, "x")
        batch_size = validation.inference_batch_size(batch_size, INFERENCE_BATCH_SIZE)
        outputs = np.empty((len(x), *self.output_shape), dtype=self.dtype)
        for batch in self._batches(len(x), batch_size):
            outputs[batch] = self._forward(x[batch], training=False)
        return outputs

    def __call__(self, x) -> np.ndarray:
        return self.predict(x)

    # -- weights ------------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter array, layer by layer (kernel, then bias)."""
        self._build_if_possible()
        if not self.built:
            return []
        return [array.copy() for array in self.parameters.arrays()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set every parameter from a list shaped like `get_weights`'s result."""
        self._build_if_possible()
        if not self.built:
            raise ValueError("build the model (or fit it) before setting its weights")
        targets = self.parameters.arrays()
        if len(weights) != len(targets):
            raise ValueError(
                f"set_weights: expected a list of {len(targets)} arrays, got {len(weights)}"
            )
        for index, (target, value) in enumerate(zip(targets, weights, strict=False)):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"set_weights: array {index} has shape {value.shape}, expected {target.shape}"
                )
        for target, value in zip(targets, weights, strict=False):
            target[...] = value

    # -- description ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "layers": [layer_module.serialize(layer) for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        unexpected = set(config) - {"name", "dtype", "layers"}
        if unexpected:
            raise ValueError(f"unexpected keys in the model configuration: {sorted(unexpected)}")
        return cls(
            [layer_module.deserialize(layer) for layer in config.get("layers", [])],
            name=config.get("name", "sequential"),
            dtype=config.get("dtype"),
        )

    def to_json(self) -> str:
        return json.dumps(self.get_config())

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts, as Keras does."""
        from multilayer.models.summary import summary_text

        self._build_if_possible()
        print_fn(summary_text(self))

    def save(self, filepath, include_optimizer: bool = True) -> None:
        """Save the architecture, weights and compile configuration to one ``.safetensors`` file."""
        from multilayer.models.saving import save_model

        save_model(self, filepath, include_optimizer=include_optimizer)
