"""Turning exceptions into the one line ``error: <what is wrong>`` that ``mlp`` prints.

Users see one line on stderr and an exit code, never a traceback: 2 for a usage error (bad
flag, bad value, missing argument), 1 for anything else. Set ``MLP_DEBUG=1`` to get the full
traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys

from multilayer.errors import MultilayerError

#: Exit codes.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Errors a user can cause (bad files, bad data, bad names, missing extras): their message is
#: the whole story, so it is shown as it is.
EXPECTED_ERRORS = (MultilayerError, ValueError, TypeError, OSError, ImportError)

DEBUG_ENV_VAR = "MLP_DEBUG"


def is_usage_error(error: BaseException) -> bool:
    """A command-line usage error: bad option, bad value, missing argument.

    Typer raises click's ``UsageError`` family (its own vendored copy in recent versions),
    whose members all carry ``exit_code == 2`` and ``format_message()``.
    """
    return getattr(error, "exit_code", None) == EXIT_USAGE and hasattr(error, "format_message")


def is_help_request(error: BaseException) -> bool:
    """Click signals "no arguments: show the help" (already printed) with this error."""
    return type(error).__name__ == "NoArgsIsHelpError"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def describe(error: BaseException) -> str:
    """What went wrong, in one line, without the ``error:`` prefix."""
    if is_usage_error(error):
        return one_line(error.format_message())  # type: ignore[attr-defined]  # checked above
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        # "[Errno 2] No such file or directory: 'x'" reads better as "x: No such file ..."
        return one_line(f"{error.filename}: {error.strerror}")
    if isinstance(error, EXPECTED_ERRORS):
        message = str(error) or type(error).__name__
        return one_line(message)
    return one_line(
        f"unexpected {type(error).__name__}: {error} "
        f"(rerun with {DEBUG_ENV_VAR}=1 to see the traceback)"
    )


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV_VAR, "").strip() not in ("", "0")


def report(error: BaseException, stream=None) -> int:
    """Print ``error: <what is wrong>`` on stderr and return the exit code for ``error``."""
    stream = stream or sys.stderr
    if debug_enabled():
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__, file=stream)
    print(f"error: {describe(error)}", file=stream, flush=True)
    if is_usage_error(error):
        return EXIT_USAGE
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_ERROR
