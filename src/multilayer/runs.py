"""Run directories: what ``mlp train`` writes, and how everything else reads it back.

A run directory holds one trained model and how it came to be::

    runs/20250101-120000-fast/
        model.safetensors   the model (architecture, weights, optimizer state, training_info)
        config.json         recipe, command-line flags, seed, dataset, library versions;
                            for a table, its TableSpec under "table" (``table_spec()``)
        history.csv         per-epoch metrics: "epoch" (0-based) then the log keys, sorted
        history.json        the same as {"epoch": [...], "loss": [...], "val_loss": [...], ...}
        metrics.json        test loss and accuracy, per-class precision/recall, confusion
                            matrix, training wall time, seconds per epoch
        report/index.html   the run's report (``mlp report``), with its PNG figures

Read one with ``RunDir(path)``: ``.model_path``, ``.config``, ``.history``, ``.metrics``
(``None`` for a file that is absent), ``.load_model()``. Write with the ``write_*`` methods:
each file is written atomically (temporary file + rename), so a reader never sees half a
file. JSON is strict: NaN and infinities are written as ``null``.

``resolve_model_path`` accepts what a user types after ``mlp evaluate``: a ``.safetensors``
file or a run directory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from multilayer.errors import DataError, ModelFileError
from multilayer.utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from multilayer.datasets import Dataset
    from multilayer.datasets.folder import ImageOptions
    from multilayer.tabular.spec import TableSpec

__all__ = [
    "CONFIG_FILE",
    "HISTORY_CSV",
    "HISTORY_JSON",
    "METRICS_FILE",
    "MODEL_FILE",
    "REPORT_DIR",
    "REPORT_HTML",
    "RunDir",
    "new_run_path",
    "json_safe",
    "resolve_model_path",
    "write_json",
]

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
METRICS_FILE = "metrics.json"
REPORT_DIR = "report"
REPORT_HTML = "index.html"


def json_safe(value):
    """``value`` with NaN/inf floats replaced by None, recursively (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return json_safe(value.tolist())
    return value


def write_json(path: str | Path, data) -> Path:
    """Write ``data`` as indented, strict JSON, atomically."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


#: Largest run-directory JSON file read (bytes): metrics.json of a 1000-class confusion matrix
#: is a few MB; anything larger is not a file ``mlp train`` wrote.
MAX_JSON_BYTES = 16 * 2**20


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number strict JSON allows")


def _read_json(path: Path) -> dict | None:
    """A run-directory JSON file holding an object; None if absent.

    Raises DataError, naming the file, for anything else: too large, not UTF-8, not strict
    JSON (NaN, nesting too deep), or JSON whose top level is not an object.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_JSON_BYTES:
        raise DataError(
            f"{path} is too large for a run file: {size:,} bytes (limit {MAX_JSON_BYTES:,})"
        )
    try:
        value = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DataError(f"{path} is not valid JSON ({error})") from None
    except RecursionError:
        raise DataError(f"{path} is not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} must hold a JSON object, not {_json_type(value)}")
    return value


def _json_type(value) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


class RunDir:
    """A run directory (see the module docstring). Creating the object touches no file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- paths -------------------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def history_csv_path(self) -> Path:
        return self.path / HISTORY_CSV

    @property
    def history_json_path(self) -> Path:
        return self.path / HISTORY_JSON

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    @property
    def report_path(self) -> Path:
        return self.report_dir / REPORT_HTML

    def has_model(self) -> bool:
        return self.model_path.is_file()

    # -- reading -----------------------------------------------------------------------------
    @property
    def config(self) -> dict | None:
        """config.json as a dict, None if absent. Raises DataError if it is not a JSON object."""
        return _read_json(self.config_path)

    @property
    def metrics(self) -> dict | None:
        """metrics.json as a dict, None if absent. Raises DataError if it is not a JSON object."""
        return _read_json(self.metrics_path)

    @property
    def history(self) -> dict[str, list] | None:
        """history.json as ``{"epoch": [...], key: [per-epoch values]}``, None if absent.
        Raises DataError if it is not valid JSON or a value is not an array."""
        history = _read_json(self.history_json_path)
        if history is not None:
            for key, values in history.items():
                if not isinstance(values, list):
                    raise DataError(
                        f"{self.history_json_path}: {key!r} must be an array of per-epoch "
                        f"values, not {_json_type(values)}"
                    )
        return history

    @property
    def dataset_argument(self) -> str:
        """What ``mlp train --dataset`` was given (a name or an .npz path); "mnist" if the
        config does not say."""
        config = self.config or {}
        flags = config.get("flags")
        flag = flags.get("dataset") if isinstance(flags, dict) else None
        dataset = config.get("dataset", "mnist")
        if isinstance(flag, str) and flag.endswith(".npz") and isinstance(dataset, dict):
            # The absolute path the dataset was read from: the flag may be relative to a
            # directory the run no longer knows.
            source = dataset.get("source")
            if isinstance(source, str) and Path(source).is_absolute():
                return source
        if isinstance(flag, str):
            return flag
        name = dataset.get("name") if isinstance(dataset, dict) else dataset
        return name if isinstance(name, str) else "mnist"

    def table_spec(self) -> TableSpec | None:
        """The :class:`~multilayer.tabular.TableSpec` stored under ``"table"`` in config.json;
        None for a run that was not trained on a table (or has no config.json). Raises
        DataError if the stored spec is malformed."""
        from multilayer.tabular.spec import TableSpec

        config = self.config or {}
        if "table" not in config:
            return None
        try:
            return TableSpec.from_config(config["table"])
        except DataError as error:
            raise DataError(f"{self.config_path}: {error}") from None

    @property
    def image_options(self) -> ImageOptions | None:
        """How the run read its image folder (size, colour mode, bad images), as recorded in
        config.json; None for other datasets.

        Raises:
            DataError: the recorded options are not what ``mlp train`` writes.
        """
        from multilayer.datasets.folder import ImageOptions

        config = self.config or {}
        dataset = config.get("dataset")
        recorded = dataset.get("image_options") if isinstance(dataset, dict) else None
        if recorded is None:
            return None
        try:
            return ImageOptions.from_config(recorded)
        except ValueError as error:
            raise DataError(f"{self.config_path}: {error}") from None

    def load_dataset(self, data_dir: str | Path | None = None) -> Dataset:
        """The dataset the run trained on, read as training read it (an image folder with
        its recorded size, colour mode and bad-image rule)."""
        from multilayer.datasets import load_dataset

        return load_dataset(self.dataset_argument, data_dir, image_options=self.image_options)

    def require(self) -> RunDir:
        """This object, once checked to name a run directory: one that holds the model or the
        config.json written by ``mlp train``. Check before writing anything into it.

        Raises:
            FileNotFoundError: nothing at the path.
            NotADirectoryError: the path is a file.
            DataError: a directory that holds neither file.
        """
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such run directory")
        if not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} is a file, not a run directory")
        if not (self.model_path.is_file() or self.config_path.is_file()):
            raise DataError(
                f"{self.path} is not a run directory: it has neither {MODEL_FILE} nor "
                f"{CONFIG_FILE} (written by mlp train)"
            )
        return self

    def load_model(self, compile: bool = True):
        """The run's model (``multilayer.models.load_model``); ModelFileError if it has none."""
        from multilayer.models import load_model

        if not self.has_model():
            raise ModelFileError(f"{self.path} has no {MODEL_FILE}: it is not a finished run")
        return load_model(self.model_path, compile=compile)

    # -- writing -----------------------------------------------------------------------------
    def create(self) -> RunDir:
        """Make the directory (and its parents). Refuses a directory that already has files,
        so a run never mixes its files with another's."""
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"{self.path} exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()):
            raise FileExistsError(
                f"{self.path} already exists and is not empty: choose another output directory"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, config: dict) -> Path:
        return write_json(self.config_path, config)

    def write_metrics(self, metrics: dict) -> Path:
        return write_json(self.metrics_path, metrics)

    def write_history(self, epochs: list[int], history: dict[str, list[float]]) -> None:
        """Write history.csv and history.json from a `History` (``.epoch``, ``.history``)."""
        keys = sorted(history)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["epoch", *keys])
        for row, epoch in enumerate(epochs):
            writer.writerow([epoch, *(repr(float(history[k][row])) for k in keys)])
        atomic_write_bytes(self.history_csv_path, buffer.getvalue().encode("utf-8"))
        write_json(self.history_json_path, {"epoch": list(epochs), **{k: history[k] for k in keys}})


def new_run_path(root: str | Path, recipe: str) -> Path:
    """A fresh path ``<root>/<YYYYmmdd-HHMMSS>-<recipe>`` (with -2, -3... if taken)."""
    base = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{recipe}"
    path, suffix = base, 2
    while path.exists():
        path, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return path


def resolve_model_path(path: str | Path) -> tuple[Path, RunDir | None]:
    """The model file named by ``path`` and its run directory, if it is in one.

    Args:
        path: a model file (``.safetensors``) or a run directory.

    Returns:
        ``(model_file, run_dir)``; ``run_dir`` is None for a model file that is not
        ``model.safetensors`` inside a directory with a config.json.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ModelFileError: a directory without ``model.safetensors``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        run = RunDir(path)
        if not run.has_model():
            raise ModelFileError(
                f"{path} is a directory without {MODEL_FILE}: give a model file or a run directory"
            )
        return run.model_path, run
    run = RunDir(path.parent)
    is_run = path.name == MODEL_FILE and run.config_path.is_file()
    return path, run if is_run else None
