"""Trainers for the fault tests, imported by worker processes through PYTHONPATH."""

from __future__ import annotations

import resource
from typing import Any

from corenas.records import Genome, Metrics
from corenas.testing import scripted_trainer
from corenas.trainer.base import TrialContext


def allocating_trainer(genome: Genome, built: Any, context: TrialContext) -> Metrics:
    """``corenas.testing.scripted_trainer``, and then, in the trials listed in
    ``budget.allocate_on``, allocates memory until ``MemoryError`` under an address-space cap
    of ``budget.cap_mb`` (default 256) MiB above what the worker uses, so the machine is not
    starved; the cap is lifted again before the error leaves the trainer."""
    metrics = scripted_trainer(genome, built, context)
    if context.trial_id in (context.budget.get("allocate_on") or []):
        allocate_until_memory_error(int(context.budget.get("cap_mb", 256)) << 20)
    return metrics


def allocate_until_memory_error(headroom: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + headroom, hard))
    chunks: list[bytearray] = []
    try:
        while True:
            chunks.append(bytearray(16 << 20))
    finally:
        chunks.clear()
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
