"""Model files. The format is chosen by the file name's extension (`save_model`,
`load_model`, `save_weights`, `load_weights`):

* ``.safetensors``: multilayer's own format, described below;
* ``.keras``: the Keras 3 archive, read and written by `multilayer.models.keras_format`;
* ``.weights.safetensors`` and ``.weights.h5``: weights only (``.weights.h5`` in Keras'
  layout, so Keras' ``save_weights`` files load and ours load in Keras).

Another extension is refused with an error listing these. Never pickle: loading a file reads
numbers and JSON, and runs no code from it.

A multilayer ``.safetensors`` model file holds the weights as tensors and the architecture,
compile configuration and training metadata as JSON in the header.

Tensor names: ``layers.{index}.{kernel|bias}`` (in a nested model:
``layers.{index}.layers.{index}.kernel``) and, when the optimizer is saved,
``optimizer.{slot}`` (e.g. ``optimizer.m``). The ``model`` entry is the model's
``get_config()``: a `Sequential` model's list of layers, or a functional model's layers with
their connections (a subclassed model is saved as the graph it traced to, and loads back as
a functional `Model`). Header metadata keys: ``format``, ``format_version``, ``model``,
``compile``, ``optimizer_iterations``, ``training``, ``input`` (the model's `InputScale`:
which pixel values it takes; absent from older files) and ``answers`` (its calibrated
temperature and "not a digit" detector, `multilayer.answers.Answers`, whose arrays are the
tensors ``answers.*``; absent from older files and from models saved without them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multilayer.errors import ModelFileError
from multilayer.models import file_checks
from multilayer.models.input_scale import InputScale
from multilayer.utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from multilayer.models.functional import Model

FORMAT = "multilayer.model"
FORMAT_VERSION = "1"
WEIGHTS_FORMAT = "multilayer.weights"
_METADATA_KEYS = {
    "format",
    "format_version",
    "model",
    "compile",
    "optimizer_iterations",
    "training",
    "input",
    "answers",
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


def model_from_json(json_string: str) -> Model:
    """The model `Model.to_json` described (Keras' ``keras.models.model_from_json``):
    ``{"class_name": "Sequential" | "Functional", "config": {...}}``; not built when the
    input shape is unknown, weights freshly initialised.

    Raises:
        ValueError: not JSON, not that shape, or an invalid configuration.
    """
    from multilayer.models.functional import deserialize_layer

    if not isinstance(json_string, (str, bytes)):
        raise TypeError(f"model_from_json expects a JSON string, got {type(json_string).__name__}")
    try:
        data = json.loads(json_string)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"model_from_json: not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("class_name") not in ("Sequential", "Functional"):
        raise ValueError(
            "model_from_json: expected a JSON object with class_name 'Sequential' or "
            "'Functional' and a 'config' (what model.to_json() writes)"
        )
    unexpected = set(data) - {"class_name", "config", "module", "registered_name"}
    if unexpected:
        raise ValueError(f"model_from_json: unexpected keys {sorted(unexpected)}")
    if "module" in data and data["module"] != "multilayer.models":
        raise ValueError(
            f"model_from_json: a configuration written by module {data['module']!r}; this "
            "reads multilayer's model.to_json() (Keras' files: load_model('model.keras'))"
        )
    model = deserialize_layer({"class_name": data["class_name"], "config": data.get("config")})
    from multilayer.models.functional import Model as ModelClass

    if not isinstance(model, ModelClass):  # deserialize_layer returns a model for these names
        raise ValueError("model_from_json: not a model configuration")
    return model


MODEL_EXTENSIONS = (".keras", ".safetensors")
WEIGHTS_EXTENSIONS = (".weights.h5", ".weights.safetensors")


def _model_format(filepath) -> str:
    """``"keras"`` or ``"safetensors"`` from the name, or ValueError listing the choices."""
    name = str(filepath)
    if name.endswith(WEIGHTS_EXTENSIONS):
        raise ValueError(
            f"{name} is a weights file name: model.save() writes a whole model to a .keras or "
            ".safetensors file; use model.save_weights() for .weights.h5 / .weights.safetensors"
        )
    if name.endswith(".keras"):
        return "keras"
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith((".h5", ".hdf5")):
        raise ValueError(
            f"cannot save {name}: the legacy Keras 2 HDF5 model format is not supported; use a "
            "name ending in .keras (the Keras 3 format) or .safetensors (multilayer's format)"
        )
    raise ValueError(
        f"cannot save {name}: unknown file extension; use a name ending in .keras (the Keras 3 "
        "format) or .safetensors (multilayer's format)"
    )


def _weights_format(filepath) -> str:
    name = str(filepath)
    if name.endswith(".weights.h5"):
        return "h5"
    if name.endswith(".weights.safetensors"):
        return "safetensors"
    raise ValueError(
        f"{name}: a weights file name must end in .weights.h5 (Keras' layout) or "
        ".weights.safetensors"
    )


def save_model(
    model, filepath, include_optimizer: bool = True, training: dict | None = None
) -> Path:
    """Write ``model`` to ``filepath`` (atomically), in the format its extension names:
    ``.safetensors`` (see the module docstring) or ``.keras`` (Keras 3; without the optimizer
    state).

    Raises:
        ValueError: another extension, or a model that is not built.
    """
    kind = _model_format(filepath)
    model._build_if_possible()  # Keras builds as soon as the input shape is known
    if not model.built:
        raise ValueError("cannot save a model that is not built yet (it has no weights)")
    if kind == "keras":
        from multilayer.models.keras_format import save_keras

        return save_keras(model, filepath)
    st_numpy, _ = _safetensors()
    tensors = dict(model_tensors(model))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(model.get_config()),
        "training": json.dumps(training if training is not None else model.training_info),
    }
    if model.input_scale is not None:
        metadata["input"] = json.dumps(model.input_scale.to_dict())
    answers = getattr(model, "answers", None)
    if answers is not None:
        metadata["answers"] = json.dumps(answers.header())
        tensors.update(answers.tensors())
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
    """Load a model saved by `save_model` (or ``model.save``), or a Keras 3 ``.keras`` file
    (by its extension). Refuses anything else.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a safetensors file, not a multilayer model, or tensors that do
            not match the architecture described in the header; for ``.keras`` files, see
            `multilayer.models.keras_format.load_keras`.
    """
    path = Path(filepath)
    name = str(filepath)
    if name.endswith(WEIGHTS_EXTENSIONS):
        raise ModelFileError(
            f"{name} is a weights file: build the model, then call model.load_weights()"
        )
    if name.endswith((".h5", ".hdf5")):
        raise ModelFileError(
            f"{name}: legacy Keras 2 HDF5 model files are not supported; in Keras, load it and "
            "save it again with model.save('model.keras')"
        )
    if name.endswith(".keras"):
        from multilayer.models.keras_format import load_keras

        return load_keras(path, compile=compile)
    parsed: dict = {}

    def check_architecture(metadata: dict, declared: dict) -> None:
        # Everything the header declares is checked against the tensors' declared shapes
        # and the limits before any tensor is read or any parameter allocated.
        config = file_checks.model_config(header_json(metadata, "model", path), path)
        fixed: set[str] = set()
        expected = file_checks.parameter_shapes(config, path, non_trainable=fixed)
        weights = {k: v for k, v in declared.items() if not k.startswith(_NOT_WEIGHTS)}
        _check_answers(metadata, declared, expected, path, parsed)
        file_checks.check_declared_tensors(
            expected, weights, file_checks.model_dtype(config, path), path
        )
        # the optimizer's state covers the trainable parameters only
        size = sum(math.prod(shape) for name, shape in expected.items() if name not in fixed)
        for name, (shape, dtype) in declared.items():
            # At most one value per parameter (frozen layers have none: checked exactly once
            # the model is compiled and knows its trainable parameters).
            if name.startswith("optimizer.") and (
                len(shape) != 1 or shape[0] > size or dtype not in ("F32", "F64")
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
    weight_tensors = {k: v for k, v in tensors.items() if not k.startswith(_NOT_WEIGHTS)}
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
    model.answers = None
    if "answers" in parsed:
        from multilayer.answers import Answers, check_model

        try:
            check_model(model)
            model.answers = Answers.from_file(parsed["answers"], tensors)
        except ValueError as error:
            raise ModelFileError(f"{path}: invalid header entry 'answers': {error}") from None
    if compile and "compile" in parsed:
        compile_config = parsed["compile"]
        try:
            compile_model(model, compile_config)
        except (KeyError, ValueError, TypeError) as error:
            raise ModelFileError(f"{path}: invalid compile configuration: {error}") from None
        if optimizer_tensors:
            _restore_optimizer(model, optimizer_tensors, metadata, path)
    return model


_NOT_WEIGHTS = ("optimizer.", "answers.")


def _check_answers(metadata: dict, declared: dict, expected: dict, path, parsed: dict) -> None:
    """The ``answers`` entry and its ``answers.*`` tensors, checked against the declared
    shapes before any tensor is read (`multilayer.answers.Answers.declared_shapes`)."""
    from multilayer.answers import Answers

    found = {k: v for k, v in declared.items() if k.startswith("answers.")}
    if "answers" not in metadata:
        if found:
            raise ModelFileError(f"{path}: tensors {sorted(found)} without an 'answers' entry")
        return
    header = header_json(metadata, "answers", path)
    kernels = [name for name in expected if name.endswith(".kernel") and name.count(".") == 2]
    last = max(kernels, key=lambda name: int(name.split(".")[1]), default=None)
    try:
        if last is None:
            raise ValueError("the model has no Dense layer")
        wanted = Answers.declared_shapes(header, int(expected[last][0]))
    except ValueError as error:
        raise ModelFileError(f"{path}: invalid header entry 'answers': {error}") from None
    if set(found) != set(wanted) or any(
        tuple(found[k][0]) != wanted[k] or found[k][1] not in ("F32", "F64") for k in wanted
    ):
        raise ModelFileError(
            f"{path}: the 'answers' tensors do not match its header: expected "
            f"{ {k: v for k, v in wanted.items()} } (float), found "
            f"{ {k: (tuple(s), t) for k, (s, t) in found.items()} }"
        )
    parsed["answers"] = header


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
                f"{path}: optimizer state {slot!r} is missing or has the wrong shape or dtype "
                f"(the model's trainable parameters need {target.shape} {target.dtype})"
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


# -- weights files (Keras' save_weights / load_weights) ----------------------------------------
_WEIGHTS_KEYS = {"format", "format_version", "layers"}


def _weight_paths(model) -> dict[str, str]:
    """Tensor name (`Model.named_weights`) -> ``"{layer name}/{weight name}"`` (nested
    models: ``"{model name}/{layer name}/{weight name}"``), in model order."""
    from multilayer.models.functional import Model

    paths: dict[str, str] = {}
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Model):
            for key, path in _weight_paths(layer).items():
                paths[f"layers.{index}.{key}"] = f"{layer.name}/{path}"
        else:
            for spec in layer.parameter_specs:
                paths[f"layers.{index}.{spec.name}"] = f"{layer.name}/{spec.name}"
    return paths


def save_weights(model, filepath, overwrite: bool = True) -> Path:
    """Write the model's weights (atomically): ``.weights.h5`` in Keras' HDF5 layout (Keras'
    ``load_weights`` reads it) or ``.weights.safetensors`` (tensors ``layers.{index}.{name}``
    and, in the header, each tensor's layer path for ``load_weights(by_name=True)``).

    Raises:
        ValueError: another extension, or a model that is not built.
        FileExistsError: the file exists and ``overwrite`` is False.
    """
    kind = _weights_format(filepath)
    model._build_if_possible()
    if not model.built:
        raise ValueError(
            f"cannot save the weights of model {model.name!r}: it is not built yet (call "
            "model.build((None, n)), fit or predict first)"
        )
    if not overwrite and Path(filepath).exists():
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    if kind == "h5":
        from multilayer.models.keras_format import weights_h5_bytes

        return atomic_write_bytes(filepath, weights_h5_bytes(model))
    st_numpy, _ = _safetensors()
    tensors = {k: np.ascontiguousarray(v) for k, v in model_tensors(model).items()}
    paths = _weight_paths(model)
    metadata = {
        "format": WEIGHTS_FORMAT,
        "format_version": FORMAT_VERSION,
        "layers": json.dumps([[key, paths[key]] for key in tensors]),
    }
    return atomic_write_bytes(filepath, st_numpy.save(tensors, metadata=metadata))


def load_weights(model, filepath, skip_mismatch: bool = False, by_name: bool = False) -> None:
    """Set the model's weights from a `save_weights` file. Every tensor's name, shape and
    type is checked against the model before any tensor is read, and every value before
    any weight is set.

    Tensors are matched by position in the model (``layers.{index}.{name}``, Keras 3's way)
    or, with ``by_name=True``, by layer name (Keras 2's option: layers absent from the file
    keep their weights). ``skip_mismatch=True`` leaves a weight whose shape differs (or that
    the file lacks) as it is, with a warning, instead of refusing the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an extension other than ``.weights.h5`` / ``.weights.safetensors``, a
            model that is not built, ``by_name=True`` with a file that records no layer names,
            or ``by_name``/``skip_mismatch`` with a ``.weights.h5`` file.
        ModelFileError: a missing, extra or mismatched tensor, NaN or infinite values, or
            not a weights file.
    """
    import warnings

    kind = _weights_format(filepath)
    path = Path(filepath)
    model._build_if_possible()
    if not model.built:
        raise ValueError(
            f"load_weights: model {model.name!r} is not built: build it first (model.build("
            "(None, n)), an Input or input_shape=), then load the weights"
        )
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a weights file")
    if kind == "h5":
        if by_name or skip_mismatch:
            raise ValueError(
                f"{path}: by_name and skip_mismatch apply to .weights.safetensors files; a "
                ".weights.h5 file is read in Keras' layout, layer by layer in order"
            )
        from multilayer.models.keras_format import read_weights_h5

        read_weights_h5(model, str(path), str(path))
        return
    targets = model_tensors(model)
    paths = _weight_paths(model)
    plan: dict[str, str] = {}  # model tensor name -> file tensor name
    skipped: list[str] = []

    def check_declared(metadata: dict, declared: dict) -> None:
        # Names, shapes and types are checked before any tensor is read.
        for name, (_shape, dtype) in declared.items():
            if dtype not in ("F16", "F32", "F64"):
                raise ModelFileError(f"{path}: tensor {name!r} has dtype {dtype}, not floats")
        if by_name:
            listed: Any = header_json(metadata, "layers", path) if "layers" in metadata else None
            if not _is_layer_list(listed) or {key for key, _ in listed} != set(declared):
                raise ValueError(
                    f"{path}: load_weights(by_name=True) needs the layer names, which this "
                    "file does not record; load it without by_name"
                )
            by_path = {layer_path: key for key, layer_path in listed}
            sources = {name: by_path.get(paths[name]) for name in targets}
        else:
            missing = set(targets) - set(declared)
            extra = set(declared) - set(targets)
            if (missing or extra) and not skip_mismatch:
                raise ModelFileError(
                    f"{path}: tensors do not match the model: missing {sorted(missing)}, "
                    f"unexpected {sorted(extra)} (load_weights(skip_mismatch=True) loads "
                    "the others)"
                )
            sources = {name: name if name in declared else None for name in targets}
        for name, source in sources.items():
            if source is None:
                if not by_name:
                    skipped.append(f"{paths[name]} (not in the file)")
                continue
            shape = tuple(declared[source][0])
            if shape != targets[name].shape:
                if not skip_mismatch:
                    raise ModelFileError(
                        f"{path}: tensor {source!r} has shape {shape}, but weight "
                        f"{paths[name]!r} of the model has shape {targets[name].shape} "
                        "(load_weights(skip_mismatch=True) skips it)"
                    )
                skipped.append(
                    f"{paths[name]} (file shape {shape}, model shape {targets[name].shape})"
                )
                continue
            plan[name] = source

    _, tensors = read_checked(
        path, WEIGHTS_FORMAT, FORMAT_VERSION, _WEIGHTS_KEYS, "weights file", check_declared
    )
    for source in plan.values():
        if not np.all(np.isfinite(tensors[source])):
            raise ModelFileError(f"{path}: tensor {source!r} contains NaN or infinite values")
    for name, source in plan.items():
        targets[name][...] = tensors[source]
    if skipped:
        warnings.warn(f"load_weights({path}): skipped weights {skipped}", UserWarning, stacklevel=3)


def _is_layer_list(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)
        for item in value
    )
