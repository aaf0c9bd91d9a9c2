"""Proxy search's measure: Kendall tau between proxy results and full-training results at
every evaluation step, the stop it implies, and the verdict on a proxy configuration."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corenas.proxy.stats import Correlation, kendall_tau
from corenas.records import Metrics, Trial, TrialStatus


@dataclass(frozen=True)
class Requirements:
    """What a proxy configuration must show (REFERENCE.md, proxy search): tau at or above
    ``threshold`` for accuracy (at ``hold`` evaluation steps in a row; 1 is the managed
    service's rule) and, when both sides measured it, for latency; at least ``min_valid``
    candidates with results and ``min_valid_ratio`` of all of them."""

    threshold: float = 0.65
    min_valid: int = 5
    min_valid_ratio: float = 0.7
    hold: int = 1

    def first_held(self, steps: Sequence[int], passed: Sequence[bool]) -> int | None:
        """The index of the first of ``hold`` passes in a row, or None."""
        for i in range(len(passed) - self.hold + 1):
            if all(passed[i : i + self.hold]):
                return i
        return None

    def enough(self, valid: int, total: int) -> bool:
        return valid >= self.min_valid and total > 0 and valid / total >= self.min_valid_ratio


class CorrelationStop:
    """Stops every trial of a proxy configuration once its proxy ``metric`` ranks the
    candidates like full training: tau >= threshold over all candidates at ``hold``
    evaluation steps in a row (a trial stops at the last of them or, if it is past it, at its
    next report). Also stops every trial once ``time_limit_s`` has passed since this object
    was made (this run of the command)."""

    def __init__(
        self,
        reference: Mapping[str, float],
        metric: str,
        requirements: Requirements,
        time_limit_s: float | None = None,
    ) -> None:
        self.reference = dict(reference)
        self.metric = metric
        self.requirements = requirements
        self.deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self._values: dict[int, dict[str, float]] = {}
        self._passed: dict[int, bool] = {}  # steps every candidate reported: tau passed?
        self.reached: int | None = None  # the proxy's stopping step
        self.evidence: int | None = None  # the step that confirmed it (hold steps later)

    def observe(self, trial: Trial, step: int, metrics: Metrics) -> None:
        if self.metric not in metrics or trial.arch_id not in self.reference:
            return
        values = self._values.setdefault(int(step), {})
        values[trial.arch_id] = float(metrics[self.metric])
        if len(values) == len(self.reference) and int(step) not in self._passed:
            ids = sorted(values)
            result = kendall_tau([values[i] for i in ids], [self.reference[i] for i in ids])
            self._passed[int(step)] = _passes(result, self.requirements)
            if self.reached is None:
                steps = sorted(self._passed)
                first = self.requirements.first_held(steps, [self._passed[s] for s in steps])
                if first is not None:
                    self.reached = steps[first]
                    self.evidence = steps[first + self.requirements.hold - 1]

    def judge(self, trial: Trial, step: int, metrics: Metrics) -> str | None:
        self.observe(trial, step, metrics)
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "the proxy search's time limit passed"
        if self.evidence is not None and step >= self.evidence:
            return f"tau reached {self.requirements.threshold:g} at step {self.reached}"
        return None


@dataclass
class ConfigVerdict:
    """A proxy configuration measured against full training."""

    name: str
    overrides: list[str]
    candidates: int
    valid: int
    curve: list[dict[str, Any]] = field(default_factory=list)  # per step: step, tau, p, n
    stop_step: int | None = None
    tau: float | None = None
    p_value: float | None = None
    latency: dict[str, Any] | None = None
    cost_s: float = 0.0
    passed: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "overrides": self.overrides,
            "candidates": self.candidates,
            "valid": self.valid,
            "stop_step": self.stop_step,
            "tau": self.tau,
            "p_value": self.p_value,
            "latency": self.latency,
            "cost_s": round(self.cost_s, 3),
            "passed": self.passed,
            "reason": self.reason,
            "curve": self.curve,
        }


def judge_config(
    name: str,
    overrides: list[str],
    trials: Sequence[Trial],
    curves: Mapping[int, Sequence[tuple[int, Metrics]]],
    reference: Mapping[str, float],
    metric: str,
    requirements: Requirements,
    latency_reference: Mapping[str, float] | None = None,
    latency_metric: str = "latency_ms",
) -> ConfigVerdict:
    """The verdict on one proxy configuration from its trials (one per candidate) and their
    intermediate reports (``curves``, by trial id): tau of ``metric`` against ``reference``
    (full-training values by architecture id) at every step that enough candidates reported,
    the first step reaching the threshold, the latency tau, and the cost — the training seconds
    (``train_time_s``, else the trial's duration) spent up to that step, summed over the
    candidates, prorated by step."""
    mine = [t for t in trials if t.arch_id in reference]
    valid = [t for t in mine if t.status in (TrialStatus.SUCCEEDED, TrialStatus.STOPPED)]
    verdict = ConfigVerdict(name, list(overrides), len(reference), len(valid))
    by_step: dict[int, dict[str, float]] = {}
    last_step: dict[int, int] = {}
    for trial in valid:
        for step, metrics in curves.get(trial.id, []):
            if metric in metrics:
                by_step.setdefault(int(step), {})[trial.arch_id] = float(metrics[metric])
                last_step[trial.id] = max(last_step.get(trial.id, 0), int(step))
    results: list[Correlation] = []
    for step in sorted(by_step):
        values = by_step[step]
        if not requirements.enough(len(values), len(reference)):
            continue
        ids = sorted(values)
        result = kendall_tau([values[i] for i in ids], [reference[i] for i in ids])
        verdict.curve.append({"step": step, **result.to_json()})
        results.append(result)
    passed = [_passes(r, requirements) for r in results]
    first = requirements.first_held([r["step"] for r in verdict.curve], passed)
    if first is not None:
        verdict.stop_step = verdict.curve[first]["step"]
        verdict.tau, verdict.p_value = results[first].tau, results[first].p_value
    elif verdict.curve:
        best = max(verdict.curve, key=lambda row: -2.0 if row["tau"] is None else row["tau"])
        verdict.tau, verdict.p_value = best["tau"], best["p_value"]
    verdict.latency = _latency(valid, latency_reference, latency_metric, requirements)
    for trial in valid:
        seconds = float(trial.metrics.get("train_time_s", trial.duration_s or 0.0))
        last = last_step.get(trial.id)
        if verdict.stop_step is not None and last:
            seconds *= min(1.0, verdict.stop_step / last)
        verdict.cost_s += seconds
    verdict.passed, verdict.reason = _conclude(verdict, requirements)
    return verdict


def _passes(result: Correlation, requirements: Requirements) -> bool:
    return not math.isnan(result.tau) and result.tau >= requirements.threshold


def _latency(
    trials: Sequence[Trial],
    reference: Mapping[str, float] | None,
    metric: str,
    requirements: Requirements,
) -> dict[str, Any] | None:
    if not reference:
        return None
    pairs = [(t.metrics[metric], reference[t.arch_id]) for t in trials if metric in t.metrics]
    pairs = [(a, b) for a, b in pairs if b is not None]
    if not requirements.enough(len(pairs), len(reference)):
        return None
    result = kendall_tau([a for a, _ in pairs], [b for _, b in pairs])
    return {"metric": metric, **result.to_json(), "passed": _passes(result, requirements)}


def _conclude(verdict: ConfigVerdict, requirements: Requirements) -> tuple[bool, str]:
    if not requirements.enough(verdict.valid, verdict.candidates):
        return False, (
            f"only {verdict.valid} of {verdict.candidates} candidates gave results (needs "
            f"{requirements.min_valid} and {requirements.min_valid_ratio:.0%})"
        )
    if verdict.stop_step is None:
        best = "none" if verdict.tau is None else f"{verdict.tau:.3f}"
        held = "" if requirements.hold == 1 else f" for {requirements.hold} steps in a row"
        return False, f"tau stayed below {requirements.threshold:g}{held} (best {best})"
    if verdict.latency is not None and not verdict.latency["passed"]:
        return False, (
            f"latency tau {verdict.latency['tau']:.3f} is below {requirements.threshold:g} (the "
            "proxy's models time differently from the full ones)"
        )
    return True, f"tau {verdict.tau:.3f} at step {verdict.stop_step}"


def choose(verdicts: Sequence[ConfigVerdict]) -> ConfigVerdict | None:
    """The cheapest configuration that passed (ties: the higher tau), or None."""
    passed = [v for v in verdicts if v.passed]
    if not passed:
        return None
    return min(passed, key=lambda v: (v.cost_s, -(v.tau or 0.0)))
