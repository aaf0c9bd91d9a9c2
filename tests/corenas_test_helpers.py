"""Helpers shared by the test modules (importable because pytest's pythonpath has tests/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from corenas.config import compose
from corenas.engine import JobSummary, start_search
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import Trial
from corenas.store.base import JobRecord

SCRIPTED = [
    "space=tabular_mlp",
    "hardware=none",
    "trainer=function",
    "trainer.target=corenas.testing:scripted_trainer",
    "reward=accuracy",
    "executor=inline",
]
"""Overrides for a fast search: YAML space, scripted trainer, no hardware, inline trials."""


def search(job_dir: Path, *overrides: str) -> JobSummary:
    """Run a scripted search in-process (SCRIPTED plus ``overrides``) in ``job_dir``."""
    plugins = get_plugins()
    cfg = compose(plugins, [*SCRIPTED, f"job_dir={job_dir}", *overrides])
    return start_search(cfg, plugins, job_dir, progress=False)


def stored(job_dir: Path) -> tuple[list[Trial], JobRecord]:
    """The trials and job row of a job directory, read from its store."""
    store = open_job_store(job_dir, get_plugins())
    try:
        job = store.job()
        assert job is not None
        return store.trials(), job
    finally:
        store.close()


def pip_install(source: Path, target: Path) -> None:
    """``pip install --no-deps --target`` a wheel or project, leaving the environment alone;
    a project is copied first (its build leaves nothing in the repository) and built offline
    with the installed setuptools when there is one."""
    if source.is_dir():
        copy = target.with_name(f"{target.name}-src")
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.egg-info", "build"))
        source = copy
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    try:
        import setuptools  # noqa: F401

        command.append("--no-build-isolation")
    except ImportError:
        pass
    command += ["--target", str(target), str(source)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
