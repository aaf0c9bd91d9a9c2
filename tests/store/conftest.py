"""Store fixtures: a real PostgreSQL server for the session, and each store backend by name.

The server starts once per session (about 1.5 s) from Debian's binaries; without them (or without
psycopg) the PostgreSQL tests are skipped with how to install them, unless
``CORENAS_REQUIRE_POSTGRES=1`` (CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from store import pg_server
from store.helpers import Backend


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg_server.PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session; ``.url()`` gives a fresh schema."""
    reason = pg_server.missing()
    if reason is not None:
        if os.environ.get("CORENAS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CORENAS_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    server = pg_server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store backend in turn, at a new location (a file, or a new schema)."""
    if request.param == "sqlite":
        from corenas.store.sqlite import SQLiteStore, sqlite_url

        return Backend("sqlite", sqlite_url(tmp_path / "job.db"), SQLiteStore)
    from corenas.store.postgres import PostgresStore

    server: pg_server.PostgresServer = request.getfixturevalue("postgres")
    return Backend("postgresql", server.url(), PostgresStore)
