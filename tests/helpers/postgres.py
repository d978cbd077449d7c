"""A throwaway PostgreSQL cluster for tests: ``initdb`` into a temporary directory, started
with ``pg_ctl`` on 127.0.0.1 and a free port, stopped and deleted afterwards.

PostgreSQL refuses to run as root: under root (CI) the server runs as the ``postgres`` user
that Debian's package creates (``subprocess``'s ``user=``/``group=``), in a directory given
to that user. Without the binaries (or, as root, without a ``postgres`` user) the caller
skips with the reason `find_binaries` / `server_user` return.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def find_binaries() -> tuple[Path, Path] | str:
    """``(initdb, pg_ctl)``, or why they cannot be found."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)
    # Debian keeps them out of PATH, in /usr/lib/postgresql/<version>/bin
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{directory}/initdb", os.X_OK) and os.access(f"{directory}/pg_ctl", os.X_OK):
            return Path(directory, "initdb"), Path(directory, "pg_ctl")
    return "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"


def server_user() -> pwd.struct_passwd | None | str:
    """The user to run the server as: None (this one) unless we are root, then
    ``postgres``; or why there is none."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return "running as root and there is no 'postgres' user to run the server as"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_cluster(initdb: Path, pg_ctl: Path, user: pwd.struct_passwd | None) -> Iterator[str]:
    """Yields the URL of a fresh, empty cluster (``postgresql+psycopg2://postgres@127.0.0.1:
    PORT/postgres``, trust authentication on 127.0.0.1 only)."""
    root = Path(tempfile.mkdtemp(prefix="multilayer-pg-"))
    data = root / "data"
    as_user: dict = {}
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C", "HOME": str(root)}
    port = free_port()
    started = False

    def run(*args: str) -> None:
        result = subprocess.run(
            list(args), cwd=root, env=env, capture_output=True, text=True, timeout=120, **as_user
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    try:
        run(
            str(initdb),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(pg_ctl), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
            "-o", options, "start")  # fmt: skip
        started = True
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            with contextlib.suppress(Exception):
                run(str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
