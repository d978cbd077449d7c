"""``mlp serve MODEL_OR_RUN_DIR``: the draw-a-digit browser app and its JSON API."""

import sys
from pathlib import Path
from typing import Annotated

import typer


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 to accept other machines).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8000,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="NAME",
            help="Also answer requests for this host name (repeatable; '*' for any). By "
            "default only the names of --host are answered (localhost and 127.0.0.1 for the "
            "default), which blocks DNS-rebinding pages.",
        ),
    ] = None,
) -> None:
    """Serve a page to draw digits and watch the network answer, with a JSON API (/docs)."""
    from multilayer.app.server import allowed_hosts_for, bind_socket, create_app, is_public, serve

    hosts = (*allowed_hosts_for(host), *(allow_host or ()))
    app = create_app(model, allowed_hosts=hosts)  # a bad model fails before "serving..."
    sock = bind_socket(host, port)  # a port in use fails here, before "serving..." too
    real_port = sock.getsockname()[1]
    if is_public(host):
        print(
            f"warning: listening on {host}: the API has no authentication; anyone who can "
            "reach this address can use it",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {model} on http://{shown}:{real_port}/  (Ctrl-C to stop)")
    serve(app, host=host, port=real_port, sock=sock)
