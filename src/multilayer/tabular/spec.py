"""`TableSpec`: what a table model was trained on (see :mod:`multilayer.tabular`).

``TableSpec.from_config`` reads a run's ``config.json``, a file anyone can edit: it accepts
exactly what ``to_config`` writes and raises :class:`~multilayer.errors.DataError` naming the
field for anything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from multilayer.errors import DataError

TASKS: tuple[str, ...] = ("regression", "binary", "multiclass", "multilabel")
KINDS: tuple[str, ...] = ("numeric", "categorical", "boolean")
#: Bounds on a spec read from a file (far above any real table, far below a memory problem).
MAX_COLUMNS = 100_000
MAX_CLASSES = 100_000
MAX_NAME_CHARS = 1_000
_KEYS = ("target", "task", "classes", "columns", "kinds")


@dataclass
class TableSpec:
    """The target, task, class labels and input columns of a table model.

    Attributes:
        target: the target column name(s); several only for ``multilabel``.
        task: ``regression``, ``binary``, ``multiclass`` or ``multilabel``.
        classes: the class labels (JSON scalars: str, int, float or bool), in the order of
            the model's outputs; ``[]`` for regression; the label column names for
            multilabel.
        columns: the input feature columns, in order.
        kinds: each input column's kind (``numeric``, ``categorical`` or ``boolean``).
    """

    target: list[str]
    task: str
    classes: list[Any] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The same checks whether built in code or read from a file.
        _validate(self.to_config())

    def to_config(self) -> dict[str, Any]:
        """A JSON-ready dict (new lists; changing it does not change the spec)."""
        return {
            "target": list(self.target),
            "task": self.task,
            "classes": list(self.classes),
            "columns": list(self.columns),
            "kinds": dict(self.kinds),
        }

    @classmethod
    def from_config(cls, config: Any) -> TableSpec:
        """The spec ``to_config`` wrote; DataError naming the field for anything else."""
        _validate(config)
        return cls(
            target=list(config["target"]),
            task=config["task"],
            classes=list(config["classes"]),
            columns=list(config["columns"]),
            kinds=dict(config["kinds"]),
        )

    @property
    def n_outputs(self) -> int:
        """Width of the model's output: 1 for regression and binary, else len(classes)."""
        return 1 if self.task in ("regression", "binary") else len(self.classes)


def _fail(message: str) -> DataError:
    return DataError(f"table spec: {message}")


def _names(value: Any, what: str, limit: int, allow_empty: bool) -> list[str]:
    if not isinstance(value, list):
        raise _fail(f"{what!r} must be a list of column names, not {type(value).__name__}")
    if not value and not allow_empty:
        raise _fail(f"{what!r} must name at least one column")
    if len(value) > limit:
        raise _fail(f"{what!r} has {len(value):,} entries (limit {limit:,})")
    for name in value:
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
            raise _fail(
                f"{what!r} entries must be non-empty strings of at most {MAX_NAME_CHARS} "
                f"characters, got {_short(name)}"
            )
    duplicate = _first_duplicate(value)
    if duplicate is not None:
        raise _fail(f"{what!r} has {duplicate!r} twice")
    return value


def _first_duplicate(values: list[Any]) -> Any:
    seen: set[Any] = set()
    for value in values:
        key = (type(value) is bool, value)  # True and 1 are different labels
        if key in seen:
            return value
        seen.add(key)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_label(value: Any) -> bool:
    if isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_NAME_CHARS


def _validate(config: Any) -> None:
    if not isinstance(config, dict):
        raise _fail(f"must be a JSON object, not {type(config).__name__}")
    missing = [k for k in _KEYS if k not in config]
    unknown = [k for k in config if k not in _KEYS]
    if missing or unknown:
        raise _fail(f"expected the keys {list(_KEYS)}; missing {missing}, unknown {unknown}")
    task = config["task"]
    if task not in TASKS:
        raise _fail(f"'task' must be one of {list(TASKS)}, got {_short(task)}")
    target = _names(config["target"], "target", MAX_COLUMNS, allow_empty=False)
    if len(target) > 1 and task != "multilabel":
        raise _fail(f"several target columns {target} make a multilabel task, not {task!r}")
    columns = _names(config["columns"], "columns", MAX_COLUMNS, allow_empty=False)
    both = [name for name in columns if name in target]
    if both:
        raise _fail(f"the target column(s) {both} cannot also be input columns")
    kinds = config["kinds"]
    if not isinstance(kinds, dict):
        raise _fail(f"'kinds' must be an object, not {type(kinds).__name__}")
    if set(kinds) != set(columns):
        missing_kinds = [n for n in columns if n not in kinds]
        extra = [n for n in kinds if n not in columns][:10]
        raise _fail(
            f"'kinds' must give one kind per column; missing {missing_kinds[:10]}, extra {extra}"
        )
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise _fail(
                f"the kind of column {name!r} must be one of {list(KINDS)}, got {_short(kind)}"
            )
    classes = config["classes"]
    if not isinstance(classes, list):
        raise _fail(f"'classes' must be a list, not {type(classes).__name__}")
    if len(classes) > MAX_CLASSES:
        raise _fail(f"'classes' has {len(classes):,} entries (limit {MAX_CLASSES:,})")
    for label in classes:
        if not _is_label(label):
            raise _fail(f"class labels must be strings, numbers or booleans, got {_short(label)}")
    duplicate = _first_duplicate(classes)
    if duplicate is not None:
        raise _fail(f"'classes' has {duplicate!r} twice")
    if task == "regression" and classes:
        raise _fail(f"a regression has no classes, got {len(classes)}")
    if task == "binary" and len(classes) != 2:
        raise _fail(f"a binary task has two classes, got {len(classes)}")
    if task == "multiclass" and len(classes) < 2:
        raise _fail(f"a multiclass task has at least two classes, got {len(classes)}")
    if task == "multilabel" and classes != target:
        raise _fail(
            f"a multilabel task's classes are its target columns {target}, got {_short(classes)}"
        )
