"""One registry and one config shape for every kind of named, configurable object.

Activations, initializers, regularizers, losses, metrics, optimizers, learning-rate schedules
and layers each have a `Registry`. An object is described, as in Keras, by

    {"class_name": "Adam", "config": {"learning_rate": 0.001, ...}}

where ``class_name`` is the Python class name and ``config`` is what ``get_config()`` returns
(and what ``cls.from_config(config)`` accepts). `Registry.get` turns a name (``"adam"``,
``"Adam"``), such a dict, or an instance into an instance, with a "did you mean" error for an
unknown name.

Files written before this module existed used three older shapes; `Registry.deserialize`
still reads them: a bare name (``"relu"``), a flat dict (``{"name": "l2", "l2": 0.01}``) and
``{"name": "adam", "config": {...}}``.

Also here: `positive_int`, the one check for "a positive integer" arguments.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

Config = dict[str, Any]


class Configurable(Protocol):
    """What a registered object provides: its constructor arguments as a JSON-able dict."""

    def get_config(self) -> Config: ...


T = TypeVar("T")


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """A ValueError for an unknown ``kind`` name, listing the known ones and the closest match."""
    known = sorted(known)
    lowered = {k.lower(): k for k in known}  # compared without case, suggested as spelt
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)
    hint = f" Did you mean {lowered[close[0]]!r}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Known: {', '.join(known)}.")


def positive_int(value: object, argument: str, error: type[ValueError] = ValueError) -> int:
    """``value`` as an ``int`` if it is a positive integer (a bool or a float is not).

    Raises:
        ValueError (or ``error``): ``"{argument} must be a positive integer, got {value!r}"``.
    """
    # numbers.Integral covers int and NumPy's integer types
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise error(f"{argument} must be a positive integer, got {value!r}")
    return int(value)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class Registry(Generic[T]):
    """The classes of one kind of object, by class name and by lower-case name.

    Args:
        kind: what the objects are, for error messages (``"optimizer"``, ``"layer type"``).
        base: their base class: `get` returns instances of it unchanged.
        aliases: extra lower-case names (``{"mse": "mean_squared_error"}``).
        names_are_class_names: list class names (not lower-case names) in errors, as for
            layers, which have no lower-case names.
        noun: what one config describes, in errors (default: ``kind``).
        legacy: also read the older config shapes (see the module docstring).
    """

    def __init__(
        self,
        kind: str,
        base: type[T],
        aliases: Mapping[str, str] | None = None,
        names_are_class_names: bool = False,
        noun: str | None = None,
        legacy: bool = True,
    ) -> None:
        self.noun = noun or kind
        self.legacy = legacy
        self.kind = kind
        self.base = base
        self._by_class_name: dict[str, type[T]] = {}
        self._by_name: dict[str, type[T]] = {}
        self._aliases = dict(aliases or {})
        self._names_are_class_names = names_are_class_names

    # -- registering ----------------------------------------------------------------------
    def register(self, cls: type[T], names: Iterable[str] | None = None) -> type[T]:
        """Register ``cls`` under its class name and the lower-case ``names`` (default: its
        ``name`` attribute, if it has one). Returns ``cls``, so it works as a decorator too.

        Raises:
            ValueError: a name already taken by another class.
        """
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{self.kind} registry: {cls!r} is not a {self.base.__name__}")
        if names is None:
            default = getattr(cls, "name", None)
            names = (default,) if isinstance(default, str) else ()
        for key, table in [(cls.__name__, self._by_class_name)] + [
            (name.lower(), self._by_name) for name in names
        ]:
            if table.get(key, cls) is not cls:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            table[key] = cls
        return cls

    def names(self) -> list[str]:
        """The names listed in errors: lower-case names and aliases (or class names)."""
        if self._names_are_class_names:
            return sorted(self._by_class_name)
        return sorted([*self._by_name, *self._aliases])

    def classes(self) -> list[type[T]]:
        """Every registered class, once each."""
        return list(dict.fromkeys([*self._by_class_name.values(), *self._by_name.values()]))

    def lookup(self, name: str, extra_names: Iterable[str] = ()) -> type[T]:
        """The class registered as ``name``: a class name (exact) or a name (any case)."""
        cls = self._by_class_name.get(name)
        if cls is None:
            key = name.lower()
            cls = self._by_name.get(self._aliases.get(key, key))
        if cls is None:
            raise unknown_name_error(self.kind, name, [*self.names(), *extra_names])
        return cls

    # -- identifiers ------------------------------------------------------------------------
    def get(self, identifier: object) -> T:
        """An instance from a name (built with its defaults), a config dict, or an instance."""
        if isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            return self.lookup(identifier)()
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        base = self.base.__name__
        raise TypeError(
            f"{self.kind} must be a name or {_article(base)} {base}, or a config dict; "
            f"got {type(identifier).__name__}"
        )

    def serialize(self, obj: T) -> Config:
        """``{"class_name": ..., "config": ...}``, the one config shape."""
        cls = type(obj)
        if self._by_class_name.get(cls.__name__) is not cls:
            raise ValueError(f"{self.kind} {cls.__name__!r} is not registered")
        get_config: Callable[[], Config] = obj.get_config  # type: ignore[attr-defined]
        return {"class_name": cls.__name__, "config": get_config()}

    def deserialize(self, config: object) -> T:
        """The object a `serialize` dict describes (older shapes included, see the module
        docstring).

        Raises:
            ValueError: not a config, an unknown class, or arguments the class refuses.
        """
        shape_error = ValueError(
            f"{_article(self.noun)} {self.noun} config must be "
            f"{{'class_name': ..., 'config': {{...}}}}, got {config!r}"
        )
        if self.legacy and isinstance(config, str):
            return self.lookup(config)()
        if not isinstance(config, dict) or (not self.legacy and "class_name" not in config):
            raise shape_error
        if "class_name" in config:
            if set(config) != {"class_name", "config"} or not isinstance(config["config"], dict):
                raise shape_error
            name, arguments = str(config["class_name"]), dict(config["config"])
        elif set(config) == {"name", "config"} and isinstance(config["config"], dict):
            name, arguments = str(config["name"]), dict(config["config"])  # old optimizer shape
        else:
            arguments = dict(config)  # old flat shape: {"name": ..., **arguments}
            name = str(arguments.pop("name", ""))
        cls = self.lookup(name)
        from_config = getattr(cls, "from_config", None)
        try:
            return from_config(arguments) if from_config is not None else cls(**arguments)
        except TypeError as error:
            raise ValueError(f"invalid configuration for {self.kind} {name}: {error}") from None
