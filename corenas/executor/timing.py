"""Per-trial start-up figures of an executor: how long a trial waited to start, and how long
its worker sat idle before it. Shared by executors that reuse workers across trials."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

from corenas.records import TrialOutcome


@dataclass(frozen=True)
class TrialTiming:
    """Where a finished trial's time outside the trainer went, seen from the driver.

    ``startup_s``: from ``submit`` until the worker began the trial (``TrialOutcome.
    started_at``); for a worker's ``first`` trial it includes starting the worker and loading
    the job's plugins. ``gap_s``: the worker's idle time between the end of its previous trial
    and the start of this one (driver round trips included); None for a worker's first trial.
    ``worker`` is where it ran (``TrialOutcome.worker``: ``host:pid``)."""

    trial_id: int
    worker: str
    first: bool
    startup_s: float
    gap_s: float | None


class TrialClock:
    """Collects a ``TrialTiming`` per finished trial from two calls: ``submitted`` when the
    executor hands a trial to a worker and ``finished`` when its outcome comes back. A worker
    is any hashable key that stays the same for the life of one worker process or actor."""

    def __init__(self) -> None:
        self.timings: list[TrialTiming] = []
        self._submitted: dict[int, tuple[float, bool]] = {}
        self._trials: dict[Hashable, int] = {}
        self._last_finished: dict[Hashable, float] = {}

    def submitted(self, trial_id: int, worker: Hashable) -> float:
        """``trial_id`` was just handed to ``worker``; returns the time (``time.time()``)."""
        now = time.time()
        self._trials[worker] = self._trials.get(worker, 0) + 1
        self._submitted[trial_id] = (now, self._trials[worker] == 1)
        return now

    def finished(self, outcome: TrialOutcome, worker: Hashable, where: str) -> None:
        """``worker`` (described as ``where``) sent back ``outcome``: record its timing."""
        submitted = self._submitted.pop(outcome.trial_id, None)
        if submitted is None or outcome.started_at is None:
            return
        previous = self._last_finished.get(worker)
        self.timings.append(
            TrialTiming(
                trial_id=outcome.trial_id,
                worker=where,
                first=submitted[1],
                startup_s=outcome.started_at - submitted[0],
                gap_s=None if previous is None else outcome.started_at - previous,
            )
        )
        if outcome.finished_at is not None:
            self._last_finished[worker] = outcome.finished_at

    def forget(self, trial_id: int) -> None:
        """``trial_id`` ended without an outcome from its worker (timeout, death): no timing."""
        self._submitted.pop(trial_id, None)
