"""The reward contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from corenas.records import Metrics


@dataclass(frozen=True)
class RewardResult:
    """A reward value and whether the architecture satisfies the hard constraints."""

    value: float
    feasible: bool = True
    reason: str = ""


class Reward(ABC):
    """Turns a trial's metrics into one number to maximise.

    ``__call__`` raises ``corenas.errors.TrialError`` naming a missing metric (the trial fails
    with that message) - never a silent 0. ``required_metrics`` lists the metric names it reads.
    ``precheck`` sees only the metrics measured before training (the hardware backend's), so
    the worker can skip training an architecture it finds infeasible.
    """

    #: Metric names this reward reads.
    required_metrics: tuple[str, ...] = ()

    @abstractmethod
    def __call__(self, metrics: Metrics) -> RewardResult:
        """Reward for ``metrics``."""

    def precheck(self, metrics: Metrics) -> RewardResult | None:
        """Given only pre-training (hardware) metrics, return an infeasible result if a hard
        constraint already rules the architecture out, else None.

        Promise: a result it returns is the one ``__call__`` would return for these metrics
        whatever training adds (infeasible, value 0), so skipping the training changes no
        verdict; a constraint that only scales the reward never triggers it. Metrics absent
        here are left to ``__call__``. The default returns None (nothing is skipped).
        """
        return None
