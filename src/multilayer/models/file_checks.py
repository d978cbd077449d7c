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


def model_config(config, path) -> dict:
    """The architecture header, checked for types: a dict with a string ``name``, a string
    ``dtype`` and a list of at most `MAX_LAYERS` ``{"class_name": str, "config": dict}``
    layer entries whose ``name`` (if any) is a string."""
    if not isinstance(config, dict):
        raise _bad_config(path, "the model configuration must be a JSON object")
    check_finite_json(config, path, "model")
    unexpected = set(config) - {"name", "dtype", "layers"}
    if unexpected:
        raise _bad_config(path, f"unexpected keys in the model configuration: {sorted(unexpected)}")
    for key in ("name", "dtype"):
        if key in config and not isinstance(config[key], str):
            raise _bad_config(path, f"{key!r} must be a string, got {config[key]!r}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _bad_config(path, "'layers' must be a non-empty list of layer configurations")
    if len(layers) > MAX_LAYERS:
        raise _bad_config(path, f"{len(layers)} layers, more than the limit of {MAX_LAYERS}")
    for index, layer in enumerate(layers):
        if (
            not isinstance(layer, dict)
            or set(layer) != {"class_name", "config"}
            or not isinstance(layer["class_name"], str)
            or not isinstance(layer["config"], dict)
        ):
            raise _bad_config(
                path,
                f"layer {index}: a layer config must be {{'class_name': str, 'config': {{...}}}}",
            )
        name = layer["config"].get("name")
        if name is not None and not isinstance(name, str):
            raise _bad_config(path, f"layer {index}: 'name' must be a string, got {name!r}")
    return config


def parameter_shapes(config: dict, path) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter tensor the architecture declares (``layers.{i}.{name}``),
    computed from the configuration alone: layers are created and sized, nothing is
    allocated. Refuses more than `MAX_PARAMETERS` parameters or sample sizes over
    `MAX_SAMPLE_SIZE`, and an architecture that cannot be built."""
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
    """The compile header: ``{"optimizer": str | dict, "loss": str | dict, "metrics": [str |
    dict]}`` (a metric by name, or a ``{"class_name", "config"}`` object)."""
    check_finite_json(config, path, "compile")
    if (
        not isinstance(config, dict)
        or set(config) != {"optimizer", "loss", "metrics"}
        or not isinstance(config["optimizer"], (str, dict))
        or not isinstance(config["loss"], (str, dict))
        or not isinstance(config["metrics"], list)
        or not all(isinstance(m, (str, dict)) for m in config["metrics"])
    ):
        raise ModelFileError(
            f"{path}: invalid compile configuration: expected "
            "{'optimizer': name or object, 'loss': name or object, "
            "'metrics': [names or objects]}"
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
