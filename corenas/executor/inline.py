"""Trials run one at a time inside the driver process (cheap trainers, table look-ups)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator

from corenas.executor.base import Event, Executor, Finished, Report
from corenas.plugins import Plugins
from corenas.records import Metrics, TrialOutcome, TrialStatus
from corenas.trainer.base import TrialStopped
from corenas.trial import TrialRunner, TrialTask, WorkerSetup


class _Timeout(BaseException):
    """Raised inside a trial whose time is up (BaseException: trainers must not catch it)."""


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    usable = seconds and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class InlineExecutor(Executor):
    """Runs each trial synchronously in the driver; a trial's exception fails only that trial.

    Timeouts use SIGALRM (main thread only). A trial that crashes the interpreter takes the
    driver with it: use ``executor=local`` for trainers that may do so.
    """

    def __init__(self) -> None:
        self._runner: TrialRunner | None = None
        self._queue: deque[tuple[TrialTask, float | None]] = deque()

    def start(self, setup: WorkerSetup, parallel: int, plugins: Plugins | None = None) -> None:
        if self._runner is None or self._runner.setup != setup:
            self._runner = TrialRunner(setup, plugins)

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, task: TrialTask, timeout_s: float | None = None) -> None:
        self._queue.append((task, timeout_s))

    def poll(self, timeout: float) -> list[Event]:
        if not self._queue:
            return []
        assert self._runner is not None, "start() first"
        task, timeout_s = self._queue.popleft()
        events: list[Event] = []

        def report(step: int, metrics: Metrics) -> None:
            event = Report(task.trial_id, int(step), dict(metrics))
            events.append(event)
            if self.judge is not None and self.judge(event):
                raise TrialStopped()

        started = time.time()
        try:
            with _deadline(timeout_s):
                outcome = self._runner.run(task, report)
        except _Timeout:
            outcome = TrialOutcome(
                trial_id=task.trial_id,
                status=TrialStatus.FAILED,
                error=f"timed out after {timeout_s:g} s (search.trial_timeout_s)",
                started_at=started,
                finished_at=time.time(),
                worker=self._runner.worker,
            )
        events.append(Finished(outcome))
        return events

    def running(self) -> list[int]:
        return [task.trial_id for task, _ in self._queue]

    def where(self, trial_id: int) -> str | None:
        """The driver process (``host:pid``), where every trial runs."""
        return None if self._runner is None else self._runner.worker

    def cancel_all(self) -> list[int]:
        ids = self.running()
        self._queue.clear()
        return ids

    def shutdown(self) -> None:
        self._queue.clear()
