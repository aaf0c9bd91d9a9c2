"""Proxy variance: how much repeated trainings of one model under a proxy task disagree, and
how smooth their curves are (REFERENCE.md's thresholds)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corenas.proxy.stats import coefficient_of_variation, smoothness
from corenas.records import Metrics, Trial, TrialStatus

GOOD_CV_PERCENT = 0.4
"""A coefficient of variation of the final metric at or under this (percent) is good."""

GOOD_SMOOTHNESS = 10.0
"""A smoothness score at or under this (metric in percent) is good."""


@dataclass
class VarianceReport:
    """Repeated proxy trainings of one architecture: final values, their coefficient of
    variation (percent), each run's smoothness and the verdicts."""

    metric: str
    runs: int
    stop_step: int | None = None
    finals: list[float] = field(default_factory=list)
    cv_percent: float = math.nan
    smoothness: list[float] = field(default_factory=list)
    failed: int = 0

    @property
    def worst_smoothness(self) -> float:
        values = [s for s in self.smoothness if not math.isnan(s)]
        return max(values) if values else math.nan

    @property
    def cv_good(self) -> bool:
        return not math.isnan(self.cv_percent) and self.cv_percent <= GOOD_CV_PERCENT

    @property
    def smooth_good(self) -> bool | None:
        """None when no run had the three points a smoothness needs."""
        worst = self.worst_smoothness
        return None if math.isnan(worst) else worst <= GOOD_SMOOTHNESS

    def to_json(self) -> dict[str, Any]:
        def number(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 6)

        return {
            "metric": self.metric,
            "runs": self.runs,
            "stop_step": self.stop_step,
            "failed": self.failed,
            "finals": self.finals,
            "mean": number(statistics.fmean(self.finals)) if self.finals else None,
            "cv_percent": number(self.cv_percent),
            "cv_good": self.cv_good,
            "cv_good_at_most": GOOD_CV_PERCENT,
            "smoothness": [number(s) for s in self.smoothness],
            "worst_smoothness": number(self.worst_smoothness),
            "smoothness_good": self.smooth_good,
            "smoothness_good_at_most": GOOD_SMOOTHNESS,
        }


def as_percent(values: Sequence[float]) -> list[float]:
    """Fractions in [0, 1] (accuracies) as percent; other values unchanged."""
    if values and all(0.0 <= v <= 1.0 for v in values):
        return [100.0 * v for v in values]
    return list(values)


class StepLimit:
    """Stops every trial at its first report at or after ``step`` (a proxy's stopping step)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def observe(self, trial: Trial, step: int, metrics: Metrics) -> None:
        """Nothing to remember: the verdict depends on the step alone."""

    def judge(self, trial: Trial, step: int, metrics: Metrics) -> str | None:
        return f"the proxy stops at step {self.step}" if step >= self.step else None


def measure_variance(
    trials: Sequence[Trial],
    curves: Mapping[int, Sequence[tuple[int, Metrics]]],
    metric: str,
    stop_step: int | None = None,
) -> VarianceReport:
    """The variance report of repeated trainings (``trials``, one per run, with their
    intermediate reports in ``curves`` by trial id). With ``stop_step`` each run ends at its
    first report at or after that step (its final value is that report's); without, a run's
    final value is its result. A run without ``metric`` counts as failed."""
    report = VarianceReport(metric, len(trials), stop_step)
    for trial in trials:
        points = [(s, m[metric]) for s, m in curves.get(trial.id, []) if metric in m]
        if stop_step is not None:
            ends = [i for i, (s, _) in enumerate(points) if s >= stop_step]
            points = points[: ends[0] + 1] if ends else points
            ok = trial.status in (TrialStatus.SUCCEEDED, TrialStatus.STOPPED) and bool(points)
            final = points[-1][1] if points else math.nan
        else:
            ok = trial.status is TrialStatus.SUCCEEDED and metric in trial.metrics
            final = float(trial.metrics.get(metric, math.nan))
        if not ok:
            report.failed += 1
            continue
        report.finals.append(float(final))
        values = as_percent([v for _, v in points])
        report.smoothness.append(smoothness([s for s, _ in points], values))
    report.cv_percent = coefficient_of_variation(report.finals)
    return report
