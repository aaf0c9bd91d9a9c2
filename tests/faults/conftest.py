"""Fixtures of the fault-injection tests: a small disk to fill and a trainer module that
worker processes can import."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_helpers import mount, unmount

TESTS = Path(__file__).resolve().parents[1]
"""Where ``fault_trainers`` lives (on pytest's pythonpath; worker processes need it too)."""


@pytest.fixture
def fault_trainers(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make ``fault_trainers`` (in tests/) importable in worker processes too; returns the
    module name for ``trainer.target``."""
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), path])))
    return "fault_trainers"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at ``tmp_path/disk``: a file system the test can fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    result = mount("-t", "tmpfs", "-o", "size=4m,mode=0755", "corenas-test", str(disk))
    if result.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs to fill (needs root or CAP_SYS_ADMIN): {result.stderr}"
        )
    try:
        yield disk
    finally:
        unmount(disk)
