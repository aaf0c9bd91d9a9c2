"""The driver process: killed with ``kill -9`` again and again, and a second driver refused."""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from corenas_test_helpers import SCRIPTED, stored
from faults_helpers import assert_one_line_error, result_of, runs

from corenas.records import JobStatus, TrialStatus

KILLS = 10
LOCAL_FROM = 5
"""Before this kill the driver runs trials itself (``inline``); from it on it resumes with
``executor=local search.max_parallel_trials=3``: worker processes, more than at the start."""


def wait_for_job(job: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``job`` holds a recorded job (config.yaml is written with the job's row)."""
    deadline = time.monotonic() + timeout
    while not (job / "config.yaml").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the search did not record its job in time"
        time.sleep(0.05)


def wait_for_lock(process: subprocess.Popen[str]) -> None:
    """Until a resumed driver holds the job's lock (it says so on stderr)."""
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("corenas: resuming"), line + process.communicate()[1]


def drivers(log: Path, pids: set[int]) -> list[tuple[int, int]]:
    """(driver pid, trial id) of every trial run: the pid of an inline run or the parent of a
    worker's run, told apart by ``pids`` (the drivers started)."""
    return [(pid if pid in pids else parent, trial) for pid, parent, trial in runs(log)]


def wait_for_a_run(log: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``process`` (a driver) has started a trial, or has ended."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and all(process.pid not in row[:2] for row in runs(log)):
        assert time.monotonic() < deadline, "the driver started no trial in time"
        time.sleep(0.02)


def kill_9(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no handler, no cleanup
    process.communicate()


@pytest.mark.slow
def test_driver_killed_ten_times_loses_and_repeats_nothing(tmp_path: Path, corenas_process) -> None:
    job, log = tmp_path / "job", tmp_path / "runs.log"
    rng = random.Random(20261127)
    max_trials = 50
    process = corenas_process(
        "search",
        *SCRIPTED,  # executor=inline
        "search.max_parallel_trials=2",
        f"search.max_trials={max_trials}",
        "+budget.sleep_s=0.15",
        f"+budget.run_log={log}",
        f"job_dir={job}",
        "--no-progress",
    )
    finished_when_started = {process.pid: set[int]()}  # driver pid -> trials final at its start
    kept: dict[int, tuple[object, ...]] = {}  # every trial seen final -> its stored result
    overrides: dict[str, str] = {}  # repeated on every resume: a killed one may not save them
    kills = 0
    wait_for_job(job, process)
    for attempt in range(KILLS):
        if rng.random() < 0.7:  # training and storing results; else restoring, starting workers
            wait_for_a_run(log, process)
        time.sleep(rng.uniform(0.0, 1.0))
        if attempt == LOCAL_FROM:
            overrides |= {"executor": "local", "search.max_parallel_trials": "3"}
        exited = process.poll() is not None
        if exited:
            process.communicate()
            assert process.returncode == 0
        else:
            kill_9(process)
        trials, job_record = stored(job)
        if job_record.status is JobStatus.COMPLETED:  # done before (or as) it was killed:
            max_trials += 20  # a fast machine; go on with more trials
            overrides["search.max_trials"] = str(max_trials)
        else:  # the killed driver never got to say otherwise
            assert not exited and job_record.status is JobStatus.RUNNING
            kills += 1
        final = {t.id: result_of(t) for t in trials if t.status.is_final}
        assert {i: final.get(i) for i in kept} == kept  # nothing finished lost or changed
        kept = final
        settings = [f"{key}={value}" for key, value in overrides.items()]
        process = corenas_process("resume", str(job), *settings, "--no-progress")
        finished_when_started[process.pid] = set(kept)
        wait_for_lock(process)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err

    assert kills >= KILLS - 2, "the search kept finishing before it was killed"
    assert len(kept) >= 10, "too few trials finished between kills to test anything"
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED
    assert job_record.config["search"]["max_parallel_trials"] == 3
    assert [t.id for t in trials] == list(range(1, max_trials + 1))
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({t.arch_id for t in trials}) == max_trials
    assert {t.id: result_of(t) for t in trials if t.id in kept} == kept
    ran = drivers(log, set(finished_when_started))
    assert {driver for driver, _ in ran} <= set(finished_when_started)  # no orphaned worker
    for driver, trial in ran:  # a finished trial is never run again
        assert trial not in finished_when_started[driver], (driver, trial)
    assert max(Counter(ran).values()) == 1  # a driver runs a trial once
    assert {trial for _, trial in ran} == set(range(1, max_trials + 1))
    workers = {parent for pid, parent, _ in runs(log) if pid not in finished_when_started}
    assert len(workers) >= 2  # drivers that ran their trials in worker processes


@pytest.mark.slow
def test_a_second_driver_is_refused_and_changes_nothing(
    tmp_path: Path, corenas, corenas_process
) -> None:
    job, log = tmp_path / "job", tmp_path / "runs.log"
    process = corenas_process(
        "search",
        *SCRIPTED,
        "search.max_trials=8",
        "+budget.sleep_s=0.4",
        f"+budget.run_log={log}",
        f"job_dir={job}",
        "--no-progress",
    )
    try:
        wait_for_job(job, process)
        config = (job / "config.yaml").read_bytes()
        holder = f"is being driven by pid {process.pid} on "
        for command in (
            ["resume", str(job), "search.max_trials=20"],
            ["train", str(job), "--top", "1"],
        ):
            refused = corenas(*command, "--no-progress")
            assert_one_line_error(refused.stderr, refused.returncode, holder, "stop it first")
            assert refused.returncode == 2
        assert (job / "config.yaml").read_bytes() == config
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            kill_9(process)
    assert process.returncode == 0, err
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED
    assert job_record.config["search"]["max_trials"] == 8
    assert [t.id for t in trials] == list(range(1, 9))
    assert all(t.status is TrialStatus.SUCCEEDED and t.stage == "search" for t in trials)
    assert sorted(trial for _, _, trial in runs(log)) == list(range(1, 9))  # each ran once
