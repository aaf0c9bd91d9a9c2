"""Helpers for testing corenas and its plugins: deterministic trainers and fault injection.

``trainer=function trainer.target=corenas.testing:scripted_trainer`` gives every architecture a
deterministic pseudo-accuracy (from its id) and misbehaves on cue, as set in ``budget``:
``sleep_s`` (every trial), and the trial-id lists ``raise_on``, ``nan_on``, ``abort_on``
(``os.abort()``), ``exit_on`` (``os._exit(3)``), ``hang_on`` (sleeps for an hour) and
``memory_on`` (raises MemoryError); ``run_log`` names a file that gets a line
"<pid> <parent pid> <trial id>" at the start of every run. Used by the test suite and
scripts/bench_overhead.py.
"""

from __future__ import annotations

import os
import time
from typing import Any

from corenas.records import Genome, Metrics
from corenas.trainer.base import TrialContext


def pseudo_accuracy(arch_id: str) -> float:
    """A stable number in [0, 1) derived from an architecture id."""
    return int(arch_id[:8], 16) / 16**8


def noop_trainer(genome: Genome, built: Any) -> Metrics:
    """Does nothing; returns a constant accuracy (measures framework overhead)."""
    return {"accuracy": 0.5}


def scripted_trainer(genome: Genome, built: Any, context: TrialContext) -> Metrics:
    """Deterministic pseudo-accuracy, with faults injected per ``context.budget``."""
    budget = context.budget
    trial = context.trial_id
    if budget.get("run_log"):  # one line per run, written before anything else
        with open(budget["run_log"], "a") as log:
            log.write(f"{os.getpid()} {os.getppid()} {trial}\n")

    def on(key: str) -> bool:
        return trial in (budget.get(key) or [])

    if budget.get("sleep_s"):
        time.sleep(float(budget["sleep_s"]))
    if on("raise_on"):
        raise RuntimeError(f"injected failure in trial {trial}")
    if on("memory_on"):
        raise MemoryError(f"injected out-of-memory in trial {trial}")
    if on("abort_on"):
        os.abort()
    if on("exit_on"):
        os._exit(3)
    if on("hang_on"):
        time.sleep(3600)
    accuracy = pseudo_accuracy(context.arch_id)
    context.reporter(1, {"accuracy": accuracy / 2})
    if on("nan_on"):
        return {"accuracy": float("nan")}
    return {"accuracy": accuracy}
