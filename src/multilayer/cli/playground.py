"""``mlp playground``: a page to build a small network, train it live and watch it learn."""

import sys
from typing import Annotated

import typer

#: Seconds Ctrl-C waits for open pages' streams before ending them.
SHUTDOWN_SECONDS = 5


def command(
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
            "default only the names of --host are answered.",
        ),
    ] = None,
    max_pages: Annotated[
        int, typer.Option(min=1, max=64, help="Pages (each with its own model) open at once.")
    ] = 8,
) -> None:
    """Serve the MLP playground: pick a 2-D dataset, build a network (or Rosenblatt's
    perceptron), press play and watch the engine train it."""
    from multilayer.app.playground import create_playground_app
    from multilayer.app.server import allowed_hosts_for, bind_socket, is_public, make_server

    hosts = (*allowed_hosts_for(host), *(allow_host or ()))
    app = create_playground_app(allowed_hosts=hosts, max_pages=max_pages)
    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    if is_public(host):
        print(
            f"warning: listening on {host}: anyone who can reach this address can train "
            "networks on this machine",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"playground on http://{shown}:{real_port}/  (Ctrl-C to stop)")
    server = make_server(app, host, real_port)
    # Open pages keep their event streams open for ever: on Ctrl-C the streams end by
    # themselves (app.state.stopping), and any still open after a few seconds are cancelled.
    app.state.stopping = lambda: server.should_exit
    server.config.timeout_graceful_shutdown = SHUTDOWN_SECONDS
    with sock:
        server.run(sockets=[sock])
