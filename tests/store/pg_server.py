"""A throw-away PostgreSQL server on 127.0.0.1 for tests, from Debian's packaged binaries.

``start()`` runs ``initdb`` and ``pg_ctl start`` in a fresh temporary directory (as the
``postgres`` system user when running as root, since PostgreSQL refuses root) on a free port,
with trust authentication for the user ``corenas``; ``PostgresServer.stop()`` stops it at once
and removes the directory. ``missing()`` says why no server can be started, or returns None.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

INSTALL = "apt-get install -y --no-install-recommends postgresql"
USER = "corenas"


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding ``initdb``, else the one on PATH."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    numbered = [b for b in versions if b.parent.name.isdigit()]
    if numbered:
        return max(numbered, key=lambda b: int(b.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing() -> str | None:
    """Why a server cannot be started here (with how to fix it), or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed; pip install 'corenas[postgres]'"
    if bin_dir() is None:
        return f"PostgreSQL server binaries not found; install them with `{INSTALL}`"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return f"running as root needs the postgres system user; `{INSTALL}` creates it"
    return None


def new_schema() -> str:
    """A schema name no test has used."""
    return f"t_{uuid.uuid4().hex[:12]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: ``url(schema)`` addresses one schema of its ``postgres`` database."""

    root: Path
    port: int
    pg_ctl: list[str]

    @property
    def database(self) -> str:
        """The URL of the database, without a schema."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def url(self, schema: str | None = None) -> str:
        """A fresh schema's URL unless ``schema`` is given."""
        return f"{self.database}?schema={schema or new_schema()}"

    def stop(self) -> None:
        subprocess.run(
            [*self.pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> PostgresServer:
    """Start a server (see the module docstring); raises ``RuntimeError`` with its log if it
    does not come up."""
    binaries = bin_dir()
    assert binaries is not None, missing()
    root = Path(tempfile.mkdtemp(prefix="corenas-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    pg_ctl = [*prefix, str(binaries / "pg_ctl")]
    initdb = [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust"]
    setup = subprocess.run(
        [*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if setup.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {setup.stderr.strip()}")
    for _ in range(3):  # another process may take the free port before the server binds it
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=60"
        started = subprocess.run(
            [*pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        if started.returncode == 0:
            return PostgresServer(root, port, pg_ctl)
    text = log.read_text() if log.exists() else started.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {text.strip()}")
