"""Stage 2: retraining the best search trials with the full budget."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli
from corenas_test_helpers import SCRIPTED, search, stored

from corenas.records import SEARCH_STAGE, TRAIN_STAGE, TrialStatus

CURVES = ["trainer.target=corenas.testing:curve_trainer", "+budget.steps=3"]


def test_every_m_trials_and_at_the_end(tmp_path: Path) -> None:
    summary = search(
        tmp_path / "job",
        *CURVES,
        "search.max_trials=10",
        "search.stage2.top=2",
        "search.stage2.every=5",
        "+search.stage2.budget.steps=7",
    )
    trials, _ = stored(tmp_path / "job")
    searched = [t for t in trials if t.stage == SEARCH_STAGE]
    retrained = [t for t in trials if t.stage == TRAIN_STAGE]
    assert len(searched) == 10  # stage 2 does not eat the search budget
    assert all(t.metrics["steps"] == 3 for t in searched if t.status is TrialStatus.SUCCEEDED)
    assert retrained and all(t.metrics["steps"] == 7 for t in retrained)
    by_id = {t.id: t for t in trials}
    for trial in retrained:  # linked to a search trial with the same architecture
        parent = by_id[trial.parent_id]  # type: ignore[index]
        assert parent.stage == SEARCH_STAGE and parent.arch_id == trial.arch_id
    first_round = sorted(searched[:5], key=lambda t: -(t.reward or 0))[:2]
    final_top = sorted(searched, key=lambda t: -(t.reward or 0))[:2]
    parents = {t.parent_id for t in retrained}
    assert {t.id for t in first_round} <= parents and {t.id for t in final_top} <= parents
    assert len(parents) == len(retrained)  # no architecture is retrained twice
    assert summary.best is not None and summary.best.stage == SEARCH_STAGE
    assert {t.id for t in summary.stage2} == {t.id for t in retrained}


def test_corenas_train_top_and_listing(tmp_path: Path) -> None:
    job = tmp_path / "job"
    search(job, *CURVES, "search.max_trials=6")
    result = run_cli(
        "train", str(job), "--top", "2", "search.stage2.budget.steps=5", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert "stage 2 (2 retrainings" in result.stdout
    listed = run_cli("trials", "list", str(job), "--stage", "2", "--format", "json")
    rows = json.loads(listed.stdout)
    assert [r["stage"] for r in rows] == [TRAIN_STAGE, TRAIN_STAGE]
    assert all(r["metrics"]["steps"] == 5 and r["parent_id"] for r in rows)
    again = run_cli("train", str(job), "--top", "3", "--no-progress")  # only the third is new
    assert again.returncode == 0, again.stderr
    trials, job_row = stored(job)
    assert len([t for t in trials if t.stage == TRAIN_STAGE]) == 3
    assert job_row.status.value == "completed"  # the search itself is untouched
    table = run_cli("trials", "list", str(job)).stdout
    assert "parent" in table.splitlines()[0]


def test_train_refuses_bad_trial_ids(tmp_path: Path) -> None:
    job = tmp_path / "job"
    search(job, "search.max_trials=2", "+budget.raise_on=[2]")
    bad = run_cli("train", str(job), "--trials", "2")
    assert bad.returncode != 0
    assert "stage 2 retrains succeeded search trials" in bad.stderr
    assert "Traceback" not in bad.stderr
    worse = run_cli("train", str(job), "--trials", "x,1")
    assert worse.returncode != 0 and "not a list of trial ids" in worse.stderr


def test_resume_keeps_counting_search_trials_only(tmp_path: Path) -> None:
    job = tmp_path / "job"
    search(job, *CURVES, "search.max_trials=4", "search.stage2.top=1")
    result = run_cli("resume", str(job), "search.max_trials=6", "--no-progress")
    assert result.returncode == 0, result.stderr
    trials, _ = stored(job)
    assert len([t for t in trials if t.stage == SEARCH_STAGE]) == 6
    assert SCRIPTED  # the scripted overrides are what these searches use
