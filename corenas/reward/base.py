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
    with that message) - never a silent 0. ``required_metrics`` lists the metric names it reads;
    ``hardware_metrics`` the subset that hardware backends measure before training, so the
    driver can skip training an architecture that ``precheck`` finds infeasible.
    """

    #: Metric names this reward reads.
    required_metrics: tuple[str, ...] = ()

    @abstractmethod
    def __call__(self, metrics: Metrics) -> RewardResult:
        """Reward for ``metrics``."""

    def precheck(self, metrics: Metrics) -> RewardResult | None:
        """Given only pre-training (hardware) metrics, return an infeasible result if a hard
        constraint already rules the architecture out, else None."""
        return None
