"""Every registered controller, stopped after 40 trials and resumed, ends with exactly the
trials of an uninterrupted search with the same seed (a real job: store, driver, resume)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corenas_test_helpers import stored

from corenas.plugins import get_plugins
from corenas.records import TrialStatus

CONTROLLERS = sorted(set(get_plugins().registry("controller").names()) - {"fixed"})
"""``fixed`` needs its list of architectures; tests/proxy/test_fixed_controller.py resumes it."""


def genomes(job: Path) -> list[dict]:
    trials, _ = stored(job)
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    return [t.genome for t in sorted(trials, key=lambda t: t.id)]


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_stopped_at_40_and_resumed_equals_one_straight_run(
    controller: str, cli, tmp_path: Path
) -> None:
    common = ["experiment=nb201", f"controller={controller}", "seed=7", "--no-progress"]
    straight, part = tmp_path / "straight", tmp_path / "part"
    assert cli("search", *common, "search.max_trials=80", f"job_dir={straight}").returncode == 0
    first = cli("search", *common, "search.max_trials=40", f"job_dir={part}")
    assert first.returncode == 0, first.stderr
    assert len(genomes(part)) == 40
    resumed = cli("resume", str(part), "search.max_trials=80", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    expected = genomes(straight)
    assert len(expected) == 80
    assert genomes(part) == expected
