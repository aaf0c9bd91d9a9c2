"""Live progress on stderr: a redrawn line on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{hours:d}:{minutes}" if hours else minutes


class ProgressLine:
    """One live progress line on stderr (or ``stream``): redrawn in place at most ``fps`` times
    a second on a TTY; elsewhere printed whenever its milestone changes (e.g. each 10%) and
    every ``log_every_s`` seconds, so CI logs stay short."""

    def __init__(
        self,
        stream: TextIO | None = None,
        enabled: bool = True,
        fps: float = 8.0,
        log_every_s: float = 30.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = 1.0 / fps
        self.log_every_s = log_every_s
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_milestone: object = None
        self._width = 0

    def elapsed(self) -> str:
        """Time since the line was created, as ``mm:ss`` (``h:mm:ss`` past an hour)."""
        return _clock(time.monotonic() - self.start)

    def show(self, text: str, milestone: object, force: bool = False) -> None:
        """Draw ``text`` if it is time to (``force``: on a TTY, now)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_draw < self.min_interval:
                return
            self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
            self._width = len(text)
        else:
            due = now - self._last_draw >= self.log_every_s
            if not (force or due or milestone != self._last_milestone):
                return
            self._last_milestone = milestone
            self.stream.write(text + "\n")
        self.stream.flush()
        self._last_draw = now

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


class SearchProgress(ProgressLine):
    """Shows trials done / running / failed / infeasible and the best reward so far, a line at
    each 10% of the trials off a TTY."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        enabled: bool = True,
        fps: float = 8.0,
        log_every_s: float = 30.0,
    ) -> None:
        super().__init__(stream, enabled, fps, log_every_s)
        self.total = max(1, total)

    def line(
        self, done: int, running: int, failed: int, infeasible: int, best: float | None
    ) -> str:
        filled = int(24 * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (24 - filled)
        best_text = "-" if best is None else f"{best:.4f}"
        return (
            f"[{bar}] {done}/{self.total} trials | {running} running | {failed} failed | "
            f"{infeasible} infeasible | best {best_text} | {self.elapsed()}"
        )

    def update(
        self,
        done: int,
        running: int,
        failed: int,
        infeasible: int,
        best: float | None,
        force: bool = False,
    ) -> None:
        if self.enabled:
            text = self.line(done, running, failed, infeasible, best)
            self.show(text, int(10 * done / self.total), force)
