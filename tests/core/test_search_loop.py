"""The search loop in-process: limits, failures, exhaustion, resume and controller state."""

from __future__ import annotations

from pathlib import Path

import pytest
from corenas_test_helpers import search, stored

from corenas.engine import resume_search
from corenas.errors import ConfigError
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import JobStatus, TrialStatus


def test_runs_exactly_max_trials_with_unique_architectures(tmp_path: Path) -> None:
    summary = search(tmp_path / "job", "search.max_trials=40")
    trials, job = stored(tmp_path / "job")
    assert summary.status is JobStatus.COMPLETED and job.status is JobStatus.COMPLETED
    assert [t.id for t in trials] == list(range(1, 41))
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({t.arch_id for t in trials}) == 40
    assert summary.best is not None
    assert summary.best.reward == max(t.reward for t in trials if t.reward is not None)


def test_same_seed_same_trials_other_seed_other_trials(tmp_path: Path) -> None:
    search(tmp_path / "a", "search.max_trials=5", "seed=3")
    search(tmp_path / "b", "search.max_trials=5", "seed=3")
    search(tmp_path / "c", "search.max_trials=5", "seed=4")
    ids = {name: [t.arch_id for t in stored(tmp_path / name)[0]] for name in "abc"}
    assert ids["a"] == ids["b"] != ids["c"]


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    summary = search(
        tmp_path / "job",
        "search.max_trials=12",
        "+budget.raise_on=[2]",
        "+budget.nan_on=[4]",
        "+budget.memory_on=[6]",
    )
    trials, _ = stored(tmp_path / "job")
    failed = {t.id: t.error for t in trials if t.status is TrialStatus.FAILED}
    assert set(failed) == {2, 4, 6}
    assert "injected failure in trial 2" in failed[2]
    assert "non-finite" in failed[4] and "accuracy" in failed[4]
    assert "MemoryError" in failed[6]
    assert summary.status is JobStatus.COMPLETED
    assert sum(t.status is TrialStatus.SUCCEEDED for t in trials) == 9


def test_max_failed_trials_stops_the_job_with_a_clear_message(tmp_path: Path) -> None:
    summary = search(
        tmp_path / "job",
        "search.max_trials=20",
        "search.max_failed_trials=2",
        "+budget.raise_on=[1,2,3,4,5]",
    )
    assert summary.status is JobStatus.FAILED
    assert "search.max_failed_trials=2" in summary.message
    trials, job = stored(tmp_path / "job")
    assert job.status is JobStatus.FAILED
    assert sum(t.status is TrialStatus.FAILED for t in trials) == 2
    # raising the limit on resume goes on to max_trials
    resumed = resume_search(
        tmp_path / "job", ["search.max_failed_trials=0"], get_plugins(), progress=False
    )
    assert resumed.status is JobStatus.COMPLETED
    trials, _ = stored(tmp_path / "job")
    assert len(trials) == 20


def test_inline_timeout_fails_the_trial(tmp_path: Path) -> None:
    search(
        tmp_path / "job", "search.max_trials=3", "+budget.hang_on=[2]", "search.trial_timeout_s=0.5"
    )
    trials, _ = stored(tmp_path / "job")
    assert trials[1].status is TrialStatus.FAILED
    assert "timed out after 0.5 s" in (trials[1].error or "")
    assert trials[2].status is TrialStatus.SUCCEEDED


def test_finite_space_is_exhausted_cleanly(tmp_path: Path) -> None:
    overrides = [
        "space=digits_cnn",
        "space.max_layers=1",
        "space.channels=[8]",
        "space.kernels=[3]",
        "search.max_trials=100",
    ]
    # 1 layer x 1 channel x 1 kernel x 2 pool x 3 activations x 4 hidden = 24 architectures
    for controller in ("random", "grid"):
        summary = search(tmp_path / controller, f"controller={controller}", *overrides)
        trials, _ = stored(tmp_path / controller)
        assert len(trials) == 24, controller
        assert len({t.arch_id for t in trials}) == 24
        assert "exhausted after 24 trials" in summary.message


def test_resume_continues_to_a_raised_max_trials(tmp_path: Path) -> None:
    search(tmp_path / "job", "search.max_trials=10", "seed=7")
    resume_search(tmp_path / "job", ["search.max_trials=25"], get_plugins(), progress=False)
    trials, job = stored(tmp_path / "job")
    assert len(trials) == 25 and len({t.arch_id for t in trials}) == 25
    assert job.config["search"]["max_trials"] == 25
    # the controller continued its trajectory: an uninterrupted run of 25 proposes the same
    search(tmp_path / "straight", "search.max_trials=25", "seed=7")
    straight, _ = stored(tmp_path / "straight")
    assert [t.arch_id for t in trials] == [t.arch_id for t in straight]


def test_resume_refuses_a_directory_that_is_not_a_job(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a corenas job directory"):
        resume_search(tmp_path, [], get_plugins(), progress=False)


def test_new_search_refuses_an_existing_job_and_writes_nothing(tmp_path: Path) -> None:
    search(tmp_path / "job", "search.max_trials=2")
    before = sorted(p.name for p in (tmp_path / "job").iterdir())
    mtime = (tmp_path / "job" / "config.yaml").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already holds a job"):
        search(tmp_path / "job", "search.max_trials=2")
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == before
    assert (tmp_path / "job" / "config.yaml").stat().st_mtime_ns == mtime


def test_local_executor_survives_crashing_workers(tmp_path: Path) -> None:
    summary = search(
        tmp_path / "job",
        "executor=local",
        "search.max_trials=8",
        "search.max_parallel_trials=2",
        "+budget.abort_on=[2]",
        "+budget.exit_on=[3]",
        "+budget.hang_on=[5]",
        "search.trial_timeout_s=3",
    )
    trials, _ = stored(tmp_path / "job")
    by_id = {t.id: t for t in trials}
    assert "worker process died (killed by SIGABRT)" in (by_id[2].error or "")
    assert "worker process died (exit code 3)" in (by_id[3].error or "")
    assert "timed out after 3 s" in (by_id[5].error or "")
    assert sum(t.status is TrialStatus.SUCCEEDED for t in trials) == 5
    assert summary.status is JobStatus.COMPLETED
    assert (tmp_path / "job" / "workers" / "worker-0.log").exists()


def test_intermediate_reports_are_stored(tmp_path: Path) -> None:
    search(tmp_path / "job", "search.max_trials=2")
    store = open_job_store(tmp_path / "job", get_plugins())
    try:
        reports = store.intermediate(1)
        final = store.trial(1).metrics["accuracy"]
    finally:
        store.close()
    assert reports == [(1, {"accuracy": pytest.approx(final / 2)})]


def test_a_non_number_report_fails_only_that_trial(tmp_path: Path) -> None:
    summary = search(tmp_path / "job", "search.max_trials=4", "+budget.bad_report_on=[2]")
    trials, _ = stored(tmp_path / "job")
    assert trials[1].status is TrialStatus.FAILED
    assert "reported metric 'accuracy' is not a number: 'high'" in (trials[1].error or "")
    assert summary.status is JobStatus.COMPLETED
    assert sum(t.status is TrialStatus.SUCCEEDED for t in trials) == 3


@pytest.mark.parametrize("prefilter", [True, False])
def test_prefilter_skips_training_of_infeasible_architectures(
    tmp_path: Path, prefilter: bool
) -> None:
    # digits CNNs measured by the analytic backend; digits_macs makes > 1M MACs infeasible
    summary = search(
        tmp_path / "job",
        "space=digits_cnn",
        "hardware=analytic",
        "reward=digits_macs",
        "search.max_trials=30",
        f"search.prefilter={str(prefilter).lower()}",
    )
    trials, _ = stored(tmp_path / "job")
    infeasible = [t for t in trials if t.status is TrialStatus.INFEASIBLE]
    assert infeasible, "the seed should draw some architectures above 1M MACs"
    assert all(t.metrics["macs"] > 1_000_000 for t in infeasible)
    assert all(t.metrics["macs"] <= 1_000_000 for t in trials if t.status is TrialStatus.SUCCEEDED)
    if prefilter:
        assert summary.trainings_saved == len(infeasible)
        assert all("accuracy" not in t.metrics for t in infeasible)
        assert all((t.error or "").startswith("pre-filter: macs") for t in infeasible)
    else:
        assert summary.trainings_saved == 0
        assert all("accuracy" in t.metrics for t in infeasible)


def test_resume_cannot_change_what_the_trials_are(tmp_path: Path) -> None:
    search(tmp_path / "job", "search.max_trials=2")
    for override in ("seed=3", "controller.name=grid", "space.name=digits_cnn", "budget.x=1"):
        with pytest.raises(ConfigError, match=f"resume cannot change '{override.split('=')[0]}'"):
            resume_search(tmp_path / "job", [override], get_plugins(), progress=False)


def test_training_is_reproducible_for_a_fixed_seed(tmp_path: Path) -> None:
    """Real digits training, once in the driver and once in a worker: same seed, same metrics."""
    common = [
        "trainer.target=corenas.examples.digits:train_digits",
        "space=digits_cnn",
        "hardware=analytic",
        "reward=accuracy",
        "search.max_trials=3",
        "budget.epochs=1",
        "seed=11",
    ]
    search(tmp_path / "inline", *common)
    search(tmp_path / "local", *common, "executor=local", "search.max_parallel_trials=1")
    inline, _ = stored(tmp_path / "inline")
    local, _ = stored(tmp_path / "local")
    assert [t.arch_id for t in inline] == [t.arch_id for t in local]
    assert [t.metrics for t in inline] == [t.metrics for t in local]
    assert all("loss" in t.metrics and "macs" in t.metrics for t in inline)


def test_evolution_resumed_continues_the_same_trajectory(tmp_path: Path) -> None:
    evolution = [
        "controller=evolution",
        "controller.population_size=8",
        "controller.tournament_size=3",
        "seed=5",
    ]
    search(tmp_path / "job", *evolution, "search.max_trials=12")
    resume_search(tmp_path / "job", ["search.max_trials=30"], get_plugins(), progress=False)
    search(tmp_path / "straight", *evolution, "search.max_trials=30")
    resumed, _ = stored(tmp_path / "job")
    straight, _ = stored(tmp_path / "straight")
    assert [t.arch_id for t in resumed] == [t.arch_id for t in straight]
    assert len({t.arch_id for t in resumed}) == 30
