"""The ``Store`` contract, run against every built-in backend (SQLite file, PostgreSQL schema):
round trips, transitions, atomicity, schema versions, driver lock and concurrent processes."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from store.helpers import Backend, arch, finish, run_python, wait_until

from corenas.errors import StoreError
from corenas.records import Architecture, JobStatus, TrialStatus
from corenas.store import SCHEMA_VERSION


@pytest.fixture
def store(backend: Backend) -> Iterator[Any]:
    s = backend.open()
    yield s
    s.close()


# --- opening ------------------------------------------------------------------------------
def test_closed_store_refuses_calls(backend: Backend) -> None:
    s = backend.open()
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.trials()


def test_schema_version_mismatch_refused(backend: Backend) -> None:
    with backend.open() as s:
        s._db().execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError) as info:
        backend.open()
    message = str(info.value)
    assert "schema version 99" in message
    assert f"reads version {SCHEMA_VERSION}" in message
    assert "\n" not in message


def test_version_1_store_gains_parent_links(backend: Backend) -> None:
    store = backend.open()
    store.create_job("job", {})
    (old,) = store.add_trials([Architecture.of({"a": 1})], None)
    conn = store._db()  # what corenas 0.1 (schema 1) wrote
    conn.execute("ALTER TABLE trials DROP COLUMN parent_id")
    conn.execute("DROP TABLE measurements")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store.close()
    store = backend.open()
    try:
        assert store.trial(old.id).parent_id is None
        (new,) = store.add_trials(
            [Architecture.of({"a": 1})], None, stage="train", parents=[old.id]
        )
        assert store.trial(new.id).parent_id == old.id and new.stage == "train"
        store.save_measurement("k", {"latency_ms": 1.5})  # version 3's cache exists too
        assert store.measurement("k") == {"latency_ms": 1.5}
        row = store._db().execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert row.fetchone() == (str(SCHEMA_VERSION),)
    finally:
        store.close()


# --- job ----------------------------------------------------------------------------------
def test_job_round_trip(backend: Backend) -> None:
    config = {"space": {"name": "toy", "widths": [16, 32]}, "lr": 0.1, "seed": 7}
    with backend.open() as s:
        assert s.job() is None
        with pytest.raises(StoreError, match="no job"):
            s.update_job(status=JobStatus.STOPPED)
        created = s.create_job("toy-search", config)
        assert created.status is JobStatus.RUNNING
        assert created.schema_version == SCHEMA_VERSION
        with pytest.raises(StoreError, match="already holds job 'toy-search'"):
            s.create_job("other", {})
    with backend.open() as s:
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
def test_trials_round_trip_and_sequential_ids(backend: Backend) -> None:
    genome = {
        "blocks": [{"op": "conv3x3", "width": 32}, {"op": "skip", "width": None}],
        "floats": [0.1, 1 / 3, 1e-300, -2.5e17, 0.0],
        "nested": [[1, [2, [3.25]]], []],
        "flag": True,
    }
    first = Architecture.of(genome)
    with backend.open() as s:
        added = s.add_trials([first, arch(2)], None, stage="search")
        added += s.add_trials([arch(3)], None, stage="final")
        assert [t.id for t in added] == [1, 2, 3]
        assert all(t.status is TrialStatus.PENDING for t in added)
    with backend.open() as s:
        trials = s.trials()
        assert [t.id for t in trials] == [1, 2, 3]
        assert trials[0].genome == genome
        assert json.dumps(trials[0].genome, sort_keys=True) == json.dumps(genome, sort_keys=True)
        assert trials[0].arch_id == first.arch_id
        assert [t.stage for t in trials] == ["search", "search", "final"]
        assert trials == added  # timestamps too: floats round-trip exactly
        assert s.trial(2) == added[1]
        with pytest.raises(StoreError, match="no trial 9"):
            s.trial(9)


def test_status_transitions(store: Any) -> None:
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


def test_finish_twice_refused(store: Any) -> None:
    (t,) = store.add_trials([arch(1)], {"n": 0})
    finish(store, t.id, metrics={"acc": 0.1}, controller_state={"n": 1})
    with pytest.raises(StoreError, match="never finished twice"):
        finish(store, t.id, metrics={"acc": 0.9}, controller_state={"n": 2})
    assert store.trial(t.id).metrics == {"acc": 0.1}
    assert store.controller_state() == {"n": 1}
    with pytest.raises(StoreError, match="no trial 42"):
        finish(store, 42)


def test_non_finite_values_refused_and_nothing_written(store: Any) -> None:
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


def test_requeue_unfinished(store: Any) -> None:
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


def test_intermediate_ordered_and_replaced(store: Any) -> None:
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
    store.report(2, 2, {"loss": 0.8})  # the store stays usable after a refused report
    assert len(store.intermediate(2)) == 2


def test_counts_include_zeros(store: Any) -> None:
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


def test_controller_checkpoint_newest_wins_one_row(backend: Backend) -> None:
    with backend.open() as s:
        assert s.controller_state() is None
        for i in range(1, 6):
            (t,) = s.add_trials([arch(i)], {"step": i, "weights": [0.5] * i})
            finish(s, t.id, controller_state={"step": i, "told": True})
        s.add_trials([arch(99)], None)  # None keeps the previous checkpoint
    with backend.open() as s:
        assert s.controller_state() == {"step": 5, "told": True}
        rows = s._db().execute("SELECT COUNT(*) FROM controller_checkpoints").fetchone()
        assert rows[0] == 1


def test_measurement_cache_round_trip(backend: Backend) -> None:
    store = backend.open()
    try:
        assert store.measurement("arch-cpu") is None
        store.save_measurement("arch-cpu", {"latency_ms": 0.25, "params": 10})
        store.save_measurement("arch-cpu", {"latency_ms": 0.5, "params": 10})  # replaces
        assert store.measurement("arch-cpu") == {"latency_ms": 0.5, "params": 10}
        with pytest.raises(StoreError, match="measurement arch-nan"):
            store.save_measurement("arch-nan", {"latency_ms": math.nan})
    finally:
        store.close()
    with backend.open() as reopened:
        assert reopened.measurement("arch-cpu") == {"latency_ms": 0.5, "params": 10}


# --- atomicity ----------------------------------------------------------------------------
def test_failure_inside_add_trials_leaves_nothing(
    store: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_trials([arch(0)], {"n": 0})

    def boom(*args: Any) -> None:
        raise RuntimeError("crash inside the transaction")

    monkeypatch.setattr(type(store), "_put_checkpoint", boom)
    with pytest.raises(RuntimeError, match="crash inside"):
        store.add_trials([arch(1), arch(2), arch(3)], {"n": 1})
    monkeypatch.undo()
    with backend.open() as other:
        for s in (store, other):
            assert [t.id for t in s.trials()] == [1]
            assert s.controller_state() == {"n": 0}
    (t,) = store.add_trials([arch(4)], {"n": 2})
    assert t.id == 2


KILL_MID_TRANSACTION = """
import os, signal, sys
from corenas.records import Architecture
{cls}

def die(self, conn, state_json, now):
    os.kill(os.getpid(), signal.SIGKILL)

store = Store(sys.argv[1])
store.add_trials([Architecture.of({{"i": 0}})], {{"n": 0}})
Store._put_checkpoint = die
store.add_trials([Architecture.of({{"i": i}}) for i in range(1, 4)], {{"n": 1}})
"""


def test_kill_9_inside_add_trials_leaves_nothing(backend: Backend) -> None:
    proc = run_python(KILL_MID_TRANSACTION.format(cls=backend.cls), backend.url)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    with backend.open() as s:
        # PostgreSQL rolls back once it notices the dead connection; until then the open
        # transaction's uncommitted rows are invisible, and its table lock makes writers wait
        assert [t.genome for t in s.trials()] == [{"i": 0}]
        assert s.controller_state() == {"n": 0}
        assert [t.id for t in s.add_trials([arch(5)], None)] == [2]


# --- the driver lock ----------------------------------------------------------------------
HOLD_LOCK = """
import sys, time
{cls}
store = Store(sys.argv[1])
store.acquire_driver_lock(sys.argv[2])
print("locked", flush=True)
time.sleep(60)
"""


def test_driver_lock_across_processes_and_kill_9(backend: Backend) -> None:
    backend.open().close()  # the store exists before two processes race to lock it
    holder = run_python(
        HOLD_LOCK.format(cls=backend.cls), backend.url, "holder-on-testhost", stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with backend.open() as s:
            assert s.driver() == "holder-on-testhost"
            with pytest.raises(StoreError, match="driven by holder-on-testhost; stop it first"):
                s.acquire_driver_lock("second")
            # reading is allowed while another process drives the job
            assert s.trials() == []
            holder.send_signal(signal.SIGKILL)
            assert holder.wait(timeout=30) == -signal.SIGKILL
            # freed with the process (PostgreSQL: once the server sees the connection close)
            assert wait_until(lambda: s.driver() is None)
            s.acquire_driver_lock("second")
            assert s.driver() == "second"
            with backend.open() as third:
                assert third.driver() == "second"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_driver_lock_within_process(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    assert first.driver() is None
    first.acquire_driver_lock("first driver")
    first.acquire_driver_lock("first driver, again")  # re-taking through the same store is fine
    assert first.driver() == second.driver() == "first driver, again"
    with pytest.raises(StoreError, match="driven by first driver, again"):
        second.acquire_driver_lock("second driver")
    first.release_driver_lock()
    first.release_driver_lock()  # no-op when not held
    assert first.driver() is None and second.driver() is None
    second.acquire_driver_lock("second driver")
    with pytest.raises(StoreError, match="driven by second driver"):
        first.acquire_driver_lock("first driver")
    second.close()  # close releases the lock
    first.acquire_driver_lock("first driver")
    first.close()


# --- stop requests ------------------------------------------------------------------------
def test_stop_request_round_trip_across_connections(backend: Backend) -> None:
    with backend.open() as driver, backend.open() as stopper:
        driver.acquire_driver_lock("pid 1 on box")
        assert driver.stop_request() is None
        driver.clear_stop_request()  # no-op without one
        asked = stopper.request_stop("drain", "pid 1 on box", "pid 2 on laptop")
        seen = driver.stop_request()  # another connection (another machine) sees it at once
        assert seen == asked and seen is not None
        assert (seen.mode, seen.driver, seen.requested_by) == (
            "drain",
            "pid 1 on box",
            "pid 2 on laptop",
        )
        assert seen.to_json()["requested_at"] == asked.requested_at
        stopper.request_stop("now", "pid 1 on box", "pid 3 on laptop")  # a later one replaces it
        now = driver.stop_request()
        assert now is not None and (now.mode, now.requested_by) == ("now", "pid 3 on laptop")
        assert driver.driver() == "pid 1 on box"  # PostgreSQL's owner row is another meta row
        driver.clear_stop_request()
        assert stopper.stop_request() is None and driver.stop_request() is None


def test_stop_request_refuses_unknown_mode_and_ignores_unreadable_rows(store: Any) -> None:
    with pytest.raises(ValueError, match="drain, now"):
        store.request_stop("later", "pid 1 on box", "me")
    assert store.stop_request() is None  # nothing written
    store._db().execute("INSERT INTO meta (key, value) VALUES ('stop_request', 'not json')")
    assert store.stop_request() is None
    store.request_stop("now", "pid 1 on box", "me")  # replaces the unreadable row
    assert store.stop_request().mode == "now"


def test_stop_request_in_a_store_upgraded_from_version_2(backend: Backend) -> None:
    store = backend.open()
    store.create_job("job", {})
    conn = store._db()  # what corenas wrote before stop requests (schema 2: no measurements)
    conn.execute("DROP TABLE measurements")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    store.close()
    with backend.open() as upgraded:
        upgraded.request_stop("drain", "pid 1 on box", "me")
        assert upgraded.stop_request().mode == "drain"
    with backend.open() as reopened:  # a pending request leaves the store readable
        assert reopened.stop_request().driver == "pid 1 on box"
        row = reopened._db().execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert row.fetchone() == (str(SCHEMA_VERSION),)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_cannot_use_parent_store(store: Any, backend: Backend) -> None:
    store.acquire_driver_lock("parent")
    pid = os.fork()
    if pid == 0:  # child: must refuse, and closing must not release the parent's lock
        code = 1
        try:
            store.trials()
        except StoreError as exc:
            code = 0 if "forked" in str(exc) else 2
        store.close()
        del store
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with backend.open() as other, pytest.raises(StoreError, match="driven by parent"):
        other.acquire_driver_lock("other")
    assert store.trials() == []  # the parent's connection still works


# --- concurrent processes -----------------------------------------------------------------
WRITER = """
import sys
from corenas.records import Architecture
{cls}
url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Store(url) as store:
    for i in range(count):
        store.add_trials([Architecture.of({{"w": worker, "i": i}})], {{"w": worker, "i": i}})
"""


def test_concurrent_writers_lose_nothing(backend: Backend) -> None:
    url = backend.url  # the store does not exist yet: all four create it
    procs = [run_python(WRITER.format(cls=backend.cls), url, str(w), "200") for w in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with backend.open() as s:
        trials = s.trials()
        assert [t.id for t in trials] == list(range(1, 801))
        assert sorted((t.genome["w"], t.genome["i"]) for t in trials) == [
            (w, i) for w in range(4) for i in range(200)
        ]
        assert s.counts()[TrialStatus.PENDING] == 800
        assert s._db().execute("SELECT COUNT(*) FROM controller_checkpoints").fetchone()[0] == 1


MIXED_WRITER = """
import json, sys
from corenas.errors import StoreError
from corenas.records import Architecture, TrialStatus
{cls}
url, worker, own, shared = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
won = []
with Store(url) as store:
    for n, trial_id in enumerate(own):
        store.add_trials([Architecture.of({{"w": worker, "n": n}})], {{"w": worker, "n": n}})
        store.mark_running(trial_id, f"w{{worker}}", 1.0)
        store.report(trial_id, 1, {{"loss": worker + n / 100}})
        store.finish_trial(trial_id, TrialStatus.SUCCEEDED, {{"acc": worker}}, float(worker),
                           None, None, 2.0, None, {{"w": worker, "done": trial_id}})
        if n < shared:  # every worker tries to finish the same shared trials
            try:
                store.finish_trial(n + 1, TrialStatus.FAILED, {{}}, None, f"w{{worker}}", None,
                                   3.0, f"w{{worker}}", None)
                won.append(n + 1)
            except StoreError as exc:
                assert "never finished twice" in str(exc), exc
print(json.dumps(won))
"""


def test_concurrent_finishers_reporters_and_adders_lose_nothing(backend: Backend) -> None:
    workers, per_worker, shared = 4, 40, 20
    with backend.open() as s:  # trials 1..shared contended, then each worker's own trials
        s.add_trials([arch(i) for i in range(shared + workers * per_worker)], None)
    first_own = shared + 1
    owns = [
        list(range(first_own + w * per_worker, first_own + (w + 1) * per_worker))
        for w in range(workers)
    ]
    procs = [
        run_python(
            MIXED_WRITER.format(cls=backend.cls),
            backend.url,
            str(w),
            json.dumps(owns[w]),
            str(shared),
            stdout=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * workers
    won = [json.loads(out) for out in outputs]
    with backend.open() as s:
        trials = s.trials()
        total = shared + 2 * workers * per_worker
        assert [t.id for t in trials] == list(range(1, total + 1))  # gap-free
        by_id = {t.id: t for t in trials}
        # each shared trial finished exactly once, by the worker its error names
        winners = sorted(trial_id for w in won for trial_id in w)
        assert winners == list(range(1, shared + 1))
        for w, ids in enumerate(won):
            for trial_id in ids:
                assert by_id[trial_id].error == f"w{w}" == by_id[trial_id].worker
        for w, own in enumerate(owns):
            for n, trial_id in enumerate(own):
                trial = by_id[trial_id]
                assert (trial.status, trial.metrics, trial.worker) == (
                    TrialStatus.SUCCEEDED,
                    {"acc": w},
                    f"w{w}",
                )
                assert s.intermediate(trial_id) == [(1, {"loss": w + n / 100})]
        added = [t for t in trials if t.id > shared + workers * per_worker]
        assert sorted((t.genome["w"], t.genome["n"]) for t in added) == [
            (w, n) for w in range(workers) for n in range(per_worker)
        ]
        counts = s.counts()
        assert counts[TrialStatus.SUCCEEDED] == workers * per_worker
        assert counts[TrialStatus.FAILED] == shared
        assert counts[TrialStatus.PENDING] == workers * per_worker
        assert s._db().execute("SELECT COUNT(*) FROM controller_checkpoints").fetchone()[0] == 1
