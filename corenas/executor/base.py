"""The executor contract: where and how trials run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from corenas.plugins import Plugins
from corenas.records import Metrics, TrialOutcome
from corenas.trial import TrialTask, WorkerSetup


@dataclass(frozen=True)
class Report:
    """A running trial reported intermediate metrics."""

    trial_id: int
    step: int
    metrics: Metrics


@dataclass(frozen=True)
class Finished:
    """A trial ended (successfully or not)."""

    outcome: TrialOutcome


Event = Report | Finished

Judge = Callable[[Report], bool]
"""``judge(report)`` -> True when the reporting trial should stop now (early stopping)."""


class Executor(ABC):
    """Runs trials and reports their events to the driver.

    Promises: every submitted trial yields exactly one ``Finished`` event from ``poll`` unless
    it is cancelled; a crash, timeout or exception of a trial becomes a ``failed`` outcome with
    its reason, never an exception in the driver; at most ``capacity`` trials run at once.

    Early stopping: when ``setup.judged_reports`` is true the driver has called ``set_judge``;
    the executor calls the judge on each report as it arrives and, when it returns True, makes
    the trial's reporter raise ``corenas.trainer.TrialStopped`` before the trainer goes on.
    """

    judge: Judge | None = None

    def set_judge(self, judge: Judge | None) -> None:
        """Decide after each report whether its trial stops (None: never)."""
        self.judge = judge

    @abstractmethod
    def start(self, setup: WorkerSetup, parallel: int, plugins: Plugins | None = None) -> None:
        """Prepare to run trials of the job described by ``setup``, ``parallel`` at a time.
        ``plugins`` are the driver's; an executor that runs trials in the driver process uses
        them, others load plugins in their workers."""

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many trials may run at once."""

    @abstractmethod
    def submit(self, task: TrialTask, timeout_s: float | None = None) -> None:
        """Start ``task`` (the caller never submits more than ``capacity`` at once)."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Events since the last call, waiting at most ``timeout`` seconds for the first."""

    @abstractmethod
    def running(self) -> list[int]:
        """Ids of trials submitted and not yet finished."""

    def where(self, trial_id: int) -> str | None:
        """Where a submitted, unfinished trial runs, named as its outcome's ``worker`` will
        name it (e.g. ``host:pid``), or None when this executor cannot tell (the default)."""
        return None

    @abstractmethod
    def cancel_all(self) -> list[int]:
        """Stop every running trial (no ``Finished`` events follow); returns their ids."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release workers; the executor may be started again."""
