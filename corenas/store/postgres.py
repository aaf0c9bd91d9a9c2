"""The PostgreSQL trial store: one job per database schema, shared by processes on many machines.

``postgresql://user@host:port/database`` with a schema (``storage.schema=NAME`` or
``?schema=NAME`` in the URL; ``public`` when neither is given) holds one job in the tables of that
schema, the same tables as the SQLite store. Promises (on top of
``Store``'s): every change is one transaction; with any number of processes writing at once,
trial ids stay 1, 2, ... without gaps (``add_trials`` locks the trials table against other
writers until it commits), a final trial is never finished again (the finishing ``UPDATE`` is
conditional on the stored status, which PostgreSQL re-checks after a concurrent update), and the
newest controller checkpoint is the last one committed. The driver lock is a session-level
advisory lock held by the driver's connection: the server drops it when that connection ends,
also when the driver is killed (the server notices a vanished machine through TCP keepalives
within about a minute). Readers never wait for writers.

A ``PostgresStore`` belongs to the process that opened it (one connection, used by one thread at
a time); using it in a forked child raises ``StoreError``. Needs ``psycopg`` 3
(``pip install 'corenas[postgres]'``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from corenas.errors import StoreError
from corenas.store.sql import SQLStore

__all__ = ["PostgresStore", "postgres_target"]

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_LOCK_SPACE = 0x636F_726E  # "corn": keeps corenas' advisory lock keys apart from others
_SYNCHRONOUS_COMMIT = {"OFF": "off", "NORMAL": None, "FULL": "on", "EXTRA": "on"}
"""SQLite's ``synchronous`` levels as PostgreSQL's ``synchronous_commit`` (None: the server's)."""
_CHECK_SERVER = "check the server and the connection to it"
_HINT = "write postgresql://user@host:port/database"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def postgres_target(url: str, schema: str | None = None) -> tuple[str, str, str]:
    """Split a ``postgresql://`` URL into (libpq connection URI, schema, location for messages).

    The schema is ``schema``, or else the URL's ``?schema=NAME`` (taken out of the query), or
    else ``public``; naming two different ones is an error. Other query parameters
    (``sslmode``, ``connect_timeout``, ...) go to libpq. A ``+driver`` suffix of the scheme is
    ignored. The location leaves out the password. Raises ``StoreError`` for anything else.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise StoreError(f"storage URL '{url}' is malformed ({exc}); {_HINT}") from exc
    if parts.scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise StoreError(f"storage URL '{url}' is not a PostgreSQL URL; {_HINT}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    named = {value for key, value in query if key == "schema"}
    if schema is not None:
        named.add(schema)
    if len(named) > 1:
        raise StoreError(
            f"storage names more than one schema ({', '.join(sorted(named))}) in storage.url "
            "and storage.schema; give the schema once"
        )
    schema = named.pop() if named else "public"
    if not _SCHEMA_NAME.fullmatch(schema):
        raise StoreError(
            f"storage schema '{schema}' is not a plain name; use letters, digits and _ (at most "
            "63, not starting with a digit)"
        )
    rest = [(key, value) for key, value in query if key != "schema"]
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    user, at, host = parts.netloc.rpartition("@")
    shown = f"{user.split(':', 1)[0]}@{host}" if at else host
    return conninfo, schema, f"postgresql://{shown}{parts.path}?schema={schema}"


class PostgresStore(SQLStore):
    """A ``Store`` in one schema of a PostgreSQL database, shared by processes on many machines.

    ``url`` is ``postgresql://user@host:port/database``; the schema is ``schema``, or
    ``?schema=NAME`` in the URL, or ``public``.

    Opening creates the schema and its tables when they are missing (with ``create=False`` a
    schema without tables is refused instead); a schema holding other tables, or the tables of
    another schema version, is refused with ``StoreError``, as is an unreachable server or a
    malformed URL. ``synchronous`` takes the SQLite store's values: ``FULL`` (or ``EXTRA``) makes
    every commit wait for its WAL flush (``synchronous_commit = on``) whatever the server's
    default, ``NORMAL`` keeps the server's setting (PostgreSQL's default ``on`` survives power
    loss too), ``OFF`` lets commits return before the flush (``off``: a server crash may lose the
    last commits, never consistency). ``busy_timeout_ms`` bounds how long a write waits for
    another process's write (PostgreSQL's ``lock_timeout``); ``connect_timeout_s`` how long
    connecting may take.
    Keep the password out of the URL (it is saved in the job's config.yaml): libpq reads
    ``PGPASSWORD`` or ``~/.pgpass``.
    """

    real_type = "DOUBLE PRECISION"
    serial_key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    new_store_hint = "give each job its own schema with storage.schema=NAME"

    def __init__(
        self,
        url: str,
        schema: str | None = None,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 30000,
        connect_timeout_s: int = 10,
        create: bool = True,
    ) -> None:
        self.url = url
        conninfo, self.schema, self.location = postgres_target(url, schema)
        self._start()
        self._sql_cache: dict[str, str] = {}
        self._lock_key = 0  # set once the schema exists
        self._driving = False
        sync = str(synchronous).upper()
        commit_mode = _SYNCHRONOUS_COMMIT.get(sync, "invalid")
        if commit_mode == "invalid":
            raise StoreError(
                f"storage synchronous='{synchronous}' is not valid; "
                f"use one of {', '.join(_SYNCHRONOUS_COMMIT)} (NORMAL or FULL recommended)"
            )
        if busy_timeout_ms < 0:
            raise StoreError(
                f"storage busy_timeout_ms={busy_timeout_ms} is negative; use milliseconds >= 0"
            )
        if connect_timeout_s < 1:
            raise StoreError(
                f"storage connect_timeout_s={connect_timeout_s} is not positive; use seconds >= 1"
            )
        try:
            import psycopg
            from psycopg import sql
            from psycopg.pq import TransactionStatus
        except ImportError as exc:
            raise StoreError(
                f"storage URL '{self.location}' needs the psycopg package; install it with "
                "pip install 'corenas[postgres]'"
            ) from exc
        self.db_errors = (psycopg.Error,)
        self.integrity_errors = (psycopg.IntegrityError,)
        self._idle = TransactionStatus.IDLE
        try:
            conn = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(2, connect_timeout_s),
                application_name="corenas",
            )
        except psycopg.Error as exc:
            raise self._failure(
                "cannot connect to store",
                exc,
                "check storage.url and that the server is running and accepts this user",
            ) from exc
        self._conn = conn
        try:
            self._quoted_schema = sql.Identifier(self.schema).as_string(conn)
            settings = [
                f"SET search_path TO {self._quoted_schema}",
                f"SET lock_timeout = {max(1, int(busy_timeout_ms))}",  # 0: wait forever
                # the server drops a vanished driver's session (and its lock) within ~1 min
                "SET tcp_keepalives_idle = 30",
                "SET tcp_keepalives_interval = 10",
                "SET tcp_keepalives_count = 3",
            ]
            if commit_mode is not None:
                settings.append(f"SET synchronous_commit = {commit_mode}")
            for setting in settings:
                conn.execute(setting)
            if not create and not self._tables(conn):
                raise StoreError(
                    f"no store at {self.location}; check storage.url (or the job directory) and "
                    "run the search that creates it"
                )
            self._open_schema(conn)
            row: Any = conn.execute(
                "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            self._lock_key = (_LOCK_SPACE << 32) | int(row[0])
        except psycopg.Error as exc:
            conn.close()
            self._conn = None
            raise self._open_error(exc) from exc
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # --- dialect --------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        text = self._sql_cache.get(sql)
        if text is None:
            text = self._sql_cache[sql] = sql.replace("?", "%s")
        return text

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def _begin_create(self, conn: Any) -> None:
        conn.execute("BEGIN")
        # processes opening a new schema at once create it one after the other
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SPACE, self.schema))
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (self.schema,)
        ).fetchone()
        if exists is None:
            conn.execute(f"CREATE SCHEMA {self._quoted_schema}")

    def _in_transaction(self, conn: Any) -> bool:
        return bool(conn.info.transaction_status != self._idle)

    def _lock_table(self, conn: Any, table: str) -> None:
        conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    def _insert_id(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        return int(conn.execute(self._sql(sql) + " RETURNING id", params).fetchone()[0])

    def _tables(self, conn: Any) -> set[str]:
        rows = conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (self.schema,),
        ).fetchall()
        return {name for (name,) in rows}

    def _columns(self, conn: Any, table: str) -> set[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (self.schema, table),
        ).fetchall()
        return {name for (name,) in rows}

    def _not_a_store(self) -> StoreError:
        return StoreError(
            f"{self.location} is not a corenas store (schema {self.schema} holds other tables); "
            "choose a job's schema or a new one with storage.schema=NAME"
        )

    def _failure(self, what: str, exc: Exception, advice: str) -> StoreError:
        return StoreError(f"{what} {self.location} ({_one_line(exc)}); {advice}")

    def _open_error(self, exc: Exception) -> StoreError:
        return self._failure(
            "cannot open store",
            exc,
            "check the database user's privileges (it needs to create the schema and its "
            "tables, or use existing ones)",
        )

    def _write_error(self, exc: Exception) -> StoreError:
        from psycopg.errors import LockNotAvailable

        if isinstance(exc, LockNotAvailable):
            return self._failure(
                "busy timeout: another writer kept a lock on store",
                exc,
                "retry, or raise storage.busy_timeout_ms",
            )
        return self._failure("cannot write to store", exc, _CHECK_SERVER)

    def _read_error(self, exc: Exception) -> StoreError:
        return self._failure("cannot read from store", exc, f"{_CHECK_SERVER}, and retry")

    # --- driver lock ----------------------------------------------------------------------
    def _owner(self, conn: Any) -> str:
        row = conn.execute("SELECT value FROM meta WHERE key = 'driver'").fetchone()
        return "" if row is None else str(row[0])

    def acquire_driver_lock(self, owner: str) -> None:
        """Take the schema's session-level advisory lock (``pg_try_advisory_lock``, never
        waiting) and store ``owner`` in the ``meta`` row ``driver``; the server releases the lock
        when this connection ends, also when the process is killed. Raises ``StoreError`` naming
        the holder when another connection (another process, or another store object) holds it;
        taking it again through the same store only rewrites the owner."""
        conn = self._db()
        try:
            if not self._driving:
                locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,))
                if not locked.fetchone()[0]:
                    holder = self._owner(conn) or "another process"
                    raise StoreError(
                        f"job {self.location} is being driven by {holder}; stop it first or wait"
                    )
                self._driving = True
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('driver', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (owner,),
            )
        except self.db_errors as exc:
            raise self._write_error(exc) from exc

    def driver(self) -> str | None:
        """Owner of the live driver lock, or None. The lock is looked up in ``pg_locks``
        without trying to take it, so probing never makes a starting driver fail."""
        conn = self._db()
        try:
            if self._driving:
                return self._owner(conn) or None
            held = conn.execute(
                "SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_catalog.pg_database"
                " WHERE datname = current_database())"
                " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
                (self._lock_key >> 32, self._lock_key & 0xFFFF_FFFF),
            ).fetchone()
            return None if held is None else self._owner(conn) or "another process"
        except self.db_errors as exc:
            raise self._read_error(exc) from exc

    def release_driver_lock(self) -> None:
        """Clear the owner row and release the lock taken by ``acquire_driver_lock`` (no-op
        when not held, and when the connection is gone: the server dropped the lock with it)."""
        if not self._driving:
            return
        self._driving = False
        conn = self._db()
        try:
            conn.execute("DELETE FROM meta WHERE key = 'driver'")
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))
        except self.db_errors as exc:
            if not conn.broken:
                raise self._write_error(exc) from exc

    def _forget_in_child(self) -> None:
        # never close the parent's connection from a child: libpq would end its session
        self._conn = None
        self._driving = False

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"
