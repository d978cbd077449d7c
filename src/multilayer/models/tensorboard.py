"""`TensorBoard`: Keras' callback, writing event files that TensorBoard reads, without TensorFlow.

The files are written by tensorboardX (``pip install 'multilayer[tensorboard]'``), imported
when a `TensorBoard` is created, not when multilayer is. The layout and tags are Keras 3's:

- ``log_dir/train``: ``epoch_{name}`` for each training log (``epoch_loss``,
  ``epoch_accuracy``, ...) and ``epoch_learning_rate``, at step = epoch (0-based, as Keras);
  with ``update_freq="batch"`` or N, ``batch_{name}`` every N training batches at step = the
  number of batches trained in this ``fit``; weight histograms ``{layer}/{weight}/histogram``
  every ``histogram_freq`` epochs; with ``write_graph``, the model's layers and connections
  as tag ``keras`` in the shape of Keras' ``model.to_json()`` (plugin ``graph_keras_model``:
  TensorBoard's Graphs tab draws it as the conceptual graph) and its ``model.summary()`` as
  a text summary ``model_summary``.
- ``log_dir/validation`` (created once there is a validation result): ``epoch_{name}`` of
  the ``val_*`` logs without the prefix, and ``evaluation_{name}_vs_iterations`` at step =
  optimizer iterations.

Scalars are stored as float32, as TensorFlow stores them. A metric with one value per class
(``F1Score(average=None)``) has no scalar form and is not written.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from multilayer.models.callbacks import Callback

#: Numbers the event files this process writes: tensorboardX names a file by the second and
#: the host alone, so two fits within a second would write to the same file (TensorFlow adds
#: the process id and such a counter as well).
_FILE_NUMBERS = itertools.count()

#: The install hint in the ImportError raised without the writer library.
INSTALL_HINT = "pip install 'multilayer[tensorboard]'"


class _Writer:
    """What this module uses of tensorboardX, imported when a `TensorBoard` is created."""

    def __init__(self) -> None:
        try:
            from tensorboardX import FileWriter, summary
            from tensorboardX.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
        except ImportError as error:
            raise ImportError(
                f"callbacks.TensorBoard writes event files with tensorboardX: {INSTALL_HINT}"
            ) from error
        self.FileWriter = FileWriter
        self.summary = summary
        self.summary_pb2 = summary_pb2
        self.tensor_pb2 = tensor_pb2
        self.tensor_shape_pb2 = tensor_shape_pb2


def _scalars(logs: dict) -> dict[str, float]:
    """The logs that have a scalar value, as floats."""
    return {key: float(value) for key, value in logs.items() if np.ndim(value) == 0}


def _optimizer(model) -> Any:
    """The model's optimizer (fit needs a compiled model, so there is one)."""
    if model.optimizer is None:
        raise RuntimeError("call compile(optimizer=..., loss=...) first")
    return model.optimizer


class TensorBoard(Callback):
    """Write training logs for TensorBoard (Keras 3's arguments and file layout; see the
    module docstring for the tags).

    Args:
        log_dir: the directory to write into (``train/`` and ``validation/`` below it).
        histogram_freq: write weight histograms every that many epochs (0: never).
        write_graph: write the model's configuration (conceptual graph) and summary text.
        write_steps_per_second: also write ``epoch_steps_per_second`` (and
            ``batch_steps_per_second`` with a batch ``update_freq``).
        update_freq: ``"epoch"``, or ``"batch"`` / a positive integer N: also write the
            running means of the epoch as ``batch_*`` scalars every N batches.
        write_images, profile_batch, embeddings_freq, embeddings_metadata: Keras' arguments
            for TensorFlow features multilayer does not have; only their "off" values
            (False, 0, 0, None) are accepted.

    Raises:
        ValueError: an invalid ``histogram_freq`` or ``update_freq``, or an unsupported
            feature turned on.
        ImportError: tensorboardX is not installed.
    """

    def __init__(
        self,
        log_dir: str | Path = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: dict | None = None,
    ):
        super().__init__()
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int):
            raise ValueError(
                f"TensorBoard: histogram_freq must be a whole number of epochs, got {histogram_freq!r}"
            )
        if histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be >= 0, got {histogram_freq}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (
            isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq <= 0
        ):
            raise ValueError(
                "TensorBoard: update_freq must be 'epoch', 'batch' or a positive number of "
                f"batches, got {update_freq!r}"
            )
        unsupported = [
            name
            for name, value, off in (
                ("write_images", write_images, False),
                ("profile_batch", profile_batch, 0),
                ("embeddings_freq", embeddings_freq, 0),
                ("embeddings_metadata", embeddings_metadata, None),
            )
            if value != off and not (name == "profile_batch" and value is None)
        ]
        if unsupported:
            raise ValueError(
                f"TensorBoard: {', '.join(unsupported)} need TensorFlow's profiler, image or "
                "embedding projector support, which multilayer does not have; leave them at "
                "their defaults"
            )
        self._tbx = _Writer()
        self.log_dir = Path(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = bool(write_graph)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = update_freq
        self._writers: dict[str, Any] = {}
        self._global_train_batch = 0
        self._epoch_start = (0.0, 0)  # time and optimizer iterations at the epoch's start
        self._batch_start = 0.0
        self._model_written = False
        if update_freq != "epoch" or self.write_steps_per_second:
            # Only then does this callback need the training-batch hooks; without them fit
            # skips the per-batch logs entirely (see CallbackList).
            self.on_train_batch_begin = self._train_batch_begin  # type: ignore[method-assign]
            self.on_train_batch_end = self._train_batch_end  # type: ignore[method-assign]

    # -- writers ----------------------------------------------------------------------------
    def _writer(self, run: str) -> Any:
        """The event-file writer of ``log_dir/run`` (``train`` or ``validation``), opened on
        first use during a fit."""
        writer = self._writers.get(run)
        if writer is None:
            suffix = f".{os.getpid()}.{next(_FILE_NUMBERS)}"
            writer = self._tbx.FileWriter(str(self.log_dir / run), filename_suffix=suffix)
            self._writers[run] = writer
        return writer

    def _scalar(self, run: str, tag: str, value: float, step: int) -> None:
        self._writer(run).add_summary(self._tbx.summary.scalar(tag, value), step)

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _iterations(self) -> int:
        return int(_optimizer(self.trained_model()).iterations)

    # -- hooks ------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._close()  # a previous fit that failed before on_train_end
        self._global_train_batch = 0
        self._writer("train")
        self._model_written = False
        if self.write_graph and self.trained_model().built:
            self._write_model()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start = (time.perf_counter(), self._iterations())

    def _train_batch_begin(self, batch, logs=None):
        if self.write_steps_per_second:
            self._batch_start = time.perf_counter()

    def _train_batch_end(self, batch, logs=None):
        self._global_train_batch += 1
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        for name, value in _scalars(logs or {}).items():
            self._scalar("train", f"batch_{name}", value, step)
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._batch_start
            self._scalar("train", "batch_steps_per_second", 1.0 / max(seconds, 1e-9), step)

    def on_test_end(self, logs=None):
        if "train" not in self._writers:  # evaluate() outside fit: Keras writes nothing
            return
        step = self._iterations()
        for name, value in _scalars(logs or {}).items():
            self._scalar("validation", f"evaluation_{name}_vs_iterations", value, step)

    def on_epoch_end(self, epoch, logs=None):
        logs = _scalars(logs or {})
        train = {key: value for key, value in logs.items() if not key.startswith("val_")}
        validation = {key[4:]: value for key, value in logs.items() if key.startswith("val_")}
        train.setdefault("learning_rate", float(_optimizer(self.trained_model()).learning_rate))
        if self.write_steps_per_second:
            start, iterations = self._epoch_start
            seconds = time.perf_counter() - start
            steps = self._iterations() - iterations
            train["steps_per_second"] = steps / max(seconds, 1e-9)
        for name, value in train.items():
            self._scalar("train", f"epoch_{name}", value, epoch)
        for name, value in validation.items():
            self._scalar("validation", f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)
        if self.write_graph and not self._model_written:
            self._write_model()  # a model that fit built from its first batch
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        self._close()

    # -- what is written --------------------------------------------------------------------
    def _write_histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for variable in self.trained_model().weights:
            values = np.asarray(variable.numpy(), dtype=np.float64).ravel()
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            # 30 equal buckets: tf.summary.histogram's default
            summary = self._tbx.summary.histogram(f"{variable.path}/histogram", values, bins=30)
            writer.add_summary(summary, epoch)

    def _write_model(self) -> None:
        """The model summary as text and its graph as the ``keras`` tag the Graphs tab
        draws (at step 0)."""
        from multilayer.models.summary import summary_text

        model = self.trained_model()
        writer = self._writer("train")
        # indented: Markdown shows the table as code, in a fixed-width font
        text = "\n".join("    " + line for line in summary_text(model).splitlines())
        writer.add_summary(self._tensor_summary("model_summary", "text", b"", text), 0)
        summary = self._tensor_summary("keras", "graph_keras_model", b"1", _graph_config(model))
        writer.add_summary(summary, 0)
        self._model_written = True

    def _tensor_summary(self, tag: str, plugin: str, content: bytes, text: str) -> Any:
        """A string-tensor summary for ``plugin`` (what tf.summary writes for text and for
        Keras' model graph)."""
        proto = self._tbx
        metadata = proto.summary_pb2.SummaryMetadata(
            plugin_data=proto.summary_pb2.SummaryMetadata.PluginData(
                plugin_name=plugin, content=content
            )
        )
        tensor = proto.tensor_pb2.TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=proto.tensor_shape_pb2.TensorShapeProto(),
        )
        value = proto.summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
        return proto.summary_pb2.Summary(value=[value])


def _graph_config(model) -> str:
    """The model's layers and connections as JSON in the shape of Keras 3's
    ``model.to_json()`` (what Keras writes under the ``keras`` tag): each layer's
    ``class_name``, ``config.name`` and ``inbound_nodes`` (``keras_history`` references), and
    the model's ``input_layers``/``output_layers``. This is what TensorBoard's Graphs tab
    reads to draw the conceptual graph; it covers every layer, including those without a
    Keras file form. Layers' other settings are in the ``model_summary`` text."""

    def history(tensor) -> dict:
        return {
            "class_name": "__keras_tensor__",
            "config": {"keras_history": [tensor.layer.name, 0, tensor.index]},
        }

    layers, seen = [], set()

    def add(layer) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        node = layer.inbound_node
        inputs = list(node.inputs) if node is not None else []
        for tensor in inputs:  # a layer a Sequential model built without listing it
            add(tensor.layer)
        entry: dict[str, Any] = {"class_name": type(layer).__name__, "config": {"name": layer.name}}
        if inputs:
            entry["inbound_nodes"] = [{"args": [[history(t) for t in inputs]], "kwargs": {}}]
        layers.append(entry)

    for layer in model.layers:
        add(layer)
    config = {
        "name": model.name,
        "layers": layers,
        "input_layers": [[t.layer.name, 0, t.index] for t in model.inputs],
        "output_layers": [[t.layer.name, 0, t.index] for t in model.outputs],
    }
    class_name = "Sequential" if type(model).__name__ == "Sequential" else "Functional"
    return json.dumps({"class_name": class_name, "config": config})
