"""Where datasets live on disk.

One root directory holds every dataset, each in its own subdirectory (``<root>/mnist``,
``<root>/fashion_mnist``). The root is chosen, first match wins:

1. the directory passed explicitly (for example ``mnist.load_data(path=...)``);
2. the environment variable ``MULTILAYER_DATA``; a relative value is relative to the
   directory the process started in (where the variable was given), resolved once, so a
   later ``os.chdir`` does not change which directory it names;
3. the per-user cache: ``$XDG_CACHE_HOME/multilayer/datasets``, or
   ``~/.cache/multilayer/datasets`` when ``XDG_CACHE_HOME`` is unset or not absolute (as
   the XDG specification asks).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "cache_dir", "data_dir", "resolve_setting"]

#: Environment variable naming the data root directory.
DATA_ENV_VAR = "MULTILAYER_DATA"


def _startup_directory() -> Path | None:
    try:
        return Path(os.getcwd())
    except OSError:  # the working directory was deleted
        return None


#: The working directory when multilayer was first imported: relative settings taken from
#: the environment are relative to it.
_STARTUP_DIRECTORY = _startup_directory()


def resolve_setting(value: str | os.PathLike[str]) -> Path:
    """An environment setting naming a path, made absolute once and for all.

    ``~`` is expanded; a relative path is taken relative to the directory the process
    started in (the directory where the setting was given), not the current one, so code
    that changes directory (tests in temporary directories) still finds the same place.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    base = _STARTUP_DIRECTORY or Path(os.getcwd())
    return Path(os.path.normpath(base / path))


def cache_dir() -> Path:
    """The per-user cache directory of multilayer (not created here):
    ``$XDG_CACHE_HOME/multilayer``, or ``~/.cache/multilayer`` when ``XDG_CACHE_HOME`` is
    unset or not absolute (as the XDG specification asks)."""
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    cache_root = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return cache_root / "multilayer"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root directory of the datasets (not created here).

    Args:
        explicit: a directory that overrides everything else; ``~`` is expanded.

    Returns:
        The directory, with ``~`` expanded (it may not exist yet). A relative ``explicit``
        path is returned as given (relative to the current directory, like any path
        argument); a relative ``MULTILAYER_DATA`` is resolved by `resolve_setting`.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_ENV_VAR, "").strip()
    if from_env:
        return resolve_setting(from_env)
    return cache_dir() / "datasets"
