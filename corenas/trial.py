"""Running one trial: build, measure, pre-filter, train. Used by every executor."""

from __future__ import annotations

import inspect
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from corenas.data.base import DataInfo, Dataset, DataSplit
from corenas.errors import CorenasError, TrialError
from corenas.hardware.base import InputSpec
from corenas.measurement import Isolation, ModelMeasurer
from corenas.plugins import Plugins, get_plugins
from corenas.records import Genome, Metrics, TrialOutcome, TrialStatus, non_finite_metrics
from corenas.reward.base import Reward
from corenas.space.base import SearchSpace
from corenas.trainer.base import Reporter, Trainer, TrialContext, TrialStopped

PREFILTER_PREFIX = "pre-filter: "
"""Error text prefix of trials found infeasible before training (and so never trained)."""


@dataclass
class ComponentSpec:
    """A registry name plus the parameters its factory takes (JSON data)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, node: dict[str, Any]) -> ComponentSpec:
        params = {k: v for k, v in node.items() if k != "name"}
        return cls(name=str(node["name"]), params=params)


@dataclass
class WorkerSetup:
    """Everything a worker needs to run any trial of a job; sent once per worker as JSON."""

    job_dir: str
    space: ComponentSpec
    trainer: ComponentSpec
    reward: ComponentSpec
    hardware: ComponentSpec | None
    input_shape: list[int] | None = None
    batch_size: int = 1
    prefilter: bool = True
    blocked_plugins: list[str] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    data: ComponentSpec | None = None
    judged_reports: bool = False
    """True when the driver judges every report (early stopping): a worker waits for the
    verdict before the trainer goes on."""
    isolation: Isolation = field(default_factory=Isolation)
    """Where models are measured; with a mode other than ``none`` a worker asks its executor
    (which runs the measurement process) instead of measuring itself."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerSetup:
        data = dict(data)
        for key in ("space", "trainer", "reward"):
            data[key] = ComponentSpec(**data[key])
        for key in ("hardware", "data"):
            if data.get(key) is not None:
                data[key] = ComponentSpec(**data[key])
        if "isolation" in data:
            data["isolation"] = Isolation(**data["isolation"])
        return cls(**data)


@dataclass
class TrialTask:
    """One trial to run."""

    trial_id: int
    genome: Genome
    arch_id: str
    seed: int
    devices: list[int] = field(default_factory=list)
    stage: str = "search"
    budget: dict[str, Any] | None = None
    """The training budget of this trial when it differs from the job's (stage 2)."""
    measured: Metrics | None = None
    """Hardware metrics of this architecture from the job's cache: not measured again."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialTask:
        return cls(**data)


def seed_everything(seed: int) -> None:
    """Seed Python's and numpy's global generators, and torch's when torch is loaded."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def check_numbers(metrics: dict[str, Any], what: str) -> None:
    """Raise ``TrialError`` naming the first value of ``metrics`` that is not a number."""
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrialError(f"{what} '{key}' is not a number: {value!r}")


def create_space(plugins: Plugins, spec: ComponentSpec, data_info: DataInfo | None) -> SearchSpace:
    """The space ``spec`` names; its factory also gets ``data_info`` when it takes a parameter
    of that name (spaces that size their model to the job's data)."""
    entry = plugins.registry("space").get(spec.name)
    params = dict(spec.params)
    if data_info is not None and "data_info" not in params:
        try:
            takes = "data_info" in inspect.signature(entry.factory).parameters
        except (TypeError, ValueError):
            takes = False
        if takes:
            params["data_info"] = data_info
    return plugins.registry("space").create(spec.name, **params)


def input_spec_of(
    setup: WorkerSetup, space: SearchSpace, data_info: DataInfo | None
) -> InputSpec | None:
    """The model input the job's backend measures: ``hardware.input_shape``, else the
    space's, else the data's; None when nothing gives a shape."""
    shape = setup.input_shape or space.input_shape or (data_info and data_info.input_shape)
    return InputSpec(tuple(int(s) for s in shape), setup.batch_size) if shape else None


Measure = Callable[[TrialTask], Metrics]
"""Measures a trial's architecture somewhere else (the executor's measurement process)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TrialRunner:
    """Builds the job's space, trainer, reward and hardware backend once, then runs trials.

    ``run`` never raises for a trial's own failure: an exception, a non-finite metric or a
    trainer that returns no metrics gives a ``failed`` outcome with the reason; a hard
    constraint violated by pre-training metrics gives ``infeasible`` without training.
    """

    def __init__(
        self,
        setup: WorkerSetup,
        plugins: Plugins | None = None,
        measure_elsewhere: Measure | None = None,
    ) -> None:
        self.setup = setup
        plugins = plugins or get_plugins(setup.blocked_plugins)
        self.dataset: Dataset | None = None
        self._data: DataSplit | None = None
        data_info: DataInfo | None = None
        if setup.data is not None:
            self.dataset = plugins.registry("data").create(setup.data.name, **setup.data.params)
            data_info = self.dataset.info()
        self.space: SearchSpace = create_space(plugins, setup.space, data_info)
        self.trainer: Trainer = plugins.registry("trainer").create(
            setup.trainer.name, **setup.trainer.params
        )
        self.reward: Reward = plugins.registry("reward").create(
            setup.reward.name, **setup.reward.params
        )
        self.measurer: ModelMeasurer | None = None
        if setup.hardware is not None:
            backend = plugins.registry("hardware").create(
                setup.hardware.name, **setup.hardware.params
            )
            self.measurer = ModelMeasurer(
                self.space, backend, input_spec_of(setup, self.space, data_info)
            )
        self.measure_elsewhere = measure_elsewhere if setup.isolation.mode != "none" else None
        self.worker = worker_name()

    def load_data(self) -> DataSplit:
        """The job's dataset, loaded at the first call and kept for every later trial."""
        if self._data is None:
            if self.dataset is None:
                raise CorenasError("this trainer needs a dataset: choose one with data=NAME")
            self._data = self.dataset.load()
        return self._data

    def run(self, task: TrialTask, reporter: Reporter) -> TrialOutcome:
        """Run ``task``; ``reporter`` may raise ``TrialStopped`` to stop it early."""
        started = time.time()
        measured: Metrics = {}  # hardware metrics, measured (or cached) before training
        fresh: Metrics = {}  # those measured by this trial (not from the cache)
        last: Metrics = {}  # the newest value of every reported metric
        stopped = False

        def checked_reporter(step: int, metrics: Metrics) -> None:
            nonlocal stopped
            if not isinstance(metrics, dict):
                raise TrialError(f"reported metrics must be a dict, got {metrics!r}")
            check_numbers(metrics, "reported metric")
            values = {k: float(v) for k, v in metrics.items()}
            last.update(values)
            try:
                reporter(int(step), values)
            except TrialStopped:
                stopped = True
                raise

        try:
            status, metrics, error = self._run(task, checked_reporter, measured, fresh)
            if stopped and status is TrialStatus.SUCCEEDED:  # the trainer caught the stop
                status, error = TrialStatus.STOPPED, "stopped early"
        except TrialStopped:
            status, error = TrialStatus.STOPPED, "stopped early"
            metrics = {**measured, **last}
        except TrialError as exc:
            status, metrics, error = TrialStatus.FAILED, {}, str(exc)
        except CorenasError as exc:
            status, metrics, error = TrialStatus.FAILED, {}, str(exc)
        except Exception as exc:  # a trial's own failure: record it, keep searching
            tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
            status, metrics, error = TrialStatus.FAILED, {}, f"{type(exc).__name__}: {exc}\n{tail}"
        return TrialOutcome(
            trial_id=task.trial_id,
            status=status,
            metrics=metrics,
            error=error,
            started_at=started,
            finished_at=time.time(),
            worker=self.worker,
            measured=fresh,
        )

    def _run(
        self, task: TrialTask, reporter: Reporter, metrics: Metrics, fresh: Metrics
    ) -> tuple[TrialStatus, Metrics, str | None]:
        torch_loaded = "torch" in sys.modules
        seed_everything(task.seed)
        built = self.space.build(task.genome)
        if not torch_loaded and "torch" in sys.modules:
            # the builder imported torch after seeding: seed it and build again, so a model's
            # initial weights depend on its trial's seed alone (happens once per process)
            seed_everything(task.seed)
            built = self.space.build(task.genome)
        if self.measurer is not None:
            if task.measured is not None:
                metrics.update(task.measured)
            else:
                if self.measure_elsewhere is not None:
                    fresh.update(self.measure_elsewhere(task))
                else:
                    fresh.update(self.measurer.measure_model(built))
                metrics.update(fresh)
            if self.setup.prefilter and task.stage == "search":
                verdict = self.reward.precheck(metrics)
                if verdict is not None and not verdict.feasible:
                    reason = verdict.reason or "a hard limit"
                    return TrialStatus.INFEASIBLE, metrics, f"{PREFILTER_PREFIX}{reason}"
        context = TrialContext(
            trial_id=task.trial_id,
            genome=task.genome,
            arch_id=task.arch_id,
            trial_dir=os.path.join(self.setup.job_dir, "trials", str(task.trial_id)),
            seed=task.seed,
            reporter=reporter,
            devices=task.devices,
            budget=self.setup.budget if task.budget is None else task.budget,
            stage=task.stage,
            data_loader=self.load_data if self.dataset is not None else None,
        )
        trained = self.trainer.fit(built, context)
        if not isinstance(trained, dict) or not trained:
            raise TrialError("trainer returned no metrics (expected a non-empty dict)")
        check_numbers(trained, "trainer metric")
        bad = non_finite_metrics(trained)
        if bad:
            raise TrialError(f"trainer reported non-finite metric(s): {', '.join(bad)}")
        metrics.update({k: float(v) for k, v in trained.items()})
        return TrialStatus.SUCCEEDED, metrics, None
