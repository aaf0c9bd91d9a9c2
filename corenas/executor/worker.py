"""Worker process of the local executor: JSON lines in on stdin, JSON lines out on stdout.

Nothing is pickled. The worker's own stdout is redirected to stderr (its log file), so a
trainer's prints cannot corrupt the protocol. Messages in: ``setup``, ``task``, ``verdict``
(the answer to a report when the driver judges reports), ``exit``. Messages out: ``ready``,
``setup_error``, ``report``, ``done``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from corenas.errors import CorenasError
from corenas.processes import die_with_parent


def _emit(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, allow_nan=True) + "\n")
    channel.flush()


def _await_verdict() -> bool:
    """Read the driver's answer to the report just sent: True means stop the trial."""
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") == "verdict":
            return bool(message.get("stop"))
        if message.get("type") == "exit":
            raise SystemExit(0)
    raise SystemExit(0)  # the driver is gone


def main() -> int:
    die_with_parent()  # not Linux: the worker exits at its next read instead
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from corenas.trainer.base import TrialStopped
    from corenas.trial import TrialRunner, TrialTask, WorkerSetup

    runner: TrialRunner | None = None
    for line in sys.stdin:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "exit":
            break
        if kind == "setup":
            try:
                runner = TrialRunner(WorkerSetup.from_json(message["setup"]))
            except CorenasError as exc:
                _emit(protocol, {"type": "setup_error", "error": str(exc)})
                return 1
            except Exception as exc:
                _emit(protocol, {"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
                return 1
            _emit(protocol, {"type": "ready", "pid": os.getpid()})
        elif kind == "task":
            assert runner is not None, "setup message must come first"
            task = TrialTask.from_json(message["task"])

            def report(
                step: int,
                metrics: dict[str, float],
                trial_id: int = task.trial_id,
                judged: bool = runner.setup.judged_reports,
            ) -> None:
                _emit(
                    protocol,
                    {
                        "type": "report",
                        "trial_id": trial_id,
                        "step": int(step),
                        "metrics": {k: float(v) for k, v in metrics.items()},
                    },
                )
                if judged and _await_verdict():
                    raise TrialStopped()

            outcome = runner.run(task, report)
            _emit(protocol, {"type": "done", "outcome": outcome.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
