"""Worker process of the local executor: JSON lines in on stdin, JSON lines out on stdout.

Nothing is pickled. The worker's own stdout is redirected to stderr (its log file), so a
trainer's prints cannot corrupt the protocol. Messages in: ``setup``, ``task``, ``verdict``
(the answer to a report when the driver judges reports), ``measured`` (the answer to a
``measure`` request when the job measures in a measurement process), ``exit``. Messages out:
``ready``, ``setup_error``, ``report``, ``measure``, ``done``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from corenas.errors import CorenasError, TrialError
from corenas.processes import child_protocol, emit, messages


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
