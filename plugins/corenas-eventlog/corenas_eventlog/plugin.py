"""Entry point ``eventlog`` of group ``corenas``: implements the event hooks only."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from corenas import hookimpl
from corenas.records import Trial

EVENTS_FILE = "events.jsonl"


def append_event(job_dir: str, event: str, **data: Any) -> None:
    """Append one event line (``O_APPEND``: whole lines, even with several writers)."""
    line = json.dumps({"event": event, "time": time.time(), **data}, default=str) + "\n"
    fd = os.open(os.path.join(job_dir, EVENTS_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@hookimpl
def corenas_job_started(job_dir: str, config: dict[str, Any], resumed: bool) -> None:
    append_event(job_dir, "job_started", resumed=resumed, config=config)


@hookimpl
def corenas_trial_started(job_dir: str, trial: Trial) -> None:
    append_event(
        job_dir, "trial_started", trial_id=trial.id, arch_id=trial.arch_id, genome=trial.genome
    )


@hookimpl
def corenas_trial_reported(
    job_dir: str, trial_id: int, step: int, metrics: dict[str, float]
) -> None:
    append_event(job_dir, "trial_reported", trial_id=trial_id, step=step, metrics=metrics)


@hookimpl
def corenas_trial_finished(job_dir: str, trial: Trial) -> None:
    append_event(job_dir, "trial_finished", trial=trial.to_json())


@hookimpl
def corenas_job_finished(job_dir: str, status: str, summary: dict[str, Any]) -> None:
    append_event(job_dir, "job_finished", status=status, summary=summary)
