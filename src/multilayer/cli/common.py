"""What several ``mlp`` commands share: the ``--dataset`` and ``--data-dir`` options, loading a
model named on the command line, and printing tables.

Datasets are loaded and checked by the library (`multilayer.datasets.load_dataset`):
``mnist``, ``fashion_mnist``, the path of an ``.npz`` file, or an image folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from multilayer.datasets import DATASETS, is_builtin
from multilayer.utils.naming import unknown_name_error


def check_dataset_name(value: str | None) -> str | None:
    """Typer callback for ``--dataset``: a built-in name, or an existing ``.npz`` file (made
    absolute, so a run directory records a path that works from anywhere)."""
    if value is None:
        return None
    if is_builtin(value):
        return value.strip().lower().replace("-", "_")
    if value.endswith(".npz"):
        path = Path(value).expanduser()
        if not path.is_file():
            raise typer.BadParameter(f"{value}: no such file")
        return str(path.absolute())
    folder = Path(value).expanduser()
    if folder.is_dir():
        return str(folder.absolute())
    raise typer.BadParameter(
        str(unknown_name_error("dataset", value, DATASETS))
        + " Or give the path of an .npz file or an image folder."
    )


#: ``--dataset``, shared by the commands that read a dataset.
DatasetOption = Annotated[
    str,
    typer.Option(
        callback=check_dataset_name,
        help="mnist, fashion_mnist, an .npz file with x_train, y_train, x_test, y_test, or an "
        "image folder with one sub-folder per class (grayscale 28x28, 20% held out for test).",
    ),
]
#: ``--data-dir``, shared by the commands that read a dataset.
DataDirOption = Annotated[
    Path | None,
    typer.Option(help="Directory holding the datasets (default: $MULTILAYER_DATA)."),
]

#: ``--host``, ``--port`` and ``--allow-host``, shared by the commands that serve a page.
HostOption = Annotated[
    str, typer.Option(help="Address to listen on (0.0.0.0 to accept other machines).")
]
PortOption = Annotated[
    int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")
]
AllowHostOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        metavar="NAME",
        help="Also answer requests for this host name (repeatable; '*' for any). By "
        "default only the names of --host are answered (localhost and 127.0.0.1 for the "
        "default), which blocks DNS-rebinding pages.",
    ),
]


def allowed_hosts(host: str, allow_host: list[str] | None) -> tuple[str, ...]:
    """The host names a server on ``host`` answers: those of ``host`` and ``--allow-host``."""
    from multilayer.app.server import allowed_hosts_for

    return (*allowed_hosts_for(host), *(allow_host or ()))


def listen(host: str, port: int, public_warning: str):
    """The bound socket for ``host:port`` (a port in use fails here) and the URL it serves
    at; warns on stderr, with ``public_warning``, when ``host`` accepts other machines."""
    from multilayer.app.server import bind_socket, is_public

    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    if is_public(host):
        print(f"warning: listening on {host}: {public_warning}", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    return sock, real_port, f"http://{shown}:{real_port}/"


def load_model_arg(path: Path):
    """Load the model named on the command line (a .safetensors file or a run directory).

    Returns:
        ``(model, model_file, run_dir)`` where ``run_dir`` is a `multilayer.runs.RunDir` or None.
    """
    from multilayer.models import load_model
    from multilayer.runs import resolve_model_path

    model_file, run = resolve_model_path(path)
    return load_model(model_file), model_file, run


def console(stderr: bool = False):
    """A rich Console (imported lazily: rich is part of the [cli] extra)."""
    from rich.console import Console

    # soft_wrap: long lines are not cut at 80 columns when the output is a file or a pipe.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def show(key: str, value) -> str:
    """A metadata value for humans: accuracies as percentages, other floats to 4 digits."""
    if isinstance(value, float):
        return percent(value) if "accuracy" in key else f"{value:.4g}"
    return str(value)
