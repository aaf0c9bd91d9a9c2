"""The Ray actor that runs trials: one per trial slot, reused across trials of a job.

Everything crossing the process boundary is JSON data: the job's ``WorkerSetup`` and each
``TrialTask`` come in as their JSON forms; messages go out as numbered dicts (``report``: a
trial's intermediate metrics; ``done``: its ``TrialOutcome`` as JSON). The executor pickles
this module by value, so a Ray node needs corenas (and the job's trainer plugins) but not
corenas-ray; this module therefore imports nothing else from ``corenas_ray``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from corenas.errors import CorenasError
from corenas.records import Metrics, TrialOutcome, TrialStatus
from corenas.trainer.base import TrialStopped
from corenas.trial import TrialRunner, TrialTask, WorkerSetup

Message = dict[str, Any]


class TrialActor:
    """Builds the job's plugins once, then runs one trial at a time (what the trials import,
    torch for one, stays imported for the next).

    A trial runs in its own thread so that the driver can collect its messages and answer its
    reports while it trains. Messages are numbered and kept until the driver acknowledges
    them (``ack``), so a reply lost on the way is sent again by the next call: ``run`` and
    ``messages`` are safe to repeat. The last message of a trial is ``done``. A trial never
    raises out of the actor: its failures are ``failed`` outcomes; only a dying process
    (``os.abort``, a lost node, ``ray.kill``) ends a trial without ``done``.
    """

    def __init__(self, setup: dict[str, Any]) -> None:
        self._lock = threading.Condition()
        self._outbox: list[tuple[int, Message]] = []  # (number, message), not acknowledged
        self._sent = 0  # the number of the newest message
        self._answers: dict[int, bool] = {}  # report number -> stop
        self._trial_id: int | None = None  # the trial started last
        self._runner: TrialRunner | None = None
        self._error: str | None = None
        self._judged = bool(setup.get("judged_reports"))
        try:
            self._runner = TrialRunner(WorkerSetup.from_json(setup))
        except CorenasError as exc:
            self._error = str(exc)
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"

    def ready(self) -> dict[str, Any]:
        """Where this actor runs (node id, ip, pid) and its set-up error (None: ready)."""
        import ray

        context = ray.get_runtime_context()
        return {
            "node_id": context.get_node_id(),
            "ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "error": self._error,
        }

    def run(self, task: dict[str, Any], ack: int, wait_s: float) -> dict[str, Any]:
        """Start the trial ``task`` (JSON form of a ``TrialTask``) unless it is the one
        started last; then ``messages(ack, wait_s)``."""
        import ray

        assert self._runner is not None, "the driver runs no trial on an actor that failed"
        trial = TrialTask.from_json(task)
        with self._lock:
            if self._trial_id != trial.trial_id:
                self._trial_id = trial.trial_id
                self._answers.clear()
                # Ray hides all but this actor's GPUs (CUDA_VISIBLE_DEVICES): the trainer sees
                # them as cuda:0.., which is what TrialContext.devices lists
                trial.devices = list(range(len(ray.get_gpu_ids())))
                thread = threading.Thread(target=self._trial, args=(self._runner, trial))
                thread.daemon = True
                thread.start()
        return self.messages(ack, wait_s)

    def messages(
        self, ack: int, wait_s: float, answer: tuple[int, bool] | None = None
    ) -> dict[str, Any]:
        """Forget messages up to number ``ack``; take ``answer`` (report number, stop) to a
        report; return the trial started last and the messages after ``ack``, waiting up to
        ``wait_s`` seconds for one."""
        with self._lock:
            self._outbox = [(n, m) for n, m in self._outbox if n > ack]
            if answer is not None:
                self._answers[int(answer[0])] = bool(answer[1])
                self._lock.notify_all()
            self._lock.wait_for(lambda: bool(self._outbox), timeout=wait_s)
            return {"trial_id": self._trial_id, "messages": list(self._outbox)}

    def _post(self, message: Message) -> int:
        with self._lock:
            self._sent += 1
            self._outbox.append((self._sent, message))
            self._lock.notify_all()
            return self._sent

    def _trial(self, runner: TrialRunner, task: TrialTask) -> None:
        def report(step: int, metrics: Metrics) -> None:
            number = self._post(
                {"type": "report", "trial_id": task.trial_id, "step": step, "metrics": metrics}
            )
            if self._judged:
                with self._lock:
                    self._lock.wait_for(lambda: number in self._answers)
                    stop = self._answers.pop(number)
                if stop:
                    raise TrialStopped()

        started = time.time()
        try:
            outcome = runner.run(task, report)
        except BaseException as exc:  # SystemExit and the like: the actor lives on
            outcome = TrialOutcome(
                trial_id=task.trial_id,
                status=TrialStatus.FAILED,
                error=f"trial raised {type(exc).__name__}: {exc}",
                started_at=started,
                finished_at=time.time(),
                worker=runner.worker,
            )
        self._post({"type": "done", "outcome": outcome.to_json()})
