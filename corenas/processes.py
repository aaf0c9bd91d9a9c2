"""Processes that never outlive the process that started them (Linux ``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

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


def child_protocol() -> IO[str]:
    """Set up a child process that talks JSON lines on stdout: it dies with its parent, and its
    own prints (and a trainer's) go to stderr, its log, so they cannot corrupt the protocol.
    Returns the protocol channel (the original stdout)."""
    die_with_parent()  # not Linux: the child exits at its next read instead
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def emit(channel: IO[str], message: dict[str, Any]) -> None:
    """Write ``message`` as one JSON line and flush it."""
    channel.write(json.dumps(message, allow_nan=True) + "\n")
    channel.flush()


def messages() -> Iterator[dict[str, Any]]:
    """The JSON messages on stdin, one per line, until an ``exit`` message or the end."""
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") == "exit":
            return
        yield message
