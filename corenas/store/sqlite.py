"""The SQLite trial store: one WAL-mode database file per job, JSON text only.

Promises (on top of ``Store``'s): every change is one ``BEGIN IMMEDIATE`` ... ``COMMIT``
transaction, so a crash at any instant (``kill -9`` included) leaves all or none of it;
``synchronous=NORMAL`` (default) survives process crashes, ``FULL`` also power loss; any number of
processes may read while one writes (WAL); the driver lock is an ``fcntl.flock`` on
``<db>.lock`` that the OS drops when its process dies.

A ``SQLiteStore`` belongs to the process that opened it: use it from one thread at a time and
open a new one in a forked child instead of using the parent's (SQLite connections and ``flock``
descriptors must not be shared across ``fork``); using it after a fork raises ``StoreError``.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from corenas.errors import StoreError
from corenas.store.sql import SQLStore

__all__ = ["SQLiteStore", "sqlite_url", "sqlite_path", "default_lock_owner"]

_MEMORY = ":memory:"
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def sqlite_path(url: str) -> str:
    """Return the database path of a ``sqlite://`` URL (``:memory:`` for an in-memory store).

    ``sqlite:////abs/path.db`` is absolute and ``sqlite:///rel/path.db`` relative to the current
    directory (as in SQLAlchemy); ``sqlite://``, ``sqlite://:memory:`` and ``sqlite:///:memory:``
    are in-memory. Raises ``StoreError`` for anything else.
    """
    if url in ("sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        return _MEMORY
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise StoreError(
            f"storage URL '{url}' is not an SQLite URL; write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    return url[len("sqlite:///") :]


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """Return the absolute ``sqlite:///`` URL of a database file path (not required to exist)."""
    return "sqlite:///" + os.path.abspath(os.fspath(path))


def default_lock_owner() -> str:
    """A description of this process for the driver lock: ``pid 123 on host``."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


class SQLiteStore(SQLStore):
    """A ``Store`` in one SQLite file (``sqlite:///path``) or in memory (``sqlite:///:memory:``).

    Opening never creates directories: the parent directory must exist and be writable. A new or
    empty file gets the schema; a file of another schema version, or one that is not a corenas
    store, is refused with ``StoreError``. With ``create=False`` a missing file is refused too
    (for read-only tools such as listing). ``synchronous`` is SQLite's pragma (``NORMAL``:
    committed data survives a process crash; ``FULL``: also an OS crash or power loss).
    ``busy_timeout_ms`` bounds how long a write waits for another process's write.
    """

    db_errors = (sqlite3.Error,)
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(
        self,
        url: str,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 30000,
        create: bool = True,
    ) -> None:
        self.url = url
        self.path = sqlite_path(url)
        if self.path != _MEMORY:
            self.path = os.path.abspath(self.path)
        self.location = self.path
        self._start()
        self._lock_fd: int | None = None
        sync = str(synchronous).upper()
        if sync not in _SYNCHRONOUS:
            raise StoreError(
                f"storage synchronous='{synchronous}' is not valid; "
                f"use one of {', '.join(_SYNCHRONOUS)} (NORMAL or FULL recommended)"
            )
        if busy_timeout_ms < 0:
            raise StoreError(
                f"storage busy_timeout_ms={busy_timeout_ms} is negative; use milliseconds >= 0"
            )
        self._synchronous = sync
        self._check_location(create)
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_ms / 1000.0,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open store {self.path} ({exc}); check the path and its permissions"
            ) from exc
        self._conn = conn
        try:
            self._open_schema(conn)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # --- dialect --------------------------------------------------------------------------
    def _check_location(self, create: bool) -> None:
        if self.path == _MEMORY:
            return
        target = Path(self.path)
        parent = target.parent
        if not parent.is_dir():
            raise StoreError(
                f"cannot open store {target}: directory {parent} does not exist; "
                "create the job directory first or fix storage.url"
            )
        if target.is_dir():
            raise StoreError(
                f"cannot open store {target}: it is a directory; point storage.url at a file"
            )
        if not target.exists():
            if not create:
                raise StoreError(
                    f"no store at {target}; check storage.url (or the job directory) and run "
                    "the search that creates it"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise StoreError(
                    f"cannot create store {target}: directory {parent} is not writable; "
                    "fix its permissions or choose another job directory"
                )
        elif not os.access(parent, os.W_OK | os.X_OK) or not os.access(target, os.R_OK | os.W_OK):
            raise StoreError(
                f"cannot open store {target}: it or its directory {parent} is not writable "
                "(SQLite needs both for its WAL files); fix the permissions"
            )

    def _configure(self, conn: sqlite3.Connection) -> None:
        """WAL journal, the chosen ``synchronous`` level and foreign keys."""
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self.path != _MEMORY and str(mode).lower() != "wal":
            raise StoreError(
                f"store {self.path} cannot use SQLite's WAL journal (got '{mode}'); "
                "put the job directory on a local file system"
            )

    def _open_error(self, exc: Exception) -> StoreError:
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_NOTADB" or "not a database" in str(exc):
            return StoreError(
                f"{self.path} is not a corenas store (not an SQLite database); point "
                "storage.url at a job's store or at a new file"
            )
        return StoreError(
            f"cannot open store {self.path} ({exc}); check the file, its permissions and "
            "whether another process holds it"
        )

    def _not_a_store(self) -> StoreError:
        return StoreError(
            f"{self.path} is not a corenas store (an SQLite database without the "
            "corenas tables); point storage.url at a job's store or at a new file"
        )

    def _write_error(self, exc: Exception) -> StoreError:
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreError(
                f"store {self.path} stayed locked by another writer past the busy timeout "
                f"({exc}); retry, or raise storage.busy_timeout_ms"
            )
        return StoreError(f"write to store {self.path} failed ({exc}); check the disk and file")

    def _read_error(self, exc: Exception) -> StoreError:
        return StoreError(f"read from store {self.path} failed ({exc}); check the file and retry")

    def _begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # the write lock now: no upgrade deadlocks later

    def _in_transaction(self, conn: sqlite3.Connection) -> bool:
        return conn.in_transaction

    def _insert_id(self, conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> int:
        return cast(int, conn.execute(sql, params).lastrowid)

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {name for (name,) in rows} - {"sqlite_sequence"}

    def _columns(self, conn: sqlite3.Connection, table: str) -> set[str]:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}

    def _forget_in_child(self) -> None:
        fd, self._lock_fd, self._conn = self._lock_fd, None, None
        if fd is not None:
            os.close(fd)  # the child's copy only; the parent keeps its lock

    # --- driver lock ----------------------------------------------------------------------
    @property
    def lock_path(self) -> str | None:
        """The sidecar lock file (``<db>.lock``), or None for an in-memory store."""
        return None if self.path == _MEMORY else self.path + ".lock"

    def acquire_driver_lock(self, owner: str) -> None:
        """Take an exclusive, non-blocking ``flock`` on ``<db>.lock`` and write ``owner`` into
        it; the OS releases it when this process dies. Raises ``StoreError`` naming the holder
        when another process (or another store object) holds it. No-op in memory; taking it
        again through the same store only rewrites the owner."""
        self._db()
        lock_path = self.lock_path
        if lock_path is None:
            return
        fd = self._lock_fd
        if fd is None:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(
                    f"cannot open driver lock {lock_path} ({exc.strerror}); check the job "
                    "directory's permissions"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                try:
                    holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                finally:
                    os.close(fd)
                raise StoreError(
                    f"job {self.path} is being driven by {holder or 'another process'}; "
                    "stop it first or wait"
                ) from exc
            self._lock_fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, owner.encode("utf-8"), 0)
        except OSError as exc:  # a full disk: give the lock back rather than hold it unnamed
            self.release_driver_lock()
            raise StoreError(
                f"cannot write the driver lock {lock_path} ({exc.strerror}); free space on its "
                "disk or fix the job directory's permissions"
            ) from exc

    def driver(self) -> str | None:
        """Owner of the live driver lock (probed with a non-blocking ``flock``), or None."""
        lock_path = self.lock_path
        if lock_path is None:
            return None
        if self._lock_fd is not None:
            return os.pread(self._lock_fd, 4096, 0).decode("utf-8", "replace").strip() or None
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                return holder or "another process"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release_driver_lock(self) -> None:
        """Release the lock taken by ``acquire_driver_lock`` (no-op when not held)."""
        fd = self._lock_fd
        if fd is None:
            return
        self._lock_fd = None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
