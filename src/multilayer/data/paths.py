"""Where datasets live on disk.

One root directory holds every dataset, each in its own subdirectory (``<root>/mnist``,
``<root>/fashion_mnist``). The root is chosen, first match wins:

1. the directory passed explicitly (for example ``mnist.load_data(path=...)``);
2. the environment variable ``MULTILAYER_DATA``;
3. the per-user cache: ``$XDG_CACHE_HOME/multilayer/datasets``, or
   ``~/.cache/multilayer/datasets`` when ``XDG_CACHE_HOME`` is unset or not absolute (as
   the XDG specification asks).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "data_dir"]

#: Environment variable naming the data root directory.
DATA_ENV_VAR = "MULTILAYER_DATA"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root directory of the datasets (not created here).

    Args:
        explicit: a directory that overrides everything else; ``~`` is expanded.

    Returns:
        The directory, with ``~`` expanded (it may not exist yet).
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_ENV_VAR, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    cache_root = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return cache_root / "multilayer" / "datasets"
