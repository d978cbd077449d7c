"""`MlflowCallback`: log a ``fit`` to MLflow (parameters, per-epoch metrics, the model file).

Named and shaped like MLflow's own Keras callback (``mlflow.keras.MlflowCallback``: the
``optimizer_*`` parameters, ``model_summary.txt``, metrics at step = epoch, or every N steps
with ``log_every_n_steps``), plus the fit arguments, the layers and the trained model as an
artifact (``model/model.safetensors`` by default, or a ``.keras`` file; never a pickle).

MLflow (``pip install 'multilayer[mlflow]'``) is imported when a `MlflowCallback` is created,
not when multilayer is. Where the run goes:

- inside ``with mlflow.start_run():`` (and no ``tracking_uri`` given), into that run, which
  is left open;
- otherwise into a new run of experiment ``experiment_name`` (if None:
  ``MLFLOW_EXPERIMENT_NAME``, else MLflow's ``Default``; created if missing) at
  ``tracking_uri``, or at MLflow's current tracking URI (``MLFLOW_TRACKING_URI``, or MLflow
  3's local default: ``sqlite:///mlflow.db`` with artifacts under ``./mlruns``). The
  callback ends that run: ``FINISHED``, ``FAILED`` if ``fit`` raised, ``KILLED`` on Ctrl-C.

``callback.run_id`` names the run once training has started.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from multilayer.models.callbacks import Callback

#: The install hint in the ImportError raised without MLflow.
INSTALL_HINT = "pip install 'multilayer[mlflow]'"
#: The model file formats the artifact may have (both safe to load; never pickle).
MODEL_SUFFIXES = (".safetensors", ".keras")
#: MLflow's limit on a parameter's value (longer values are cut, with "...").
MAX_PARAM_LENGTH = 6000


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as error:
        raise ImportError(f"callbacks.MlflowCallback logs with MLflow: {INSTALL_HINT}") from error
    return mlflow


def _param_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _describe(layer) -> str:
    """``"dense: Dense (None, 8)"``: a layer's name, class and output shape (Keras' way)."""
    shape = layer.output_shape
    if shape is None:
        return f"{layer.name}: {type(layer).__name__}"
    return f"{layer.name}: {type(layer).__name__} ({', '.join(['None', *map(str, shape)])})"


def _optimizer(model) -> Any:
    """The model's optimizer (fit needs a compiled model, so there is one)."""
    if model.optimizer is None:
        raise RuntimeError("call compile(optimizer=..., loss=...) first")
    return model.optimizer


class MlflowCallback(Callback):
    """Log parameters, metrics and the trained model of ``fit`` to an MLflow run (where: see
    the module docstring).

    Logged at the start of training (or, for a model that ``fit`` builds from its first
    batch, once it is built): ``optimizer_name`` and ``optimizer_{key}`` for each
    entry of ``optimizer.get_config()``, the fit arguments ``epochs``, ``steps_per_epoch``,
    ``initial_epoch`` and (for in-memory arrays) ``batch_size``, the model's ``layers``
    (``name: Class output_shape`` each), ``total_params`` and ``trainable_params``, and the
    artifact ``model_summary.txt``. At each epoch end (step = epoch, 0-based): every scalar
    log (``loss``, ``accuracy``, ``val_loss``, ...; per-class arrays are not scalars and are
    skipped). At the end of a successful ``fit``: the model file under ``model/``.

    Args:
        log_every_epoch: log the metrics at each epoch end.
        log_every_n_steps: instead, log the running metrics every that many optimizer steps
            (step = optimizer iterations); needs ``log_every_epoch=False`` (MLflow's rule).
        tracking_uri: where to log (None: inside an active run, that run; else MLflow's
            current tracking URI).
        experiment_name: the experiment of a new run (None: ``MLFLOW_EXPERIMENT_NAME`` or
            ``Default``).
        run_name: the name of a new run (None: MLflow picks one).
        tags: tags set on the run.
        log_model: log the trained model as an artifact.
        model_filename: its file name; the extension picks the format (``.safetensors`` or
            ``.keras``).

    Raises:
        ValueError: inconsistent ``log_every_*`` arguments, or a model file name whose
            extension is not ``.safetensors`` or ``.keras``.
        ImportError: MLflow is not installed.
    """

    def __init__(
        self,
        log_every_epoch: bool = True,
        log_every_n_steps: int | None = None,
        *,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        log_model: bool = True,
        model_filename: str = "model.safetensors",
    ):
        super().__init__()
        if log_every_epoch and log_every_n_steps is not None:
            raise ValueError(
                "MlflowCallback: log_every_n_steps must be None when log_every_epoch=True, got "
                f"log_every_n_steps={log_every_n_steps!r}"
            )
        if not log_every_epoch and (
            isinstance(log_every_n_steps, bool)
            or not isinstance(log_every_n_steps, int)
            or log_every_n_steps <= 0
        ):
            raise ValueError(
                "MlflowCallback: with log_every_epoch=False, log_every_n_steps must be a "
                f"positive number of steps, got {log_every_n_steps!r}"
            )
        if Path(model_filename).name != model_filename or not model_filename.endswith(
            MODEL_SUFFIXES
        ):
            raise ValueError(
                "MlflowCallback: model_filename must be a file name ending in .safetensors or "
                f".keras, got {model_filename!r}"
            )
        self._mlflow = _mlflow()
        self.log_every_epoch = bool(log_every_epoch)
        self.log_every_n_steps = log_every_n_steps
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.log_model = bool(log_model)
        self.model_filename = model_filename
        #: the run logged into (set when training starts)
        self.run_id: str | None = None
        self._client: Any = None
        self._owns_run = False
        self._described = False
        if log_every_n_steps is not None:
            self.on_train_batch_end = self._train_batch_end  # type: ignore[method-assign]

    # -- the run ----------------------------------------------------------------------------
    def _start_run(self) -> None:
        mlflow = self._mlflow
        active = mlflow.active_run() if self.tracking_uri is None else None
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        if active is not None:
            self.run_id, self._owns_run = active.info.run_id, False
            if self.tags:
                for key, value in self.tags.items():
                    self._client.set_tag(self.run_id, key, value)
            return
        name = self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"
        experiment = self._client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self._client.create_experiment(name)
        )
        run = self._client.create_run(experiment_id, run_name=self.run_name, tags=self.tags)
        self.run_id, self._owns_run = run.info.run_id, True

    def _log_metrics(self, logs: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, value in logs.items()
            if np.ndim(value) == 0
        ]
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)

    def _parameters(self) -> dict[str, str]:
        model = self.trained_model()
        optimizer = _optimizer(model)
        params: dict[str, object] = {"optimizer_name": type(optimizer).__name__}
        params.update({f"optimizer_{k}": v for k, v in optimizer.get_config().items()})
        loop = model.loop
        params["epochs"] = self.params.get("epochs")
        params["steps_per_epoch"] = self.params.get("steps")
        if loop is not None:
            params["initial_epoch"] = loop.epoch
            if loop.n_samples:  # in-memory arrays (a PyDataset or generator makes its batches)
                params["batch_size"] = loop.batch_size
        params["layers"] = ", ".join(_describe(layer) for layer in model.layers)
        params["total_params"] = model.count_params()
        params["trainable_params"] = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        return {key: _param_value(value) for key, value in params.items() if value is not None}

    def _log_parameters(self) -> None:
        from mlflow.entities import Param

        params = self._parameters()
        logged = self._client.get_run(self.run_id).data.params
        changed = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
        if changed:  # MLflow keeps a run's parameters unchanged: a second fit into one run
            warnings.warn(
                f"MlflowCallback: run {self.run_id} already has different values for "
                f"{', '.join(changed)}; they are not logged again",
                stacklevel=3,
            )
        new = [Param(k, v) for k, v in params.items() if k not in logged]
        for start in range(0, len(new), 100):  # MLflow takes up to 100 parameters a call
            self._client.log_batch(self.run_id, params=new[start : start + 100])

    def _log_model(self) -> None:
        with tempfile.TemporaryDirectory(prefix="multilayer-mlflow-") as directory:
            path = Path(directory) / self.model_filename
            self.trained_model().save(path)
            self._client.log_artifact(self.run_id, str(path), artifact_path="model")

    # -- hooks ------------------------------------------------------------------------------
    def _describe_model(self) -> None:
        """The parameters and ``model_summary.txt``, once the model is built (at the start of
        training, or after the first batch for a model that fit builds from it)."""
        from multilayer.models.summary import summary_text

        if self._described or not self.trained_model().built:
            return
        self._log_parameters()
        self._client.log_text(self.run_id, summary_text(self.trained_model()), "model_summary.txt")
        self._described = True

    def on_train_begin(self, logs=None):
        self._described = False
        self._start_run()
        self._describe_model()

    def on_epoch_end(self, epoch, logs=None):
        self._describe_model()
        if self.log_every_epoch:
            self._log_metrics(logs or {}, epoch)

    def _train_batch_end(self, batch, logs=None):
        self._describe_model()
        step = int(_optimizer(self.trained_model()).iterations)
        if self.log_every_n_steps and step % self.log_every_n_steps == 0:
            self._log_metrics(logs or {}, step)

    def on_train_end(self, logs=None):
        if self._client is None or self.run_id is None:
            return
        # fit calls on_train_end from its exception handler when training fails
        error = sys.exc_info()[0]
        try:
            if error is None and self.log_model:
                self._log_model()
        finally:
            if self._owns_run:
                status = (
                    "FINISHED"
                    if error is None
                    else ("KILLED" if issubclass(error, KeyboardInterrupt) else "FAILED")
                )
                self._client.set_terminated(self.run_id, status)
            self._client = None
