"""Early stopping: the rule itself, and whole searches with and without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from corenas_test_helpers import search, stored

from corenas.early_stopping import StoppingRule, stopping_rule
from corenas.errors import ConfigError
from corenas.records import TrialStatus

CURVES = [
    "trainer.target=corenas.testing:curve_trainer",
    "+budget.crippled_if={optimizer: sgd}",
    "search.max_trials=40",
    "seed=3",
]


def test_median_rule_needs_enough_trials_and_respects_grace() -> None:
    rule = StoppingRule(median=True, min_trials=2, grace_steps=2)
    rule.judge(1, 1, {"accuracy": 0.8})
    rule.judge(2, 1, {"accuracy": 0.9})
    assert rule.judge(3, 1, {"accuracy": 0.1}) is None  # before grace_steps
    rule.judge(1, 2, {"accuracy": 0.85})
    assert rule.judge(3, 2, {"accuracy": 0.1}) is None  # only one other trial reached step 2
    rule.judge(2, 2, {"accuracy": 0.95})
    reason = rule.judge(3, 2, {"accuracy": 0.2})
    assert reason is not None and "median" in reason
    assert rule.judge(4, 2, {"accuracy": 0.99}) is None


def test_rule_compares_best_so_far_and_minimises() -> None:
    rule = StoppingRule(thresholds=[{"step": 3, "value": 0.5}], metric="loss", mode="min")
    rule.judge(1, 1, {"loss": 0.4})
    assert rule.judge(1, 3, {"loss": 0.9}) is None  # best so far 0.4 is under 0.5
    rule.judge(2, 1, {"loss": 2.0})
    assert "worse than 0.5" in (rule.judge(2, 3, {"loss": 0.7}) or "")
    assert rule.judge(2, 4, {"accuracy": 0.7}) is None  # metric absent: nothing to judge


def test_bad_settings_give_one_line() -> None:
    assert stopping_rule({"median": False, "thresholds": []}) is None
    with pytest.raises(ConfigError, match="thresholds item"):
        StoppingRule(thresholds=[{"at": 3}])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="mode must be one of"):
        StoppingRule(median=True, mode="maximise")


def test_median_stopping_saves_trials_and_keeps_the_best(tmp_path: Path) -> None:
    plain = search(tmp_path / "plain", *CURVES)
    trials_plain, _ = stored(tmp_path / "plain")
    early = search(tmp_path / "early", *CURVES, "search.early_stopping.median=true")
    trials_early, _ = stored(tmp_path / "early")
    stopped = [t for t in trials_early if t.status is TrialStatus.STOPPED]
    assert len(trials_early) == 40
    assert len(stopped) >= 0.3 * len(trials_early)
    assert plain.best is not None and early.best is not None
    assert early.best.reward == plain.best.reward
    assert early.stopped_early == len(stopped)
    for trial in stopped:  # the last reported metrics are kept, with the reason
        assert 0 < trial.metrics["accuracy"] < 1 and "steps" not in trial.metrics
        assert trial.error == "stopped early" and trial.reward is None
    assert not any(t.status is TrialStatus.STOPPED for t in trials_plain)


def test_threshold_rule_through_worker_processes(tmp_path: Path) -> None:
    summary = search(
        tmp_path / "job",
        "trainer.target=corenas.testing:curve_trainer",
        "+budget.crippled_if={optimizer: sgd}",
        "search.max_trials=6",
        "executor=local",
        "search.early_stopping.thresholds=[{step: 3, value: 0.2}]",
    )
    trials, _ = stored(tmp_path / "job")
    crippled = [t for t in trials if t.genome["optimizer"] == "sgd"]
    assert crippled, "seed 0 draws at least one sgd architecture in 6"
    for trial in trials:
        if trial in crippled:
            assert trial.status is TrialStatus.STOPPED
        else:
            assert trial.status is TrialStatus.SUCCEEDED and trial.metrics["steps"] == 10
    assert summary.stopped_early == len(crippled)
