"""SQLiteStore specifics: URL forms, WAL and pragmas, files on disk, the lock file, busy timeout.

The ``Store`` contract itself runs against SQLite and PostgreSQL in test_store_contract.py.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store.helpers import arch, finish, run_python

from corenas.errors import StoreError
from corenas.records import TrialStatus
from corenas.store import SQLiteStore, sqlite_path, sqlite_url


def open_store(tmp_path: Path, **kwargs: Any) -> SQLiteStore:
    return SQLiteStore(sqlite_url(tmp_path / "job.db"), **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = open_store(tmp_path)
    yield s
    s.close()


# --- URLs and opening ---------------------------------------------------------------------
def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sqlite_path("sqlite:////abs/job.db") == "/abs/job.db"
    assert sqlite_path("sqlite:///rel/job.db") == "rel/job.db"
    for memory in ("sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        assert sqlite_path(memory) == ":memory:"
    assert sqlite_url(tmp_path / "a.db") == f"sqlite:///{tmp_path}/a.db"
    assert sqlite_url(tmp_path / "a.db").startswith("sqlite:////")
    for bad in ("postgresql://host/db", "sqlite:///", "sqlite:/x.db"):
        with pytest.raises(StoreError, match="not an SQLite URL"):
            sqlite_path(bad)
    monkeypatch.chdir(tmp_path)
    with SQLiteStore("sqlite:///rel.db") as rel:
        assert rel.path == str(tmp_path / "rel.db")
    assert (tmp_path / "rel.db").is_file()


def test_wal_and_pragmas(store: SQLiteStore) -> None:
    conn = store._db()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_synchronous_full_and_invalid(tmp_path: Path) -> None:
    with open_store(tmp_path, synchronous="full") as s:
        assert s._db().execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(StoreError, match="synchronous='sometimes'"):
        open_store(tmp_path, synchronous="sometimes")


def test_missing_parent_dir_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "nope" / "job.db")
    with pytest.raises(StoreError, match="does not exist") as info:
        SQLiteStore(url)
    assert str(tmp_path / "nope") in str(info.value)
    assert not (tmp_path / "nope").exists()


def test_create_false_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        open_store(tmp_path, create=False)
    assert not (tmp_path / "job.db").exists()
    open_store(tmp_path).close()
    open_store(tmp_path, create=False).close()


def test_non_sqlite_file_refused(tmp_path: Path) -> None:
    content = "just some text, definitely not a database\n" * 100
    (tmp_path / "job.db").write_text(content)
    with pytest.raises(StoreError, match="not a corenas store"):
        open_store(tmp_path)
    assert (tmp_path / "job.db").read_text() == content


def test_foreign_sqlite_database_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "job.db")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = (tmp_path / "job.db").read_bytes()
    with pytest.raises(StoreError, match="not a corenas store"):
        open_store(tmp_path)
    assert (tmp_path / "job.db").read_bytes() == before  # not even switched to WAL
    assert not (tmp_path / "job.db-wal").exists()


def test_memory_store(tmp_path: Path) -> None:
    with SQLiteStore("sqlite:///:memory:") as s:
        s.acquire_driver_lock("me")  # no-op in memory
        (t,) = s.add_trials([arch(1)], {"k": 1})
        finish(s, t.id)
        assert s.trial(1).status is TrialStatus.SUCCEEDED
        assert s.controller_state() == {"k": 1}
        s.release_driver_lock()


# --- the lock file and the busy timeout ---------------------------------------------------
HOLD_LOCK = """
import sys, time
from corenas.store import SQLiteStore
store = SQLiteStore(sys.argv[1])
store.acquire_driver_lock(sys.argv[2])
print("locked", flush=True)
time.sleep(60)
"""


def test_lock_file_holds_the_owner_text(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "job.db")
    holder = run_python(HOLD_LOCK, url, "holder-on-testhost", stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        assert (tmp_path / "job.db.lock").read_text() == "holder-on-testhost"
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with SQLiteStore(url) as s:
        assert s.driver() is None  # the text stays, the lock is gone
        s.acquire_driver_lock("second")
        assert (tmp_path / "job.db.lock").read_text() == "second"
        s.release_driver_lock()
        assert (tmp_path / "job.db.lock").read_text() == ""


def test_reader_proceeds_while_writer_holds_transaction(tmp_path: Path) -> None:
    writer = open_store(tmp_path)
    writer.add_trials([arch(1)], None)
    conn = writer._db()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO trials (genome_json, arch_id, status, created_at, stage)"
        " VALUES ('{}', 'x', 'pending', 0, 'search')"
    )
    try:
        start = time.monotonic()
        with open_store(tmp_path, busy_timeout_ms=0, create=False) as reader:
            assert [t.id for t in reader.trials()] == [1]  # sees committed rows only
            assert reader.counts()[TrialStatus.PENDING] == 1
            # a second writer waits for the lock and then gives up with a clear error
            with pytest.raises(StoreError, match="busy timeout"):
                reader.add_trials([arch(2)], None)
        assert time.monotonic() - start < 2.0
    finally:
        conn.execute("COMMIT")
    with open_store(tmp_path) as reader:
        assert [t.id for t in reader.trials()] == [1, 2]
    writer.close()
