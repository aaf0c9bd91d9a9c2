"""The local executor's measurement process: one model at a time, trainings paused meanwhile.

Workers of a job whose ``setup.isolation.mode`` is not ``none`` send ``measure`` instead of
measuring their model themselves. ``MeasurementService`` queues those requests, sends them one
at a time to a dedicated process (``python -m corenas.measurement``, pinned to its own cores)
and answers each worker with ``measured``. In mode ``pause`` the processes of the other
running trials on the measured device are stopped (SIGSTOP to their process group) for the
duration of the measurement and continued afterwards (SIGCONT), so timing never overlaps
training there.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any, Protocol

from corenas.trial import TrialTask, WorkerSetup

LOG_NAME = "measurer.log"
"""The measurement process's log, in ``JOB_DIR/workers/``."""


class MeasuredWorker(Protocol):
    """What the service needs of a worker: its process, current task and a way to answer."""

    process: subprocess.Popen[bytes]
    task: TrialTask | None

    def send(self, message: dict[str, Any]) -> None: ...


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def trains_on(task: TrialTask, device: str) -> bool:
    """Whether ``task`` uses ``device``: every trial uses the CPU; ``cuda:N`` only the trials
    given GPU N."""
    if device == "cpu":
        return True
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1]) in task.devices
    return False


class MeasurementService:
    """Serialises a job's measurements through one measurement process (started lazily,
    restarted after it dies). Promises: every request gets exactly one answer while its
    worker still runs that trial; a measurement longer than ``isolation.timeout_s`` or a
    dead measurement process answers with an error; paused workers are always continued."""

    def __init__(
        self,
        setup: WorkerSetup,
        selector: selectors.BaseSelector,
        busy_workers: Callable[[], list[MeasuredWorker]],
    ) -> None:
        self.setup = setup
        self.isolation = setup.isolation
        self._selector = selector
        self._busy_workers = busy_workers
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._buffer = b""
        self._queue: deque[tuple[MeasuredWorker, int]] = deque()
        self._current: tuple[MeasuredWorker, int] | None = None
        self._deadline = 0.0
        self._paused: list[MeasuredWorker] = []
        self._ready = False
        self.measured = 0
        """Measurements answered so far (successful or not)."""

    # --- requests -------------------------------------------------------------------------
    def request(self, worker: MeasuredWorker) -> None:
        """Queue a measurement of ``worker``'s current trial."""
        assert worker.task is not None
        self._queue.append((worker, worker.task.trial_id))
        self._next()

    def owns(self, stream: object) -> bool:
        """Whether ``stream`` is the measurement process's output."""
        return self._process is not None and stream is self._process.stdout

    def _next(self) -> None:
        while self._current is None and self._queue:
            worker, trial_id = self._queue.popleft()
            task = worker.task
            if task is None or task.trial_id != trial_id:
                continue  # the trial ended (timeout, worker death) while it waited
            try:
                process = self._ensure_process()
                if not self._ready:  # started now: measure once it has loaded
                    self._queue.appendleft((worker, trial_id))
                    return
                self._pause_others(worker)
                self._current = (worker, trial_id)
                self._deadline = time.monotonic() + self.isolation.timeout_s
                self._send(
                    process,
                    {
                        "type": "measure",
                        "trial_id": trial_id,
                        "genome": task.genome,
                        "seed": task.seed,
                    },
                )
            except OSError as exc:  # could not start it or write to it
                self._queue.appendleft((worker, trial_id))
                self._current = None
                self._fail_all(f"measurement process failed: {exc}")
                return

    def _answer(self, reply: dict[str, Any]) -> None:
        """Continue paused workers and pass ``reply`` to the worker that asked, if it still
        runs that trial; then start the next measurement."""
        self._resume()
        current, self._current = self._current, None
        self.measured += 1
        if current is not None:
            worker, trial_id = current
            task = worker.task
            if task is not None and task.trial_id == trial_id:
                with contextlib.suppress(OSError, ValueError):
                    worker.send(reply)
        self._next()

    # --- pausing --------------------------------------------------------------------------
    def _pause_others(self, measured: MeasuredWorker) -> None:
        if self.isolation.mode != "pause":
            return
        for worker in self._busy_workers():
            task = worker.task
            if worker is measured or task is None or worker.process.poll() is not None:
                continue
            if trains_on(task, self.isolation.device):
                _signal_group(worker.process, signal.SIGSTOP)
                self._paused.append(worker)

    def _resume(self) -> None:
        paused, self._paused = self._paused, []
        for worker in paused:
            _signal_group(worker.process, signal.SIGCONT)

    # --- the process ----------------------------------------------------------------------
    def _ensure_process(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop_process()
        log_dir = os.path.join(self.setup.job_dir, "workers")
        os.makedirs(log_dir, exist_ok=True)
        self._log = open(os.path.join(log_dir, LOG_NAME), "ab")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(self.isolation.threads)
        process = subprocess.Popen(
            [sys.executable, "-m", "corenas.measurement"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self._selector.register(process.stdout, selectors.EVENT_READ, self)
        self._process, self._buffer, self._ready = process, b"", False
        self._send(
            process,
            {
                "type": "setup",
                "setup": self.setup.to_json(),
                "isolation": self.isolation.to_json(),
            },
        )
        return process

    @staticmethod
    def _send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()

    def read(self) -> None:
        """Handle what the measurement process wrote (answers, or its exit)."""
        process = self._process
        if process is None or process.stdout is None:
            return
        try:
            chunk = os.read(process.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            code = process.wait()
            if self._current is not None:
                self._stop_process()
                self._answer({"type": "measured", "error": self._died(code)})
            else:  # died while loading: the queued requests cannot be measured
                self._fail_all(self._died(code))
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("type") == "ready":
                self._ready = True
                self._next()
            elif message.get("type") == "setup_error":
                self._fail_all(f"measurement process could not set up: {message.get('error')}")
            elif message.get("type") == "measured" and self._current is not None:
                self._answer(message)

    def _fail_all(self, error: str) -> None:
        """Stop the process and answer every waiting request with ``error``."""
        self._stop_process()
        waiting = ([self._current] if self._current is not None else []) + list(self._queue)
        self._queue.clear()
        self._current = None
        self._resume()
        for worker, trial_id in waiting:
            task = worker.task
            if task is not None and task.trial_id == trial_id:
                with contextlib.suppress(OSError, ValueError):
                    worker.send({"type": "measured", "trial_id": trial_id, "error": error})
            self.measured += 1

    def _died(self, code: int | None) -> str:
        how = f"exit code {code}" if code is None or code >= 0 else f"signal {-code}"
        where = os.path.join("workers", LOG_NAME)
        return f"measurement process died ({how}); see {where}"

    def check_deadline(self) -> None:
        """Fail a measurement that took longer than ``isolation.timeout_s`` (the process is
        killed and restarted for the next one)."""
        if self._current is not None and time.monotonic() >= self._deadline:
            self._stop_process(kill=True)
            self._answer(
                {
                    "type": "measured",
                    "error": f"measurement took longer than {self.isolation.timeout_s:g} s "
                    "(hardware.measure_timeout_s)",
                }
            )

    def forget(self, worker: MeasuredWorker) -> None:
        """``worker`` is being retired: never pause or answer it again."""
        if worker in self._paused:
            self._paused.remove(worker)
            _signal_group(worker.process, signal.SIGCONT)
        self._queue = deque((w, t) for w, t in self._queue if w is not worker)

    def _stop_process(self, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdout is not None
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(process.stdout)
            if process.poll() is None:
                if kill:
                    process.kill()
                else:
                    with contextlib.suppress(OSError, ValueError):
                        self._send(process, {"type": "exit"})
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def shutdown(self) -> None:
        """Continue paused workers, drop queued requests and stop the process."""
        self._resume()
        self._queue.clear()
        if self._current is not None:
            self._stop_process(kill=True)
            self._current = None
        self._stop_process()
