"""A dashboard serving two real finished jobs, started once through the real CLI."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_jobs import Served, hostile_job, real_job, start_dashboard

pytest.importorskip("starlette", reason="the dashboard extra is not installed")


@pytest.fixture(scope="session")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dashboard-jobs")
    return {
        "real": real_job(root / "sweep" / "real"),
        "hostile": hostile_job(root / "sweep" / "hostile", root / "config"),
    }


@pytest.fixture(scope="session")
def served(jobs: dict[str, Path]) -> Iterator[Served]:
    process, url = start_dashboard(str(jobs["real"].parent))  # a folder of jobs
    try:
        listing = json.loads(urllib.request.urlopen(url + "api/jobs", timeout=30).read())
        keys = {job["name"]: job["key"] for job in listing}
        yield Served(url, process, jobs, keys)
    finally:
        process.terminate()
        process.wait(timeout=30)
