"""Bad input: one clear line on stderr, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corenas_test_helpers import SCRIPTED, search


def assert_one_line_error(result, *needles: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("corenas ") and ": error: " in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished job that bad commands must leave untouched."""
    job_dir = tmp_path_factory.mktemp("jobs") / "job"
    search(job_dir, "search.max_trials=3")
    return job_dir


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["space=nope"], ["unknown space 'nope'", "digits_cnn", "tabular_mlp"]),
        (
            ["space.name=nope"],
            [
                "unknown space 'nope'",
                "available: augmentation, declared, digits_cnn, efficientnet_v2, mlp, mnasnet, "
                "nb201, scaling, sequence, unet3d",
            ],
        ),
        (["controller=nope"], ["unknown controller 'nope'", "evolution, fixed, grid"]),
        (["controller.name=nope"], ["unknown controller 'nope'", "evolution, fixed, grid"]),
        (["trainer.name=nope"], ["unknown trainer 'nope'", "function"]),
        (["search.max_trials"], ["malformed override", "key=value"]),
        (["seed=[1,2"], ["malformed override"]),
        (["search.max_trials=abc"], ["search.max_trials", "Integer"]),
        (["space.max_layers=abc"], ["parameter 'max_layers' must be int", "'abc'"]),
        (["space.bogus=1"], ["unknown config key 'space.bogus'", "+space.bogus=VALUE"]),
        (["trainer=function"], ["'trainer.target' is required"]),
        (
            ["trainer=function", "trainer.target=no_such_module.sub:fit"],
            ["trainer target 'no_such_module.sub:fit' does not import", "ModuleNotFoundError"],
        ),
        (["trainer=function", "trainer.target=corenas.testing:missing"], ["has no 'missing'"]),
        (["search.max_trials=0"], ["search.max_trials must be at least 1"]),
        (["space.max_layers=null"], ["parameter 'max_layers' must be int, got None"]),
        (["space.channels=[8,x]"], ["parameter 'channels' must be list[int]", "[8, 'x']"]),
        (["search.max_trial=3"], ["unknown config key 'search.max_trial'", "'max_trials'"]),
        (["+search.max_trial=3"], ["unknown config key 'search.max_trial'", "'max_trials'"]),
        (["+foo=1"], ["unknown config key 'foo'", "keys: job_dir, seed"]),
    ],
)
def test_bad_search_input(cli, job: Path, overrides: list[str], needles: list[str]) -> None:
    before = snapshot(job)
    result = cli("search", f"job_dir={job}", *overrides)
    assert_one_line_error(result, *needles)
    assert snapshot(job) == before


def test_existing_job_is_refused(cli, job: Path) -> None:
    before = snapshot(job)
    result = cli("search", f"job_dir={job}", *SCRIPTED)
    assert_one_line_error(result, "already holds a job", "corenas resume")
    assert snapshot(job) == before


def test_job_dir_that_cannot_be_created(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = cli("search", f"job_dir={blocker}/job", *SCRIPTED)
    assert_one_line_error(result, "cannot be created", "is not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_job_dir_in_a_read_only_filesystem(cli) -> None:
    # /proc refuses new directories even to root, unlike a chmod-ed folder
    result = cli("search", "job_dir=/proc/corenas-job", *SCRIPTED)
    assert_one_line_error(result, "job_dir '/proc/corenas-job'", "not writable")


def test_resume_of_a_directory_that_is_not_a_job(cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("resume", str(tmp_path)), "is not a corenas job directory")
    assert_one_line_error(cli("resume", str(tmp_path / "missing")), "is not a directory")


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["search.max_trials=abc"], ["search.max_trials", "Integer"]),
        (["space.name=nope"], ["resume cannot change 'space.name'", "search.*"]),
        (["max_trials"], ["malformed override 'max_trials'"]),
    ],
)
def test_bad_resume_input_leaves_the_job_untouched(
    cli, job: Path, overrides: list[str], needles: list[str]
) -> None:
    before = snapshot(job)
    assert_one_line_error(cli("resume", str(job), *overrides), *needles)
    assert snapshot(job) == before


@pytest.mark.parametrize(
    ("genome", "needles"),
    [
        ({"layers": 9}, ["decision 'layers' has value 9", "allowed: 1, 2, 3"]),
        (
            {
                "layers": 1,
                "layers.0.channels": 8,
                "layers.0.kernel": 3,
                "layers.0.pool": False,
                "activation": "relu",
                "hidden": 0,
                "extra": 1,
            },
            ["unknown decision 'extra'"],
        ),
        (
            {
                "layers": 1,
                "layers.0.channels": 12,
                "layers.0.kernel": 3,
                "layers.0.pool": False,
                "activation": "relu",
                "hidden": 0,
            },
            ["'layers.0.channels' has value 12", "8, 16, 32, 64"],
        ),
    ],
)
def test_bad_genome(cli, genome: dict[str, object], needles: list[str]) -> None:
    assert_one_line_error(cli("space", "validate", "digits_cnn", json.dumps(genome)), *needles)


def test_unknown_space_in_space_show(cli) -> None:
    assert_one_line_error(cli("space", "show", "nope"), "unknown space 'nope'", "digits_cnn")


def test_trials_of_a_directory_that_is_not_a_job(cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("trials", "list", str(tmp_path)), "not a corenas job directory")


def test_trial_id_that_does_not_exist(cli, job: Path) -> None:
    assert_one_line_error(cli("trials", "show", str(job), "99"), "99")
