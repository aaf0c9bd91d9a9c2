"""Job control: ``corenas stop`` drains a running search (no new trials, running ones finish),
``--now``, Ctrl-C and a stop request from another machine stop it at once (running trials
requeued), ``corenas status`` shows running trials and failures, and ``corenas resume``
finishes every stopped job without running a trial twice. (``kill -9`` of the driver at random
moments: tests/faults/test_driver.py.)"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corenas_test_helpers import SCRIPTED, search, stored
from faults_helpers import runs

from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import JobStatus, TrialStatus

LOCAL = [*SCRIPTED, "executor=local", "executor.cpus_per_trial=1", "--no-progress"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll ``condition`` every 0.1 s; fail naming ``what`` if it does not hold in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def succeeded(job: Path, count: int) -> Callable[[], bool]:
    def check() -> bool:
        if not (job / "corenas.db").exists():
            return False
        try:
            trials, _ = stored(job)
        except Exception:  # the store is being created
            return False
        return sum(t.status is TrialStatus.SUCCEEDED for t in trials) >= count

    return check


def started(log: Path) -> Counter[int]:
    """How often each trial id started (the scripted trainer's ``run_log``)."""
    return Counter(trial for _, _, trial in runs(log))


def status_json(corenas: Any, job: Path) -> dict[str, Any]:
    result = corenas("status", str(job), "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_stop_drains_then_resume_finishes_without_rerunning(
    tmp_path: Path, cli, corenas_process
) -> None:
    job, log = tmp_path / "job", tmp_path / "runs.log"
    process = corenas_process(
        "search",
        *LOCAL,
        "search.max_trials=16",
        "search.max_parallel_trials=2",
        "+budget.sleep_s=0.5",
        f"+budget.run_log={log}",
        f"job_dir={job}",
    )
    wait_for(succeeded(job, 2), "2 finished trials")
    stop = cli("stop", str(job))
    asked = time.time()  # the request is in the store: no trial may start from here on
    assert stop.returncode == 0, stop.stderr
    match = re.search(r"exits once trials? ([\d, ]+) finish", stop.stdout)
    assert match, stop.stdout
    running_at_request = {int(i) for i in match.group(1).split(", ")}
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "stop requested by pid" in err and "starting no new trials" in err
    assert f"after the running trials finished; continue with `corenas resume {job}`" in out
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.STOPPED and len(trials) < 16
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)  # nothing killed, requeued
    assert running_at_request <= {t.id for t in trials}
    assert all(t.started_at is not None and t.started_at <= asked for t in trials)
    assert started(log) == Counter(t.id for t in trials)  # each ran once
    resumed = cli("resume", str(job), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED and len(trials) == 16
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert started(log) == Counter(range(1, 17))  # nothing ran twice


@pytest.mark.parametrize("how", ["corenas stop --now", "SIGINT"])
def test_a_search_stopped_at_once_requeues_and_resume_finishes(
    tmp_path: Path, cli, corenas_process, how: str
) -> None:
    job = tmp_path / "job"
    process = corenas_process(
        "search", *LOCAL, "search.max_trials=24", "+budget.sleep_s=0.3", f"job_dir={job}"
    )
    wait_for(succeeded(job, 2), "2 finished trials")
    if how == "SIGINT":  # what Ctrl-C sends
        process.send_signal(signal.SIGINT)
    else:
        stop = cli("stop", str(job), "--now")
        assert stop.returncode == 0, stop.stderr
        assert "sent SIGTERM to the driver" in stop.stdout
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    name = "SIGINT" if how == "SIGINT" else "SIGTERM"
    assert f"stopped by {name}; continue with `corenas resume {job}`" in out
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.STOPPED
    assert {t.status for t in trials} <= {TrialStatus.SUCCEEDED, TrialStatus.PENDING}
    assert sum(t.status is TrialStatus.SUCCEEDED for t in trials) < 24  # stopped midway
    resumed = cli("resume", str(job), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED and len(trials) == 24
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)


def test_status_of_a_draining_job_and_escalation_from_another_machine(
    tmp_path: Path, cli, corenas, corenas_process
) -> None:
    """One trial that reports every 50 ms and would run for minutes: the drain waits for it,
    a second ``corenas stop`` changes nothing, and a ``--now`` request written to the store
    (as ``corenas stop --now`` on another machine does) stops it, requeued."""
    job = tmp_path / "job"
    process = corenas_process(
        "search",
        *LOCAL,
        "trainer.target=corenas.testing:curve_trainer",
        "+budget.steps=10000",
        "+budget.sleep_s=0.05",
        "search.max_trials=3",
        "search.max_parallel_trials=1",
        f"job_dir={job}",
    )
    try:
        wait_for(
            lambda: (
                (job / "corenas.db").exists()
                and any(t["latest_report"] for t in status_json(corenas, job)["running"])
            ),
            "a report of the running trial",
        )
        stop = cli("stop", str(job))
        assert stop.returncode == 0 and "exits once trial 1 finish" in stop.stdout
        data = status_json(corenas, job)
        assert data["status"] == "running" and data["draining"] is True
        assert data["stop_request"]["mode"] == "drain"
        assert data["stop_request"]["driver"] == data["driver"]
        assert data["driver"].startswith(f"pid {process.pid} on ")
        (running,) = data["running"]
        assert running["id"] == 1 and running["stage"] == "search"
        assert running["worker"].endswith(tuple("0123456789")) and running["running_s"] >= 0
        assert running["latest_report"]["step"] >= 1
        assert set(running["latest_report"]["metrics"]) == {"accuracy"}
        table = corenas("status", str(job)).stdout
        assert f"job {job}: running, draining (driver: pid {process.pid} on" in table
        assert "no new trials start; the driver exits once the running ones finish" in table
        assert re.search(r"\n1 +search +\S+:\d+ +\d+s +step \d+: accuracy=", table), table
        again = corenas("stop", str(job))
        assert again.returncode == 0 and re.search(r"was asked \d+s ago by pid", again.stdout)
        assert "to stop and is waiting for trial 1 to finish" in again.stdout
        store = open_job_store(job, get_plugins())
        try:
            store.request_stop("now", data["driver"], "pid 7 on another-machine")
        finally:
            store.close()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "stopped by `corenas stop --now` (asked by pid 7 on another-machine)" in out
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.STOPPED
    assert [(t.id, t.status) for t in trials] == [(1, TrialStatus.PENDING)]  # requeued
    data = status_json(corenas, job)
    assert data["driver"] is None and data["stop_request"] is None and not data["draining"]


def test_status_shows_failures_in_table_and_json(tmp_path: Path, corenas) -> None:
    job = tmp_path / "job"
    search(
        job,
        "search.max_trials=6",
        "search.max_failed_trials=0",
        "+budget.raise_on=[2,3,4,5]",
        "search.stage2.top=1",
    )
    data = status_json(corenas, job)
    assert data["status"] == "completed" and data["running"] == []
    assert data["progress"]["search"]["finished"] == 6
    assert data["progress"]["search"]["max_trials"] == 6
    assert data["progress"]["search"]["counts"]["failed"] == 4
    assert data["progress"]["stage2"]["total"] == 1
    assert data["progress"]["stage2"]["counts"]["succeeded"] == 1
    failures = data["failures"]
    assert failures["count"] == failures["search"] == 4 and failures["max_failed_trials"] == 0
    assert [f["id"] for f in failures["recent"]] == [3, 4, 5]  # the latest three
    assert failures["recent"][-1]["error"] == "RuntimeError: injected failure in trial 5"
    assert data["best"]["id"] in (1, 6) and data["driver"] is None
    table = corenas("status", str(job)).stdout
    assert "search: 6/6 finished (2 succeeded, 4 failed), 0 running, 0 pending" in table
    assert "stage 2: 1/1 finished (1 succeeded), 0 running, 0 pending" in table
    assert "failed: 4 (search: 4); latest" in table
    assert re.search(r"\n5 +search +RuntimeError: injected failure in trial 5", table), table
    assert "running:" not in table and f"best: trial {data['best']['id']} reward" in table


def test_a_stop_request_for_a_driver_that_died_is_ignored_and_cleared(
    tmp_path: Path, corenas
) -> None:
    job = tmp_path / "job"
    search(job, "search.max_trials=2")
    store = open_job_store(job, get_plugins())
    try:
        store.request_stop("now", "pid 999999 on gone", "me")
    finally:
        store.close()
    assert status_json(corenas, job)["stop_request"] is None  # not the live driver's
    resumed = corenas("resume", str(job), "search.max_trials=4", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED and len(trials) == 4
    store = open_job_store(job, get_plugins())
    try:
        assert store.stop_request() is None
    finally:
        store.close()


HOLD_LOCK = """
import sys, time
from corenas.store.sqlite import SQLiteStore, sqlite_url
store = SQLiteStore(sqlite_url(sys.argv[1]))
store.acquire_driver_lock("pid 4242 on another-machine")
print("locked", flush=True)
time.sleep(60)
"""


def test_stop_of_a_driver_on_another_machine_goes_through_the_store(
    tmp_path: Path, corenas
) -> None:
    job = tmp_path / "job"
    search(job, "search.max_trials=1")
    holder = subprocess.Popen(  # a driver elsewhere, as its lock names it
        [sys.executable, "-c", HOLD_LOCK, str(job / "corenas.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        drain = corenas("stop", str(job))
        assert drain.returncode == 0, drain.stderr
        assert "asked the driver (pid 4242 on another-machine) to stop: no trial is running" in (
            drain.stdout
        )
        assert status_json(corenas, job)["stop_request"]["mode"] == "drain"
        now = corenas("stop", str(job), "--now")
        assert now.returncode == 0, now.stderr
        assert "asked the driver (pid 4242 on another-machine) to stop now" in now.stdout
        request = status_json(corenas, job)["stop_request"]
        assert request["mode"] == "now" and request["driver"] == "pid 4242 on another-machine"
        again = corenas("stop", str(job))  # does not turn `now` back into a drain
        assert again.returncode == 0 and "to stop now; it stops within a second" in again.stdout
        assert status_json(corenas, job)["stop_request"]["mode"] == "now"
    finally:
        holder.kill()
        holder.communicate()


def test_stop_refuses_a_job_without_a_driver(tmp_path: Path, corenas) -> None:
    job = tmp_path / "job"
    search(job, "search.max_trials=1")
    for args in ([], ["--now"]):
        result = corenas("stop", str(job), *args)
        assert result.returncode == 2
        assert f"no search is running in '{job}' (its driver lock is free)" in result.stderr
        assert "Traceback" not in result.stderr
