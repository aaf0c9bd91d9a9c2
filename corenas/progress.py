"""Live search progress on stderr: a redrawn line on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{hours:d}:{minutes}" if hours else minutes


class SearchProgress:
    """Shows trials done / running / failed / infeasible and the best reward so far.

    Redraws at most ``fps`` times a second on a TTY; elsewhere prints a line every
    ``log_every_s`` seconds and at each 10% of the trials, so CI logs stay short.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        enabled: bool = True,
        fps: float = 8.0,
        log_every_s: float = 30.0,
    ) -> None:
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = 1.0 / fps
        self.log_every_s = log_every_s
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._width = 0

    def line(
        self, done: int, running: int, failed: int, infeasible: int, best: float | None
    ) -> str:
        filled = int(24 * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (24 - filled)
        best_text = "-" if best is None else f"{best:.4f}"
        return (
            f"[{bar}] {done}/{self.total} trials | {running} running | {failed} failed | "
            f"{infeasible} infeasible | best {best_text} | {_clock(time.monotonic() - self.start)}"
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
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_draw < self.min_interval:
                return
            text = self.line(done, running, failed, infeasible, best)
            pad = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + pad)
            self._width = len(text)
            self.stream.flush()
            self._last_draw = now
            return
        decile = int(10 * done / self.total)
        if force or decile != self._last_decile or now - self._last_draw >= self.log_every_s:
            self.stream.write(self.line(done, running, failed, infeasible, best) + "\n")
            self.stream.flush()
            self._last_draw = now
            self._last_decile = decile

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
