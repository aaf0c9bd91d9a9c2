"""A read-only or full job directory: one clear error line, and nothing half-written.

A full disk is a small tmpfs filled to a given number of free pages; at every level a new
search or a resume either succeeds or fails with one line, and leaves nothing or a job that
resumes to completion once space is freed. (A job dir that cannot be created at all:
tests/core/test_cli_errors.py::test_job_dir_in_a_read_only_filesystem.)
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from corenas_test_helpers import SCRIPTED, search, stored
from faults_helpers import assert_one_line_error, fill, read_only, result_of

from corenas.config import compose
from corenas.engine import plan_search, resume_search, start_search
from corenas.errors import CorenasError, StoreError
from corenas.jobdir import read_job_config
from corenas.plugins import get_plugins
from corenas.records import JobStatus, TrialStatus
from corenas.store import SQLiteStore, sqlite_url

FREE_PAGES = range(0, 32)
"""Free 4 KiB pages to leave for a new search: from none to enough for the store to run out
mid-search."""
FREE_PAGES_TO_RESUME = [*range(0, 16), 20, 24]
"""The same for a resume: from failing to open the store to running out mid-search."""


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def fails_cleanly(run: Callable[..., object], *args: Any) -> None:
    """``run(*args)`` succeeds or raises a ``CorenasError``, which the CLI prints as one line;
    any other exception is an internal error and fails the test."""
    with contextlib.suppress(CorenasError):
        run(*args)


def resumes_to_the_end(job: Path, kept: dict[int, tuple[object, ...]]) -> None:
    """The job resumes to its max_trials, keeping every trial that had finished."""
    resume_search(job, [], get_plugins(), progress=False)
    trials, record = stored(job)
    assert record.status is JobStatus.COMPLETED
    assert len(trials) == record.config["search"]["max_trials"]
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert {t.id: result_of(t) for t in trials if t.id in kept} == kept


def test_a_read_only_job_dir_is_refused_in_one_line(tmp_path: Path, corenas) -> None:
    job = tmp_path / "job"
    search(job, "search.max_trials=3")
    before = contents(job)
    with read_only(job):
        for overrides in ([], ["search.max_trials=6"]):
            result = corenas("resume", str(job), *overrides, "--no-progress")
            assert_one_line_error(result.stderr, result.returncode, str(job), "not writable")
    assert contents(job) == before
    result = corenas("resume", str(job), "search.max_trials=6", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert len(stored(job)[0]) == 6


def test_a_new_search_on_a_full_disk_leaves_nothing_or_a_job(small_disk: Path, corenas) -> None:
    job = small_disk / "job"
    filler = fill(small_disk)
    result = corenas("search", *SCRIPTED, f"job_dir={job}", "--no-progress")
    assert_one_line_error(result.stderr, result.returncode, "No space left on device")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]
    filler.unlink()
    plugins = get_plugins()
    cfg = compose(plugins, [*SCRIPTED, "search.max_trials=12", f"job_dir={job}"])
    for free in FREE_PAGES:
        filler = fill(small_disk, free)
        prepared = plan_search(cfg, plugins, job)
        fails_cleanly(start_search, cfg, plugins, job, False, prepared)
        filler.unlink()
        if job.exists():  # what a failed search leaves is a job that resumes
            assert read_job_config(job).search.max_trials == 12, free
            resumes_to_the_end(job, {})
            shutil.rmtree(job)
        assert [p.name for p in small_disk.iterdir()] == [], free


def test_a_resume_on_a_full_disk_keeps_the_job_whole(
    small_disk: Path, tmp_path: Path, corenas
) -> None:
    job, template = small_disk / "job", tmp_path / "template"
    search(job, "search.max_trials=3")
    shutil.copytree(job, template)
    kept = {t.id: result_of(t) for t in stored(job)[0]}
    filler = fill(small_disk)
    more = ["search.max_trials=12"]
    result = corenas("resume", str(job), *more, "--no-progress")
    assert_one_line_error(result.stderr, result.returncode, str(job))
    filler.unlink()
    for free in FREE_PAGES_TO_RESUME:
        shutil.rmtree(job)
        shutil.copytree(template, job)
        filler = fill(small_disk, free)
        fails_cleanly(resume_search, job, more, get_plugins(), False)
        filler.unlink()
        trials, record = stored(job)  # the store opens and kept what had finished
        assert {t.id: result_of(t) for t in trials if t.id in kept} == kept, free
        max_trials = record.config["search"]["max_trials"]
        assert read_job_config(job).search.max_trials == max_trials in (3, 12), free
        assert not [p.name for p in job.iterdir() if p.name.startswith(".")], free
        if max_trials != 3 or len(trials) != 3:  # it changed the job: the change resumes
            resumes_to_the_end(job, kept)


def test_the_driver_lock_on_a_full_disk(small_disk: Path) -> None:
    store = SQLiteStore(sqlite_url(small_disk / "job.db"))
    try:
        fill(small_disk)
        with pytest.raises(StoreError, match="No space left on device"):
            store.acquire_driver_lock("pid 1 on host")
        assert store.driver() is None  # not left holding a lock without an owner
    finally:
        store.close()
