"""What pickling a multilayer estimator stores: its parameters as they are (the user's
objects), its network as the bytes of a ``.safetensors`` model file, and every other learned
attribute as JSON. No array or object of ours goes through pickle, and unpickling loads the
network with `multilayer.models.load_model`, with all of its checks.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from multilayer.models.functional import Model
from multilayer.models.saving import load_model, save_model

#: the key of the fitted state inside a pickled estimator's ``__dict__``
STATE_KEY = "multilayer_fitted_state"
STATE_FORMAT = "multilayer.sklearn/1"
_ARRAY = "__ndarray__"


def model_to_bytes(model: Model) -> bytes:
    """The bytes of ``model`` saved as a ``.safetensors`` model file (with its optimizer)."""
    with tempfile.TemporaryDirectory(prefix="multilayer-sklearn-") as folder:
        path = Path(folder) / "model.safetensors"
        save_model(model, path)
        return path.read_bytes()


def model_from_bytes(data: bytes) -> Model:
    """The model `model_to_bytes` wrote, loaded (and checked) by `load_model`."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(
            f"the model must be the bytes of a .safetensors file, got {type(data).__name__}"
        )
    with tempfile.TemporaryDirectory(prefix="multilayer-sklearn-") as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(bytes(data))
        return load_model(path)


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return _encode(value.item(), where)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUO":
            raise TypeError(
                f"cannot store {where}: arrays of dtype {value.dtype} are not supported"
            )
        items = value.tolist()
        if value.dtype.kind == "O":
            flat = value.ravel().tolist()
            if not all(isinstance(v, (str, int, float, bool)) for v in flat):
                raise TypeError(f"cannot store {where}: an object array of non-scalar values")
        return {
            _ARRAY: {
                "dtype": value.dtype.str if value.dtype.kind != "O" else "object",
                "shape": list(value.shape),
                "data": items,
            }
        }
    if isinstance(value, (list, tuple)):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot store {where}: a dict with non-string keys")
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"cannot store {where}: values of type {type(value).__name__} are not supported"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            spec = value[_ARRAY]
            dtype = object if spec["dtype"] == "object" else np.dtype(spec["dtype"])
            array = np.array(spec["data"], dtype=dtype)
            return array.reshape(tuple(spec["shape"]))
        return {k: _decode(v) for k, v in value.items()}
    return value


def dump_fitted(attributes: dict[str, Any], model: Model | None) -> dict[str, Any]:
    """The pickled form of an estimator's learned attributes (see the module docstring)."""
    payload = {"format": STATE_FORMAT, "attributes": _encode(attributes, "attributes")}
    state: dict[str, Any] = {"json": json.dumps(payload)}
    if model is not None:
        payload["model_rng"] = model.get_state()
        state["json"] = json.dumps(payload)
        state["model"] = model_to_bytes(model)
    return state


def load_fitted(state: Any) -> tuple[dict[str, Any], Model | None]:
    """The learned attributes and model `dump_fitted` stored.

    Raises:
        ValueError: a state of another format.
    """
    if not isinstance(state, dict) or not isinstance(state.get("json"), str):
        raise ValueError("not a pickled multilayer estimator state")
    try:
        payload = json.loads(state["json"])
    except (ValueError, RecursionError) as error:
        raise ValueError(
            f"a pickled multilayer estimator state that is not JSON ({error})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise ValueError(
            f"a pickled multilayer estimator of format {found!r}; this version reads {STATE_FORMAT}"
        )
    try:
        attributes = _decode(payload["attributes"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"a pickled multilayer estimator with invalid attributes ({error!r})"
        ) from None
    if not isinstance(attributes, dict):
        raise ValueError("a pickled multilayer estimator with invalid attributes")
    model = None
    if "model" in state:
        model = model_from_bytes(state["model"])
        if "model_rng" in payload:
            model.set_state(payload["model_rng"])
    return attributes, model
