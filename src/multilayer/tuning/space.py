"""The search space of ``mlp tune``: which recipe fields a trial samples, and from what.

A space maps a parameter name to one of:

- a range of numbers: ``{"low": 1e-4, "high": 1e-2, "log": True}`` (floats, or integers when
  both ends are integers; ``step`` is allowed for integer ranges);
- a list of choices: ``{"choices": [128, 256, 512]}``;
- a fixed value: ``{"value": 4}`` (not searched).

The parameters are the recipe fields a trial may change (`PARAMETERS`); ``layers`` and
``units`` together make the hidden layers (``layers`` layers of ``units`` units each).
A TOML file (``--space space.toml``) changes the default space entry by entry::

    [learning_rate]
    low = 1e-4
    high = 3e-3
    log = true

    [units]
    choices = [64, 128]

    [epochs]
    value = 2

Everything read from the file is checked: unknown names, wrong types and empty ranges are
`SpaceError` with the entry named.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from multilayer.errors import MultilayerError

__all__ = [
    "MAX_SPACE_BYTES",
    "PARAMETERS",
    "SpaceError",
    "default_space",
    "load_space",
    "recipe_values",
    "sample",
    "validate_space",
]

#: What each searchable parameter must hold: "int", "float", "str".
PARAMETERS: dict[str, str] = {
    "learning_rate": "float",
    "layers": "int",
    "units": "int",
    "batch_size": "int",
    "schedule": "str",
    "dropout": "float",
    "weight_decay": "float",
    "label_smoothing": "float",
    "activation": "str",
    "optimizer": "str",
    "epochs": "int",
}
#: Bounds a value must respect (inclusive low, exclusive high for the fractions).
_BOUNDS: dict[str, tuple[float, float]] = {
    "learning_rate": (0.0, math.inf),
    "layers": (0, 16),
    "units": (1, 65536),
    "batch_size": (1, 1 << 20),
    "dropout": (0.0, 1.0),
    "weight_decay": (0.0, 1.0),
    "label_smoothing": (0.0, 1.0),
    "epochs": (1, 100_000),
}
#: Largest space file read (bytes): a space is a dozen short entries.
MAX_SPACE_BYTES = 64 * 1024


class SpaceError(MultilayerError, ValueError):
    """A search space (or its TOML file) that cannot be used; the message names the entry."""


def default_space(task: str = "classification", epochs: int = 4) -> dict[str, dict]:
    """The default space of ``task``: ``"classification"`` (images): the recipe's learning
    rate, width and depth, batch size, schedule, dropout, weight decay and label smoothing;
    ``"table"`` (``--data``/``--target``, any table task): the same without weight decay and
    label smoothing. ``epochs`` is fixed: every trial gets the same budget, which pruning
    cuts short."""
    if task == "table":
        # tables (multilayer.tabular): the `tabular` recipe's neighbourhood; its weight decay
        # and patience stay the recipe's
        return {
            "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
            "layers": {"low": 1, "high": 4},
            "units": {"choices": [64, 128, 256, 512]},
            "batch_size": {"choices": [64, 128, 256, 512]},
            "schedule": {"choices": ["constant", "cosine", "onecycle"]},
            "dropout": {"low": 0.0, "high": 0.4},
            "epochs": {"value": epochs},
        }
    if task != "classification":
        raise SpaceError(
            f"no default search space for task {task!r}: expected classification or table"
        )
    return {
        "learning_rate": {"low": 3e-4, "high": 1e-2, "log": True},
        "layers": {"low": 1, "high": 3},
        "units": {"choices": [128, 256, 512, 1024]},
        "batch_size": {"choices": [128, 256, 512]},
        "schedule": {"choices": ["constant", "cosine", "onecycle"]},
        "dropout": {"low": 0.0, "high": 0.3},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "label_smoothing": {"low": 0.0, "high": 0.2},
        "epochs": {"value": epochs},
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value(name: str, value: Any, where: str) -> None:
    kind = PARAMETERS[name]
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise SpaceError(f"{where}: expected a non-empty string, got {value!r}")
        return
    if not _is_number(value) or (kind == "int" and not isinstance(value, int)):
        expected = "an integer" if kind == "int" else "a number"
        raise SpaceError(f"{where}: expected {expected}, got {value!r}")
    if not math.isfinite(value):
        raise SpaceError(f"{where}: expected a finite number, got {value!r}")
    low, high = _BOUNDS[name]
    fraction = name in ("dropout", "label_smoothing")
    too_high = value >= high if fraction else value > high
    if value < low or too_high or (name == "learning_rate" and value <= 0):
        bounds = f"[{low:g}, {high:g})" if fraction else f"[{low:g}, {high:g}]"
        if name == "learning_rate":
            bounds = "(0, inf)"
        raise SpaceError(f"{where}: {value!r} is out of range {bounds}")


def validate_space(space: dict) -> dict[str, dict]:
    """``space`` checked entry by entry (see the module docstring); returns a clean copy.

    Raises:
        SpaceError: an unknown parameter, an entry of the wrong shape or type, an empty
            range, a log range that reaches 0, or values out of the parameter's bounds.
    """
    if not isinstance(space, dict):
        raise SpaceError(f"a search space is a table of parameters, got {type(space).__name__}")
    clean: dict[str, dict] = {}
    for name, entry in space.items():
        if name not in PARAMETERS:
            from multilayer.utils.naming import unknown_name_error

            raise SpaceError(str(unknown_name_error("search-space parameter", name, PARAMETERS)))
        if not isinstance(entry, dict):
            raise SpaceError(
                f"[{name}]: expected a table with low/high, choices or value, got {entry!r}"
            )
        keys = set(entry)
        if keys == {"value"}:
            _check_value(name, entry["value"], f"[{name}] value")
            clean[name] = {"value": entry["value"]}
        elif keys == {"choices"}:
            choices = entry["choices"]
            if not isinstance(choices, list) or not choices:
                raise SpaceError(f"[{name}] choices: expected a non-empty list, got {choices!r}")
            if len(choices) > 1000:
                raise SpaceError(f"[{name}] choices: at most 1000, got {len(choices)}")
            for index, choice in enumerate(choices):
                _check_value(name, choice, f"[{name}] choices[{index}]")
            clean[name] = {"choices": list(choices)}
        elif {"low", "high"} <= keys <= {"low", "high", "log", "step"}:
            if PARAMETERS[name] == "str":
                raise SpaceError(f"[{name}]: a text parameter takes choices or value, not a range")
            low, high = entry["low"], entry["high"]
            _check_value(name, low, f"[{name}] low")
            _check_value(name, high, f"[{name}] high")
            if not low < high:
                raise SpaceError(f"[{name}]: low must be below high, got {low!r} and {high!r}")
            log = entry.get("log", False)
            if not isinstance(log, bool):
                raise SpaceError(f"[{name}] log: expected true or false, got {log!r}")
            if log and low <= 0:
                raise SpaceError(f"[{name}]: a log range must start above 0, got low = {low!r}")
            step = entry.get("step")
            if step is not None and (
                not isinstance(step, int) or isinstance(step, bool) or step < 1 or log
            ):
                raise SpaceError(
                    f"[{name}] step: expected a positive integer step on a linear integer "
                    f"range, got {step!r}"
                )
            if PARAMETERS[name] == "int" and not (isinstance(low, int) and isinstance(high, int)):
                raise SpaceError(f"[{name}]: expected integer low and high, got {low!r}, {high!r}")
            clean[name] = {"low": low, "high": high, "log": log}
            if step is not None:
                clean[name]["step"] = step
        else:
            raise SpaceError(
                f"[{name}]: expected either low and high (with optional log, step), or "
                f"choices, or value; got the keys {sorted(keys)}"
            )
    return clean


def load_space(path: str | Path, base: dict[str, dict]) -> dict[str, dict]:
    """``base`` with the entries of the TOML file ``path`` put in their place.

    Raises:
        SpaceError: the file is too large, not TOML, or holds a bad entry.
        FileNotFoundError: no such file.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read(MAX_SPACE_BYTES + 1)
    if len(data) > MAX_SPACE_BYTES:
        raise SpaceError(f"{path}: a space file is at most {MAX_SPACE_BYTES} bytes")
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SpaceError(f"{path}: not a valid TOML file ({error})") from None
    try:
        entries = validate_space(table)
    except SpaceError as error:
        raise SpaceError(f"{path}: {error}") from None
    return {**base, **entries}


def sample(trial, space: dict[str, dict]) -> dict[str, Any]:
    """One value per parameter of ``space``, suggested by the Optuna ``trial``."""
    values: dict[str, Any] = {}
    for name, entry in space.items():
        if "value" in entry:
            values[name] = entry["value"]
        elif "choices" in entry:
            values[name] = trial.suggest_categorical(name, entry["choices"])
        elif PARAMETERS[name] == "int":
            values[name] = trial.suggest_int(
                name, entry["low"], entry["high"], step=entry.get("step", 1), log=entry["log"]
            )
        else:
            values[name] = trial.suggest_float(name, entry["low"], entry["high"], log=entry["log"])
    return values


def recipe_values(values: dict[str, Any], base_hidden: tuple[int, ...]) -> dict[str, Any]:
    """Sampled values as recipe fields: ``layers`` and ``units`` become ``hidden`` (either
    missing keeps that part of ``base_hidden``: its depth, or its first layer's width)."""
    fields = {k: v for k, v in values.items() if k not in ("layers", "units")}
    if "layers" in values or "units" in values:
        layers = values.get("layers", len(base_hidden))
        units = values.get("units", base_hidden[0] if base_hidden else 128)
        fields["hidden"] = (units,) * layers
    return fields
