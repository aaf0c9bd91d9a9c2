"""A search killed with ``kill -9`` at random moments and resumed loses and repeats nothing."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from corenas_test_helpers import SCRIPTED, stored

from corenas.records import JobStatus, TrialStatus

MAX_TRIALS = 24
KILLS = 3


def runs(log: Path) -> list[tuple[int, int]]:
    """(driver pid, trial id) of every trial run, from the scripted trainer's run log."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        _pid, parent, trial = line.split()
        out.append((int(parent), int(trial)))
    return out


def wait_for_trials(job: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (job / "corenas.db").exists():
            try:
                trials, _ = stored(job)
            except Exception:  # the store is being created
                trials = []
            if sum(t.status is TrialStatus.SUCCEEDED for t in trials) >= count:
                return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} trials finished within {timeout} s")


def test_kill_9_midway_then_resume(tmp_path: Path, cli, corenas_process) -> None:
    job = tmp_path / "job"
    log = tmp_path / "runs.log"
    rng = random.Random(20261126)
    args = [
        *SCRIPTED,
        "executor=local",
        "search.max_parallel_trials=2",
        f"search.max_trials={MAX_TRIALS}",
        "+budget.sleep_s=0.25",
        f"+budget.run_log={log}",
        f"job_dir={job}",
        "--no-progress",
    ]
    succeeded_before: dict[int, set[int]] = {}  # driver pid -> trials succeeded before it
    process = corenas_process("search", *args)
    wait_for_trials(job, 2)  # the job exists: from here on any instant is fair game
    for attempt in range(KILLS):
        time.sleep(rng.uniform(0.0, 0.8) if attempt == 0 else rng.uniform(0.8, 2.5))
        if process.poll() is not None:
            break
        process.kill()  # SIGKILL: no handler, no cleanup
        process.wait()
        trials, job_record = stored(job)
        assert job_record.status is JobStatus.RUNNING  # the driver never got to say otherwise
        succeeded = {t.id for t in trials if t.status is TrialStatus.SUCCEEDED}
        process = corenas_process("resume", str(job), "--no-progress")
        succeeded_before[process.pid] = succeeded
        assert attempt < KILLS
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err

    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED
    assert [t.id for t in trials] == list(range(1, MAX_TRIALS + 1))  # no duplicate ids
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({t.arch_id for t in trials}) == MAX_TRIALS
    assert len(succeeded_before) >= 2, "the search finished before it was killed twice"
    for driver, trial_id in runs(log):  # no trial already succeeded was run again
        assert trial_id not in succeeded_before.get(driver, set()), (driver, trial_id)
    ran = {trial_id for _, trial_id in runs(log)}
    assert ran == set(range(1, MAX_TRIALS + 1))


@pytest.mark.parametrize("how", ["corenas stop", "SIGINT"])
def test_a_stopped_search_stops_cleanly_and_resume_finishes(
    tmp_path: Path, cli, corenas_process, how: str
) -> None:
    job = tmp_path / "job"
    process = corenas_process(
        "search",
        *SCRIPTED,
        "executor=local",
        "search.max_trials=40",
        "+budget.sleep_s=0.3",
        f"job_dir={job}",
        "--no-progress",
    )
    wait_for_trials(job, 2)
    if how == "SIGINT":  # what Ctrl-C sends
        process.send_signal(signal.SIGINT)
    else:
        stop = cli("stop", str(job))
        assert stop.returncode == 0, stop.stderr
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    name = "SIGINT" if how == "SIGINT" else "SIGTERM"
    assert f"stopped by {name}; continue with `corenas resume {job}`" in out
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.STOPPED
    assert {t.status for t in trials} <= {TrialStatus.SUCCEEDED, TrialStatus.PENDING}
    assert len(trials) < 40
    resumed = cli("resume", str(job), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED and len(trials) == 40
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
