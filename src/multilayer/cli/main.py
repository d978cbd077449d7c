"""The ``mlp`` command line: a Typer app whose commands each live in their own module.

Adding a command ``mlp NAME``:

1. write ``src/multilayer/cli/NAME.py`` with a function ``command(...)`` declared with Typer
   annotations (its docstring becomes the command's help); import heavy modules inside it
   so that ``mlp --help`` stays fast;
2. add ONE line to ``COMMANDS`` below: ``"NAME": "multilayer.cli.NAME",``.

Errors: raise whatever fits (``MultilayerError`` subclasses, ``ValueError``, ``OSError``, or
``typer.BadParameter`` for a bad flag value); `main` turns any exception into one line
``error: ...`` on stderr and exit code 1 (2 for usage errors) — never a traceback, unless
``MLP_DEBUG=1``. Do not print errors or call ``sys.exit`` in a command.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from multilayer._version import __version__
from multilayer.cli import errors

CLI_EXTRA_HINT = "the mlp command needs Typer and rich: pip install 'multilayer[cli]'"

#: Command name -> module defining ``command``. Registering a command is one line here.
COMMANDS: dict[str, str] = {
    "train": "multilayer.cli.train",
    "evaluate": "multilayer.cli.evaluate",
    "predict": "multilayer.cli.predict",
    "info": "multilayer.cli.info",
    "report": "multilayer.cli.report",
    "serve": "multilayer.cli.serve",
    "tune": "multilayer.cli.tune",
    "export": "multilayer.cli.export",
    "playground": "multilayer.cli.playground",
}


def build_app():
    """The Typer app (``typer.Typer``) with every command of `COMMANDS` registered."""
    import typer

    app = typer.Typer(
        name="mlp",
        help="Train, evaluate and use multi-layer perceptrons on MNIST-style data.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,  # main() prints one line per error instead
        rich_markup_mode=None,
    )

    def options(
        version: bool = typer.Option(
            False,
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ) -> None:
        """Options of mlp itself, given before the command."""

    app.callback()(options)
    for name, module in COMMANDS.items():
        app.command(name)(importlib.import_module(module).command)
    return app


def _print_version(value: bool) -> None:
    if value:
        import typer

        print(f"mlp (multilayer) {__version__}")
        raise typer.Exit()


#: Help metavars by Python type, for options declared without one: help shows words, never
#: Python types such as ``<list[Path]>``.
METAVARS: dict[type, str] = {str: "TEXT", int: "INTEGER", float: "NUMBER", Path: "PATH"}


def build_command():
    """The click command of `build_app`, with plain help: click's formatter (rich's tables cut
    option names at 80 columns) and a metavar for every parameter (``MODEL``, ``IMAGES...``,
    ``--seed INTEGER``) instead of Typer's Python types."""
    import typer.main

    command = typer.main.get_command(build_app())
    for sub in command.commands.values():
        for param in sub.params:
            if param.metavar is not None or getattr(param, "is_flag", False):
                continue
            if param.param_type_name == "argument":
                param.metavar = param.name.upper()
                # Typer lists an argument as "NAME <type>": keep the name only.
                param.display_type_rich = lambda ctx: None
            else:
                annotation = param.type_descriptor.annotation
                param.metavar = METAVARS.get(annotation, "VALUE")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mlp`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    try:
        import typer.main  # noqa: F401  (the [cli] extra is installed)
    except ImportError:
        print(f"error: {CLI_EXTRA_HINT}", file=sys.stderr)
        return errors.EXIT_ERROR
    try:
        command = build_command()
        code = command.main(args=argv, prog_name="mlp", standalone_mode=False)
    except Exception as error:  # every error ends as one line: see cli/errors.py
        if errors.is_help_request(error):  # "mlp" alone: the help, as for --help
            print(cast(Any, error).format_message())
            return 0
        return errors.report(error)
    except KeyboardInterrupt as error:
        return errors.report(error)
    # A command returns None; Exit(code) (e.g. --help, Ctrl-C) arrives here as an int.
    if code == errors.EXIT_INTERRUPTED:  # Typer turns KeyboardInterrupt into Exit(130)
        print("error: interrupted", file=sys.stderr)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
