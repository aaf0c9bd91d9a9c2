"""Trials that take their worker process down, from outside or by running out of memory.

Covered elsewhere, one place per fault (tests/core/test_search_loop.py): ``os.abort()``,
``os._exit``, a hang past ``search.trial_timeout_s`` in a worker
(``test_local_executor_survives_crashing_workers``) and inline
(``test_inline_timeout_fails_the_trial``); a NaN metric and a raised ``MemoryError``
(``test_failed_trials_are_recorded_and_the_search_goes_on``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from corenas_test_helpers import search, stored
from faults_helpers import runs

from corenas.records import JobStatus, TrialStatus


def kill_when_started(log: Path, trial_id: int, timeout: float = 60) -> threading.Thread:
    """A thread that sends SIGKILL to the process running ``trial_id`` once it has started."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = log.read_text().split("\n") if log.exists() else []
            for line in lines:
                fields = line.split()
                if len(fields) == 3 and int(fields[2]) == trial_id:
                    os.kill(int(fields[0]), signal.SIGKILL)
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_worker_killed_mid_trial_fails_that_trial_alone(tmp_path: Path) -> None:
    job, log = tmp_path / "job", tmp_path / "runs.log"
    killer = kill_when_started(log, 3)
    summary = search(
        job,
        "executor=local",
        "search.max_trials=6",
        "search.max_parallel_trials=2",
        "+budget.hang_on=[3]",  # trial 3 runs until it is killed
        "search.trial_timeout_s=120",
        f"+budget.run_log={log}",
    )
    killer.join(timeout=5)
    trials, _ = stored(job)
    failed = {t.id: t.error for t in trials if t.status is not TrialStatus.SUCCEEDED}
    assert list(failed) == [3]
    assert (failed[3] or "").startswith("worker process died (killed by SIGKILL); see workers/")
    assert summary.status is JobStatus.COMPLETED and len(trials) == 6
    assert Counter(trial for _, _, trial in runs(log)) == dict.fromkeys(range(1, 7), 1)


@pytest.mark.slow
def test_a_trial_out_of_memory_fails_alone_and_its_worker_goes_on(
    tmp_path: Path, fault_trainers: str
) -> None:
    job, log = tmp_path / "job", tmp_path / "runs.log"
    summary = search(
        job,
        "executor=local",
        "search.max_parallel_trials=1",
        "search.max_trials=4",
        f"trainer.target={fault_trainers}:allocating_trainer",
        "+budget.allocate_on=[2]",  # allocates until MemoryError under a 256 MiB cap
        f"+budget.run_log={log}",
    )
    trials, _ = stored(job)
    failed = {t.id: t.error for t in trials if t.status is not TrialStatus.SUCCEEDED}
    assert list(failed) == [2]
    assert (failed[2] or "").startswith("MemoryError")
    assert summary.status is JobStatus.COMPLETED and len(trials) == 4
    assert len({pid for pid, _, _ in runs(log)}) == 1  # one worker, its memory cap lifted again
    assert Counter(trial for _, _, trial in runs(log)) == dict.fromkeys(range(1, 5), 1)
