"""Checks of what a model or checkpoint file declares, made before anything is built.

A file is hostile input: its header could declare ``Dense(2**40)``, a layer whose name is a
number, or a training state whose sample order repeats indices. Everything here works on
the parsed header JSON and the tensors' *declared* shapes, so a file is refused with
`ModelFileError` before a single parameter is allocated or initialised.

Limits (a model beyond them is refused, whatever its file says):

* `MAX_PARAMETERS` parameters (400 MB of float32 weights; the MNIST models have ~0.1-2 M);
* `MAX_LAYERS` layers; `MAX_SAMPLE_SIZE` numbers in one input sample or layer output;
* `MAX_HEADER_BYTES` of header JSON.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from multilayer.errors import ModelFileError

MAX_PARAMETERS = 100_000_000
MAX_LAYERS = 1_000
MAX_SAMPLE_SIZE = 2**24
MAX_HEADER_BYTES = 16 * 2**20

#: safetensors dtype names of the float types a model can have
SAFETENSORS_DTYPES = {"F32": np.dtype("float32"), "F64": np.dtype("float64")}


def _bad_config(path, message: str) -> ModelFileError:
    return ModelFileError(f"{path}: invalid model configuration: {message}")


def check_finite_json(value, path, key: str) -> None:
    """Refuse NaN or infinity anywhere in a parsed header entry (Python's json reads them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ModelFileError(
                f"{path}: header entry {key!r} contains a non-finite number ({item})"
            )
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


#: ``class_name`` of a model nested as a layer in another model's configuration
MODEL_CLASSES = ("Functional", "Sequential")
#: how deep models may be nested in one another
MAX_NESTING = 16
_SEQUENTIAL_KEYS = {"name", "dtype", "layers"}
_FUNCTIONAL_KEYS = {*_SEQUENTIAL_KEYS, "inputs", "outputs", "input_structure", "output_structure"}


def model_config(config, path) -> dict:
    """The architecture header, checked for types: a dict with a string ``name``, a string
    ``dtype`` and a list of ``{"class_name": str, "config": dict}`` layer entries whose
    ``name`` (if any) is a string; a functional model's entries also have ``inbound``
    (``[[layer name, index], ...]``) and the model its ``inputs`` and ``outputs``. Nested
    models are checked the same way; at most `MAX_LAYERS` layers in all."""
    check_finite_json(config, path, "model")
    _check_model_config(config, path, [0], 0)
    return config


def _check_model_config(config, path, count: list[int], depth: int) -> None:
    if not isinstance(config, dict):
        raise _bad_config(path, "the model configuration must be a JSON object")
    functional = "inputs" in config
    unexpected = set(config) - (_FUNCTIONAL_KEYS if functional else _SEQUENTIAL_KEYS)
    if unexpected:
        raise _bad_config(path, f"unexpected keys in the model configuration: {sorted(unexpected)}")
    for key in ("name", "dtype"):
        if key in config and not isinstance(config[key], str):
            raise _bad_config(path, f"{key!r} must be a string, got {config[key]!r}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _bad_config(path, "'layers' must be a non-empty list of layer configurations")
    count[0] += len(layers)
    if count[0] > MAX_LAYERS:
        raise _bad_config(path, f"{count[0]} layers, more than the limit of {MAX_LAYERS}")
    keys = {"class_name", "config", "inbound"} if functional else {"class_name", "config"}
    for index, layer in enumerate(layers):
        if (
            not isinstance(layer, dict)
            or set(layer) != keys
            or not isinstance(layer["class_name"], str)
            or not isinstance(layer["config"], dict)
        ):
            expected = "{'class_name': str, 'config': {...}" + (
                ", 'inbound': [[name, index], ...]}" if functional else "}"
            )
            raise _bad_config(path, f"layer {index}: a layer config must be {expected}")
        name = layer["config"].get("name")
        if name is not None and not isinstance(name, str):
            raise _bad_config(path, f"layer {index}: 'name' must be a string, got {name!r}")
        if layer["class_name"] in MODEL_CLASSES:
            if depth + 1 > MAX_NESTING:
                raise _bad_config(path, f"models nested more than {MAX_NESTING} deep")
            _check_model_config(layer["config"], path, count, depth + 1)


def _nests_models(config: dict) -> bool:
    return "inputs" in config or any(
        layer["class_name"] in MODEL_CLASSES for layer in config["layers"]
    )


def parameter_shapes(
    config: dict, path, non_trainable: set[str] | None = None
) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter tensor the architecture declares (``layers.{i}.{name}``,
    ``layers.{i}.layers.{j}.{name}`` in a nested model), computed from the configuration
    alone: layers are created and sized, nothing is allocated. Refuses more than
    `MAX_PARAMETERS` parameters or sample sizes over `MAX_SAMPLE_SIZE`, and an architecture
    that cannot be built. The names of the non-trainable weights (moving statistics, which
    the optimizer state does not cover) are added to ``non_trainable`` when it is given."""
    if not _nests_models(config):
        return _stack_parameter_shapes(config, path, non_trainable)
    from multilayer.models.saving import model_from_config

    try:
        model = model_from_config(config)  # layers called on symbolic tensors: no allocation
        shapes = model.parameter_shapes()
        if non_trainable is not None:
            non_trainable.update(model.non_trainable_names())
        for layer in _all_layers(model):
            for shape in _shape_list(layer.output_shape):
                if math.prod(shape) > MAX_SAMPLE_SIZE:
                    raise ValueError(
                        f"layer {layer.name!r} gives samples of shape {tuple(shape)}, more than "
                        f"{MAX_SAMPLE_SIZE} numbers"
                    )
        total = sum(math.prod(shape) for shape in shapes.values())
        if total > MAX_PARAMETERS:
            raise ValueError(
                f"the architecture declares {total} parameters, more than {MAX_PARAMETERS}"
            )
    except (ValueError, TypeError, RecursionError) as error:
        raise _bad_config(path, str(error)) from None
    return shapes


def _all_layers(model) -> list:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "parameter_shapes"):  # a nested model
            found.extend(_all_layers(layer))
    return found


def _shape_list(shape) -> list:
    if shape is None:
        return []
    return list(shape) if isinstance(shape, list) else [shape]


def _stack_parameter_shapes(
    config: dict, path, non_trainable: set[str] | None = None
) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter tensor the architecture declares (``layers.{i}.{name}``),
    computed from the configuration alone: layers are created and sized, nothing is
    allocated. Refuses more than `MAX_PARAMETERS` parameters or sample sizes over
    `MAX_SAMPLE_SIZE`, and an architecture that cannot be built. The names of the
    non-trainable weights (moving statistics, which the optimizer state does not cover) are
    added to ``non_trainable`` when it is given."""
    from multilayer.engine import layers as layer_module

    try:
        layers = [layer_module.deserialize(layer) for layer in config["layers"]]
        first = layers[0].input_shape
        if first is None:
            raise ValueError("the first layer declares no input shape")
        shape: tuple[int, ...] = tuple(first)
        shapes: dict[str, tuple[int, ...]] = {}
        total = 0
        for index, layer in enumerate(layers):
            if math.prod(shape) > MAX_SAMPLE_SIZE:
                raise ValueError(
                    f"layer {index} takes samples of shape {tuple(shape)}, more than "
                    f"{MAX_SAMPLE_SIZE} numbers"
                )
            layer.build(tuple(shape))
            for spec in layer.parameter_specs:
                total += math.prod(spec.shape)
                if total > MAX_PARAMETERS:
                    raise ValueError(
                        f"the architecture declares more than {MAX_PARAMETERS} parameters "
                        f"(the limit is passed at layer {index} {layer.name!r}, whose "
                        f"{spec.name} has shape {tuple(spec.shape)})"
                    )
                shapes[f"layers.{index}.{spec.name}"] = tuple(spec.shape)
                if non_trainable is not None and not spec.trainable:
                    non_trainable.add(f"layers.{index}.{spec.name}")
            shape = tuple(layer.output_shape or ())
        if math.prod(shape) > MAX_SAMPLE_SIZE:
            raise ValueError(
                f"the output shape {tuple(shape)} has more than {MAX_SAMPLE_SIZE} numbers"
            )
    except (ValueError, TypeError) as error:
        raise _bad_config(path, str(error)) from None
    return shapes


def check_declared_tensors(
    expected: dict[str, tuple[int, ...]],
    declared: dict[str, tuple[tuple[int, ...], str]],
    dtype: np.dtype,
    path,
) -> None:
    """Compare the architecture's parameter shapes with the tensors a file declares
    (name -> (shape, safetensors dtype)), before any tensor data is read."""
    missing, extra = set(expected) - set(declared), set(declared) - set(expected)
    if missing or extra:
        raise ModelFileError(
            f"{path}: tensors do not match the architecture: missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    for name, shape in expected.items():
        stored_shape, stored_dtype = declared[name]
        stored = SAFETENSORS_DTYPES.get(stored_dtype, stored_dtype)
        if tuple(stored_shape) != shape or stored != dtype:
            raise ModelFileError(
                f"{path}: tensor {name!r} has shape {tuple(stored_shape)} and dtype {stored}, but the "
                f"architecture needs shape {shape} and dtype {dtype}"
            )


def model_dtype(config: dict, path) -> np.dtype:
    from multilayer.engine.config import resolve_dtype

    try:
        return resolve_dtype(config.get("dtype"))
    except (TypeError, ValueError) as error:
        raise _bad_config(path, str(error)) from None


def compile_config(config, path) -> dict:
    """The compile header: ``{"optimizer": str | dict, "loss": ..., "metrics": ...}`` and,
    optionally, ``"loss_weights"``. One output: a loss (str or dict) and a list of metrics
    (a name, or a ``{"class_name", "config"}`` object); several: a list of losses, a list of
    lists of metrics, and a list of finite loss weights."""
    check_finite_json(config, path, "compile")

    def loss(value) -> bool:
        return isinstance(value, (str, dict))

    def names(value) -> bool:
        return isinstance(value, list) and all(isinstance(m, (str, dict)) for m in value)

    valid = (
        isinstance(config, dict)
        and {"optimizer", "loss", "metrics"} <= set(config)
        and set(config) <= {"optimizer", "loss", "metrics", "loss_weights"}
        and isinstance(config["optimizer"], (str, dict))
    )
    if valid:
        if isinstance(config["loss"], list):  # several outputs
            weights = config.get("loss_weights", [1.0] * len(config["loss"]))
            valid = (
                all(loss(item) for item in config["loss"])
                and isinstance(config["metrics"], list)
                and len(config["metrics"]) == len(config["loss"])
                and all(names(item) for item in config["metrics"])
                and isinstance(weights, list)
                and len(weights) == len(config["loss"])
                and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
            )
        else:
            valid = (
                loss(config["loss"])
                and names(config["metrics"])
                and (
                    "loss_weights" not in config
                    or (
                        isinstance(config["loss_weights"], list)
                        and len(config["loss_weights"]) == 1
                        and isinstance(config["loss_weights"][0], (int, float))
                        and not isinstance(config["loss_weights"][0], bool)
                    )
                )
            )
    if not valid:
        several = isinstance(config, dict) and isinstance(config.get("loss"), list)
        raise ModelFileError(
            f"{path}: invalid compile configuration: expected "
            + (
                "{'optimizer': name or object, 'loss': [names or objects], 'metrics': "
                "[[names or objects], ...], 'loss_weights': [numbers]}, one entry per output"
                if several
                else "{'optimizer': name or object, 'loss': name or object, "
                "'metrics': [names or objects]}"
            )
        )
    return config


def training_info(value, path) -> dict:
    """The ``training`` header: a JSON object with string keys and finite numbers."""
    if not isinstance(value, dict):
        raise ModelFileError(
            f"{path}: header entry 'training' must be a JSON object, got {type(value).__name__}"
        )
    check_finite_json(value, path, "training")
    return value


def sample_order(order: np.ndarray, n_samples: int, shuffle: bool, path: Path) -> np.ndarray:
    """A checkpoint's saved sample order: integers, a permutation of ``range(n_samples)``
    exactly (``arange`` itself without shuffling)."""
    if not np.issubdtype(order.dtype, np.integer) or order.shape != (n_samples,):
        raise ModelFileError(
            f"{path}: the partial epoch's sample order must hold {n_samples} integers, "
            f"it has shape {order.shape} and dtype {order.dtype}"
        )
    if n_samples and (order.min() < 0 or order.max() >= n_samples):
        raise ModelFileError(
            f"{path}: the partial epoch's sample order has indices outside 0..{n_samples - 1}"
        )
    if not shuffle:
        if not np.array_equal(order, np.arange(n_samples)):
            raise ModelFileError(f"{path}: without shuffling, the sample order must be 0..n-1")
    elif not np.all(np.bincount(order, minlength=n_samples) == 1):
        raise ModelFileError(
            f"{path}: the partial epoch's sample order repeats indices (not a permutation)"
        )
    return order.astype(np.intp, copy=False)
