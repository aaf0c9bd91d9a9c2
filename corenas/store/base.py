"""The trial-store contract: job, trials, intermediate metrics, controller checkpoints."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from corenas.records import Architecture, JobStatus, Metrics, Trial, TrialStatus

SCHEMA_VERSION = 3
"""2 added ``trials.parent_id`` (stage-2 trials link to their search trial); 3 added the
``measurements`` cache of hardware metrics."""


@dataclass
class JobRecord:
    """The job row: resolved config (JSON data), status and timestamps."""

    name: str
    config: dict[str, Any]
    status: JobStatus
    created_at: float
    updated_at: float
    schema_version: int


StopMode = Literal["drain", "now"]
"""How a driver is asked to stop: ``drain`` (no new trials; running ones finish and are stored)
or ``now`` (running trials are killed and set back to pending)."""

STOP_MODES: tuple[StopMode, ...] = ("drain", "now")


@dataclass(frozen=True)
class StopRequest:
    """A ``corenas stop`` recorded in the store for the driver ``driver`` (its lock owner text,
    ``pid N on HOST``); only that driver acts on it, so a request left behind by a driver that
    died is ignored by the next one."""

    mode: StopMode
    driver: str
    requested_at: float
    requested_by: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Store(ABC):
    """Durable record of one search job, addressed by a URL (``sqlite:///path``, ...).

    Promises: every method that changes more than one row does so in one transaction, so a
    crash (even ``kill -9``) at any instant leaves either all or none of it; everything is
    stored as JSON text, nothing is read back with pickle; the schema carries
    ``SCHEMA_VERSION`` and a store of another version is refused with a clear error.
    """

    url: str

    # --- job ------------------------------------------------------------------------------
    @abstractmethod
    def create_job(self, name: str, config: dict[str, Any]) -> JobRecord:
        """Create the job row; raises ``StoreError`` if the store already holds a job."""

    @abstractmethod
    def job(self) -> JobRecord | None:
        """The job row, or None for an empty store."""

    @abstractmethod
    def update_job(
        self, status: JobStatus | None = None, config: dict[str, Any] | None = None
    ) -> None:
        """Set the job's status and/or config and bump ``updated_at``."""

    # --- driver lock ----------------------------------------------------------------------
    @abstractmethod
    def acquire_driver_lock(self, owner: str) -> None:
        """Take the job's exclusive driver lock (released when the process dies);
        raises ``StoreError`` naming the holder when another driver has it."""

    @abstractmethod
    def release_driver_lock(self) -> None:
        """Release the lock taken by ``acquire_driver_lock`` (no-op when not held)."""

    @abstractmethod
    def driver(self) -> str | None:
        """The owner text (``pid N on HOST``) of the live driver holding the lock, or None
        when no driver runs (a crashed driver's lock counts as free)."""

    # --- stop requests --------------------------------------------------------------------
    @abstractmethod
    def request_stop(self, mode: StopMode, driver: str, requested_by: str) -> StopRequest:
        """Record that the driver ``driver`` should stop (``mode``), replacing an earlier
        request; returns the stored request. The driver polls ``stop_request``, so this works
        from any machine that reaches the store. ``ValueError`` for an unknown ``mode``."""

    @abstractmethod
    def stop_request(self) -> StopRequest | None:
        """The recorded stop request, or None; reads only."""

    @abstractmethod
    def clear_stop_request(self) -> None:
        """Forget the stop request (no-op without one); the driver calls it as it exits."""

    # --- trials ---------------------------------------------------------------------------
    @abstractmethod
    def add_trials(
        self,
        architectures: Sequence[Architecture],
        controller_state: dict[str, Any] | None,
        stage: str = "search",
        parents: Sequence[int | None] | None = None,
    ) -> list[Trial]:
        """Insert one pending trial per architecture (ids 1, 2, ... in insertion order, shared
        by all stages) and save ``controller_state`` (if not None) as the newest checkpoint, in
        one transaction. ``parents`` links each new trial to the trial it retrains (stage 2)."""

    @abstractmethod
    def mark_running(self, trial_id: int, worker: str, started_at: float) -> None:
        """Set a pending trial running."""

    @abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        status: TrialStatus,
        metrics: Metrics,
        reward: float | None,
        error: str | None,
        started_at: float | None,
        finished_at: float,
        worker: str | None,
        controller_state: dict[str, Any] | None,
    ) -> Trial:
        """Store a trial's final status and results and the controller checkpoint taken after
        telling the controller about it, in one transaction; returns the stored trial.
        Raises ``StoreError`` if the trial is already final (a trial is never finished twice)."""

    @abstractmethod
    def requeue_unfinished(self) -> list[Trial]:
        """Set every running trial back to pending (after a crash); returns all pending
        trials in id order."""

    @abstractmethod
    def report(self, trial_id: int, step: int, metrics: Metrics) -> None:
        """Store intermediate metrics of a trial at ``step`` (a later report for the same
        step replaces the earlier one)."""

    @abstractmethod
    def intermediate(self, trial_id: int) -> list[tuple[int, Metrics]]:
        """Intermediate reports of a trial ordered by step."""

    @abstractmethod
    def trials(self, status: TrialStatus | None = None) -> list[Trial]:
        """All trials (or those of one status) in id order."""

    @abstractmethod
    def trial(self, trial_id: int) -> Trial:
        """One trial; raises ``StoreError`` if there is no such id."""

    @abstractmethod
    def counts(self) -> dict[TrialStatus, int]:
        """Number of trials per status (every status present, zeros included)."""

    # --- hardware measurements ------------------------------------------------------------
    @abstractmethod
    def measurement(self, key: str) -> Metrics | None:
        """The hardware metrics cached under ``key`` (see ``corenas.measurement``), or None."""

    @abstractmethod
    def save_measurement(self, key: str, metrics: Metrics) -> None:
        """Cache ``metrics`` under ``key``; a later save for the same key replaces it."""

    @abstractmethod
    def controller_state(self) -> dict[str, Any] | None:
        """Newest controller checkpoint, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (and the driver lock, if held)."""
