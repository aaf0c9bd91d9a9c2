"""Proxy search's verdicts: tau per step, the stopping step, latency, cost and the choice."""

from __future__ import annotations

import pytest

from corenas.proxy.correlation import CorrelationStop, Requirements, choose, judge_config
from corenas.records import Trial, TrialStatus

FULL = {f"a{i}": 0.80 + 0.02 * i for i in range(10)}  # a9 best after full training


def trial(i: int, status: TrialStatus = TrialStatus.SUCCEEDED, **metrics: float) -> Trial:
    return Trial(
        id=i + 1,
        genome={"i": i},
        arch_id=f"a{i}",
        status=status,
        metrics={"train_time_s": 10.0, **metrics},
    )


def curves_where(ranking_from_step: int, steps: int = 5) -> dict[int, list]:
    """Reports at steps 1..steps: reversed ranking before ``ranking_from_step``, the full
    training's ranking from then on."""
    out = {}
    for i in range(10):
        out[i + 1] = [
            (s, {"accuracy": (0.5 + 0.01 * i) if s >= ranking_from_step else (0.5 - 0.01 * i)})
            for s in range(1, steps + 1)
        ]
    return out


def test_stop_step_is_the_first_step_at_the_threshold_and_cost_is_prorated() -> None:
    trials = [trial(i) for i in range(10)]
    verdict = judge_config(
        "c", ["budget.epochs=5"], trials, curves_where(3), FULL, "accuracy", Requirements()
    )
    assert [row["tau"] for row in verdict.curve] == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert verdict.stop_step == 3 and verdict.tau == 1.0
    assert verdict.p_value == pytest.approx(2 / 3628800)  # the one order of 10! that agrees
    assert verdict.cost_s == pytest.approx(10 * 10.0 * 3 / 5)  # stopped at step 3 of 5
    assert verdict.passed


def test_too_few_valid_candidates_fail_the_config() -> None:
    trials = [trial(i, TrialStatus.FAILED if i < 4 else TrialStatus.SUCCEEDED) for i in range(10)]
    verdict = judge_config("c", [], trials, curves_where(1), FULL, "accuracy", Requirements())
    assert verdict.valid == 6
    assert not verdict.passed and "only 6 of 10" in verdict.reason  # 60% < 70%


def test_latency_must_correlate_too_when_measured() -> None:
    latency_full = {f"a{i}": 1.0 + i for i in range(10)}
    scrambled = [trial(i, latency_ms=float((i * 7) % 10)) for i in range(10)]
    verdict = judge_config(
        "c", [], scrambled, curves_where(1), FULL, "accuracy", Requirements(), latency_full
    )
    assert verdict.latency is not None and not verdict.latency["passed"]
    assert not verdict.passed and "latency tau" in verdict.reason
    agreeing = [trial(i, latency_ms=2.0 + i) for i in range(10)]
    verdict = judge_config(
        "c", [], agreeing, curves_where(1), FULL, "accuracy", Requirements(), latency_full
    )
    assert verdict.latency["tau"] == 1.0 and verdict.passed


def test_choose_the_cheapest_passing_config() -> None:
    trials = [trial(i) for i in range(10)]
    late = judge_config("late", [], trials, curves_where(4), FULL, "accuracy", Requirements())
    early = judge_config("early", [], trials, curves_where(2), FULL, "accuracy", Requirements())
    never = judge_config("never", [], trials, curves_where(9), FULL, "accuracy", Requirements())
    assert not never.passed and "stayed below" in never.reason
    assert choose([late, never, early]) is early
    assert choose([never]) is None


def test_correlation_stop_waits_for_every_candidate_at_a_step() -> None:
    stop = CorrelationStop(FULL, "accuracy", Requirements())
    trials = [trial(i) for i in range(10)]
    for t in trials[:9]:
        assert stop.judge(t, 1, {"accuracy": 0.5 + 0.01 * int(t.arch_id[1:])}) is None
    assert stop.reached is None  # the tenth has not reported step 1 yet
    assert stop.judge(trials[9], 1, {"accuracy": 0.59}) is not None  # now tau = 1 at step 1
    assert stop.reached == 1
    assert stop.judge(trials[0], 2, {"accuracy": 0.6}) is not None  # everyone stops from here


def test_correlation_stop_ignores_a_disagreeing_step_and_honours_the_time_limit() -> None:
    stop = CorrelationStop(FULL, "accuracy", Requirements())
    for i, t in enumerate(trial(i) for i in range(10)):
        assert stop.judge(t, 1, {"accuracy": 0.5 - 0.01 * i}) is None  # reversed ranking
    assert stop.reached is None
    expired = CorrelationStop(FULL, "accuracy", Requirements(), time_limit_s=0.0)
    assert "time limit" in str(expired.judge(trial(0), 1, {"accuracy": 0.5}))


def test_hold_needs_consecutive_passes_and_the_stop_waits_for_them() -> None:
    """Tau passes at step 1, fails at 2 and passes from 3 on: with hold 2 the proxy stops at
    step 3, confirmed at step 4."""
    trials = [trial(i) for i in range(10)]

    def value(i: int, step: int) -> float:
        return 0.5 + (0.01 * i if step != 2 else -0.01 * i)

    curves = {i + 1: [(s, {"accuracy": value(i, s)}) for s in range(1, 6)] for i in range(10)}
    once = judge_config("c", [], trials, curves, FULL, "accuracy", Requirements())
    held = judge_config("c", [], trials, curves, FULL, "accuracy", Requirements(hold=2))
    assert once.stop_step == 1 and held.stop_step == 3 and held.tau == 1.0
    stop = CorrelationStop(FULL, "accuracy", Requirements(hold=2))
    for step in range(1, 5):
        verdicts = [stop.judge(t, step, {"accuracy": value(i, step)}) for i, t in enumerate(trials)]
        assert (verdicts[-1] is not None) == (step == 4)
    assert (stop.reached, stop.evidence) == (3, 4)
