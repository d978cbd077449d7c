"""``mlp serve MODEL_OR_RUN_DIR``: the draw-a-digit browser app and its JSON API."""

from pathlib import Path
from typing import Annotated

import typer

from multilayer.cli.common import AllowHostOption, HostOption, PortOption, allowed_hosts, listen


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    allow_host: AllowHostOption = None,
) -> None:
    """Serve a page to draw digits and watch the network answer, with a JSON API (/docs)."""
    from multilayer.app.server import create_app, serve

    # a bad model fails before "serving...", and so does a port in use (in listen)
    app = create_app(model, allowed_hosts=allowed_hosts(host, allow_host))
    sock, real_port, url = listen(
        host, port, "the API has no authentication; anyone who can reach this address can use it"
    )
    typer.echo(f"serving {model} on {url}  (Ctrl-C to stop)")
    serve(app, host=host, port=real_port, sock=sock)
