"""Early stopping of hopeless search trials from their intermediate reports."""

from __future__ import annotations

import statistics
from typing import Any, Protocol

from corenas.errors import ConfigError
from corenas.pareto import check_mode
from corenas.records import Metrics, Trial


class ReportJudge(Protocol):
    """A judge given to the driver in Python (the proxy-task tools' correlation stop), beside
    ``search.early_stopping``: it sees every intermediate report of every search trial."""

    def observe(self, trial: Trial, step: int, metrics: Metrics) -> None:
        """Record a report without judging it (the stored reports, on resume)."""

    def judge(self, trial: Trial, step: int, metrics: Metrics) -> str | None:
        """Record the report; return why the trial should stop now, or None."""


class StoppingRule:
    """Decides after each report of a search trial whether to stop it.

    Compares the trial's best value of ``metric`` so far (so one noisy dip stops nothing):
    with ``median``, against the median of the other trials' best values up to the same step,
    among those that reached it (at least ``min_trials`` of them); with ``thresholds``
    (``[{step, value}]``), against ``value`` at every report at or after ``step``. Nothing is
    stopped before ``grace_steps``.
    """

    def __init__(
        self,
        median: bool = False,
        thresholds: list[dict[str, float]] | None = None,
        metric: str = "accuracy",
        mode: str = "max",
        grace_steps: int = 1,
        min_trials: int = 5,
    ) -> None:
        self.median = bool(median)
        self.metric = str(metric)
        self.mode = check_mode(mode, "search.early_stopping.mode")
        self.grace_steps = int(grace_steps)
        self.min_trials = int(min_trials)
        if self.min_trials < 1:
            raise ConfigError("search.early_stopping.min_trials must be at least 1")
        self.thresholds: list[tuple[int, float]] = []
        for item in thresholds or []:
            if not isinstance(item, dict) or set(item) != {"step", "value"}:
                raise ConfigError(
                    f"search.early_stopping.thresholds item {item!r} must be "
                    "{step: N, value: X}, e.g. search.early_stopping.thresholds="
                    "'[{step: 200, value: 0.5}]'"
                )
            self.thresholds.append((int(item["step"]), float(item["value"])))
        self._history: dict[int, list[tuple[int, float]]] = {}

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    def _best_until(self, history: list[tuple[int, float]], step: int) -> float | None:
        values = [v for s, v in history if s <= step]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)

    def observe(self, trial_id: int, step: int, metrics: Metrics) -> None:
        """Record a report (also used to rebuild the history on resume)."""
        if self.metric in metrics:
            self._history.setdefault(trial_id, []).append((int(step), float(metrics[self.metric])))

    def judge(self, trial_id: int, step: int, metrics: Metrics) -> str | None:
        """Record the report; return why the trial should stop, or None to let it go on."""
        self.observe(trial_id, step, metrics)
        if step < self.grace_steps or self.metric not in metrics:
            return None
        own = self._best_until(self._history[trial_id], step)
        assert own is not None
        for at_step, value in self.thresholds:
            if step >= at_step and not (own == value or self._better(own, value)):
                return f"{self.metric} {own:.4g} at step {step} is worse than {value:g}"
        if self.median:
            others = [
                best
                for other, history in self._history.items()
                if other != trial_id and history and max(s for s, _ in history) >= step
                for best in [self._best_until(history, step)]
                if best is not None
            ]
            if len(others) >= self.min_trials:
                middle = statistics.median(others)
                if self._better(middle, own):
                    return (
                        f"{self.metric} {own:.4g} at step {step} is worse than the median "
                        f"{middle:.4g} of {len(others)} trials"
                    )
        return None


def stopping_rule(settings: dict[str, Any]) -> StoppingRule | None:
    """The rule ``search.early_stopping`` configures, or None when it stops nothing."""
    if not settings.get("median") and not settings.get("thresholds"):
        return None
    return StoppingRule(**settings)
