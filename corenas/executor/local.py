"""Trials run in reusable worker processes on this machine."""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from corenas.errors import ConfigError
from corenas.executor.base import Event, Executor, Finished, Report
from corenas.executor.measuring import MeasuredWorker, MeasurementService
from corenas.plugins import Plugins
from corenas.records import TrialOutcome, TrialStatus
from corenas.trial import TrialTask, WorkerSetup


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    buffer: bytes = b""
    ready: bool = False
    task: TrialTask | None = None
    started_at: float = 0.0
    deadline: float = math.inf
    timeout_s: float | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalExecutor(Executor):
    """Runs trials in ``parallel`` worker processes (``python -m corenas.executor.worker``).

    Workers are started once and reused, so torch is imported once per worker, not per trial.
    A worker that dies (crash, ``os.abort``, out of memory, SIGKILL) fails its trial with the
    reason and is replaced; a trial past its timeout is killed and failed. Worker output goes
    to ``JOB_DIR/workers/worker-N.log``. With ``setup.isolation.mode`` other than ``none``,
    workers' models are measured by a ``MeasurementService`` (one model at a time, the other
    trainings on that device paused in mode ``pause``).
    """

    def __init__(self, threads_per_worker: int | None = None) -> None:
        self.threads_per_worker = threads_per_worker
        self._setup: WorkerSetup | None = None
        self._workers: list[_Worker | None] = []
        self._selector = selectors.DefaultSelector()
        self._events: list[Event] = []
        self._measuring: MeasurementService | None = None

    # --- life cycle -----------------------------------------------------------------------
    def start(self, setup: WorkerSetup, parallel: int, plugins: Plugins | None = None) -> None:
        if parallel < 1:
            raise ConfigError("search.max_parallel_trials must be at least 1")
        self.shutdown()
        self._setup = setup
        self._workers = [None] * parallel
        if setup.hardware is not None and setup.isolation.mode != "none":
            self._measuring = MeasurementService(setup, self._selector, self._busy)

    def _busy(self) -> list[MeasuredWorker]:
        return [w for w in self._workers if w is not None and w.task is not None]

    @property
    def capacity(self) -> int:
        return len(self._workers)

    def _spawn(self, index: int) -> _Worker:
        assert self._setup is not None
        log_dir = os.path.join(self._setup.job_dir, "workers")
        os.makedirs(log_dir, exist_ok=True)
        log = open(os.path.join(log_dir, f"worker-{index}.log"), "ab")  # noqa: SIM115
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if self.threads_per_worker:  # configured: wins over the environment
                env[var] = str(self.threads_per_worker)
            else:
                env.setdefault(var, str(max(1, (os.cpu_count() or 1) // len(self._workers))))
        env["PYTHONUNBUFFERED"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-m", "corenas.executor.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the driver only; it stops the workers
        )
        worker = _Worker(index, process, log)
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self._selector.register(process.stdout, selectors.EVENT_READ, worker)
        worker.send({"type": "setup", "setup": self._setup.to_json()})
        self._workers[index] = worker
        return worker

    def _retire(self, worker: _Worker, kill: bool) -> None:
        if self._measuring is not None:
            self._measuring.forget(worker)
        assert worker.process.stdout is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.process.stdout)
        if worker.process.poll() is None:
            if kill:
                worker.process.kill()
            else:
                try:
                    worker.send({"type": "exit"})
                except (OSError, ValueError):
                    worker.process.kill()
        try:
            worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        for stream in (worker.process.stdin, worker.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # a pipe to a dead process may not flush
                    stream.close()
        worker.log.close()
        self._workers[worker.index] = None

    def shutdown(self) -> None:
        if self._measuring is not None:
            self._measuring.shutdown()
        for worker in list(self._workers):
            if worker is not None:
                self._retire(worker, kill=worker.task is not None)
        self._workers = [None] * len(self._workers)

    # --- trials ---------------------------------------------------------------------------
    def submit(self, task: TrialTask, timeout_s: float | None = None) -> None:
        for index, worker in enumerate(self._workers):
            if worker is None or worker.task is None:
                worker = worker or self._spawn(index)
                worker.task = task
                worker.started_at = time.time()
                worker.deadline = time.monotonic() + timeout_s if timeout_s else math.inf
                worker.timeout_s = timeout_s
                worker.send({"type": "task", "task": task.to_json()})
                return
        raise RuntimeError("submit() beyond capacity")

    def running(self) -> list[int]:
        return [w.task.trial_id for w in self._workers if w is not None and w.task is not None]

    def cancel_all(self) -> list[int]:
        ids = self.running()
        for worker in list(self._workers):
            if worker is not None and worker.task is not None:
                self._retire(worker, kill=True)
        return ids

    def poll(self, timeout: float) -> list[Event]:
        busy = [w for w in self._workers if w is not None and w.task is not None]
        if busy and not self._events:
            wait = min(timeout, max(0.0, min(w.deadline for w in busy) - time.monotonic()))
            for key, _ in self._selector.select(wait):
                if isinstance(key.data, MeasurementService):
                    key.data.read()
                else:
                    self._read(key.data)
        self._check_deadlines()
        events, self._events = self._events, []
        return events

    def _fail(self, worker: _Worker, reason: str) -> None:
        assert worker.task is not None and self._setup is not None
        outcome = TrialOutcome(
            trial_id=worker.task.trial_id,
            status=TrialStatus.FAILED,
            error=reason,
            started_at=worker.started_at,
            finished_at=time.time(),
            worker=f"{socket.gethostname()}:{worker.process.pid}",
        )
        self._events.append(Finished(outcome))
        worker.task = None

    def _check_deadlines(self) -> None:
        if self._measuring is not None:
            self._measuring.check_deadline()
        now = time.monotonic()
        for worker in list(self._workers):
            if worker is not None and worker.task is not None and now >= worker.deadline:
                self._fail(
                    worker, f"timed out after {worker.timeout_s:g} s (search.trial_timeout_s)"
                )
                self._retire(worker, kill=True)

    def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        try:
            chunk = os.read(worker.process.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            code = worker.process.wait()
            if worker.task is not None:
                self._fail(
                    worker,
                    f"worker process died ({_describe_exit(code)}); see "
                    f"{os.path.join('workers', f'worker-{worker.index}.log')}",
                )
            self._retire(worker, kill=True)
            return
        worker.buffer += chunk
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._handle(worker, json.loads(line))

    def _handle(self, worker: _Worker, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ready":
            worker.ready = True
        elif kind == "setup_error":
            raise ConfigError(f"worker could not set up the job: {message['error']}")
        elif kind == "report":
            report = Report(int(message["trial_id"]), int(message["step"]), message["metrics"])
            self._events.append(report)
            if self._setup is not None and self._setup.judged_reports:
                stop = self.judge is not None and bool(self.judge(report))
                worker.send({"type": "verdict", "stop": stop})
        elif kind == "measure":
            if self._measuring is None:
                worker.send({"type": "measured", "error": "this job has no measurement process"})
            else:
                self._measuring.request(worker)
        elif kind == "done":
            self._events.append(Finished(TrialOutcome.from_json(message["outcome"])))
            worker.task = None
