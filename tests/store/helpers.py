"""Helpers of the store tests: architectures, a default finish, child processes, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corenas.records import Architecture, Trial, TrialStatus
from corenas.store.base import Store

REPO_ROOT = Path(__file__).resolve().parents[2]


def arch(i: int) -> Architecture:
    return Architecture.of({"i": i, "layers": [[i, 0.5], [1e-300, 1 / 3]], "op": "conv"})


def finish(store: Store, trial_id: int, **overrides: Any) -> Trial:
    args: dict[str, Any] = {
        "status": TrialStatus.SUCCEEDED,
        "metrics": {"acc": 0.75},
        "reward": 0.75,
        "error": None,
        "started_at": None,
        "finished_at": 200.0,
        "worker": None,
        "controller_state": None,
    }
    args.update(overrides)
    return store.finish_trial(trial_id, **args)


def run_python(code: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **popen)


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@dataclass
class Backend:
    """One store backend with a fresh store location: ``open(**params)`` opens it."""

    name: str
    url: str
    factory: Callable[..., Store]

    def open(self, **params: Any) -> Any:
        return self.factory(self.url, **params)

    @property
    def cls(self) -> str:
        """The import line of the store class, for child processes."""
        if self.name == "sqlite":
            return "from corenas.store.sqlite import SQLiteStore as Store"
        return "from corenas.store.postgres import PostgresStore as Store"
