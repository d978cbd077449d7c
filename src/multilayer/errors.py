"""The library's own exceptions.

Every error a user can cause derives from ``MultilayerError`` and from the builtin it
refines (``ValueError``, ``TypeError``, ``OSError``), so ``except ValueError`` keeps working
and the CLI can turn any of them into a one-line message.
"""


class MultilayerError(Exception):
    """Base class of every error raised on purpose by multilayer."""


class DataError(MultilayerError, ValueError):
    """A data file or array is malformed, truncated, or does not match what was expected."""


class DatasetNotFoundError(MultilayerError, FileNotFoundError):
    """A dataset is not on disk and could not be downloaded."""


class ModelFileError(MultilayerError, ValueError):
    """A model or checkpoint file is not a valid multilayer file."""


class ImageError(MultilayerError, ValueError):
    """An image cannot be decoded, is too large, or has no digit in it."""


class TrainingError(MultilayerError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""
