"""Trials run in reusable worker processes on this machine, each with its own GPUs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from corenas.errors import ConfigError
from corenas.executor import gpus as gpu_leases
from corenas.executor.base import Event, Executor, Finished, Report
from corenas.executor.measuring import MeasuredWorker, MeasurementService
from corenas.executor.timing import TrialClock, TrialTiming
from corenas.measurement import allowed_cores
from corenas.plugins import Plugins
from corenas.records import TrialOutcome, TrialStatus
from corenas.trial import TrialTask, WorkerSetup

RETRY_LEASES_S = 1.0
"""How often a job short of GPUs tries again to lease the ones other jobs hold."""


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


def _whole(value: Any, key: str, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"executor.{key} must be a whole number >= {minimum} ({what}), got {value!r}"
        )
    return value


def _gpu_pool(gpus: int | Sequence[int] | None, visible: list[str]) -> list[int]:
    """Positions in ``visible`` (CUDA indices as the driver sees them) the job may use."""
    where = f"{len(visible)} visible ({_visible_note(visible)})"
    if gpus is None:
        return list(range(len(visible)))
    if isinstance(gpus, int):  # bool included: refused by _whole
        _whole(gpus, "gpus", 0, "use the first N visible GPUs; null: all")
        if gpus > len(visible):
            raise ConfigError(f"executor.gpus={gpus} but only {where}: set executor.gpus=null")
        return list(range(gpus))
    pool = list(gpus)
    for index in pool:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(visible):
            raise ConfigError(
                f"executor.gpus lists GPU {index!r}, but the GPUs are 0..{len(visible) - 1} "
                f"({where}); list CUDA indices of this machine or set executor.gpus=null"
            )
    if len(set(pool)) != len(pool):
        raise ConfigError(f"executor.gpus lists a GPU twice: {pool}")
    return pool


def _trials(count: int) -> str:
    return f"{count} trial" if count == 1 else f"{count} trials"


def _visible_note(visible: list[str]) -> str:
    if os.environ.get(gpu_leases.FAKE_GPUS_ENV) is not None:
        return f"{gpu_leases.FAKE_GPUS_ENV}={os.environ[gpu_leases.FAKE_GPUS_ENV]}"
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}"
    return "nvidia-smi / torch.cuda.device_count()"


class LocalExecutor(Executor):
    """Runs trials in worker processes (``python -m corenas.executor.worker``) on this machine.

    Workers are started once and reused, so torch is imported once per worker, not per trial.
    A worker that dies (crash, ``os.abort``, out of memory, SIGKILL) fails its trial with the
    reason and is replaced; a trial past its timeout is killed and failed. Worker output goes
    to ``JOB_DIR/workers/worker-N.log``. With ``setup.isolation.mode`` other than ``none``,
    workers' models are measured by a ``MeasurementService`` (one model at a time, the other
    trainings on that device paused in mode ``pause``).

    GPUs: each worker gets ``gpus_per_trial`` GPUs of its own through its
    ``CUDA_VISIBLE_DEVICES`` (an empty value with 0: the trials see no GPU); the trainer sees
    them as ``cuda:0..`` (``TrialContext.devices``). ``gpus`` limits the GPUs used (null: all
    visible). At most ``len(gpus) // gpus_per_trial`` trials run at once: a larger
    ``search.max_parallel_trials`` is lowered to that with one warning line. Every GPU is
    leased machine-wide (``corenas.executor.gpus``) before a worker gets it, so jobs sharing
    the machine never share a GPU; a job whose GPUs are held elsewhere runs fewer trials (or
    waits) and takes them as they free up, saying so on stderr.

    CPUs: each worker's torch/OpenMP threads are ``cpus_per_trial`` (null: the usable cores /
    trials at once; a thread count already in the environment then wins).
    ``threads_per_worker`` is the old name of ``cpus_per_trial``, still read from jobs saved
    with it. ``timings`` keeps a ``TrialTiming`` per finished trial.
    """

    def __init__(
        self,
        gpus_per_trial: int = 0,
        cpus_per_trial: int | None = None,
        gpus: int | list[int] | None = None,
        threads_per_worker: int | None = None,
    ) -> None:
        self.gpus_per_trial = _whole(gpus_per_trial, "gpus_per_trial", 0, "GPUs each trial gets")
        if cpus_per_trial is not None:
            _whole(cpus_per_trial, "cpus_per_trial", 1, "threads per trial; null: cores / trials")
        if threads_per_worker is not None:
            _whole(threads_per_worker, "threads_per_worker", 1, "now executor.cpus_per_trial")
            if cpus_per_trial is not None and cpus_per_trial != threads_per_worker:
                raise ConfigError(
                    f"executor.threads_per_worker={threads_per_worker} (the old name of "
                    f"executor.cpus_per_trial) disagrees with executor.cpus_per_trial="
                    f"{cpus_per_trial}: keep only executor.cpus_per_trial"
                )
            cpus_per_trial = threads_per_worker
        self.cpus_per_trial = cpus_per_trial
        self.visible: list[str] = []
        self.pool: list[int] = []
        if self.gpus_per_trial > 0 or gpus is not None:
            self.visible = gpu_leases.visible_gpus()
            self.pool = _gpu_pool(gpus, self.visible)
            if self.gpus_per_trial > len(self.pool):
                raise ConfigError(
                    f"executor.gpus_per_trial={self.gpus_per_trial} but this job may use "
                    f"{len(self.pool)} GPU(s) ({_visible_note(self.visible)}"
                    f"{'' if gpus is None else f', executor.gpus={gpus}'}): lower "
                    "executor.gpus_per_trial, or set it to 0 to train on the CPU"
                )
        self.lock_dir = gpu_leases.lock_dir()
        self._clock = TrialClock()
        self._setup: WorkerSetup | None = None
        self._workers: list[_Worker | None] = []
        self._slot_gpus: list[list[int] | None] = []
        self._leases: dict[int, gpu_leases.Lease] = {}
        self._next_lease_try = 0.0
        self._selector = selectors.DefaultSelector()
        self._events: list[Event] = []
        self._measuring: MeasurementService | None = None

    # --- life cycle -----------------------------------------------------------------------
    def start(self, setup: WorkerSetup, parallel: int, plugins: Plugins | None = None) -> None:
        if parallel < 1:
            raise ConfigError("search.max_parallel_trials must be at least 1")
        self._check_devices(setup)
        self.shutdown()
        self._setup = setup
        slots = parallel
        if self.gpus_per_trial > 0:
            slots = min(parallel, len(self.pool) // self.gpus_per_trial)
            if slots < parallel:
                gpu_leases.warn(
                    f"search.max_parallel_trials={parallel} with executor.gpus_per_trial="
                    f"{self.gpus_per_trial} needs {parallel * self.gpus_per_trial} GPUs, this "
                    f"job may use {len(self.pool)}: running {_trials(slots)} at a time"
                )
        else:
            visible = gpu_leases.visible_gpus(ask_torch=False)
            if visible and not self._quiet_about_gpus(setup):
                gpu_leases.warn(
                    f"{len(visible)} GPU(s) here, but executor.gpus_per_trial=0: trials run "
                    "on the CPU (set executor.gpus_per_trial=1 to train on GPUs)"
                )
        self._workers = [None] * slots
        self._slot_gpus = [[] if self.gpus_per_trial == 0 else None for _ in range(slots)]
        self._clock = TrialClock()
        if self.gpus_per_trial > 0:
            self._lease_free_gpus(announce=True)
        if setup.hardware is not None and setup.isolation.mode != "none":
            self._measuring = MeasurementService(setup, self._selector, self._busy)

    def _quiet_about_gpus(self, setup: WorkerSetup) -> bool:
        """True when the trainer is told to use the CPU anyway (no hint needed)."""
        return str(setup.trainer.params.get("accelerator", "")).lower() == "cpu"

    def _check_devices(self, setup: WorkerSetup) -> None:
        """Refuse a job whose trainer or in-worker measurement needs a GPU the workers lack."""
        accelerator = str(setup.trainer.params.get("accelerator", "")).lower()
        if self.gpus_per_trial == 0 and accelerator in ("gpu", "cuda"):
            raise ConfigError(
                f"trainer.accelerator={accelerator} needs a GPU per trial, but "
                "executor.gpus_per_trial=0 gives the trials none: set executor.gpus_per_trial=1 "
                "(or trainer.accelerator=auto to train on the CPU)"
            )
        device = setup.isolation.device
        in_worker = setup.hardware is not None and setup.isolation.mode == "none"
        if in_worker and device.startswith("cuda:"):
            index = int(device.split(":", 1)[1])
            if index >= self.gpus_per_trial:
                name = setup.hardware.name if setup.hardware is not None else "?"
                raise ConfigError(
                    f"hardware '{name}' with hardware.isolation=none measures on {device} "
                    "inside each trial's worker, which sees only its executor.gpus_per_trial="
                    f"{self.gpus_per_trial} GPU(s) as cuda:0..: set hardware.isolation=pause "
                    f"or executor.gpus_per_trial={index + 1}"
                )

    def _lease_free_gpus(self, announce: bool = False) -> None:
        """Lease GPUs for the slots that have none yet (as many as other jobs leave free),
        and say on stderr when the job runs fewer trials than it may, or more than before."""
        assert self._setup is not None
        before = self.capacity
        wanted = [i for i, held in enumerate(self._slot_gpus) if held is None]
        owner = gpu_leases.describe_owner(self._setup.job_dir)
        taken: list[int] = []
        busy_elsewhere: list[int] = []
        for position in self.pool:
            if len(taken) >= len(wanted) * self.gpus_per_trial:
                break
            if position in self._leases:
                continue
            lease = gpu_leases.try_lease(self.visible[position], self.lock_dir, owner)
            if lease is None:
                busy_elsewhere.append(position)
            else:
                self._leases[position] = lease
                taken.append(position)
        for slot in wanted:
            if len(taken) < self.gpus_per_trial:
                break
            self._slot_gpus[slot] = taken[: self.gpus_per_trial]
            taken = taken[self.gpus_per_trial :]
        for position in taken:  # too few for another trial
            gpu_leases.release(self._leases.pop(position))
        self._next_lease_try = time.monotonic() + RETRY_LEASES_S
        after = self.capacity
        if announce and after < len(self._slot_gpus):
            holders = "; ".join(
                f"GPU {p} by {gpu_leases.lease_holder(self.visible[p], self.lock_dir) or '?'}"
                for p in busy_elsewhere
            )
            doing = (
                f"running {after} of {len(self._slot_gpus)} trials at a time"
                if after
                else "waiting"
            )
            gpu_leases.warn(
                f"GPUs leased by other jobs ({holders}); {doing} until they are free "
                f"(leases in {self.lock_dir})"
            )
        elif not announce and after > before:
            gpu_leases.warn(f"more GPUs free: running {_trials(after)} at a time")

    @property
    def timings(self) -> list[TrialTiming]:
        """A ``TrialTiming`` per trial finished since ``start`` (its start-up and the worker's
        idle gap before it)."""
        return self._clock.timings

    def _busy(self) -> list[MeasuredWorker]:
        return [w for w in self._workers if w is not None and w.task is not None]

    @property
    def capacity(self) -> int:
        """Trials that may run now: one per worker slot that has its GPUs."""
        return sum(held is not None for held in self._slot_gpus)

    def _spawn(self, index: int) -> _Worker:
        assert self._setup is not None
        held = self._slot_gpus[index]
        assert held is not None
        log_dir = os.path.join(self._setup.job_dir, "workers")
        os.makedirs(log_dir, exist_ok=True)
        log = open(os.path.join(log_dir, f"worker-{index}.log"), "ab")  # noqa: SIM115
        env = dict(os.environ)
        threads = self.cpus_per_trial
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if threads:  # configured: wins over the environment
                env[var] = str(threads)
            else:
                cores = len(allowed_cores() or []) or os.cpu_count() or 1
                env.setdefault(var, str(max(1, cores // len(self._workers))))
        env["CUDA_VISIBLE_DEVICES"] = ",".join(self.visible[p] for p in held)
        env.pop(gpu_leases.FAKE_GPUS_ENV, None)
        env["PYTHONUNBUFFERED"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-m", "corenas.executor.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the driver only; it stops the workers
            pass_fds=[self._leases[p].fd for p in held],  # the worker holds its leases too
        )
        worker = _Worker(index, process, log)
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self._selector.register(process.stdout, selectors.EVENT_READ, worker)
        worker.send({"type": "setup", "setup": self._setup.to_json()})
        self._workers[index] = worker
        return worker

    def _retire(self, worker: _Worker, kill: bool) -> None:
        self._stop(worker, kill)
        self._reap(worker)

    def _stop(self, worker: _Worker, kill: bool) -> None:
        """Tell ``worker`` to exit (``kill``: SIGKILL it); returns at once."""
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

    def _reap(self, worker: _Worker) -> None:
        """Wait for a stopped ``worker`` to exit (5 s, then SIGKILL) and free its slot."""
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
        """Stop the workers and give back every GPU lease."""
        if self._measuring is not None:
            self._measuring.shutdown()
            self._measuring = None
        workers = [w for w in self._workers if w is not None]
        for worker in workers:  # all told first: they exit side by side
            self._stop(worker, kill=worker.task is not None)
        for worker in workers:
            self._reap(worker)
        for lease in self._leases.values():
            gpu_leases.release(lease)
        self._leases = {}
        self._slot_gpus = [[] if self.gpus_per_trial == 0 else None for _ in self._slot_gpus]

    # --- trials ---------------------------------------------------------------------------
    def submit(self, task: TrialTask, timeout_s: float | None = None) -> None:
        for index, worker in enumerate(self._workers):
            held = self._slot_gpus[index]
            if held is not None and (worker is None or worker.task is None):
                worker = worker or self._spawn(index)
                task = dataclasses.replace(task, devices=list(held))
                worker.task = task
                worker.started_at = self._clock.submitted(task.trial_id, worker.process.pid)
                worker.deadline = time.monotonic() + timeout_s if timeout_s else math.inf
                worker.timeout_s = timeout_s
                worker.send(
                    {"type": "task", "task": task.to_json(), "submitted_at": worker.started_at}
                )
                return
        raise RuntimeError("submit() beyond capacity")

    def running(self) -> list[int]:
        return [w.task.trial_id for w in self._workers if w is not None and w.task is not None]

    def where(self, trial_id: int) -> str | None:
        """``host:pid`` of the worker process running ``trial_id``."""
        for worker in self._workers:
            if worker is not None and worker.task is not None and worker.task.trial_id == trial_id:
                return f"{socket.gethostname()}:{worker.process.pid}"
        return None

    def cancel_all(self) -> list[int]:
        ids = self.running()
        for worker in list(self._workers):
            if worker is not None and worker.task is not None:
                self._retire(worker, kill=True)
        return ids

    def poll(self, timeout: float) -> list[Event]:
        if self.capacity < len(self._slot_gpus) and time.monotonic() >= self._next_lease_try:
            self._lease_free_gpus()
        busy = [w for w in self._workers if w is not None and w.task is not None]
        if busy and not self._events:
            wait = min(timeout, max(0.0, min(w.deadline for w in busy) - time.monotonic()))
            for key, _ in self._selector.select(wait):
                if isinstance(key.data, MeasurementService):
                    key.data.read()
                else:
                    self._read(key.data)
        elif not busy and not self._events:
            time.sleep(timeout)  # nothing runs: the driver waits (e.g. for GPUs to free up)
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
        self._clock.forget(worker.task.trial_id)
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
            outcome = TrialOutcome.from_json(message["outcome"])
            where = outcome.worker or f"{socket.gethostname()}:{worker.process.pid}"
            self._clock.finished(outcome, worker.process.pid, where)
            self._events.append(Finished(outcome))
            worker.task = None
