"""The search driver: ask the controller, run trials, reward them, store everything, repeat."""

from __future__ import annotations

import math
import os
import signal
import socket
import statistics
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from corenas import __version__
from corenas.config import check_names, check_schema_keys, component, to_container
from corenas.controller.base import Controller
from corenas.data.base import DataInfo
from corenas.early_stopping import ReportJudge, StoppingRule, stopping_rule
from corenas.errors import ConfigError, TrialError
from corenas.executor.base import Executor, Finished, Report
from corenas.hardware.base import SETUP_KEYS
from corenas.jobdir import (
    check_new_job_dir,
    create_job_dir,
    discard_new_job,
    open_store,
    read_job_config,
    saving_job_config,
)
from corenas.measurement import Isolation, isolation_of, measurement_key
from corenas.plugins import Plugins, get_plugins
from corenas.progress import SearchProgress
from corenas.records import (
    SEARCH_STAGE,
    TRAIN_STAGE,
    Architecture,
    JobStatus,
    Trial,
    TrialOutcome,
    TrialStatus,
    trial_seed,
)
from corenas.reward.base import Reward
from corenas.space.base import SearchSpace
from corenas.store.base import StopRequest, Store
from corenas.trial import PREFILTER_PREFIX, ComponentSpec, TrialTask, WorkerSetup, create_space

HARDWARE_KEYS = SETUP_KEYS
"""Keys of the ``hardware`` group that are not the backend's parameters."""

STOP_CHECK_S = 0.5
"""How often the driver looks for a ``corenas stop`` request in the store."""


@dataclass
class PreparedJob:
    """A validated configuration with the driver-side plugin objects built from it."""

    config: dict[str, Any]
    space: SearchSpace
    controller: Controller
    reward: Reward
    executor: Executor
    setup: WorkerSetup


@dataclass(frozen=True)
class Stage2Request:
    """What ``corenas train`` retrains: the ``top`` search trials by reward, or ``trial_ids``."""

    top: int = 0
    trial_ids: list[int] | None = None


@dataclass
class JobSummary:
    """How a search ended."""

    job_dir: str
    status: JobStatus
    counts: dict[str, int]
    best: Trial | None
    message: str = ""
    trainings_saved: int = 0
    elapsed_s: float = 0.0
    stopped_early: int = 0
    trial_hours_saved: float = 0.0
    stage2: list[Trial] = field(default_factory=list)
    measurements_reused: int = 0
    """Trials of this run whose hardware metrics came from the job's cache."""

    def to_json(self) -> dict[str, Any]:
        return {
            "job_dir": self.job_dir,
            "status": self.status.value,
            "counts": self.counts,
            "best": self.best.to_json() if self.best else None,
            "message": self.message,
            "trainings_saved": self.trainings_saved,
            "elapsed_s": self.elapsed_s,
            "stopped_early": self.stopped_early,
            "trial_hours_saved": self.trial_hours_saved,
            "stage2": [t.to_json() for t in self.stage2],
            "measurements_reused": self.measurements_reused,
        }


def prepare(cfg: DictConfig, plugins: Plugins, job_dir: Path) -> PreparedJob:
    """Validate ``cfg`` and build the driver's plugin objects; writes nothing.

    Raises ``ConfigError`` (one line) for unknown names, bad parameters, bad types or a
    trainer target that does not import.
    """
    check_names(cfg, plugins)
    config = to_container(cfg)
    config["job_dir"] = str(job_dir)
    check_schema_keys(config)
    search = config["search"]
    for key in ("max_trials", "max_parallel_trials"):
        if search[key] < 1:
            raise ConfigError(f"search.{key} must be at least 1, got {search[key]}")
    if search["max_failed_trials"] < 0:
        raise ConfigError("search.max_failed_trials must be >= 0 (0: no limit)")
    specs = {
        group: ComponentSpec.from_config(component(cfg, group))
        for group in ("space", "controller", "trainer", "reward", "executor")
    }
    data_node = component(cfg, "data")
    data: ComponentSpec | None = None
    data_info: DataInfo | None = None
    if data_node["name"] != "none":
        data = ComponentSpec.from_config(data_node)
        data_info = plugins.registry("data").create(data.name, **data.params).info()
    space = create_space(plugins, specs["space"], data_info)
    controller = create_controller(plugins, config, space)
    reward = plugins.registry("reward").create(specs["reward"].name, **specs["reward"].params)
    plugins.registry("trainer").create(specs["trainer"].name, **specs["trainer"].params)
    executor = plugins.registry("executor").create(
        specs["executor"].name, **specs["executor"].params
    )
    hardware_node = component(cfg, "hardware")
    hardware: ComponentSpec | None = None
    isolation = Isolation()
    input_shape = hardware_node.get("input_shape")
    if hardware_node["name"] != "none":
        hardware = ComponentSpec(
            hardware_node["name"],
            {k: v for k, v in hardware_node.items() if k not in ("name", *HARDWARE_KEYS)},
        )
        backend = plugins.registry("hardware").create(hardware.name, **hardware.params)
        isolation = isolation_of(backend, hardware_node)
        if input_shape is None and space.input_shape is None and data_info is None:
            raise ConfigError(
                f"hardware '{hardware.name}' needs the model's input shape: set "
                "hardware.input_shape=[C,H,W] (this space declares none) or use hardware=none"
            )
    setup = WorkerSetup(
        job_dir=str(job_dir),
        space=specs["space"],
        trainer=specs["trainer"],
        reward=specs["reward"],
        hardware=hardware,
        input_shape=list(input_shape) if input_shape else None,
        batch_size=int(hardware_node.get("batch_size") or 1),
        prefilter=bool(search["prefilter"]),
        blocked_plugins=list(config["plugins"]["block"]),
        budget=dict(config.get("budget") or {}),
        data=data,
        judged_reports=stopping_rule(search["early_stopping"]) is not None,
        isolation=isolation,
    )
    return PreparedJob(config, space, controller, reward, executor, setup)


def create_controller(plugins: Plugins, config: dict[str, Any], space: SearchSpace) -> Controller:
    """A fresh controller of the job ``config`` (its ``controller`` group and ``seed``)."""
    spec = ComponentSpec.from_config(component(config, "controller"))
    return plugins.registry("controller").create(
        spec.name, space=space, seed=int(config["seed"]), **spec.params
    )


def plan_search(cfg: DictConfig, plugins: Plugins, job_dir: Path) -> PreparedJob:
    """Validate everything a new search in ``job_dir`` needs; writes nothing."""
    prepared = prepare(cfg, plugins, job_dir.absolute())
    check_new_job_dir(job_dir.absolute())
    return prepared


def start_search(
    cfg: DictConfig,
    plugins: Plugins,
    job_dir: Path,
    progress: bool = True,
    prepared: PreparedJob | None = None,
    announce: Callable[[Path], None] | None = None,
    judge: ReportJudge | None = None,
) -> JobSummary:
    """Validate (unless ``prepared`` by ``plan_search``), create ``job_dir`` and run a new
    search in it; ``announce(job_dir)`` is called once the directory exists. ``judge`` stops
    search trials from their reports, beside ``search.early_stopping``."""
    job_dir = job_dir.absolute()
    if prepared is None:
        prepared = plan_search(cfg, plugins, job_dir)
    created = create_job_dir(job_dir)
    if announce is not None:
        announce(job_dir)
    owned, recorded = True, False  # the job dir's store files are this search's / hold its job
    try:
        store = open_store(job_dir, prepared.config["storage"], plugins)
        try:
            try:
                store.acquire_driver_lock(_owner())
            except BaseException:
                owned = store.driver() is None  # else another driver made them: not ours
                raise
            prepared.config["corenas_version"] = __version__
            with saving_job_config(job_dir, prepared.config):  # the file only with the job row
                store.create_job(job_dir.name, prepared.config)
            recorded = True
            driver = SearchDriver(prepared, store, plugins, job_dir, resumed=False, judge=judge)
            return driver.run(progress)
        finally:
            store.close()
    except BaseException:
        if owned and not recorded and not prepared.config["storage"].get("url"):
            discard_new_job(job_dir, created)  # a full disk leaves no half-made job behind
        raise


def plan_resume(job_dir: Path, overrides: list[str], plugins: Plugins) -> PreparedJob:
    """Validate a resume of ``job_dir`` with ``overrides`` (``key=value``); writes nothing."""
    from corenas.config import compose

    job_dir = job_dir.absolute()
    cfg = compose(plugins, overrides, base=read_job_config(job_dir))
    if cfg.plugins.block:
        plugins = get_plugins(list(cfg.plugins.block))
    return prepare(cfg, plugins, job_dir)


def resume_search(
    job_dir: Path,
    overrides: list[str],
    plugins: Plugins,
    progress: bool = True,
    prepared: PreparedJob | None = None,
    announce: Callable[[Path], None] | None = None,
    retrain: Stage2Request | None = None,
    judge: ReportJudge | None = None,
) -> JobSummary:
    """Continue a stopped or crashed job: finished trials are kept, interrupted ones re-run.
    ``announce(job_dir)`` is called once this process holds the job's driver lock. With
    ``retrain`` only stage 2 runs (``corenas train``): the requested search trials are
    retrained with the full budget and interrupted stage-2 trials re-run (from their
    checkpoints, when the trainer keeps them); the search itself is left as it is. ``judge``
    as for ``start_search``."""
    job_dir = job_dir.absolute()
    if prepared is None:
        prepared = plan_resume(job_dir, overrides, plugins)
    if prepared.config["plugins"]["block"]:
        plugins = get_plugins(list(prepared.config["plugins"]["block"]))
    store = open_store(job_dir, prepared.config["storage"], plugins)
    try:
        store.acquire_driver_lock(_owner())
        if store.job() is None:
            raise ConfigError(f"'{job_dir}' has no search to resume (its store is empty)")
        if announce is not None:
            announce(job_dir)
        prepared.config["corenas_version"] = __version__
        if overrides:
            with saving_job_config(job_dir, prepared.config):  # both copies or neither
                store.update_job(config=prepared.config)
        driver = SearchDriver(
            prepared, store, plugins, job_dir, resumed=True, retrain=retrain, judge=judge
        )
        return driver.run(progress)
    finally:
        store.close()


def _owner() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


class SearchDriver:
    """Runs the stage-1 loop of one job until max_trials, exhaustion, failure limit or a stop,
    with stage 2 (``search.stage2``) every M trials and at the end; with ``train_only`` it runs
    only stage-2 trials (``corenas train``) and leaves the search as it is.

    Search and stage-2 trials share the executor and the trial ids; only search trials count
    towards ``max_trials`` and the failure limit and reach the controller. A search trial is
    stopped early when ``search.early_stopping`` judges one of its reports hopeless.

    Crash safety: a trial and the controller state that produced it are stored in one
    transaction, and so are a finished trial and the controller state after learning from it;
    on resume the controller is restored from the newest state and interrupted trials re-run.
    """

    def __init__(
        self,
        prepared: PreparedJob,
        store: Store,
        plugins: Plugins,
        job_dir: Path,
        resumed: bool,
        retrain: Stage2Request | None = None,
        judge: ReportJudge | None = None,
    ) -> None:
        self.prepared = prepared
        self.store = store
        self.plugins = plugins
        self.job_dir = job_dir
        self.resumed = resumed
        search = prepared.config["search"]
        self.max_trials = int(search["max_trials"])
        self.max_parallel = int(search["max_parallel_trials"])
        self.max_failed = int(search["max_failed_trials"])
        timeout = search.get("trial_timeout_s")
        self.timeout_s = float(timeout) if timeout else None
        self.seed = int(prepared.config["seed"])
        self.rule: StoppingRule | None = stopping_rule(search["early_stopping"])
        self.judge = judge
        stage2 = search["stage2"]
        self.stage2_top = int(stage2["top"])
        self.stage2_every = int(stage2["every"])
        self.stage2_budget = {**prepared.setup.budget, **(stage2.get("budget") or {})}
        self.retrain = retrain
        self.train_only = retrain is not None
        self._stop_signal: int | None = None
        self.owner = _owner()  # what this process wrote into the driver lock
        self._stop: StopRequest | None = None  # a `corenas stop` for this driver
        self._next_stop_check = 0.0
        self._queue: deque[Trial] = deque()
        self._running: dict[int, Trial] = {}
        self._counts = {status: 0 for status in TrialStatus}  # search trials
        self._train_counts = {status: 0 for status in TrialStatus}  # stage-2 trials
        self._retrained: set[str] = set()  # architectures with a stage-2 trial
        self._final_stage2_done = False
        self._created = 0
        self._best: float | None = None
        self._exhausted = False
        self._measurements_reused = 0

    # --- events ---------------------------------------------------------------------------
    def _emit(self, hook: str, **kwargs: Any) -> None:
        try:
            getattr(self.plugins.hook, hook)(job_dir=str(self.job_dir), **kwargs)
        except Exception as exc:  # a logger must not stop the search
            warnings.warn(f"event hook {hook} raised {type(exc).__name__}: {exc}", stacklevel=2)

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def request_stop(signum: int, frame: object) -> None:
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_signal = signum

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(ValueError):  # not the main thread: no handlers
                previous[sig] = signal.signal(sig, request_stop)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # --- loop -----------------------------------------------------------------------------
    def _restore(self) -> None:
        """On resume: interrupted trials back in the queue, the controller as last saved, the
        early-stopping history rebuilt from the stored reports."""
        if self.resumed:
            pending = self.store.requeue_unfinished()
            if self.train_only:  # interrupted search trials wait for `corenas resume`
                pending = [t for t in pending if t.stage == TRAIN_STAGE]
            self._queue.extend(pending)
        trials = self.store.trials()
        search = [t for t in trials if t.stage == SEARCH_STAGE]
        for trial in trials:
            self._counts_of(trial)[trial.status] += 1
            if trial.stage == TRAIN_STAGE:
                self._retrained.add(trial.arch_id)
        for trial in search:
            if trial.reward is not None and (self._best is None or trial.reward > self._best):
                self._best = trial.reward
            if self.rule is not None or self.judge is not None:
                for step, metrics in self.store.intermediate(trial.id):
                    if self.rule is not None:
                        self.rule.observe(trial.id, step, metrics)
                    if self.judge is not None:
                        self.judge.observe(trial, step, metrics)
        self._created = len(search)
        if self.resumed and not self.train_only:
            self._restore_controller(search)
            finished = sum(t.status.is_final for t in search)
            if self.stage2_every > 0 and finished >= self.stage2_every:
                self._schedule_stage2(self.stage2_top)  # a round the crash may have cut short

    def _restore_controller(self, search: list[Trial]) -> None:
        """The controller from the newest checkpoint; when that is unreadable (not JSON, or a
        shape ``load_state_dict`` refuses), a fresh controller rebuilt from the stored trials
        alone (``load_state_dict({}, trials)``), with a warning on stderr."""
        try:
            state = self.store.controller_state()
            state = {} if state is None else state  # None: no checkpoint yet
            if not isinstance(state, dict):
                raise TypeError(f"a JSON {type(state).__name__}, not an object")
            self.prepared.controller.load_state_dict(state, search)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            controller = create_controller(self.plugins, self.prepared.config, self.prepared.space)
            controller.load_state_dict({}, search)
            self.prepared.controller = controller
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
            print(
                f"corenas: warning: the controller checkpoint of {self.job_dir} is unreadable "
                f"({reason}); rebuilt the controller from the {len(search)} stored search trials",
                file=sys.stderr,
            )

    def _check_stop_request(self, progress: SearchProgress, force: bool = False) -> None:
        """Take up a ``corenas stop`` addressed to this driver (looked for every
        ``STOP_CHECK_S``, and with ``force`` now): ``drain`` starts no new trials, ``now``
        ends the loop."""
        now = time.monotonic()
        if self._stopping_now() or (now < self._next_stop_check and not force):
            return
        self._next_stop_check = now + STOP_CHECK_S
        request = self.store.stop_request()
        if request is None or request.driver != self.owner:
            return
        first = self._stop is None
        self._stop = request
        if first and request.mode == "drain":
            ids = ", ".join(str(i) for i in sorted(self._running)) or "none"
            progress.close()  # end a redrawn progress line before this one
            print(
                f"corenas: stop requested by {request.requested_by}: starting no new trials, "
                f"waiting for the running ones to finish (trials {ids}); `corenas stop "
                f"{self.job_dir} --now` or Ctrl-C stops them at once",
                file=sys.stderr,
            )

    @property
    def _draining(self) -> bool:
        return self._stop is not None and self._stop.mode == "drain"

    def _stopping_now(self) -> bool:
        return self._stop is not None and self._stop.mode == "now"

    def _stop_by(self) -> str:
        return "" if self._stop is None else f"asked by {self._stop.requested_by}"

    def _counts_of(self, trial: Trial) -> dict[TrialStatus, int]:
        return self._counts if trial.stage == SEARCH_STAGE else self._train_counts

    def _schedule_stage2(self, top: int, trial_ids: list[int] | None = None) -> list[Trial]:
        """Queue stage-2 trials for the ``top`` best search trials (or ``trial_ids``) whose
        architecture has none yet; returns them."""
        if trial_ids is not None:
            chosen = [self.store.trial(i) for i in trial_ids]
            for trial in chosen:
                if trial.stage != SEARCH_STAGE or trial.status is not TrialStatus.SUCCEEDED:
                    raise ConfigError(
                        f"trial {trial.id} is a {trial.stage} trial that {trial.status.value}; "
                        "stage 2 retrains succeeded search trials (see `corenas trials list "
                        f"{self.job_dir} --status succeeded`)"
                    )
        else:
            chosen = best_trials(self.store, top) if top > 0 else []
        fresh = [t for t in chosen if t.arch_id not in self._retrained]
        if not fresh:
            return []
        added = self.store.add_trials(
            [Architecture(t.genome, t.arch_id) for t in fresh],
            None,
            stage=TRAIN_STAGE,
            parents=[t.id for t in fresh],
        )
        for trial in added:
            self._retrained.add(trial.arch_id)
            self._train_counts[TrialStatus.PENDING] += 1
        self._queue.extend(added)
        return added

    def _judge(self, report: Report) -> bool:
        """Early stopping: True when the reporting search trial should stop."""
        trial = self._running.get(report.trial_id)
        if trial is None or trial.stage != SEARCH_STAGE:
            return False
        stop = False
        if self.rule is not None:
            stop = self.rule.judge(report.trial_id, report.step, report.metrics) is not None
        if self.judge is not None:
            stop = self.judge.judge(trial, report.step, report.metrics) is not None or stop
        return stop

    def _failure_limit_reached(self) -> bool:
        return self.max_failed > 0 and self._counts[TrialStatus.FAILED] >= self.max_failed

    def _fill(self, executor: Executor, progress: SearchProgress) -> None:
        free = min(executor.capacity, self.max_parallel) - len(self._running)
        if free <= 0 or self._failure_limit_reached():
            return
        may_create = not (self.train_only or self._exhausted) and self._created < self.max_trials
        if not (self._queue or may_create):
            return
        self._check_stop_request(progress, force=True)  # no trial starts after a stop request
        if self._stop is not None:
            return
        while free > 0 and self._queue:
            self._submit(executor, self._queue.popleft())
            free -= 1
        want = min(free, self.max_trials - self._created)
        if want <= 0 or self._exhausted or self.train_only:
            return
        genomes = self.prepared.controller.ask(want)
        if len(genomes) < want and not self._running:
            self._exhausted = not genomes
        if not genomes:
            return
        space = self.prepared.space
        architectures = [Architecture.of(space.validate(g)) for g in genomes[:want]]
        state = self.prepared.controller.state_dict()
        for trial in self.store.add_trials(architectures, state):
            self._created += 1
            self._counts[TrialStatus.PENDING] += 1
            self._submit(executor, trial)

    def _measurement_key(self, trial: Trial) -> str | None:
        setup = self.prepared.setup
        return None if setup.hardware is None else measurement_key(setup, trial.arch_id)

    def _submit(self, executor: Executor, trial: Trial) -> None:
        key = self._measurement_key(trial)
        measured = None if key is None else self.store.measurement(key)
        if measured is not None:
            self._measurements_reused += 1
        task = TrialTask(
            trial_id=trial.id,
            genome=trial.genome,
            arch_id=trial.arch_id,
            seed=trial_seed(self.seed, trial.id),
            stage=trial.stage,
            budget=self.stage2_budget if trial.stage == TRAIN_STAGE else None,
            measured=measured,
        )
        executor.submit(task, None if trial.stage == TRAIN_STAGE else self.timeout_s)
        trial.status = TrialStatus.RUNNING
        trial.started_at = time.time()
        trial.worker = executor.where(trial.id) or "submitted"
        self.store.mark_running(trial.id, trial.worker, trial.started_at)
        counts = self._counts_of(trial)
        counts[TrialStatus.PENDING] -= 1
        counts[TrialStatus.RUNNING] += 1
        self._running[trial.id] = trial
        self._emit("corenas_trial_started", trial=trial)

    def _finish(self, outcome: TrialOutcome) -> None:
        if outcome.trial_id not in self._running:  # not ours (an executor's stale report)
            return
        trial = self._running.pop(outcome.trial_id)
        status, metrics, error = outcome.status, dict(outcome.metrics), outcome.error
        reward: float | None = None
        if status is TrialStatus.SUCCEEDED:
            try:
                result = self.prepared.reward(metrics)
                if not result.feasible:
                    status, error = TrialStatus.INFEASIBLE, result.reason or "infeasible"
                elif not math.isfinite(result.value):
                    status, error = TrialStatus.FAILED, f"reward is {result.value}"
                else:
                    reward = float(result.value)
            except TrialError as exc:
                status, error = TrialStatus.FAILED, str(exc)
        finished_at = outcome.finished_at or time.time()
        told = Trial(
            id=trial.id,
            genome=trial.genome,
            arch_id=trial.arch_id,
            status=status,
            metrics=metrics,
            reward=reward,
            error=error,
            created_at=trial.created_at,
            started_at=outcome.started_at or trial.started_at,
            finished_at=finished_at,
            worker=outcome.worker,
            stage=trial.stage,
            parent_id=trial.parent_id,
        )
        key = self._measurement_key(trial)
        if key is not None and outcome.measured:
            self.store.save_measurement(key, outcome.measured)
        search = trial.stage == SEARCH_STAGE
        if search:
            self.prepared.controller.tell(told)
        stored = self.store.finish_trial(
            trial.id,
            status,
            metrics,
            reward,
            error,
            told.started_at,
            finished_at,
            outcome.worker,
            self.prepared.controller.state_dict() if search else None,
        )
        counts = self._counts_of(trial)
        counts[TrialStatus.RUNNING] -= 1
        counts[status] += 1
        if search and reward is not None and (self._best is None or reward > self._best):
            self._best = reward
        self._emit("corenas_trial_finished", trial=stored)
        if search and self.stage2_every > 0 and self.stage2_top > 0:
            finished = sum(n for s, n in self._counts.items() if s.is_final)
            if finished % self.stage2_every == 0:
                self._schedule_stage2(self.stage2_top)

    def _report(self, event: Report) -> None:
        metrics = {k: float(v) for k, v in event.metrics.items() if math.isfinite(float(v))}
        if event.trial_id in self._running and metrics:
            self.store.report(event.trial_id, event.step, metrics)
            self._emit(
                "corenas_trial_reported",
                trial_id=event.trial_id,
                step=event.step,
                metrics=metrics,
            )

    def _done(self) -> bool:
        """Nothing runs or waits, and the search is over; schedules the final stage 2 (which
        makes the job not done yet) the first time the search is over."""
        if self._running:
            return False
        if self._failure_limit_reached():
            return True
        if self._queue:
            return False
        if not self.train_only and self._created < self.max_trials and not self._exhausted:
            return False
        if self.stage2_top > 0 and not self._final_stage2_done and not self.train_only:
            self._final_stage2_done = True
            return not self._schedule_stage2(self.stage2_top)
        return True

    def _show(self, progress: SearchProgress, force: bool = False) -> None:
        c = self._train_counts if self.train_only else self._counts
        progress.update(
            c[TrialStatus.SUCCEEDED]
            + c[TrialStatus.FAILED]
            + c[TrialStatus.INFEASIBLE]
            + c[TrialStatus.STOPPED],
            c[TrialStatus.RUNNING],
            c[TrialStatus.FAILED],
            c[TrialStatus.INFEASIBLE],
            self._best,
            force=force,
        )

    def run(self, show_progress: bool = True) -> JobSummary:
        started = time.monotonic()
        self._restore()
        if self.retrain is not None:
            self._schedule_stage2(self.retrain.top, self.retrain.trial_ids)
        else:
            self.store.update_job(status=JobStatus.RUNNING)
        executor = self.prepared.executor
        judged = self.rule is not None or self.judge is not None
        self.prepared.setup.judged_reports = judged
        executor.set_judge(self._judge if judged else None)
        try:
            executor.start(self.prepared.setup, self.max_parallel, self.plugins)
        except BaseException:  # e.g. no GPU for the trainer: the job is not left "running"
            if not self.train_only:
                self.store.update_job(status=JobStatus.FAILED)
            raise
        total = sum(self._train_counts.values()) if self.train_only else self.max_trials
        progress = SearchProgress(total, enabled=show_progress)
        self._emit("corenas_job_started", config=self.prepared.config, resumed=self.resumed)
        # Until the loop ends normally the job counts as failed: an unexpected error (a full
        # disk, a broken store) must not leave it marked completed.
        status, message = JobStatus.FAILED, ""
        try:
            with self._signals():
                while True:
                    self._check_stop_request(progress)
                    if self._stop_signal is not None or self._stopping_now():
                        break
                    if self._draining:  # no new trials; wait for the running ones
                        if not self._running:
                            break
                    elif self._done():
                        break
                    else:
                        self._fill(executor, progress)
                        if self._done():
                            break
                    for event in executor.poll(timeout=0.2):
                        if isinstance(event, Report):
                            self._report(event)
                        elif isinstance(event, Finished):
                            self._finish(event.outcome)
                    self._show(progress)
            status = JobStatus.COMPLETED
            if self._stop_signal is not None:
                status = JobStatus.STOPPED
                name = signal.Signals(self._stop_signal).name
                message = f"stopped by {name}; continue with `corenas resume {self.job_dir}`"
            elif self._stopping_now():
                status = JobStatus.STOPPED
                message = (
                    f"stopped by `corenas stop --now` ({self._stop_by()}); running trials were "
                    f"set back to pending; continue with `corenas resume {self.job_dir}`"
                )
            elif self._failure_limit_reached():
                status = JobStatus.FAILED
                message = (
                    f"stopped: {self._counts[TrialStatus.FAILED]} trials failed "
                    f"(search.max_failed_trials={self.max_failed}); see `corenas trials list "
                    f"{self.job_dir} --status failed`, then go on with `corenas resume "
                    f"{self.job_dir} search.max_failed_trials=N` (N above "
                    f"{self._counts[TrialStatus.FAILED]}, or 0 for no limit)"
                )
            elif self._draining:
                status = JobStatus.STOPPED
                message = (
                    f"stopped by `corenas stop` ({self._stop_by()}) after the running trials "
                    f"finished; continue with `corenas resume {self.job_dir}`"
                )
            elif self._exhausted and self._created < self.max_trials:
                message = f"search space exhausted after {self._created} trials"
        except KeyboardInterrupt:
            status = JobStatus.STOPPED
            message = f"interrupted; continue with `corenas resume {self.job_dir}`"
        finally:
            cancelled = executor.cancel_all()
            executor.shutdown()
            if cancelled or self._queue or self._running:
                self.store.requeue_unfinished()
            if self._stop is not None or self.store.stop_request() is not None:
                self.store.clear_stop_request()  # handled, or addressed to a dead driver
            self._show(progress, force=True)
            progress.close()
            if not self.train_only:
                self.store.update_job(status=status)
        summary = self.summary(status, message, time.monotonic() - started)
        self._emit("corenas_job_finished", status=status.value, summary=summary.to_json())
        return summary

    def summary(self, status: JobStatus, message: str, elapsed: float) -> JobSummary:
        counts = {s.value: n for s, n in self.store.counts().items()}
        best = best_trials(self.store, 1)
        trials = self.store.trials()
        search = [t for t in trials if t.stage == SEARCH_STAGE]
        stopped = [t for t in search if t.status is TrialStatus.STOPPED]
        return JobSummary(
            job_dir=str(self.job_dir),
            status=status,
            counts=counts,
            best=best[0] if best else None,
            message=message,
            trainings_saved=sum(
                t.status is TrialStatus.INFEASIBLE and (t.error or "").startswith(PREFILTER_PREFIX)
                for t in search
            ),
            elapsed_s=elapsed,
            stopped_early=len(stopped),
            trial_hours_saved=trial_hours_saved(search),
            stage2=[t for t in trials if t.stage == TRAIN_STAGE],
            measurements_reused=self._measurements_reused,
        )


def trial_hours_saved(trials: list[Trial]) -> float:
    """Training time early stopping saved, in hours: for each stopped trial, the median
    duration of the trials trained to the end minus its own duration."""
    full = [
        t.duration_s
        for t in trials
        if t.status is TrialStatus.SUCCEEDED and t.duration_s is not None
    ]
    if not full:
        return 0.0
    median = statistics.median(full)
    saved = sum(
        max(0.0, median - (t.duration_s or 0.0)) for t in trials if t.status is TrialStatus.STOPPED
    )
    return saved / 3600.0


def best_trials(store: Store, top: int, stage: str = SEARCH_STAGE) -> list[Trial]:
    """Succeeded trials of ``stage`` with a reward, best first (ties: lower id first)."""
    return best_of(store.trials(TrialStatus.SUCCEEDED), top, stage)


def best_of(trials: Sequence[Trial], top: int, stage: str = SEARCH_STAGE) -> list[Trial]:
    """``best_trials`` of trials already read."""
    ranked = [
        t
        for t in trials
        if t.status is TrialStatus.SUCCEEDED and t.reward is not None and t.stage == stage
    ]
    ranked.sort(key=lambda t: (-(t.reward or 0.0), t.id))
    return ranked[:top]
