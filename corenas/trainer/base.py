"""The trainer contract."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corenas.errors import ConfigError
from corenas.records import Genome, Metrics

if TYPE_CHECKING:
    from corenas.data.base import DataSplit

Reporter = Callable[[int, Metrics], None]
"""``reporter(step, metrics)`` stores intermediate metrics of the running trial."""


@dataclass
class TrialContext:
    """Everything a trainer gets besides the built object.

    ``trial_dir`` is reserved for this trial's files (checkpoints, logs, exported models);
    nothing is created there unless the trainer calls ``make_trial_dir``. ``budget`` is the
    job's ``budget`` (search trials) or that merged with ``search.stage2.budget`` (``stage``
    ``train``); ``devices`` are the GPU indices the executor assigned (empty: CPU).
    ``reporter(step, metrics)`` raises ``TrialStopped`` when early stopping ends the trial.
    """

    trial_id: int
    genome: Genome
    arch_id: str
    trial_dir: str
    seed: int
    reporter: Reporter
    devices: list[int] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    stage: str = "search"
    data_loader: Callable[[], DataSplit] | None = None

    def load_data(self) -> DataSplit:
        """The job's dataset (``data=NAME``), loaded once per process and cached."""
        if self.data_loader is None:
            raise ConfigError("this trainer needs a dataset: choose one with data=NAME")
        return self.data_loader()

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


class TrialStopped(Exception):
    """Raised by a trial's reporter when early stopping ends the trial.

    A trainer may let it propagate (the trial keeps its last reported metrics) or catch it,
    finish cleanly and return its metrics; either way the trial is stored as ``stopped``.
    """


class Trainer(ABC):
    """Trains what the space built and returns final metrics (names -> finite numbers)."""

    @abstractmethod
    def fit(self, model: Any, context: TrialContext) -> Metrics:
        """Train ``model`` for ``context.genome``; raise to fail the trial."""
