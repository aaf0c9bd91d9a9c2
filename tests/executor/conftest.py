"""Fixtures of the executor tests: a private GPU lock directory and the probe trainer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def gpu_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets its own GPU lock directory, no fake GPUs unless it asks, and the probe
    trainer (gpu_probe.py) importable in the driver and in worker processes; returns the lock
    directory."""
    locks = tmp_path / "gpu-locks"
    monkeypatch.setenv("CORENAS_GPU_LOCK_DIR", str(locks))
    monkeypatch.delenv("CORENAS_FAKE_GPUS", raising=False)
    monkeypatch.syspath_prepend(str(HERE))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(HERE) + (os.pathsep + path if path else ""))
    return locks
