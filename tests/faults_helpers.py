"""Helpers of the fault-injection tests: mounts, filling a disk, reading the run log."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from corenas.records import Trial

PAGE = 4096


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    """``mount ARGS``; a failed result (not an exception) where there is no mount command."""
    if shutil.which("mount") is None:
        return subprocess.CompletedProcess(["mount", *args], 1, "", "no mount command")
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, text=True, timeout=30)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` on a read-only bind mount of itself, which root cannot write either."""
    result = mount("--bind", str(folder), str(folder))
    if result.returncode != 0:
        pytest.skip(f"cannot bind-mount (needs root or CAP_SYS_ADMIN): {result.stderr}")
    try:
        result = mount("-o", "remount,bind,ro", str(folder))
        if result.returncode != 0:
            pytest.skip(f"cannot remount read-only: {result.stderr}")
        yield
    finally:
        unmount(folder)


def fill(disk: Path, free_pages: int = 0) -> Path:
    """Fill ``disk`` until only ``free_pages`` pages of 4 KiB are free; returns the filler."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    size = stat.f_bavail * stat.f_frsize - free_pages * PAGE
    with open(filler, "ab", buffering=0) as handle:  # unbuffered: nothing left to flush
        try:
            handle.write(b"\0" * max(0, size))
            while free_pages == 0:  # full: write until the file system says so
                handle.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def result_of(trial: Trial) -> tuple[object, ...]:
    """What a finished trial keeps forever: status, metrics, reward, error, times, worker."""
    return (
        trial.status,
        trial.metrics,
        trial.reward,
        trial.error,
        trial.started_at,
        trial.finished_at,
        trial.worker,
    )


def runs(log: Path) -> list[tuple[int, int, int]]:
    """(pid, parent pid, trial id) of every trial run, from the scripted trainer's
    ``run_log``: an ``inline`` trial runs in its driver, a ``local`` one in a worker whose
    parent is the driver."""
    if not log.exists():
        return []
    rows = (line.split() for line in log.read_text().splitlines() if line.strip())
    return [(int(pid), int(parent), int(trial)) for pid, parent, trial in rows]


def assert_one_line_error(stderr: str, returncode: int, *needles: str) -> str:
    """A clear error: non-zero exit, one ``corenas CMD: error: ...`` line besides the
    ``corenas: ...`` announcements, no traceback; returns the line."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("corenas: ")]
    assert returncode != 0, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("corenas ") and ": error: " in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
