"""Model files: one ``.safetensors`` file with the weights as tensors and the architecture,
compile configuration and training metadata as JSON in the header. Never pickle: loading a
file reads numbers and JSON, and runs no code from it.

Tensor names: ``layers.{index}.{kernel|bias}`` (in a nested model:
``layers.{index}.layers.{index}.kernel``) and, when the optimizer is saved,
``optimizer.{slot}`` (e.g. ``optimizer.m``). The ``model`` entry is the model's
``get_config()``: a `Sequential` model's list of layers, or a functional model's layers with
their connections (a subclassed model is saved as the graph it traced to, and loads back as
a functional `Model`). Header metadata keys: ``format``, ``format_version``, ``model``,
``compile``, ``optimizer_iterations``, ``training`` and ``input`` (the model's `InputScale`:
which pixel values it takes; absent from older files).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from multilayer.errors import ModelFileError
from multilayer.models import file_checks
from multilayer.models.input_scale import InputScale
from multilayer.utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from multilayer.models.functional import Model

FORMAT = "multilayer.model"
FORMAT_VERSION = "1"
_METADATA_KEYS = {
    "format",
    "format_version",
    "model",
    "compile",
    "optimizer_iterations",
    "training",
    "input",
}


def _safetensors():
    try:
        import safetensors.numpy as st_numpy
        from safetensors import safe_open
    except ImportError:
        raise ImportError(
            "Saving and loading models needs the safetensors package: pip install 'multilayer[io]'"
        ) from None
    return st_numpy, safe_open


def model_tensors(model) -> dict[str, np.ndarray]:
    """The model's parameter arrays by tensor name (see the module docstring)."""
    return model.named_weights()


def model_from_config(config) -> Model:
    """A `Sequential` or functional `Model` from its ``get_config()`` (not built yet if a
    `Sequential` without input shape).

    Raises:
        ValueError / TypeError: an invalid configuration.
    """
    from multilayer.models.functional import Model
    from multilayer.models.sequential import Sequential

    cls: type[Model]
    if not isinstance(config, dict):
        raise ValueError("the model configuration must be a JSON object")
    cls = Model if "inputs" in config else Sequential
    return cls.from_config(config)


def save_model(
    model, filepath, include_optimizer: bool = True, training: dict | None = None
) -> Path:
    """Write ``model`` to ``filepath`` (atomically). See the module docstring for the layout."""
    st_numpy, _ = _safetensors()
    tensors = dict(model_tensors(model))  # builds the model if its input shape is known
    if not model.built:
        raise ValueError("cannot save a model that is not built yet (it has no weights)")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(model.get_config()),
        "training": json.dumps(training if training is not None else model.training_info),
    }
    if model.input_scale is not None:
        metadata["input"] = json.dumps(model.input_scale.to_dict())
    if model.compile_config is not None:
        metadata["compile"] = json.dumps(model.compile_config)
        if include_optimizer and model.optimizer.built:
            state = model.optimizer.get_state()
            metadata["optimizer_iterations"] = str(state["iterations"])
            for slot, value in state["slots"].items():
                tensors[f"optimizer.{slot}"] = value
    data = st_numpy.save(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata
    )
    return atomic_write_bytes(filepath, data)


def read_file(filepath, check=None) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The header metadata and every tensor of a safetensors file, or ModelFileError.

    ``check(metadata, declared)``, if given, runs before any tensor data is read, with
    ``declared`` mapping each tensor name to its declared (shape, safetensors dtype name).
    """
    _, safe_open = _safetensors()
    path = Path(filepath)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    _check_header_size(path)
    try:
        handle = safe_open(str(path), framework="numpy")
    except Exception as error:  # the library raises several types for a bad file
        raise _not_safetensors(path, error) from None
    with handle:
        try:
            metadata = handle.metadata() or {}
            declared = {
                key: (tuple(handle.get_slice(key).get_shape()), handle.get_slice(key).get_dtype())
                for key in handle.keys()  # noqa: SIM118 - not a dict
            }
        except Exception as error:
            raise _not_safetensors(path, error) from None
        if check is not None:
            check(metadata, declared)
        try:
            tensors = {key: handle.get_tensor(key) for key in declared}
        except Exception as error:
            raise _not_safetensors(path, error) from None
    return metadata, tensors


def _not_safetensors(path: Path, error: Exception) -> ModelFileError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ModelFileError(f"{path} is not a valid .safetensors model file ({reason})")


def _check_header_size(path: Path) -> None:
    """Refuse a header longer than `file_checks.MAX_HEADER_BYTES` before it is parsed."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
    if len(prefix) == 8:
        length = int.from_bytes(prefix, "little")
        if length > file_checks.MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{path} is not a valid .safetensors model file (its header claims {length} "
                f"bytes, more than the limit of {file_checks.MAX_HEADER_BYTES})"
            )


def read_checked(
    path: Path,
    format_name: str,
    version: str,
    allowed_keys: set[str],
    what: str,
    check=None,
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """`read_file`, then refuse a header of another format or version, or with unknown keys
    (before the tensor data is read); then ``check`` as in `read_file`."""

    def check_header(metadata: dict, declared: dict) -> None:
        if metadata.get("format") != format_name:
            raise ModelFileError(
                f"{path} is a safetensors file but not a multilayer {what} (no 'format: {format_name}' in its header)"
            )
        if metadata.get("format_version") != version:
            raise ModelFileError(
                f"{path}: unsupported {what} format version {metadata.get('format_version')!r} (this version reads {version})"
            )
        unexpected = set(metadata) - allowed_keys
        if unexpected:
            raise ModelFileError(f"{path}: unexpected header entries {sorted(unexpected)}")
        if check is not None:
            check(metadata, declared)

    return read_file(path, check_header)


def header_json(metadata: dict, key: str, path) -> object:
    """The header entry ``key`` parsed as JSON, or ModelFileError naming the file and key."""
    try:
        return json.loads(metadata[key])
    except (KeyError, ValueError, TypeError, RecursionError) as error:
        # ValueError: not JSON, or an integer of thousands of digits; RecursionError: nesting
        raise ModelFileError(
            f"{path}: header entry {key!r} is missing or not valid JSON ({error})"
        ) from None


def load_model(filepath, compile: bool = True):
    """Load a model saved by `save_model` (or ``model.save``). Refuses anything else.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a safetensors file, not a multilayer model, or tensors that do
            not match the architecture described in the header.
    """
    path = Path(filepath)
    parsed: dict = {}

    def check_architecture(metadata: dict, declared: dict) -> None:
        # Everything the header declares is checked against the tensors' declared shapes
        # and the limits before any tensor is read or any parameter allocated.
        config = file_checks.model_config(header_json(metadata, "model", path), path)
        expected = file_checks.parameter_shapes(config, path)
        weights = {k: v for k, v in declared.items() if not k.startswith("optimizer.")}
        file_checks.check_declared_tensors(
            expected, weights, file_checks.model_dtype(config, path), path
        )
        size = sum(math.prod(shape) for shape in expected.values())
        for name, (shape, dtype) in declared.items():
            if name.startswith("optimizer.") and (
                tuple(shape) != (size,) or dtype not in ("F32", "F64")
            ):
                raise ModelFileError(
                    f"{path}: optimizer state {name.removeprefix('optimizer.')!r} is missing or has "
                    f"the wrong shape or dtype ({tuple(shape)} {dtype}; the model has {size} parameters)"
                )
        parsed["model"] = config
        if "training" in metadata:
            parsed["training"] = file_checks.training_info(
                header_json(metadata, "training", path), path
            )
        if "input" in metadata:
            try:
                parsed["input"] = InputScale.from_dict(header_json(metadata, "input", path))
            except ValueError as error:
                raise ModelFileError(f"{path}: invalid header entry 'input': {error}") from None
        if "compile" in metadata:
            parsed["compile"] = file_checks.compile_config(
                header_json(metadata, "compile", path), path
            )

    metadata, tensors = read_checked(
        path, FORMAT, FORMAT_VERSION, _METADATA_KEYS, "model", check_architecture
    )
    try:
        model = model_from_config(parsed["model"])
        model.build()
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{path}: invalid model configuration: {error}") from None

    expected = model_tensors(model)
    optimizer_tensors = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    weight_tensors = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    missing, extra = set(expected) - set(weight_tensors), set(weight_tensors) - set(expected)
    if missing or extra:
        raise ModelFileError(
            f"{path}: tensors do not match the architecture: missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    for name, target in expected.items():
        value = weight_tensors[name]
        if value.shape != target.shape or value.dtype != target.dtype:
            raise ModelFileError(
                f"{path}: tensor {name!r} has shape {value.shape} and dtype {value.dtype}, but the "
                f"architecture needs shape {target.shape} and dtype {target.dtype}"
            )
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path}: tensor {name!r} contains NaN or infinite values")
    for name, target in expected.items():
        target[...] = weight_tensors[name]

    model.training_info = parsed.get("training", {})
    model.input_scale = parsed.get("input")
    if compile and "compile" in parsed:
        compile_config = parsed["compile"]
        try:
            compile_model(model, compile_config)
        except (KeyError, ValueError, TypeError) as error:
            raise ModelFileError(f"{path}: invalid compile configuration: {error}") from None
        if optimizer_tensors:
            _restore_optimizer(model, optimizer_tensors, metadata, path)
    return model


def compile_model(model, config) -> None:
    """``model.compile(**config)`` for a saved compile configuration.

    Raises:
        KeyError / ValueError / TypeError: an invalid configuration.
    """
    if not isinstance(config, dict):
        raise ValueError("the compile configuration must be a JSON object")
    unexpected = set(config) - {"optimizer", "loss", "metrics", "loss_weights"}
    if unexpected:
        raise ValueError(f"unexpected compile keys {sorted(unexpected)}")
    model.compile(
        optimizer=config["optimizer"],
        loss=config["loss"],
        metrics=config["metrics"],
        loss_weights=config.get("loss_weights"),
    )


def _restore_optimizer(model, tensors: dict[str, np.ndarray], metadata: dict, path) -> None:
    model._build_optimizer()
    optimizer = model.optimizer
    for slot, target in optimizer.state.items():
        value = tensors.get(f"optimizer.{slot}")
        if value is None or value.shape != target.shape or value.dtype != target.dtype:
            raise ModelFileError(
                f"{path}: optimizer state {slot!r} is missing or has the wrong shape or dtype"
            )
        if not np.all(np.isfinite(value)):
            raise ModelFileError(
                f"{path}: optimizer state {slot!r} contains NaN or infinite values"
            )
    try:
        iterations = int(metadata.get("optimizer_iterations", "0"))
    except ValueError:
        raise ModelFileError(f"{path}: optimizer_iterations is not an integer") from None
    if iterations < 0:
        raise ModelFileError(f"{path}: optimizer_iterations is negative")
    slots = {slot: tensors[f"optimizer.{slot}"] for slot in optimizer.state}
    optimizer.set_state({"iterations": iterations, "learning_rate": None, "slots": slots})
