"""The package version: the one place it is written.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``), ``multilayer.__version__`` and
``mlp --version`` import it. It imports nothing, so ``mlp --version`` stays instant.
"""

__version__ = "0.1.0"
