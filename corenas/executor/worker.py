"""Worker process of the local executor: JSON lines in on stdin, JSON lines out on stdout.

Nothing is pickled. The worker's own stdout is redirected to stderr (its log file), so a
trainer's prints cannot corrupt the protocol. The executor sets ``CUDA_VISIBLE_DEVICES`` to
the worker's own GPUs (empty: none), so a task's ``devices`` reach the trainer renumbered
from 0, and the ``task`` message's ``submitted_at`` gives each trial a start-up line in the
log. Messages in: ``setup``, ``task``, ``verdict``
(the answer to a report when the driver judges reports), ``measured`` (the answer to a
``measure`` request when the job measures in a measurement process), ``exit``. Messages out:
``ready``, ``setup_error``, ``report``, ``measure``, ``done``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

from corenas.errors import CorenasError, TrialError
from corenas.processes import child_protocol, emit, messages

if TYPE_CHECKING:
    from corenas.records import TrialOutcome


def _await(kind: str) -> dict[str, Any]:
    """The driver's next message of ``kind`` (the answer to the request just sent); exits
    when the driver says ``exit`` or is gone."""
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") == kind:
            return dict(message)
        if message.get("type") == "exit":
            raise SystemExit(0)
    raise SystemExit(0)  # the driver is gone


def log_timing(trial_id: int, submitted_at: float | None, outcome: TrialOutcome) -> None:
    """One line in the worker's log: how long after its submission the trial started, and
    how long it ran."""
    if submitted_at is None or outcome.started_at is None or outcome.finished_at is None:
        return
    print(
        f"corenas worker {os.getpid()}: trial {trial_id} started "
        f"{outcome.started_at - float(submitted_at):.3f} s after its submission, ran "
        f"{outcome.finished_at - outcome.started_at:.3f} s",
        file=sys.stderr,
        flush=True,
    )


def main() -> int:
    protocol = child_protocol()
    from corenas.records import Metrics
    from corenas.trainer.base import TrialStopped
    from corenas.trial import TrialRunner, TrialTask, WorkerSetup

    def measure_elsewhere(task: TrialTask) -> Metrics:
        """Ask the executor's measurement process to measure ``task``'s architecture."""
        emit(protocol, {"type": "measure", "trial_id": task.trial_id})
        answer = _await("measured")
        if answer.get("error") is not None:
            raise TrialError(str(answer["error"]))
        return {k: float(v) for k, v in answer["metrics"].items()}

    runner: TrialRunner | None = None
    for message in messages():
        kind = message.get("type")
        if kind == "setup":
            try:
                runner = TrialRunner(
                    WorkerSetup.from_json(message["setup"]), measure_elsewhere=measure_elsewhere
                )
            except CorenasError as exc:
                emit(protocol, {"type": "setup_error", "error": str(exc)})
                return 1
            except Exception as exc:
                emit(protocol, {"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
                return 1
            emit(protocol, {"type": "ready", "pid": os.getpid()})
        elif kind == "task":
            assert runner is not None, "setup message must come first"
            task = TrialTask.from_json(message["task"])
            if "CUDA_VISIBLE_DEVICES" in os.environ:  # set by the executor to this trial's GPUs
                task.devices = list(range(len(task.devices)))  # seen here as cuda:0..

            def report(
                step: int,
                metrics: dict[str, float],
                trial_id: int = task.trial_id,
                judged: bool = runner.setup.judged_reports,
            ) -> None:
                emit(
                    protocol,
                    {
                        "type": "report",
                        "trial_id": trial_id,
                        "step": int(step),
                        "metrics": {k: float(v) for k, v in metrics.items()},
                    },
                )
                if judged and _await("verdict").get("stop"):
                    raise TrialStopped()

            outcome = runner.run(task, report)
            emit(protocol, {"type": "done", "outcome": outcome.to_json()})
            log_timing(task.trial_id, message.get("submitted_at"), outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
