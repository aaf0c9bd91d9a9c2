"""Executor ``ray``: trials run as reusable Ray actors on a Ray cluster."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import socket
import sys
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

from corenas.errors import ConfigError
from corenas.executor.base import Event, Executor, Finished, Report
from corenas.executor.timing import TrialTiming
from corenas.plugins import Plugins
from corenas.records import TrialOutcome, TrialStatus
from corenas.trial import TrialTask, WorkerSetup

WAIT_S = 10.0
"""How long an actor holds the driver's call for a trial's next message (a long poll)."""
PROBE_S = 0.5
"""How long to wait before asking again an actor that Ray could not reach."""
UNREACHABLE_S = 120.0
"""How long an actor may stay unreachable (Ray neither reaches it nor declares it dead)
before its trial counts as lost with its node."""

_HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<port>\d+)$")


@dataclass
class _Queued:
    """A submitted trial that waits for a free actor."""

    task: TrialTask
    timeout_s: float | None
    lost: int = 0
    """How often it was lost with a node so far."""


@dataclass
class _Slot:
    """One actor: pending creation while ``ready_ref`` is set, then free or running a trial."""

    actor: Any
    ready_ref: Any | None
    node_id: str = ""
    ip: str = ""
    where: str = ""
    trial: _Queued | None = None
    call: Any | None = None
    started_at: float = 0.0
    deadline: float = math.inf
    trials: int = 0
    last_finished_at: float | None = None
    acked: int = 0
    """The number of the newest message of this actor handled."""
    answer: tuple[int, bool] | None = None
    """The driver's verdict on the report awaiting one: (its number, stop)."""
    unreachable_since: float | None = None
    probe_at: float = math.inf
    """When to ask an unreachable actor again (no call is outstanding meanwhile)."""


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for ``auto``
    and ``local``. Raises ``ConfigError`` for anything else."""
    if address in ("auto", "local"):
        return None
    match = _HOST_PORT.match(address)
    if match is None:
        raise ConfigError(
            f"executor.address must be auto, local, HOST:PORT or ray://HOST:PORT, got {address!r}"
        )
    return match["host"].strip("[]"), int(match["port"])


def probe(address: str) -> None:
    """Raise ``ConfigError`` when nothing accepts connections at ``address``: a HOST:PORT
    form, or ``auto`` when ``RAY_ADDRESS`` names one (otherwise Ray resolves ``auto``, and
    starts ``local``, when the executor starts)."""
    target = parse_address(address)
    if target is None and address == "auto" and os.environ.get("RAY_ADDRESS"):
        with contextlib.suppress(ConfigError):  # RAY_ADDRESS=auto and the like
            target = parse_address(os.environ["RAY_ADDRESS"])
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=3.0):
            pass
    except OSError as exc:
        raise ConfigError(
            f"executor.address={address}: no Ray cluster answers at {target[0]}:{target[1]} "
            f"({exc.strerror or exc}); "
            "start one with `ray start --head`, fix the address, or use executor.address=local "
            "for a Ray on this machine"
        ) from None


def _death_reason(error: BaseException) -> str:
    """The one-line cause of a Ray actor's death, from Ray's exception text."""
    text = " ".join(str(error).split())
    match = re.search(r"(because (?:its|of) .*?)(?: Some common causes|$)", text)
    return match.group(1) if match else f"{type(error).__name__}: {text[:300]}"


class RayExecutor(Executor):
    """Runs trials on a Ray cluster as actors that each hold ``num_cpus_per_trial`` CPUs,
    ``num_gpus_per_trial`` GPUs and ``resources_per_trial``, one trial at a time, and are
    reused across trials (the job's plugins and torch are loaded once per actor). ``timings``
    keeps a ``TrialTiming`` per trial finished since ``start``.

    Promises, beyond ``Executor``'s: a trial runs once its actor exists, so at most as many
    trials run as the cluster has room for (others wait, and their timeout has not started);
    a trial past its timeout is killed with its actor and failed; a trial whose node dies is
    run again on another actor up to ``max_retries`` times, then failed with the reason; a
    trial whose process dies on a live node (``os.abort``, out of memory) fails at once.
    """

    def __init__(
        self,
        address: str = "auto",
        num_cpus_per_trial: float = 1.0,
        num_gpus_per_trial: float = 0.0,
        resources_per_trial: dict[str, float] | None = None,
        max_retries: int = 1,
        check_resources: bool = True,
        runtime_env: dict[str, Any] | None = None,
        log_to_driver: bool = False,
    ) -> None:
        for key, value in (
            ("num_cpus_per_trial", num_cpus_per_trial),
            ("num_gpus_per_trial", num_gpus_per_trial),
            *((f"resources_per_trial.{k}", v) for k, v in (resources_per_trial or {}).items()),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"executor.{key} must be a number >= 0, got {value!r}")
        if max_retries < 0:
            raise ConfigError(f"executor.max_retries must be >= 0, got {max_retries}")
        probe(address)
        self.address = address
        self.resources = {
            "CPU": float(num_cpus_per_trial),
            "GPU": float(num_gpus_per_trial),
            **{str(k): float(v) for k, v in (resources_per_trial or {}).items()},
        }
        self.max_retries = max_retries
        self.check_resources = check_resources
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.log_to_driver = log_to_driver
        self._connected = False
        self._setup: WorkerSetup | None = None
        self._parallel = 0
        self._actor_class: Any = None
        self._slots: list[_Slot] = []
        self._waiting: deque[_Queued] = deque()
        self._events: list[Event] = []
        self._submitted_at: dict[int, float] = {}
        self.timings: list[TrialTiming] = []

    # --- life cycle -----------------------------------------------------------------------
    def start(self, setup: WorkerSetup, parallel: int, plugins: Plugins | None = None) -> None:
        if parallel < 1:
            raise ConfigError("search.max_parallel_trials must be at least 1")
        self._release_actors()
        self._connect()
        if self.check_resources:
            self._check_resources()
        if setup.hardware is not None and setup.isolation.mode != "none":
            warnings.warn(
                f"executor=ray measures each model in its trial's actor; hardware.isolation="
                f"{setup.isolation.mode} applies to executor=local only",
                stacklevel=2,
            )
        self._setup = setup
        self._parallel = parallel
        self.timings = []
        self._actor_class = self._make_actor_class()

    def _connect(self) -> None:
        import ray

        if ray.is_initialized():
            return  # this process is already connected (by the caller or an earlier start)
        options: dict[str, Any] = {
            "address": self.address,
            "logging_level": logging.WARNING,
            "log_to_driver": self.log_to_driver,
            "runtime_env": self.runtime_env,
        }
        if self.address == "local":
            options["include_dashboard"] = False
        sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it for good
        try:
            ray.init(**options)
        except ImportError as exc:  # ray:// needs the Ray Client (grpcio)
            raise ConfigError(
                f"executor.address={self.address} needs the Ray Client ({exc}); install it "
                'with `pip install "ray[client]"` or use the cluster\'s HOST:PORT address'
            ) from None
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = " ".join(str(exc).split())[:300]
            raise ConfigError(
                f"executor.address={self.address}: cannot connect to Ray ({first}); start a "
                "cluster with `ray start --head` or use executor.address=local (a cluster "
                "with token authentication needs RAY_AUTH_MODE=token here)"
            ) from None
        finally:
            with contextlib.suppress(ValueError, TypeError):  # not the main thread
                signal.signal(signal.SIGTERM, sigterm)
        self._connected = True

    def _check_resources(self) -> None:
        import ray

        need = {k: v for k, v in self.resources.items() if v > 0}
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if any(all(n["Resources"].get(k, 0.0) >= v for k, v in need.items()) for n in nodes):
            return
        have = "; ".join(
            ", ".join(f"{k}={v:g}" for k, v in sorted(n["Resources"].items()) if "node:" not in k)
            for n in nodes
        )
        raise ConfigError(
            f"no node of the Ray cluster has the resources of one trial "
            f"({', '.join(f'{k}={v:g}' for k, v in need.items())}; nodes: {have or 'none'}); "
            "lower executor.num_cpus_per_trial / num_gpus_per_trial / resources_per_trial, add "
            "a node with `ray start --address=HEAD:PORT`, or set executor.check_resources=false "
            "on an autoscaling cluster"
        )

    def _make_actor_class(self) -> Any:
        import ray
        from ray import cloudpickle

        import corenas_ray.actor

        # by value: nodes need corenas and the job's plugins, not this package
        cloudpickle.register_pickle_by_value(corenas_ray.actor)
        custom = {k: v for k, v in self.resources.items() if k not in ("CPU", "GPU") and v > 0}
        return ray.remote(corenas_ray.actor.TrialActor).options(
            num_cpus=self.resources["CPU"],
            num_gpus=self.resources["GPU"],
            resources=custom or None,
            max_restarts=0,
            max_concurrency=4,  # a messages call, and its repeat when Ray lost the reply
        )

    @property
    def capacity(self) -> int:
        return self._parallel

    def _release_actors(self) -> None:
        if not self._slots:
            return
        import ray

        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots = []

    def shutdown(self) -> None:
        self._waiting.clear()
        self._release_actors()
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    # --- trials ---------------------------------------------------------------------------
    def submit(self, task: TrialTask, timeout_s: float | None = None) -> None:
        if len(self.running()) >= self._parallel:
            raise RuntimeError("submit() beyond capacity")
        self._waiting.append(_Queued(task, timeout_s))
        self._submitted_at[task.trial_id] = time.time()
        self._dispatch()

    def running(self) -> list[int]:
        busy = [s.trial.task.trial_id for s in self._slots if s.trial is not None]
        return busy + [q.task.trial_id for q in self._waiting]

    def where(self, trial_id: int) -> str | None:
        """The ``host:pid`` of the actor running ``trial_id``; None while it waits for one."""
        for slot in self._slots:
            if slot.trial is not None and slot.trial.task.trial_id == trial_id and slot.where:
                return slot.where
        return None

    def cancel_all(self) -> list[int]:
        ids = self.running()
        self._waiting.clear()
        self._submitted_at.clear()
        for slot in [s for s in self._slots if s.trial is not None]:
            self._drop(slot)
        return ids

    def poll(self, timeout: float) -> list[Event]:
        import ray

        self._dispatch()
        if not self._events:
            wake = min((min(s.deadline, s.probe_at) for s in self._slots), default=math.inf)
            wait = min(timeout, max(0.0, wake - time.monotonic()))
            refs = self._refs()
            if refs:
                ray.wait(refs, num_returns=1, timeout=wait, fetch_local=False)
                self._collect()
            elif wake < math.inf:
                time.sleep(wait)
        self._probe()
        self._check_deadlines()
        self._dispatch()
        events, self._events = self._events, []
        return events

    def _refs(self) -> list[Any]:
        return [r for s in self._slots for r in (s.ready_ref, s.call) if r is not None]

    def _dispatch(self) -> None:
        """Start waiting trials on free actors; ask Ray for more actors while trials wait
        and fewer than ``capacity`` exist."""
        if self._actor_class is None:
            return
        for slot in self._slots:
            if not self._waiting:
                break
            if slot.ready_ref is None and slot.trial is None:
                self._start_trial(slot, self._waiting.popleft())
        busy = sum(s.trial is not None for s in self._slots)
        wanted = min(self._parallel, busy + len(self._waiting))
        while len(self._slots) < wanted:
            assert self._setup is not None
            actor = self._actor_class.remote(self._setup.to_json())
            self._slots.append(_Slot(actor, actor.ready.remote()))

    def _start_trial(self, slot: _Slot, queued: _Queued) -> None:
        slot.trial = queued
        slot.trials += 1
        slot.started_at = time.time()
        slot.deadline = time.monotonic() + queued.timeout_s if queued.timeout_s else math.inf
        self._call_run(slot)

    def _call_run(self, slot: _Slot) -> None:
        assert slot.trial is not None
        slot.call = slot.actor.run.remote(slot.trial.task.to_json(), slot.acked, WAIT_S)

    def _call_messages(self, slot: _Slot) -> None:
        slot.call = slot.actor.messages.remote(slot.acked, WAIT_S, slot.answer)

    def _probe(self) -> None:
        """Ask again the actors that Ray could not reach, when their time has come."""
        now = time.monotonic()
        for slot in [s for s in self._slots if s.trial is not None and s.probe_at <= now]:
            slot.probe_at = math.inf
            self._call_messages(slot)

    def _collect(self) -> None:
        """Handle every actor call that has answered."""
        import ray

        refs = self._refs()
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=True)
        done = set(ready)
        for slot in list(self._slots):
            if slot.ready_ref is not None and slot.ready_ref in done:
                self._on_ready(slot)
            elif slot.call is not None and slot.call in done:
                self._on_messages(slot)

    def _on_ready(self, slot: _Slot) -> None:
        import ray
        from ray.exceptions import RayActorError, RuntimeEnvSetupError

        ref: Any = slot.ready_ref
        try:
            info: dict[str, Any] = ray.get(ref)
        except (RayActorError, RuntimeEnvSetupError) as exc:
            if isinstance(exc, RuntimeEnvSetupError) or exc.actor_init_failed:
                raise ConfigError(
                    f"Ray could not create a trial actor ({' '.join(str(exc).split())[:300]}); "
                    "every node needs corenas and the job's plugins installed, or "
                    "executor.runtime_env to provide them"
                ) from None
            self._drop(slot)  # never created (its node died first): another one is asked for
            return
        if info["error"] is not None:
            raise ConfigError(f"Ray worker could not set up the job: {info['error']}")
        slot.ready_ref = None
        slot.node_id = str(info["node_id"])
        slot.ip = f"{info['ip']} (id {slot.node_id[:8]})"
        slot.where = f"{info['host']}:{info['pid']}"

    def _on_messages(self, slot: _Slot) -> None:
        import ray
        from ray.exceptions import RayError

        unavailable = getattr(ray.exceptions, "ActorUnavailableError", ())
        assert slot.trial is not None
        call: Any = slot.call
        slot.call = None
        try:
            reply: dict[str, Any] = ray.get(call)
        except unavailable as exc:  # unreachable for now: dead, or a network hiccup
            now = time.monotonic()
            slot.unreachable_since = slot.unreachable_since or now
            if now - slot.unreachable_since > UNREACHABLE_S:
                self._on_death(slot, exc, lost=True)
            else:
                slot.probe_at = now + PROBE_S
            return
        except RayError as exc:
            self._on_death(slot, exc)
            return
        slot.unreachable_since = None
        if reply["trial_id"] != slot.trial.task.trial_id:  # the run call never got there
            self._call_run(slot)
            return
        for number, message in reply["messages"]:
            if number <= slot.acked:
                continue
            slot.acked = number
            if message["type"] == "report":
                report = Report(int(message["trial_id"]), int(message["step"]), message["metrics"])
                self._events.append(report)
                if self._setup is not None and self._setup.judged_reports:
                    stop = self.judge is not None and bool(self.judge(report))
                    slot.answer = (number, stop)
            elif message["type"] == "done":
                outcome = TrialOutcome.from_json(message["outcome"])
                self._events.append(Finished(outcome))
                self._time(slot, outcome)
                slot.trial = None
                slot.answer = None
                slot.deadline = math.inf
                return
        self._call_messages(slot)

    def _time(self, slot: _Slot, outcome: TrialOutcome) -> None:
        submitted = self._submitted_at.pop(outcome.trial_id, None)
        if submitted is None or outcome.started_at is None:
            return
        gap = None
        if slot.last_finished_at is not None:
            gap = outcome.started_at - slot.last_finished_at
        self.timings.append(
            TrialTiming(
                outcome.trial_id, slot.where, slot.trials == 1, outcome.started_at - submitted, gap
            )
        )
        slot.last_finished_at = outcome.finished_at

    def _on_death(self, slot: _Slot, error: BaseException, lost: bool = False) -> None:
        """A running trial's actor died: retry the trial when its node is gone (or ``lost``:
        unreachable for too long), else fail it."""
        queued = slot.trial
        assert queued is not None
        self._drop(slot, keep_trial=True)
        if not lost and self._node_alive(slot.node_id) and "node has died" not in str(error):
            self._fail(
                slot,
                queued,
                f"Ray worker process {slot.where} on node {slot.ip} died: {_death_reason(error)}",
            )
        elif queued.lost < self.max_retries:
            queued.lost += 1
            print(
                f"corenas: trial {queued.task.trial_id} was lost with Ray node {slot.ip}; "
                f"running it again (retry {queued.lost} of {self.max_retries})",
                file=sys.stderr,
            )
            self._waiting.appendleft(queued)
        else:
            tries = f"{queued.lost + 1} times" if queued.lost else "once"
            why = f"unreachable for {UNREACHABLE_S:g} s" if lost else "the node died"
            self._fail(
                slot,
                queued,
                f"lost with its Ray node {slot.ip} ({why}), run {tries} "
                f"(executor.max_retries={self.max_retries})",
            )

    def _node_alive(self, node_id: str) -> bool:
        import ray

        return any(n["NodeID"] == node_id and n.get("Alive") for n in ray.nodes())

    def _drop(self, slot: _Slot, keep_trial: bool = False) -> None:
        """Kill ``slot``'s actor and forget it (its trial too, unless ``keep_trial``)."""
        import ray

        ray.kill(slot.actor, no_restart=True)
        self._slots.remove(slot)
        if not keep_trial:
            slot.trial = None

    def _fail(self, slot: _Slot, queued: _Queued, reason: str) -> None:
        self._submitted_at.pop(queued.task.trial_id, None)
        self._events.append(
            Finished(
                TrialOutcome(
                    trial_id=queued.task.trial_id,
                    status=TrialStatus.FAILED,
                    error=reason,
                    started_at=slot.started_at,
                    finished_at=time.time(),
                    worker=slot.where or None,
                )
            )
        )

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for slot in [s for s in self._slots if s.trial is not None and now >= s.deadline]:
            queued = slot.trial
            assert queued is not None
            self._drop(slot)
            self._fail(
                slot, queued, f"timed out after {queued.timeout_s:g} s (search.trial_timeout_s)"
            )
