"""``mlp playground``: a page to build a small network, train it live and watch it learn."""

from typing import Annotated

import typer

from multilayer.cli.common import AllowHostOption, HostOption, PortOption, allowed_hosts, listen

#: Seconds Ctrl-C waits for open pages' streams before ending them.
SHUTDOWN_SECONDS = 5


def command(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    allow_host: AllowHostOption = None,
    max_pages: Annotated[
        int, typer.Option(min=1, max=64, help="Pages (each with its own model) open at once.")
    ] = 8,
) -> None:
    """Serve the MLP playground: pick a 2-D dataset, build a network (or Rosenblatt's
    perceptron), press play and watch the engine train it."""
    from multilayer.app.playground import create_playground_app
    from multilayer.app.server import make_server

    app = create_playground_app(allowed_hosts=allowed_hosts(host, allow_host), max_pages=max_pages)
    sock, real_port, url = listen(
        host, port, "anyone who can reach this address can train networks on this machine"
    )
    typer.echo(f"playground on {url}  (Ctrl-C to stop)")
    server = make_server(app, host, real_port)
    # Open pages keep their event streams open for ever: on Ctrl-C the streams end by
    # themselves (app.state.stopping), and any still open after a few seconds are cancelled.
    app.state.stopping = lambda: server.should_exit
    server.config.timeout_graceful_shutdown = SHUTDOWN_SECONDS
    with sock:
        server.run(sockets=[sock])
