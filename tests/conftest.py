"""Shared fixtures: an isolated plugin environment and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from corenas.plugins import clear_plugin_cache

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees plugins loaded from its own environment."""
    monkeypatch.delenv("CORENAS_BLOCK_PLUGINS", raising=False)
    monkeypatch.delenv("CORENAS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    clear_plugin_cache()
    yield
    clear_plugin_cache()


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CORENAS_BLOCK_PLUGINS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH", "")])])
    env.update(extra or {})
    return env


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``corenas ARGS`` as a user would, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "corenas.cli.main", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def cli() -> object:
    return run_cli


class InProcessResult(NamedTuple):
    """What ``corenas`` (the in-process fixture) returns: exit code and captured output."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def corenas(capsys: pytest.CaptureFixture[str]) -> object:
    """Run ``corenas ARGS`` in this process (commands that only read a job need no fresh
    interpreter); returns an ``InProcessResult``."""
    from corenas.cli.main import main

    def run(*args: str) -> InProcessResult:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return InProcessResult(code, out, err)

    return run


@pytest.fixture
def corenas_process() -> object:
    """Start ``corenas ARGS`` as a background process (for kill tests); returns a factory."""

    def start(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "corenas.cli.main", *args],
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start
