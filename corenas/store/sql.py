"""The SQL trial store shared by the SQLite and PostgreSQL backends: schema, JSON and transactions.

``SQLStore`` holds every query and all JSON handling once; a backend subclass supplies a small
dialect: how to connect, begin a write transaction, lock a table for the rest of a transaction,
list tables and columns, read back a generated id, translate the ``?`` placeholders, and the
driver lock. Promises (on top of ``Store``'s): each public change is one transaction, rolled
back as a whole on any error; trial ids are 1, 2, ... in commit order with no gaps, also with
several writing processes; a final trial is never finished or run again, also under concurrent
writers (the finishing ``UPDATE`` is conditional on the stored status); JSON text only.
"""

from __future__ import annotations

import json
import math
import os
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar

from corenas.errors import StoreError
from corenas.records import (
    Architecture,
    JobStatus,
    Metrics,
    Trial,
    TrialStatus,
    canonical_json,
)
from corenas.store.base import (
    SCHEMA_VERSION,
    STOP_MODES,
    JobRecord,
    StopMode,
    StopRequest,
    Store,
)

__all__ = ["SQLStore", "Cursor", "dump_data", "dump_metrics", "schema"]

TABLES = frozenset({"meta", "job", "trials", "intermediate", "controller_checkpoints"})
"""The tables every corenas store has (``measurements`` is added by the 2 -> 3 upgrade)."""


class Cursor(Protocol):
    """What the shared code uses of a DB-API cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def schema(real: str, serial_key: str) -> tuple[str, ...]:
    """The ``CREATE`` statements of the current schema, with the dialect's type of a float
    column (``real``) and of a generated integer primary key (``serial_key``)."""
    return (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE job ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " name TEXT NOT NULL,"
        " config_json TEXT NOT NULL,"
        " status TEXT NOT NULL,"
        f" created_at {real} NOT NULL,"
        f" updated_at {real} NOT NULL)",
        "CREATE TABLE trials ("
        " id INTEGER PRIMARY KEY,"
        " genome_json TEXT NOT NULL,"
        " arch_id TEXT NOT NULL,"
        " status TEXT NOT NULL,"
        " metrics_json TEXT NOT NULL DEFAULT '{}',"
        f" reward {real} NULL,"
        " error TEXT NULL,"
        f" created_at {real} NOT NULL,"
        f" started_at {real} NULL,"
        f" finished_at {real} NULL,"
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
        f" id {serial_key},"
        f" created_at {real} NOT NULL,"
        " state_json TEXT NOT NULL)",
        create_measurements(real),
    )


def create_measurements(real: str) -> str:
    """The ``CREATE`` statement of the ``measurements`` table (schema version 3)."""
    return (
        "CREATE TABLE measurements ("
        " key TEXT PRIMARY KEY,"
        " metrics_json TEXT NOT NULL,"
        f" created_at {real} NOT NULL)"
    )


_TRIAL_COLUMNS = (
    "id, genome_json, arch_id, status, metrics_json, reward, error,"
    " created_at, started_at, finished_at, worker, stage, parent_id"
)
_SELECT_TRIAL = f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE id = ?"
_SELECT_TRIALS = f"SELECT {_TRIAL_COLUMNS} FROM trials ORDER BY id"
_SELECT_TRIALS_BY_STATUS = f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE status = ? ORDER BY id"
_INSERT_TRIAL = (
    "INSERT INTO trials (id, genome_json, arch_id, status, created_at, stage, parent_id)"
    " VALUES (?, ?, ?, 'pending', ?, ?, ?)"
)
_FINISH_TRIAL = (
    "UPDATE trials SET status = ?, metrics_json = ?, reward = ?, error = ?,"
    " started_at = COALESCE(?, started_at), finished_at = ?, worker = COALESCE(?, worker)"
    " WHERE id = ? AND status IN ('pending', 'running')"
)
_STOP_KEY = "stop_request"
"""The ``meta`` row of a pending ``corenas stop`` (JSON; a row, so no schema change)."""
_INSERT_CHECKPOINT = "INSERT INTO controller_checkpoints (created_at, state_json) VALUES (?, ?)"
_PRUNE_CHECKPOINTS = "DELETE FROM controller_checkpoints WHERE id < ?"


def dump_metrics(metrics: Metrics, what: str) -> str:
    """Metrics as JSON text; ``StoreError`` for a non-finite or non-JSON value."""
    try:
        return json.dumps(metrics, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} metrics cannot be stored ({exc}); metrics must be finite numbers"
        ) from exc


def dump_data(value: Any, what: str) -> str:
    """``value`` as canonical JSON text; ``StoreError`` for non-JSON data or non-finite numbers."""
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} cannot be stored as JSON ({exc}); use plain JSON data with finite numbers"
        ) from exc


_S = TypeVar("_S", bound="SQLStore")


class SQLStore(Store):
    """A ``Store`` over one SQL connection, opened by a backend subclass.

    A subclass sets ``url`` and ``location`` (where the store is, as messages name it), calls
    ``_start()``, connects, sets ``_conn`` and calls ``_open_schema(conn)``, and implements the
    dialect hooks below. The object belongs to the process that opened it: using it in a
    forked child raises ``StoreError``.
    """

    real_type: ClassVar[str] = "REAL"
    """Column type of floats (timestamps, rewards)."""
    serial_key: ClassVar[str] = "INTEGER PRIMARY KEY AUTOINCREMENT"
    """Column type of a generated integer primary key."""
    db_errors: tuple[type[Exception], ...] = ()
    """The driver's exception classes (turned into ``StoreError``)."""
    integrity_errors: tuple[type[Exception], ...] = ()
    """The driver's constraint-violation classes (a report for an unknown trial)."""
    new_store_hint: ClassVar[str] = "use a new job directory"
    """What to do instead of creating a second job in a store."""

    location: str
    schema_version: int

    def _start(self) -> None:
        """Reset the per-process state; call before connecting."""
        self.schema_version = SCHEMA_VERSION
        self._pid = os.getpid()
        self._last_checkpoint: str | None = None  # newest checkpoint this object committed
        self._conn: Any = None

    # --- dialect hooks --------------------------------------------------------------------
    @abstractmethod
    def _begin(self, conn: Any) -> None:
        """Start a write transaction (SQLite: take the database's write lock at once)."""

    def _begin_create(self, conn: Any) -> None:
        """Start the transaction that creates the schema in an empty store (serialised
        against other processes doing the same)."""
        self._begin(conn)

    @abstractmethod
    def _in_transaction(self, conn: Any) -> bool:
        """Whether ``conn`` has a transaction open."""

    def _lock_table(self, conn: Any, table: str) -> None:
        """Make the rest of this transaction the only writer of ``table`` (readers go on);
        nothing to do where the transaction already excludes every other writer."""

    @abstractmethod
    def _insert_id(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        """Run an ``INSERT`` of one row into a table with a generated key; return the key."""

    @abstractmethod
    def _tables(self, conn: Any) -> set[str]:
        """Names of the tables in the store (internal bookkeeping tables left out)."""

    @abstractmethod
    def _columns(self, conn: Any, table: str) -> set[str]:
        """Names of the columns of ``table``."""

    def _configure(self, conn: Any) -> None:
        """Connection settings applied once the store is known to be a corenas store (or
        empty); nothing by default."""

    def _sql(self, sql: str) -> str:
        """``sql`` in the driver's placeholder style (written with ``?``)."""
        return sql

    @abstractmethod
    def _open_error(self, exc: Exception) -> StoreError:
        """The one-line error of a driver error while opening."""

    @abstractmethod
    def _write_error(self, exc: Exception) -> StoreError:
        """The one-line error of a driver error inside a write transaction."""

    @abstractmethod
    def _read_error(self, exc: Exception) -> StoreError:
        """The one-line error of a driver error while reading."""

    def _forget_in_child(self) -> None:
        """Drop this (forked) process's references without touching the parent's connection
        or lock."""
        self._conn = None

    # --- opening --------------------------------------------------------------------------
    def _open_schema(self, conn: Any) -> None:
        """Check an existing store before changing anything in it (a foreign database is left
        untouched), then configure the connection and create the schema in an empty one."""
        try:
            tables = self._tables(conn)
            if tables:
                self._check_schema(conn, tables)
            self._configure(conn)
            if tables:
                return
            with self._atomic(conn, self._begin_create):
                tables = self._tables(conn)  # re-check: another process may have created it
                if not tables:
                    for statement in schema(self.real_type, self.serial_key):
                        self._exec(conn, statement)
                    self._exec(
                        conn,
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            if tables:
                self._check_schema(conn, tables)
        except self.db_errors as exc:
            raise self._open_error(exc) from exc

    @abstractmethod
    def _not_a_store(self) -> StoreError:
        """The one-line error of a database that holds tables but not the corenas ones."""

    def _check_schema(self, conn: Any, tables: set[str]) -> None:
        if not TABLES.issubset(tables):
            raise self._not_a_store()
        row = self._exec(conn, "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = row[0] if row else None
        if version == "1":  # 1 -> 2: stage-2 trials link to their search trial
            version = self._migrate(conn, "2", self._add_parent_id)
        if version == "2":  # 2 -> 3: the cache of hardware measurements
            version = self._migrate(conn, "3", self._add_measurements)
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"store {self.location} has schema version {version}; this corenas reads version "
                f"{SCHEMA_VERSION}; open it with the corenas release that wrote it or start a "
                "new job"
            )

    def _migrate(self, conn: Any, version: str, change: Callable[[Any], None]) -> str:
        """Apply ``change`` and set the schema version to ``version`` in one transaction."""
        with self._atomic(conn, self._begin):
            change(conn)
            self._exec(conn, "UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        return version

    def _add_parent_id(self, conn: Any) -> None:
        if "parent_id" not in self._columns(conn, "trials"):
            self._exec(conn, "ALTER TABLE trials ADD COLUMN parent_id INTEGER NULL")

    def _add_measurements(self, conn: Any) -> None:
        if "measurements" not in self._tables(conn):
            self._exec(conn, create_measurements(self.real_type))

    # --- plumbing -------------------------------------------------------------------------
    def _exec(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Cursor:
        result: Cursor = conn.execute(self._sql(sql), params)
        return result

    def _db(self) -> Any:
        conn = self._conn
        kind = type(self).__name__
        if conn is None:
            raise StoreError(f"store {self.location} is closed; open a new {kind}")
        if os.getpid() != self._pid:
            raise StoreError(
                f"store {self.location} was opened by process {self._pid} and used in forked "
                f"process {os.getpid()}; open a new {kind} in the child"
            )
        return conn

    @contextmanager
    def _atomic(self, conn: Any, begin: Callable[[Any], None]) -> Iterator[Any]:
        """``begin`` ... ``COMMIT``, rolled back on any error (driver errors pass through)."""
        try:
            begin(conn)
            yield conn
            self._exec(conn, "COMMIT")
        except BaseException:
            self._last_checkpoint = None  # what this transaction wrote is gone
            if self._in_transaction(conn):
                self._exec(conn, "ROLLBACK")
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One write transaction, rolled back on error; driver errors become ``StoreError``."""
        conn = self._db()
        try:
            with self._atomic(conn, self._begin):
                yield conn
        except self.db_errors as exc:
            raise self._write_error(exc) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._exec(self._db(), sql, params).fetchall()
        except self.db_errors as exc:
            raise self._read_error(exc) from exc

    def _put_checkpoint(self, conn: Any, state_json: str, now: float) -> None:
        """Make ``state_json`` the newest checkpoint (nothing to write if it already is)."""
        if state_json == self._last_checkpoint:
            return
        self._lock_table(conn, "controller_checkpoints")  # newest id = last committed
        new_id = self._insert_id(conn, _INSERT_CHECKPOINT, (now, state_json))
        self._exec(conn, _PRUNE_CHECKPOINTS, (new_id,))
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
            f"store {self.location} has no trial {trial_id}; list trials with 'corenas trials list'"
        )

    # --- job ------------------------------------------------------------------------------
    def create_job(self, name: str, config: dict[str, Any]) -> JobRecord:
        """Create the job row; raises ``StoreError`` if the store already holds a job."""
        config_json = dump_data(config, "job config")
        now = time.time()
        with self._transaction() as conn:
            self._lock_table(conn, "job")
            existing = self._exec(conn, "SELECT name FROM job WHERE id = 1").fetchone()
            if existing is not None:
                raise StoreError(
                    f"store {self.location} already holds job '{existing[0]}'; resume it or "
                    f"{self.new_store_hint}"
                )
            self._exec(
                conn,
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
        config_json = None if config is None else dump_data(config, "job config")
        status_value = None if status is None else JobStatus(status).value
        with self._transaction() as conn:
            cur = self._exec(
                conn,
                "UPDATE job SET status = COALESCE(?, status),"
                " config_json = COALESCE(?, config_json), updated_at = ? WHERE id = 1",
                (status_value, config_json, time.time()),
            )
            if cur.rowcount == 0:
                raise StoreError(
                    f"store {self.location} holds no job to update; create the job first"
                )

    # --- stop requests --------------------------------------------------------------------
    def request_stop(self, mode: StopMode, driver: str, requested_by: str) -> StopRequest:
        """Store the request as the ``meta`` row ``stop_request`` (JSON), replacing an earlier
        one, in one transaction; ``ValueError`` for an unknown ``mode``."""
        if mode not in STOP_MODES:
            raise ValueError(f"stop mode must be one of {', '.join(STOP_MODES)}, got {mode!r}")
        request = StopRequest(mode, driver, time.time(), requested_by)
        with self._transaction() as conn:
            self._exec(
                conn,
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_STOP_KEY, dump_data(request.to_json(), "stop request")),
            )
        return request

    def stop_request(self) -> StopRequest | None:
        """The recorded stop request, or None (also for a row this corenas cannot read)."""
        rows = self._read("SELECT value FROM meta WHERE key = ?", (_STOP_KEY,))
        if not rows:
            return None
        try:
            data = json.loads(rows[0][0])
            request = StopRequest(
                mode=data["mode"],
                driver=str(data["driver"]),
                requested_at=float(data["requested_at"]),
                requested_by=str(data["requested_by"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
        return request if request.mode in STOP_MODES else None

    def clear_stop_request(self) -> None:
        """Delete the ``stop_request`` row (no-op without one)."""
        with self._transaction() as conn:
            self._exec(conn, "DELETE FROM meta WHERE key = ?", (_STOP_KEY,))

    # --- trials ---------------------------------------------------------------------------
    def add_trials(
        self,
        architectures: Sequence[Architecture],
        controller_state: dict[str, Any] | None,
        stage: str = "search",
        parents: Sequence[int | None] | None = None,
    ) -> list[Trial]:
        """Insert one pending trial per architecture (ids 1, 2, ... in insertion order, no gaps,
        also with concurrent writers) and save ``controller_state`` (if not None) as the newest
        checkpoint, in one transaction."""
        links = list(parents) if parents is not None else [None] * len(architectures)
        if len(links) != len(architectures):
            raise ValueError("add_trials: one parent per architecture")
        genomes = [dump_data(arch.genome, "genome") for arch in architectures]
        state_json = (
            None if controller_state is None else dump_data(controller_state, "controller state")
        )
        now = time.time()
        with self._transaction() as conn:
            self._lock_table(conn, "trials")  # the next id stays free until this commits
            last = int(self._exec(conn, "SELECT COALESCE(MAX(id), 0) FROM trials").fetchone()[0])
            ids = list(range(last + 1, last + 1 + len(architectures)))
            for trial_id, arch, genome_json, parent in zip(ids, architectures, genomes, links):
                self._exec(
                    conn, _INSERT_TRIAL, (trial_id, genome_json, arch.arch_id, now, stage, parent)
                )
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
            cur = self._exec(
                conn,
                "UPDATE trials SET status = 'running', worker = ?, started_at = ?"
                " WHERE id = ? AND status IN ('pending', 'running')",
                (worker, started_at, trial_id),
            )
            if cur.rowcount == 0:
                row = self._exec(
                    conn, "SELECT status FROM trials WHERE id = ?", (trial_id,)
                ).fetchone()
                if row is None:
                    raise self._missing_trial(trial_id)
                raise StoreError(
                    f"trial {trial_id} in store {self.location} is already {row[0]}; a final "
                    "trial is never run again (add a new trial instead)"
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
        Raises ``StoreError`` if the trial is already final (also when another process
        finished it concurrently) or unknown, or if a metric or the reward is not finite
        (nothing is written then); ``started_at``/``worker`` of None keep the stored values.
        ``ValueError`` if ``status`` is not final."""
        status = TrialStatus(status)
        if not status.is_final:
            raise ValueError(f"finish_trial needs a final status, got '{status.value}'")
        metrics_json = dump_metrics(metrics, f"trial {trial_id}")
        if reward is not None:
            reward = float(reward)
            if not math.isfinite(reward):
                raise StoreError(
                    f"trial {trial_id} reward {reward} cannot be stored; a reward must be finite "
                    "(fail the trial or store None)"
                )
        state_json = (
            None if controller_state is None else dump_data(controller_state, "controller state")
        )
        values = (status.value, metrics_json, reward, error, started_at, finished_at, worker)
        with self._transaction() as conn:
            cur = self._exec(conn, _FINISH_TRIAL, (*values, trial_id))
            row = self._exec(conn, _SELECT_TRIAL, (trial_id,)).fetchone()
            if cur.rowcount == 0:
                if row is None:
                    raise self._missing_trial(trial_id)
                raise StoreError(
                    f"trial {trial_id} in store {self.location} is already {row[3]}; a trial is "
                    "never finished twice"
                )
            if state_json is not None:
                self._put_checkpoint(conn, state_json, finished_at)
        return self._trial_of(row)

    def requeue_unfinished(self) -> list[Trial]:
        """Set every running trial back to pending, clearing its worker and start time (after a
        crash); returns all pending trials in id order."""
        with self._transaction() as conn:
            self._exec(
                conn,
                "UPDATE trials SET status = 'pending', worker = NULL, started_at = NULL"
                " WHERE status = 'running'",
            )
            rows = self._exec(conn, _SELECT_TRIALS_BY_STATUS, ("pending",)).fetchall()
        return [self._trial_of(row) for row in rows]

    def report(self, trial_id: int, step: int, metrics: Metrics) -> None:
        """Store intermediate metrics of a trial at ``step`` (a later report for the same
        step replaces the earlier one); raises ``StoreError`` for an unknown trial or
        non-finite metrics."""
        metrics_json = dump_metrics(metrics, f"trial {trial_id} step {step}")
        try:
            with self._transaction() as conn:
                self._exec(
                    conn,
                    "INSERT INTO intermediate (trial_id, step, metrics_json) VALUES (?, ?, ?)"
                    " ON CONFLICT (trial_id, step) DO UPDATE SET metrics_json ="
                    " excluded.metrics_json",
                    (trial_id, int(step), metrics_json),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, self.integrity_errors):
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
            result[TrialStatus(status)] = int(count)
        return result

    def measurement(self, key: str) -> Metrics | None:
        """The hardware metrics cached under ``key``, or None."""
        rows = self._read("SELECT metrics_json FROM measurements WHERE key = ?", (key,))
        return None if not rows else json.loads(rows[0][0])

    def save_measurement(self, key: str, metrics: Metrics) -> None:
        """Cache ``metrics`` under ``key`` (replacing an earlier entry); raises ``StoreError``
        for non-finite metrics."""
        metrics_json = dump_metrics(metrics, f"measurement {key}")
        with self._transaction() as conn:
            self._exec(
                conn,
                "INSERT INTO measurements (key, metrics_json, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET metrics_json = excluded.metrics_json,"
                " created_at = excluded.created_at",
                (key, metrics_json, time.time()),
            )

    def controller_state(self) -> dict[str, Any] | None:
        """Newest controller checkpoint, or None."""
        rows = self._read("SELECT state_json FROM controller_checkpoints ORDER BY id DESC LIMIT 1")
        return None if not rows else json.loads(rows[0][0])

    # --- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the driver lock (if held) and close the connection; idempotent. In a forked
        child only the child's references are dropped, the parent's lock and connection stay."""
        if os.getpid() != self._pid:
            self._forget_in_child()
            return
        try:
            self.release_driver_lock()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
