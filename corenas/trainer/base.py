"""The trainer contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corenas.records import Genome, Metrics

Reporter = Callable[[int, Metrics], None]
"""``reporter(step, metrics)`` stores intermediate metrics of the running trial."""


@dataclass
class TrialContext:
    """Everything a trainer gets besides the built object."""

    trial_id: int
    genome: Genome
    arch_id: str
    trial_dir: str
    seed: int
    reporter: Reporter
    devices: list[int] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)


class Trainer(ABC):
    """Trains what the space built and returns final metrics (names -> finite numbers)."""

    @abstractmethod
    def fit(self, model: Any, context: TrialContext) -> Metrics:
        """Train ``model`` for ``context.genome``; raise to fail the trial."""
