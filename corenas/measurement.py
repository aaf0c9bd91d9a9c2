"""Hardware measurement of a trial's model: the cache key, how a job isolates timing, and the
dedicated measurement process of the local executor.

A timed backend (``HardwareBackend.timed``) is measured, by default, in one process per job
that measures one model at a time, pinned to its own cores, while the trainings on the same
device are paused (``hardware.isolation``). Measurements are cached in the job's store under
``measurement_key``, so an architecture is measured once per job.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corenas.errors import ConfigError, CorenasError, TrialError
from corenas.records import Genome, Metrics

if TYPE_CHECKING:
    from corenas.hardware.base import HardwareBackend, InputSpec
    from corenas.plugins import Plugins
    from corenas.space.base import SearchSpace
    from corenas.trial import WorkerSetup

ISOLATION_MODES = ("pause", "process", "none")
"""``pause``: a measurement process, trainings on the measured device paused meanwhile;
``process``: a measurement process, trainings go on; ``none``: each worker measures its own
model before training it."""


@dataclass(frozen=True)
class Isolation:
    """How a job measures: ``mode`` (one of ``ISOLATION_MODES``), the ``device`` the backend
    times on, the ``cores`` the measurement process is pinned to (None: the first
    ``threads`` cores it may use) and the longest a measurement may take."""

    mode: str = "none"
    device: str = "cpu"
    cores: list[int] | None = None
    threads: int = 1
    timeout_s: float = 300.0

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "device": self.device,
            "cores": self.cores,
            "threads": self.threads,
            "timeout_s": self.timeout_s,
        }


def isolation_of(backend: HardwareBackend, node: dict[str, Any]) -> Isolation:
    """The isolation the hardware config ``node`` asks for, checked. Backends that time
    nothing here (``timed`` false) always measure in the worker (mode ``none``)."""
    mode = node.get("isolation", "pause")
    if mode not in ISOLATION_MODES:
        raise ConfigError(
            f"hardware.isolation must be one of {', '.join(ISOLATION_MODES)}, got {mode!r}"
        )
    cores = node.get("cores")
    if cores is not None:
        if (
            not isinstance(cores, list)
            or not cores
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cores)
        ):
            raise ConfigError(
                f"hardware.cores must be a non-empty list of CPU numbers or null, got {cores!r}"
            )
        available = allowed_cores()
        if available is not None and not set(cores) <= set(available):
            raise ConfigError(
                f"hardware.cores {cores} are not all usable here (this process may use "
                f"{available}); pick from those or set hardware.cores=null"
            )
    timeout = node.get("measure_timeout_s", 300.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"hardware.measure_timeout_s must be a number > 0, got {timeout!r}")
    threads = getattr(backend, "threads", 1)
    return Isolation(
        mode=mode if backend.timed else "none",
        device=str(backend.device),
        cores=list(cores) if cores is not None else None,
        threads=threads if isinstance(threads, int) and threads > 0 else 1,
        timeout_s=float(timeout),
    )


def allowed_cores() -> list[int] | None:
    """The CPU numbers this process may run on, or None where the OS does not say."""
    getter = getattr(os, "sched_getaffinity", None)
    return None if getter is None else sorted(getter(0))


def pin_to_cores(isolation: Isolation) -> list[int] | None:
    """Pin this process to ``isolation.cores`` (default: the first ``threads`` allowed
    cores); returns the cores, or None where pinning is not supported."""
    available = allowed_cores()
    setter = getattr(os, "sched_setaffinity", None)
    if available is None or setter is None:
        return None
    cores = isolation.cores or available[: max(1, isolation.threads)]
    setter(0, cores)
    return cores


def measurement_key(setup: WorkerSetup, arch_id: str) -> str:
    """The cache key of ``arch_id``'s measurement: a hash of the architecture, the space
    (name and parameters), the data the space is sized to, the backend (name and parameters)
    and the input spec. Equal keys mean the same model measured the same way."""
    identity = {
        "arch_id": arch_id,
        "space": [setup.space.name, setup.space.params],
        "data": None if setup.data is None else [setup.data.name, setup.data.params],
        "hardware": None
        if setup.hardware is None
        else [setup.hardware.name, setup.hardware.params],
        "input_shape": setup.input_shape,
        "batch_size": setup.batch_size,
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ModelMeasurer:
    """Builds a genome's model with its trial's seed and measures it with the job's backend."""

    def __init__(
        self,
        space: SearchSpace,
        backend: HardwareBackend,
        input_spec: InputSpec | None,
    ) -> None:
        self.space = space
        self.backend = backend
        self.input_spec = input_spec

    def measure_model(self, model: Any) -> Metrics:
        """The backend's metrics of an already built ``model``; ``TrialError`` when the job
        has no input shape."""
        if self.input_spec is None:
            raise TrialError(
                "hardware backend needs an input shape: set hardware.input_shape=[C,H,W] "
                "or give the space an input_shape"
            )
        return self.backend.measure(model, self.input_spec).as_metrics()

    def measure_genome(self, genome: Genome, seed: int) -> Metrics:
        """Build ``genome`` seeded like its trial (same weights) and measure it."""
        from corenas.trial import seed_everything

        seed_everything(seed)
        return self.measure_model(self.space.build(genome))


def measurer_from_setup(setup: WorkerSetup, plugins: Plugins) -> ModelMeasurer:
    """A ``ModelMeasurer`` for the job ``setup`` describes (space, data sizing, backend)."""
    from corenas.trial import create_space, input_spec_of

    data_info = None
    if setup.data is not None:
        data_info = plugins.registry("data").create(setup.data.name, **setup.data.params).info()
    space = create_space(plugins, setup.space, data_info)
    assert setup.hardware is not None
    backend = plugins.registry("hardware").create(setup.hardware.name, **setup.hardware.params)
    return ModelMeasurer(space, backend, input_spec_of(setup, space, data_info))


def main() -> int:
    """The measurement process: JSON lines in on stdin (``setup``, then ``measure`` with
    ``trial_id``, ``genome`` and ``seed``; ``exit``), JSON lines out (``ready`` or
    ``setup_error``, then one ``measured`` per request with ``metrics`` or ``error``).
    Nothing is pickled; its own prints go to stderr (the log), which gets one line per
    measurement with its start and end (``time.time()``)."""
    from corenas.processes import child_protocol, emit, messages

    protocol = child_protocol()
    from corenas.plugins import get_plugins
    from corenas.trial import WorkerSetup

    measurer: ModelMeasurer | None = None
    for message in messages():
        kind = message.get("type")
        if kind == "setup":
            try:
                setup = WorkerSetup.from_json(message["setup"])
                isolation = Isolation(**message["isolation"])
                cores = pin_to_cores(isolation)
                measurer = measurer_from_setup(setup, get_plugins(setup.blocked_plugins))
            except Exception as exc:
                emit(protocol, {"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
                return 1
            print(f"measurement process {os.getpid()} pinned to cores {cores}", file=sys.stderr)
            emit(protocol, {"type": "ready", "pid": os.getpid(), "cores": cores})
        elif kind == "measure":
            assert measurer is not None, "setup message must come first"
            reply: dict[str, Any] = {"type": "measured", "trial_id": message["trial_id"]}
            started = time.time()
            try:
                reply["metrics"] = measurer.measure_genome(message["genome"], message["seed"])
            except CorenasError as exc:
                reply["error"] = str(exc)
            except Exception as exc:  # the model's own failure: the trial fails with it
                reply["error"] = f"{type(exc).__name__}: {exc}"
            ended = time.time()
            print(
                f"trial {message['trial_id']}: measured from {started:.6f} to {ended:.6f} "
                f"({ended - started:.3f} s){' - ' + reply['error'] if 'error' in reply else ''}",
                file=sys.stderr,
            )
            emit(protocol, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
