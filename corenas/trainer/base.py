"""The trainer contract."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corenas.records import Genome, Metrics

Reporter = Callable[[int, Metrics], None]
"""``reporter(step, metrics)`` stores intermediate metrics of the running trial."""


@dataclass
class TrialContext:
    """Everything a trainer gets besides the built object.

    ``trial_dir`` is reserved for this trial's files (checkpoints, logs, exported models);
    nothing is created there unless the trainer calls ``make_trial_dir``.
    """

    trial_id: int
    genome: Genome
    arch_id: str
    trial_dir: str
    seed: int
    reporter: Reporter
    devices: list[int] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)

    def make_trial_dir(self) -> str:
        """Create ``trial_dir`` with the trial's ``genome.json`` in it; returns its path."""
        os.makedirs(self.trial_dir, exist_ok=True)
        path = os.path.join(self.trial_dir, "genome.json")
        if not os.path.exists(path):
            with open(path, "w") as handle:
                json.dump(
                    {"trial_id": self.trial_id, "arch_id": self.arch_id, "genome": self.genome},
                    handle,
                    indent=2,
                )
        return self.trial_dir


class Trainer(ABC):
    """Trains what the space built and returns final metrics (names -> finite numbers)."""

    @abstractmethod
    def fit(self, model: Any, context: TrialContext) -> Metrics:
        """Train ``model`` for ``context.genome``; raise to fail the trial."""
