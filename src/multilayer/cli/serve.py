"""``mlp serve MODEL_OR_RUN_DIR``: the draw-a-digit browser app and its JSON API."""

from pathlib import Path
from typing import Annotated

import typer


def command(
    model: Annotated[Path, typer.Argument(help="A .safetensors model file or a run directory.")],
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 to accept other machines).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve a page to draw digits and watch the network answer, with a JSON API (/docs)."""
    from multilayer.app.server import create_app, serve

    app = create_app(model)  # load the model first: a bad file fails before "serving..."
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {model} on http://{shown}:{port}/  (Ctrl-C to stop)")
    serve(app, host=host, port=port)
