"""A corrupted controller checkpoint: resume rebuilds the controller from the stored trials."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from corenas_test_helpers import search, stored
from faults_helpers import result_of

from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import JobStatus, TrialStatus

EVOLUTION = [
    "controller=evolution",
    "controller.population_size=4",
    "controller.tournament_size=2",
]


@pytest.mark.parametrize(
    "state_json",
    [
        '{"population": [1, 2',  # cut short: not JSON
        "[1, 2, 3]",  # JSON, not an object
        '{"rng": "not a generator state", "population": [1]}',
        '{"population": 5}',
    ],
)
def test_corrupted_checkpoint_is_rebuilt_from_the_trials(
    tmp_path: Path, corenas, state_json: str
) -> None:
    job = tmp_path / "job"
    search(job, *EVOLUTION, "search.max_trials=6")
    before = {t.id: result_of(t) for t in stored(job)[0]}
    with sqlite3.connect(job / "corenas.db") as db:
        db.execute("UPDATE controller_checkpoints SET state_json = ?", (state_json,))
    db.close()

    result = corenas("resume", str(job), "search.max_trials=12", "--no-progress")

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"corenas: warning: the controller checkpoint of {job}")
    assert "rebuilt the controller from the 6 stored search trials" in warnings[0]
    assert "Traceback" not in result.stderr
    trials, job_record = stored(job)
    assert job_record.status is JobStatus.COMPLETED
    assert [t.id for t in trials] == list(range(1, 13))
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({t.arch_id for t in trials}) == 12  # the rebuilt controller knows the old ones
    assert {t.id: result_of(t) for t in trials[:6]} == before
    store = open_job_store(job, get_plugins())
    try:  # the next checkpoint is whole again
        state = store.controller_state()
    finally:
        store.close()
    assert isinstance(state, dict) and len(state["population"]) == 4
