"""The constraint pre-filter end to end: ``corenas search`` with a hard params cap measured by
the analytic backend skips training the architectures over it and counts them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corenas_test_helpers import stored

from corenas.plugins import get_plugins
from corenas.records import TrialStatus

PARAMS_CAP = 20_000
"""About half of the digits_cnn architectures have more parameters than this."""

TRAINER = """
import json
import os


def train(genome, built, context):
    directory = context.make_trial_dir()
    with open(os.path.join(directory, "checkpoint.json"), "w") as handle:
        json.dump({"trained": context.arch_id}, handle)
    return {"accuracy": 0.5}
"""
"""A trainer that leaves a checkpoint in the trial dir, so a skipped training shows."""

SUMMARY = re.compile(r"^pre-filter: (\d+) infeasible architectures were not trained$", re.M)


def counted_params(genome: dict[str, Any]) -> int:
    """Parameters of ``genome``'s digits_cnn model, counted here independently of the search."""
    space = get_plugins().registry("space").create("digits_cnn")
    return sum(p.numel() for p in space.build(space.validate(genome)).parameters())


@pytest.mark.parametrize("prefilter", [True, False])
def test_a_hard_params_cap_skips_training_and_the_summary_counts_it(
    tmp_path: Path, cli: Callable[..., Any], prefilter: bool
) -> None:
    (tmp_path / "cap_trainer.py").write_text(TRAINER)
    job = tmp_path / "job"
    result = cli(
        "search",
        "--no-progress",
        "space=digits_cnn",
        "hardware=analytic",
        "data=none",
        "trainer=function",
        "trainer.target=cap_trainer:train",
        "reward=mnasnet",
        "~reward.constraints.latency_ms",
        f"+reward.constraints.params.limit={PARAMS_CAP}",
        "executor=inline",
        "search.max_trials=10",
        f"search.prefilter={str(prefilter).lower()}",
        f"job_dir={job}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials, _ = stored(job)
    assert len(trials) == 10
    over = {t.id for t in trials if counted_params(t.genome) > PARAMS_CAP}
    assert 0 < len(over) < 10, "seed 0 should draw architectures on both sides of the cap"
    for trial in trials:
        assert trial.metrics["params"] == counted_params(trial.genome)
        assert {"params", "macs", "flops"} <= set(trial.metrics)
        checkpoint = job / "trials" / str(trial.id) / "checkpoint.json"
        if trial.id not in over:
            assert trial.status is TrialStatus.SUCCEEDED
            assert checkpoint.is_file() and trial.metrics["accuracy"] == 0.5
            continue
        assert trial.status is TrialStatus.INFEASIBLE and trial.reward is None
        prefix = "pre-filter: " if prefilter else ""
        reason = re.fullmatch(rf"{prefix}params (\S+) > limit {PARAMS_CAP}", trial.error or "")
        assert reason is not None, trial.error
        assert float(reason.group(1)) == pytest.approx(trial.metrics["params"], rel=1e-5)
        if prefilter:
            assert not checkpoint.parent.exists()
            assert "accuracy" not in trial.metrics
        else:
            assert checkpoint.is_file() and trial.metrics["accuracy"] == 0.5
    saved = SUMMARY.findall(result.stdout)
    if prefilter:
        assert saved == [str(len(over))]
    else:
        assert saved == []
    assert f"{10 - len(over)} succeeded, {len(over)} infeasible" in result.stdout
