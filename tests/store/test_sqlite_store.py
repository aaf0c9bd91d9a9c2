"""SQLiteStore: round trips, transitions, durability, locking and concurrency on real files."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from corenas.errors import StoreError
from corenas.records import Architecture, JobStatus, Trial, TrialStatus
from corenas.store import SCHEMA_VERSION, SQLiteStore, sqlite_path, sqlite_url

REPO_ROOT = Path(__file__).resolve().parents[2]


def arch(i: int) -> Architecture:
    return Architecture.of({"i": i, "layers": [[i, 0.5], [1e-300, 1 / 3]], "op": "conv"})


def open_store(tmp_path: Path, **kwargs: Any) -> SQLiteStore:
    return SQLiteStore(sqlite_url(tmp_path / "job.db"), **kwargs)


def finish(store: SQLiteStore, trial_id: int, **overrides: Any) -> Trial:
    args: dict[str, Any] = {
        "status": TrialStatus.SUCCEEDED,
        "metrics": {"acc": 0.75},
        "reward": 0.75,
        "error": None,
        "started_at": None,
        "finished_at": 200.0,
        "worker": None,
        "controller_state": None,
    }
    args.update(overrides)
    return store.finish_trial(trial_id, **args)


def run_python(code: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **popen)


@pytest.fixture
def store(tmp_path: Path) -> Any:
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


def test_schema_version_mismatch_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "job.db")
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        open_store(tmp_path)
    message = str(info.value)
    assert "schema version 99" in message
    assert f"reads version {SCHEMA_VERSION}" in message
    assert "\n" not in message


def test_version_1_store_gains_parent_links(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.create_job("job", {})
    (old,) = store.add_trials([Architecture.of({"a": 1})], None)
    store.close()
    conn = sqlite3.connect(tmp_path / "job.db")  # what corenas 0.1 (schema 1) wrote
    conn.execute("ALTER TABLE trials DROP COLUMN parent_id")
    conn.execute("DROP TABLE measurements")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    store = open_store(tmp_path)
    try:
        assert store.trial(old.id).parent_id is None
        (new,) = store.add_trials(
            [Architecture.of({"a": 1})], None, stage="train", parents=[old.id]
        )
        assert store.trial(new.id).parent_id == old.id and new.stage == "train"
        store.save_measurement("k", {"latency_ms": 1.5})  # version 3's cache exists too
        assert store.measurement("k") == {"latency_ms": 1.5}
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / "job.db")
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    conn.close()


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.trials()


def test_memory_store(tmp_path: Path) -> None:
    with SQLiteStore("sqlite:///:memory:") as s:
        s.acquire_driver_lock("me")  # no-op in memory
        (t,) = s.add_trials([arch(1)], {"k": 1})
        finish(s, t.id)
        assert s.trial(1).status is TrialStatus.SUCCEEDED
        assert s.controller_state() == {"k": 1}
        s.release_driver_lock()


# --- job ----------------------------------------------------------------------------------
def test_job_round_trip(tmp_path: Path) -> None:
    config = {"space": {"name": "toy", "widths": [16, 32]}, "lr": 0.1, "seed": 7}
    with open_store(tmp_path) as s:
        assert s.job() is None
        with pytest.raises(StoreError, match="no job"):
            s.update_job(status=JobStatus.STOPPED)
        created = s.create_job("toy-search", config)
        assert created.status is JobStatus.RUNNING
        assert created.schema_version == SCHEMA_VERSION
        with pytest.raises(StoreError, match="already holds job 'toy-search'"):
            s.create_job("other", {})
    with open_store(tmp_path) as s:
        job = s.job()
        assert job is not None
        assert (job.name, job.config, job.status) == ("toy-search", config, JobStatus.RUNNING)
        assert job.created_at == created.created_at
        s.update_job(status=JobStatus.COMPLETED)
        s.update_job(config={"lr": 0.2})
        job = s.job()
        assert job is not None
        assert job.status is JobStatus.COMPLETED
        assert job.config == {"lr": 0.2}
        assert job.updated_at >= job.created_at


# --- trials -------------------------------------------------------------------------------
def test_trials_round_trip_and_sequential_ids(tmp_path: Path) -> None:
    genome = {
        "blocks": [{"op": "conv3x3", "width": 32}, {"op": "skip", "width": None}],
        "floats": [0.1, 1 / 3, 1e-300, -2.5e17, 0.0],
        "nested": [[1, [2, [3.25]]], []],
        "flag": True,
    }
    first = Architecture.of(genome)
    with open_store(tmp_path) as s:
        added = s.add_trials([first, arch(2)], None, stage="search")
        added += s.add_trials([arch(3)], None, stage="final")
        assert [t.id for t in added] == [1, 2, 3]
        assert all(t.status is TrialStatus.PENDING for t in added)
    with open_store(tmp_path) as s:
        trials = s.trials()
        assert [t.id for t in trials] == [1, 2, 3]
        assert trials[0].genome == genome
        assert json.dumps(trials[0].genome, sort_keys=True) == json.dumps(genome, sort_keys=True)
        assert trials[0].arch_id == first.arch_id
        assert [t.stage for t in trials] == ["search", "search", "final"]
        assert trials == added
        assert s.trial(2) == added[1]
        with pytest.raises(StoreError, match="no trial 9"):
            s.trial(9)


def test_status_transitions(store: SQLiteStore) -> None:
    (t,) = store.add_trials([arch(1)], None)
    store.mark_running(t.id, "worker-0", 100.0)
    running = store.trial(t.id)
    assert (running.status, running.worker, running.started_at) == (
        TrialStatus.RUNNING,
        "worker-0",
        100.0,
    )
    done = finish(store, t.id, metrics={"acc": 0.5, "latency_ms": 3.0}, reward=0.4)
    assert done == store.trial(t.id)
    assert done.status is TrialStatus.SUCCEEDED
    assert done.metrics == {"acc": 0.5, "latency_ms": 3.0}
    assert (done.reward, done.error, done.worker) == (0.4, None, "worker-0")
    assert (done.started_at, done.finished_at, done.duration_s) == (100.0, 200.0, 100.0)
    with pytest.raises(StoreError, match="already succeeded"):
        store.mark_running(t.id, "worker-1", 300.0)
    with pytest.raises(StoreError, match="no trial 5"):
        store.mark_running(5, "worker-1", 300.0)

    (f,) = store.add_trials([arch(2)], None)
    failed = finish(
        store,
        f.id,
        status=TrialStatus.FAILED,
        metrics={},
        reward=None,
        error="CUDA out of memory",
        started_at=150.0,
        worker="worker-2",
    )
    assert (failed.status, failed.error, failed.reward) == (
        TrialStatus.FAILED,
        "CUDA out of memory",
        None,
    )
    assert (failed.started_at, failed.worker) == (150.0, "worker-2")
    with pytest.raises(ValueError, match="final status"):
        finish(store, 1, status=TrialStatus.RUNNING)


def test_finish_twice_refused(store: SQLiteStore) -> None:
    (t,) = store.add_trials([arch(1)], {"n": 0})
    finish(store, t.id, metrics={"acc": 0.1}, controller_state={"n": 1})
    with pytest.raises(StoreError, match="never finished twice"):
        finish(store, t.id, metrics={"acc": 0.9}, controller_state={"n": 2})
    assert store.trial(t.id).metrics == {"acc": 0.1}
    assert store.controller_state() == {"n": 1}
    with pytest.raises(StoreError, match="no trial 42"):
        finish(store, 42)


def test_non_finite_values_refused_and_nothing_written(store: SQLiteStore) -> None:
    (t,) = store.add_trials([arch(1)], {"n": 0})
    with pytest.raises(StoreError, match="finite"):
        finish(store, t.id, metrics={"acc": float("nan")}, controller_state={"n": 1})
    with pytest.raises(StoreError, match="finite"):
        finish(store, t.id, reward=float("inf"), controller_state={"n": 1})
    with pytest.raises(StoreError, match="finite"):
        store.report(t.id, 1, {"loss": float("nan")})
    with pytest.raises(StoreError, match="JSON"):
        store.add_trials([Architecture(genome={"x": float("nan")}, arch_id="bad")], None)
    assert store.trial(t.id).status is TrialStatus.PENDING
    assert store.controller_state() == {"n": 0}
    assert len(store.trials()) == 1
    assert store.intermediate(t.id) == []


def test_requeue_unfinished(store: SQLiteStore) -> None:
    trials = store.add_trials([arch(i) for i in range(5)], None)
    store.mark_running(1, "w", 1.0)
    store.mark_running(2, "w", 1.0)
    store.mark_running(4, "w", 1.0)
    finish(store, 2)
    pending = store.requeue_unfinished()
    assert [t.id for t in pending] == [1, 3, 4, 5]
    assert all(t.status is TrialStatus.PENDING for t in pending)
    assert all(t.worker is None and t.started_at is None for t in pending)
    assert pending[0].genome == trials[0].genome
    assert store.trial(2).status is TrialStatus.SUCCEEDED
    assert store.trials(TrialStatus.RUNNING) == []


def test_intermediate_ordered_and_replaced(store: SQLiteStore) -> None:
    store.add_trials([arch(1), arch(2)], None)
    store.report(1, 3, {"loss": 0.3})
    store.report(1, 1, {"loss": 0.9})
    store.report(1, 2, {"loss": 0.5})
    store.report(1, 2, {"loss": 0.4, "acc": 0.6})
    store.report(2, 1, {"loss": 1.0})
    assert store.intermediate(1) == [
        (1, {"loss": 0.9}),
        (2, {"loss": 0.4, "acc": 0.6}),
        (3, {"loss": 0.3}),
    ]
    assert store.intermediate(2) == [(1, {"loss": 1.0})]
    assert store.intermediate(3) == []
    with pytest.raises(StoreError, match="no trial 3"):
        store.report(3, 1, {"loss": 1.0})


def test_counts_include_zeros(store: SQLiteStore) -> None:
    assert store.counts() == dict.fromkeys(TrialStatus, 0)
    store.add_trials([arch(i) for i in range(4)], None)
    store.mark_running(1, "w", 1.0)
    finish(store, 2, status=TrialStatus.INFEASIBLE, reward=None)
    counts = store.counts()
    assert set(counts) == set(TrialStatus)
    assert counts[TrialStatus.PENDING] == 2
    assert counts[TrialStatus.RUNNING] == 1
    assert counts[TrialStatus.INFEASIBLE] == 1
    assert counts[TrialStatus.SUCCEEDED] == counts[TrialStatus.FAILED] == 0
    assert store.trials(TrialStatus.PENDING) == [store.trial(3), store.trial(4)]


def test_controller_checkpoint_newest_wins_one_row(tmp_path: Path) -> None:
    with open_store(tmp_path) as s:
        assert s.controller_state() is None
        for i in range(1, 6):
            (t,) = s.add_trials([arch(i)], {"step": i, "weights": [0.5] * i})
            finish(s, t.id, controller_state={"step": i, "told": True})
        s.add_trials([arch(99)], None)  # None keeps the previous checkpoint
    with open_store(tmp_path) as s:
        assert s.controller_state() == {"step": 5, "told": True}
        rows = s._db().execute("SELECT COUNT(*) FROM controller_checkpoints").fetchone()
        assert rows[0] == 1


# --- atomicity ----------------------------------------------------------------------------
def test_failure_inside_add_trials_leaves_nothing(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_trials([arch(0)], {"n": 0})

    def boom(*args: Any) -> None:
        raise RuntimeError("crash inside the transaction")

    monkeypatch.setattr(SQLiteStore, "_put_checkpoint", staticmethod(boom))
    with pytest.raises(RuntimeError, match="crash inside"):
        store.add_trials([arch(1), arch(2), arch(3)], {"n": 1})
    monkeypatch.undo()
    for s in (store, open_store(tmp_path)):
        assert [t.id for t in s.trials()] == [1]
        assert s.controller_state() == {"n": 0}
    (t,) = store.add_trials([arch(4)], {"n": 2})
    assert t.id == 2


KILL_MID_TRANSACTION = """
import os, signal, sys
from corenas.records import Architecture
from corenas.store import SQLiteStore

def die(conn, state_json, now):
    os.kill(os.getpid(), signal.SIGKILL)

store = SQLiteStore(sys.argv[1])
store.add_trials([Architecture.of({"i": 0})], {"n": 0})
SQLiteStore._put_checkpoint = staticmethod(die)
store.add_trials([Architecture.of({"i": i}) for i in range(1, 4)], {"n": 1})
"""


def test_kill_9_inside_add_trials_leaves_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "job.db")
    proc = run_python(KILL_MID_TRANSACTION, url)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    with SQLiteStore(url) as s:
        assert [t.genome for t in s.trials()] == [{"i": 0}]
        assert s.controller_state() == {"n": 0}
        assert [t.id for t in s.add_trials([arch(5)], None)] == [2]


# --- processes ----------------------------------------------------------------------------
HOLD_LOCK = """
import sys, time
from corenas.store import SQLiteStore
store = SQLiteStore(sys.argv[1])
store.acquire_driver_lock(sys.argv[2])
print("locked", flush=True)
time.sleep(60)
"""


def test_driver_lock_across_processes_and_kill_9(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "job.db")
    holder = run_python(HOLD_LOCK, url, "holder-on-testhost", stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with SQLiteStore(url) as s:
            with pytest.raises(StoreError, match="driven by holder-on-testhost; stop it first"):
                s.acquire_driver_lock("second")
            # reading is allowed while another process drives the job
            assert s.trials() == []
            holder.send_signal(signal.SIGKILL)
            assert holder.wait(timeout=30) == -signal.SIGKILL
            s.acquire_driver_lock("second")
            assert (tmp_path / "job.db.lock").read_text() == "second"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_driver_lock_within_process(tmp_path: Path) -> None:
    first, second = open_store(tmp_path), open_store(tmp_path)
    first.acquire_driver_lock("first driver")
    first.acquire_driver_lock("first driver, again")  # re-taking through the same store is fine
    with pytest.raises(StoreError, match="driven by first driver, again"):
        second.acquire_driver_lock("second driver")
    first.release_driver_lock()
    first.release_driver_lock()  # no-op when not held
    second.acquire_driver_lock("second driver")
    with pytest.raises(StoreError, match="driven by second driver"):
        first.acquire_driver_lock("first driver")
    second.close()  # close releases the lock
    first.acquire_driver_lock("first driver")
    first.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_cannot_use_parent_store(store: SQLiteStore) -> None:
    store.acquire_driver_lock("parent")
    pid = os.fork()
    if pid == 0:  # child: must refuse, and closing must not release the parent's lock
        code = 1
        try:
            store.trials()
        except StoreError as exc:
            code = 0 if "forked" in str(exc) else 2
        store.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    other = SQLiteStore(store.url)
    with pytest.raises(StoreError, match="driven by parent"):
        other.acquire_driver_lock("other")
    other.close()
    assert store.trials() == []


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


WRITER = """
import sys
from corenas.records import Architecture
from corenas.store import SQLiteStore
url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with SQLiteStore(url) as store:
    for i in range(count):
        store.add_trials([Architecture.of({"w": worker, "i": i})], {"w": worker, "i": i})
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "job.db")  # the file does not exist yet: all four create it
    procs = [run_python(WRITER, url, str(w), "200") for w in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with SQLiteStore(url) as s:
        trials = s.trials()
        assert [t.id for t in trials] == list(range(1, 801))
        assert sorted((t.genome["w"], t.genome["i"]) for t in trials) == [
            (w, i) for w in range(4) for i in range(200)
        ]
        assert s.counts()[TrialStatus.PENDING] == 800
        assert s._db().execute("SELECT COUNT(*) FROM controller_checkpoints").fetchone()[0] == 1


def test_measurement_cache_round_trip(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.measurement("arch-cpu") is None
        store.save_measurement("arch-cpu", {"latency_ms": 0.25, "params": 10})
        store.save_measurement("arch-cpu", {"latency_ms": 0.5, "params": 10})  # replaces
        assert store.measurement("arch-cpu") == {"latency_ms": 0.5, "params": 10}
        with pytest.raises(StoreError, match="measurement arch-nan"):
            store.save_measurement("arch-nan", {"latency_ms": math.nan})
    finally:
        store.close()
    reopened = open_store(tmp_path)
    try:
        assert reopened.measurement("arch-cpu") == {"latency_ms": 0.5, "params": 10}
    finally:
        reopened.close()
