"""Processes that never outlive the process that started them (Linux ``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Any | None:
    """libc's ``prctl``, or None where it is missing (not Linux)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent() -> None:
    """Make this process get SIGKILL when its parent dies, even by ``kill -9`` (no-op where
    ``prctl`` is missing)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def die_with_parent_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes a child started by this process get SIGKILL when this
    process dies, or None where ``prctl`` is missing. libc is loaded here, before the fork;
    a child whose parent died before the setting took effect kills itself."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
