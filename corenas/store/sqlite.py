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
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from corenas.errors import StoreError
from corenas.records import (
    Architecture,
    JobStatus,
    Metrics,
    Trial,
    TrialStatus,
    canonical_json,
)
from corenas.store.base import SCHEMA_VERSION, JobRecord, Store

__all__ = ["SQLiteStore", "sqlite_url", "sqlite_path", "default_lock_owner"]

_MEMORY = ":memory:"
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_TABLES = frozenset({"meta", "job", "trials", "intermediate", "controller_checkpoints"})
_CREATE_MEASUREMENTS = (
    "CREATE TABLE measurements ("
    " key TEXT PRIMARY KEY,"
    " metrics_json TEXT NOT NULL,"
    " created_at REAL NOT NULL)"
)

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE job ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " name TEXT NOT NULL,"
    " config_json TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " created_at REAL NOT NULL,"
    " updated_at REAL NOT NULL)",
    "CREATE TABLE trials ("
    " id INTEGER PRIMARY KEY,"
    " genome_json TEXT NOT NULL,"
    " arch_id TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " metrics_json TEXT NOT NULL DEFAULT '{}',"
    " reward REAL NULL,"
    " error TEXT NULL,"
    " created_at REAL NOT NULL,"
    " started_at REAL NULL,"
    " finished_at REAL NULL,"
    " worker TEXT NULL,"
    " stage TEXT NOT NULL,"
    " parent_id INTEGER NULL REFERENCES trials (id))",
    "CREATE INDEX trials_arch_id ON trials (arch_id)",
    "CREATE INDEX trials_status ON trials (status)",
    "CREATE TABLE intermediate ("
    " trial_id INTEGER NOT NULL REFERENCES trials (id),"
    " step INTEGER NOT NULL,"
    " metrics_json TEXT NOT NULL,"
    " PRIMARY KEY (trial_id, step))",
    "CREATE TABLE controller_checkpoints ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " created_at REAL NOT NULL,"
    " state_json TEXT NOT NULL)",
    _CREATE_MEASUREMENTS,
)

_TRIAL_COLUMNS = (
    "id, genome_json, arch_id, status, metrics_json, reward, error,"
    " created_at, started_at, finished_at, worker, stage, parent_id"
)
_SELECT_TRIAL = f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE id = ?"
_SELECT_TRIALS = f"SELECT {_TRIAL_COLUMNS} FROM trials ORDER BY id"
_SELECT_TRIALS_BY_STATUS = f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE status = ? ORDER BY id"
_INSERT_TRIAL = (
    "INSERT INTO trials (genome_json, arch_id, status, created_at, stage, parent_id)"
    " VALUES (?, ?, 'pending', ?, ?, ?)"
)
_FINISH_TRIAL = (
    "UPDATE trials SET status = ?, metrics_json = ?, reward = ?, error = ?,"
    " started_at = COALESCE(?, started_at), finished_at = ?, worker = COALESCE(?, worker)"
    " WHERE id = ? AND status IN ('pending', 'running')"
)
_INSERT_CHECKPOINT = "INSERT INTO controller_checkpoints (created_at, state_json) VALUES (?, ?)"
_PRUNE_CHECKPOINTS = "DELETE FROM controller_checkpoints WHERE id < ?"


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


def _dump_metrics(metrics: Metrics, what: str) -> str:
    try:
        return json.dumps(metrics, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} metrics cannot be stored ({exc}); metrics must be finite numbers"
        ) from exc


def _dump_data(value: Any, what: str) -> str:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} cannot be stored as JSON ({exc}); use plain JSON data with finite numbers"
        ) from exc


class SQLiteStore(Store):
    """A ``Store`` in one SQLite file (``sqlite:///path``) or in memory (``sqlite:///:memory:``).

    Opening never creates directories: the parent directory must exist and be writable. A new or
    empty file gets the schema; a file of another schema version, or one that is not a corenas
    store, is refused with ``StoreError``. With ``create=False`` a missing file is refused too
    (for read-only tools such as listing). ``synchronous`` is SQLite's pragma (``NORMAL``:
    committed data survives a process crash; ``FULL``: also an OS crash or power loss).
    ``busy_timeout_ms`` bounds how long a write waits for another process's write.
    """

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
        self.schema_version = SCHEMA_VERSION
        self._pid = os.getpid()
        self._lock_fd: int | None = None
        self._last_checkpoint: str | None = None  # newest checkpoint this object committed
        self._conn: sqlite3.Connection | None = None
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
            self._open_schema(conn, sync)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # --- opening --------------------------------------------------------------------------
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

    def _configure(self, conn: sqlite3.Connection, synchronous: str) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self.path != _MEMORY and str(mode).lower() != "wal":
            raise StoreError(
                f"store {self.path} cannot use SQLite's WAL journal (got '{mode}'); "
                "put the job directory on a local file system"
            )

    def _open_error(self, exc: sqlite3.DatabaseError) -> StoreError:
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

    def _open_schema(self, conn: sqlite3.Connection, synchronous: str) -> None:
        """Check an existing file before changing anything in it (a foreign file is left
        untouched), then switch to WAL and create the schema in an empty one."""
        try:
            tables = self._tables(conn)
            if tables:
                self._check_schema(conn, tables)
            self._configure(conn, synchronous)
            if tables:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = self._tables(conn)  # re-check: another process may have created it
                if not tables:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                conn.execute("COMMIT")
            except BaseException:
                self._last_checkpoint = None  # what this transaction wrote is gone
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if tables:
                self._check_schema(conn, tables)
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from exc

    def _check_schema(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        if not _TABLES.issubset(tables):
            raise StoreError(
                f"{self.path} is not a corenas store (an SQLite database without the "
                "corenas tables); point storage.url at a job's store or at a new file"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = row[0] if row else None
        if version == "1":  # 1 -> 2: stage-2 trials link to their search trial
            version = self._migrate(conn, "2", self._add_parent_id)
        if version == "2":  # 2 -> 3: the cache of hardware measurements
            version = self._migrate(conn, "3", self._add_measurements)
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"store {self.path} has schema version {version}; this corenas reads version "
                f"{SCHEMA_VERSION}; open it with the corenas release that wrote it or start a "
                "new job"
            )

    @staticmethod
    def _migrate(
        conn: sqlite3.Connection, version: str, change: Callable[[sqlite3.Connection], None]
    ) -> str:
        """Apply ``change`` and set the schema version to ``version`` in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            change(conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return version

    @staticmethod
    def _add_parent_id(conn: sqlite3.Connection) -> None:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(trials)").fetchall()}
        if "parent_id" not in columns:
            conn.execute("ALTER TABLE trials ADD COLUMN parent_id INTEGER NULL")

    @classmethod
    def _add_measurements(cls, conn: sqlite3.Connection) -> None:
        if "measurements" not in cls._tables(conn):
            conn.execute(_CREATE_MEASUREMENTS)

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {name for (name,) in rows} - {"sqlite_sequence"}

    # --- plumbing -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise StoreError(f"store {self.path} is closed; open a new SQLiteStore")
        if os.getpid() != self._pid:
            raise StoreError(
                f"store {self.path} was opened by process {self._pid} and used in forked "
                f"process {os.getpid()}; open a new SQLiteStore in the child"
            )
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error."""
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._write_error(exc) from exc

    def _write_error(self, exc: sqlite3.Error) -> StoreError:
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreError(
                f"store {self.path} stayed locked by another writer past the busy timeout "
                f"({exc}); retry, or raise storage.busy_timeout_ms"
            )
        return StoreError(f"write to store {self.path} failed ({exc}); check the disk and file")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(
                f"read from store {self.path} failed ({exc}); check the file and retry"
            ) from exc

    def _put_checkpoint(self, conn: sqlite3.Connection, state_json: str, now: float) -> None:
        """Make ``state_json`` the newest checkpoint (nothing to write if it already is)."""
        if state_json == self._last_checkpoint:
            return
        new_id = conn.execute(_INSERT_CHECKPOINT, (now, state_json)).lastrowid
        conn.execute(_PRUNE_CHECKPOINTS, (new_id,))
        self._last_checkpoint = state_json

    @staticmethod
    def _trial_of(row: Sequence[Any]) -> Trial:
        return Trial(
            id=row[0],
            genome=json.loads(row[1]),
            arch_id=row[2],
            status=TrialStatus(row[3]),
            metrics=json.loads(row[4]),
            reward=row[5],
            error=row[6],
            created_at=row[7],
            started_at=row[8],
            finished_at=row[9],
            worker=row[10],
            stage=row[11],
            parent_id=row[12],
        )

    def _missing_trial(self, trial_id: int) -> StoreError:
        return StoreError(
            f"store {self.path} has no trial {trial_id}; list trials with 'corenas trials list'"
        )

    # --- job ------------------------------------------------------------------------------
    def create_job(self, name: str, config: dict[str, Any]) -> JobRecord:
        """Create the job row; raises ``StoreError`` if the store already holds a job."""
        config_json = _dump_data(config, "job config")
        now = time.time()
        with self._transaction() as conn:
            existing = conn.execute("SELECT name FROM job WHERE id = 1").fetchone()
            if existing is not None:
                raise StoreError(
                    f"store {self.path} already holds job '{existing[0]}'; resume it or use a "
                    "new job directory"
                )
            conn.execute(
                "INSERT INTO job (id, name, config_json, status, created_at, updated_at)"
                " VALUES (1, ?, ?, ?, ?, ?)",
                (name, config_json, JobStatus.RUNNING.value, now, now),
            )
        return JobRecord(
            name=name,
            config=json.loads(config_json),
            status=JobStatus.RUNNING,
            created_at=now,
            updated_at=now,
            schema_version=self.schema_version,
        )

    def job(self) -> JobRecord | None:
        """The job row, or None for an empty store."""
        rows = self._read(
            "SELECT name, config_json, status, created_at, updated_at FROM job WHERE id = 1"
        )
        if not rows:
            return None
        name, config_json, status, created_at, updated_at = rows[0]
        return JobRecord(
            name=name,
            config=json.loads(config_json),
            status=JobStatus(status),
            created_at=created_at,
            updated_at=updated_at,
            schema_version=self.schema_version,
        )

    def update_job(
        self, status: JobStatus | None = None, config: dict[str, Any] | None = None
    ) -> None:
        """Set the job's status and/or config and bump ``updated_at``; raises ``StoreError``
        when the store holds no job."""
        config_json = None if config is None else _dump_data(config, "job config")
        status_value = None if status is None else JobStatus(status).value
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE job SET status = COALESCE(?, status),"
                " config_json = COALESCE(?, config_json), updated_at = ? WHERE id = 1",
                (status_value, config_json, time.time()),
            )
            if cur.rowcount == 0:
                raise StoreError(f"store {self.path} holds no job to update; create the job first")

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
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode("utf-8"), 0)

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

    # --- trials ---------------------------------------------------------------------------
    def add_trials(
        self,
        architectures: Sequence[Architecture],
        controller_state: dict[str, Any] | None,
        stage: str = "search",
        parents: Sequence[int | None] | None = None,
    ) -> list[Trial]:
        """Insert one pending trial per architecture (ids 1, 2, ... in insertion order) and
        save ``controller_state`` (if not None) as the newest checkpoint, in one transaction."""
        links = list(parents) if parents is not None else [None] * len(architectures)
        if len(links) != len(architectures):
            raise ValueError("add_trials: one parent per architecture")
        genomes = [_dump_data(arch.genome, "genome") for arch in architectures]
        state_json = (
            None if controller_state is None else _dump_data(controller_state, "controller state")
        )
        now = time.time()
        ids: list[int] = []
        with self._transaction() as conn:
            for arch, genome_json, parent in zip(architectures, genomes, links):
                cur = conn.execute(_INSERT_TRIAL, (genome_json, arch.arch_id, now, stage, parent))
                ids.append(cast(int, cur.lastrowid))
            if state_json is not None:
                self._put_checkpoint(conn, state_json, now)
        return [
            Trial(
                id=trial_id,
                genome=json.loads(genome_json),
                arch_id=arch.arch_id,
                created_at=now,
                stage=stage,
                parent_id=parent,
            )
            for trial_id, arch, genome_json, parent in zip(ids, architectures, genomes, links)
        ]

    def mark_running(self, trial_id: int, worker: str, started_at: float) -> None:
        """Set a pending trial running (a running one is re-marked with the new worker and
        time); raises ``StoreError`` for an unknown or final trial."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE trials SET status = 'running', worker = ?, started_at = ?"
                " WHERE id = ? AND status IN ('pending', 'running')",
                (worker, started_at, trial_id),
            )
            if cur.rowcount == 0:
                row = conn.execute("SELECT status FROM trials WHERE id = ?", (trial_id,)).fetchone()
                if row is None:
                    raise self._missing_trial(trial_id)
                raise StoreError(
                    f"trial {trial_id} in store {self.path} is already {row[0]}; a final trial "
                    "is never run again (add a new trial instead)"
                )

    def finish_trial(
        self,
        trial_id: int,
        status: TrialStatus,
        metrics: Metrics,
        reward: float | None,
        error: str | None,
        started_at: float | None,
        finished_at: float,
        worker: str | None,
        controller_state: dict[str, Any] | None,
    ) -> Trial:
        """Store a trial's final status and results and the controller checkpoint taken after
        telling the controller about it, in one transaction; returns the stored trial.
        Raises ``StoreError`` if the trial is already final or unknown, or if a metric or the
        reward is not finite (nothing is written then); ``started_at``/``worker`` of None keep
        the stored values. ``ValueError`` if ``status`` is not final."""
        status = TrialStatus(status)
        if not status.is_final:
            raise ValueError(f"finish_trial needs a final status, got '{status.value}'")
        metrics_json = _dump_metrics(metrics, f"trial {trial_id}")
        if reward is not None:
            reward = float(reward)
            if not math.isfinite(reward):
                raise StoreError(
                    f"trial {trial_id} reward {reward} cannot be stored; a reward must be finite "
                    "(fail the trial or store None)"
                )
        state_json = (
            None if controller_state is None else _dump_data(controller_state, "controller state")
        )
        with self._transaction() as conn:
            cur = conn.execute(
                _FINISH_TRIAL,
                (
                    status.value,
                    metrics_json,
                    reward,
                    error,
                    started_at,
                    finished_at,
                    worker,
                    trial_id,
                ),
            )
            row = conn.execute(_SELECT_TRIAL, (trial_id,)).fetchone()
            if cur.rowcount == 0:
                if row is None:
                    raise self._missing_trial(trial_id)
                raise StoreError(
                    f"trial {trial_id} in store {self.path} is already {row[3]}; a trial is "
                    "never finished twice"
                )
            if state_json is not None:
                self._put_checkpoint(conn, state_json, finished_at)
        return self._trial_of(row)

    def requeue_unfinished(self) -> list[Trial]:
        """Set every running trial back to pending, clearing its worker and start time (after a
        crash); returns all pending trials in id order."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE trials SET status = 'pending', worker = NULL, started_at = NULL"
                " WHERE status = 'running'"
            )
            rows = conn.execute(_SELECT_TRIALS_BY_STATUS, ("pending",)).fetchall()
        return [self._trial_of(row) for row in rows]

    def report(self, trial_id: int, step: int, metrics: Metrics) -> None:
        """Store intermediate metrics of a trial at ``step`` (a later report for the same
        step replaces the earlier one); raises ``StoreError`` for an unknown trial or
        non-finite metrics."""
        metrics_json = _dump_metrics(metrics, f"trial {trial_id} step {step}")
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO intermediate (trial_id, step, metrics_json)"
                    " VALUES (?, ?, ?)",
                    (trial_id, int(step), metrics_json),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise self._missing_trial(trial_id) from exc
            raise

    def intermediate(self, trial_id: int) -> list[tuple[int, Metrics]]:
        """Intermediate reports of a trial ordered by step."""
        rows = self._read(
            "SELECT step, metrics_json FROM intermediate WHERE trial_id = ? ORDER BY step",
            (trial_id,),
        )
        return [(step, json.loads(metrics_json)) for step, metrics_json in rows]

    def trials(self, status: TrialStatus | None = None) -> list[Trial]:
        """All trials (or those of one status) in id order."""
        if status is None:
            rows = self._read(_SELECT_TRIALS)
        else:
            rows = self._read(_SELECT_TRIALS_BY_STATUS, (TrialStatus(status).value,))
        return [self._trial_of(row) for row in rows]

    def trial(self, trial_id: int) -> Trial:
        """One trial; raises ``StoreError`` if there is no such id."""
        rows = self._read(_SELECT_TRIAL, (trial_id,))
        if not rows:
            raise self._missing_trial(trial_id)
        return self._trial_of(rows[0])

    def counts(self) -> dict[TrialStatus, int]:
        """Number of trials per status (every status present, zeros included)."""
        result = dict.fromkeys(TrialStatus, 0)
        for status, count in self._read("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            result[TrialStatus(status)] = count
        return result

    def measurement(self, key: str) -> Metrics | None:
        """The hardware metrics cached under ``key``, or None."""
        rows = self._read("SELECT metrics_json FROM measurements WHERE key = ?", (key,))
        return None if not rows else json.loads(rows[0][0])

    def save_measurement(self, key: str, metrics: Metrics) -> None:
        """Cache ``metrics`` under ``key`` (replacing an earlier entry); raises ``StoreError``
        for non-finite metrics."""
        metrics_json = _dump_metrics(metrics, f"measurement {key}")
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO measurements (key, metrics_json, created_at)"
                " VALUES (?, ?, ?)",
                (key, metrics_json, time.time()),
            )

    def controller_state(self) -> dict[str, Any] | None:
        """Newest controller checkpoint, or None."""
        rows = self._read("SELECT state_json FROM controller_checkpoints ORDER BY id DESC LIMIT 1")
        return None if not rows else json.loads(rows[0][0])

    # --- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the driver lock (if held) and close the connection; idempotent. In a forked
        child only the child's copies are dropped, the parent's lock and connection stay."""
        if os.getpid() != self._pid:
            fd, self._lock_fd, self._conn = self._lock_fd, None, None
            if fd is not None:
                os.close(fd)  # the child's copy only; the parent keeps its lock
            return
        try:
            self.release_driver_lock()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"
