"""Controllers on tabular benchmarks, in-process: seeds in parallel, incumbent curves, summary.

A *run* is one controller with one seed for ``max(budgets)`` trials: a search with one trial
at a time, minus the store and the executor. Its controller, space, trainer and reward are
created by the search's own ``corenas.engine.prepare`` from a composed search config
(``controller=NAME`` plus its overrides, the table's space and trainer, reward = the metric),
and each trial runs through the search's ``corenas.trial.TrialRunner`` with the seed a search
gives it (``trial_seed``), so built-in, YAML-configured and plugin controllers see exactly
what they see in ``corenas search``: the trainer's metrics (the table values, the benchmarked
one with seeded Gaussian noise) and the reward (the observed value, negated for
``mode="min"``). After every trial the run records the TRUE table value of its incumbent, the
architecture with the best observed reward so far.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from corenas.benchmarks.base import TabularBenchmark, best_row, check_mode, check_noise
from corenas.errors import ConfigError
from corenas.progress import SearchProgress, _clock
from corenas.records import Genome, Metrics, Trial, TrialStatus, architecture_id, trial_seed

Evaluate = Callable[[Genome, int], tuple[float, Metrics]]
"""``evaluate(genome, trial_id) -> (reward, metrics)``: the outcome of a trial."""

BUILTIN_TABLES = ("nb201",)


def ask_tell(
    controller: Any,
    evaluate: Evaluate,
    trials: int,
    batch: int = 1,
    start_id: int = 1,
) -> list[Trial]:
    """Drive ``controller`` without a job: ask ``batch`` genomes at a time, tell each as a
    succeeded trial with the reward and metrics of ``evaluate(genome, trial_id)``, until
    ``trials`` trials or until the controller has nothing more to propose. Returns the trials in
    order; raises AssertionError if ``ask(n)`` returns more than ``n`` genomes."""
    done: list[Trial] = []
    while len(done) < trials:
        want = min(batch, trials - len(done))
        asked = controller.ask(want)
        assert len(asked) <= want, "ask(n) returned more than n genomes"
        if not asked:
            break
        for genome in asked:
            trial_id = start_id + len(done)
            reward, metrics = evaluate(genome, trial_id)
            trial = Trial(
                id=trial_id,
                genome=genome,
                arch_id=architecture_id(genome),
                status=TrialStatus.SUCCEEDED,
                metrics=dict(metrics),
                reward=float(reward),
            )
            controller.tell(trial)
            done.append(trial)
    return done


def open_benchmark(table: str) -> TabularBenchmark:
    """``nb201`` (the shipped NAS-Bench-201 table) or the table described by a YAML file."""
    if table == "nb201":
        from corenas.benchmarks.nb201 import NB201Table

        return NB201Table()
    if table.endswith((".yaml", ".yml")):
        from corenas.benchmarks.table import open_table

        return open_table(table)
    raise ConfigError(
        f"unknown table {table!r}; give {', '.join(BUILTIN_TABLES)} or the path of a table "
        "YAML file (docs/benchmarking.md)"
    )


def incumbent_curve(
    trials: Sequence[Trial], true_value: Callable[[Genome], float], length: int
) -> list[float]:
    """After each trial, ``true_value`` of the trial with the highest reward so far (the first
    of equals); padded to ``length`` with the last value when the controller stopped early."""
    curve: list[float] = []
    best, value = -math.inf, math.nan
    for trial in trials:
        if trial.reward is not None and trial.reward > best:
            best, value = trial.reward, true_value(trial.genome)
        curve.append(value)
    return curve + [value] * (length - len(curve))


@dataclass(frozen=True)
class RunSpec:
    """What every run of a benchmark shares (JSON data, sent to worker processes)."""

    table: str
    metric: str
    trials: int
    configs: dict[str, dict[str, Any]]
    """Controller label -> composed search config (with the controller's node)."""


def run_seed(spec: RunSpec, label: str, seed: int, plugins: Any = None) -> list[float]:
    """One run: controller ``label`` seeded ``seed`` for ``spec.trials`` trials; returns the
    incumbent's true metric value after each trial. A trial that fails (it cannot, on a table
    its space matches) raises ``ConfigError`` with the reason."""
    from omegaconf import OmegaConf

    from corenas.engine import prepare
    from corenas.plugins import get_plugins
    from corenas.trial import TrialRunner, TrialTask

    plugins = plugins or get_plugins()
    config = dict(spec.configs[label], seed=seed)
    prepared = prepare(OmegaConf.create(config), plugins, Path(config["job_dir"]))
    runner = TrialRunner(prepared.setup, plugins)
    table = open_benchmark(spec.table)
    column = table.column(spec.metric)

    def evaluate(genome: Genome, trial_id: int) -> tuple[float, Metrics]:
        task = TrialTask(trial_id, genome, architecture_id(genome), trial_seed(seed, trial_id))
        outcome = runner.run(task, lambda step, metrics: None)
        if outcome.status is not TrialStatus.SUCCEEDED:
            raise ConfigError(
                f"controller '{label}', seed {seed}: trial {trial_id} {outcome.status.value}: "
                f"{' '.join((outcome.error or '').split())}"
            )
        return prepared.reward(outcome.metrics).value, outcome.metrics

    trials = ask_tell(prepared.controller, evaluate, spec.trials)
    return incumbent_curve(trials, lambda g: float(column[table.row(g)]), spec.trials)


@dataclass
class BenchmarkResult:
    """Incumbent curves (controller -> seeds x trials array) and what produced them."""

    table: str
    source: str
    metric: str
    mode: str
    noise: float
    seeds: int
    budgets: list[int]
    optimum: float
    curves: dict[str, np.ndarray]
    elapsed_s: float = 0.0
    jobs: int = 1
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_seed: int = 0
    """The seeds run are ``first_seed .. first_seed + seeds - 1``."""

    def seed_text(self) -> str:
        """``50 seeds`` (seeds 0 .. 49), or ``200 seeds (50-249)`` for other first seeds."""
        last = self.first_seed + self.seeds - 1
        return f"{self.seeds} seeds" + (f" ({self.first_seed}-{last})" if self.first_seed else "")

    def summary(self) -> dict[str, dict[int, dict[str, float]]]:
        """controller -> budget -> mean, std (over seeds, ddof 0) and n of the incumbent's
        true value after ``budget`` trials."""
        return {
            label: {
                budget: {
                    "mean": float(curves[:, budget - 1].mean()),
                    "std": float(curves[:, budget - 1].std()),
                    "n": int(curves.shape[0]),
                }
                for budget in self.budgets
            }
            for label, curves in self.curves.items()
        }

    def to_json(self) -> dict[str, Any]:
        """``results`` (controller -> budget as a string -> mean, std, n) plus the inputs, the
        optimum and the mean and std curves (one value per trial) for plotting."""
        return {
            "table": self.table,
            "source": self.source,
            "metric": self.metric,
            "mode": self.mode,
            "noise": self.noise,
            "seeds": self.seeds,
            "first_seed": self.first_seed,
            "budgets": self.budgets,
            "optimum": self.optimum,
            "controllers": self.settings,
            "results": {
                label: {str(budget): stats for budget, stats in row.items()}
                for label, row in self.summary().items()
            },
            "curves": {
                label: {
                    "mean": [float(v) for v in curves.mean(axis=0)],
                    "std": [float(v) for v in curves.std(axis=0)],
                }
                for label, curves in self.curves.items()
            },
            "elapsed_s": self.elapsed_s,
            "jobs": self.jobs,
        }


class RunProgress(SearchProgress):
    """The search progress line, counting runs: ``[###---] 120/1000 runs | 2 workers | 00:04``."""

    def line(
        self, done: int, running: int, failed: int, infeasible: int, best: float | None
    ) -> str:
        filled = int(24 * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (24 - filled)
        workers = "worker" if running == 1 else "workers"
        elapsed = _clock(time.monotonic() - self.start)
        return f"[{bar}] {done}/{self.total} runs | {running} {workers} | {elapsed}"


def search_config(
    plugins: Any,
    table: TabularBenchmark,
    controller: str,
    overrides: Sequence[str],
    metric: str,
    mode: str,
    noise: float,
) -> tuple[dict[str, Any], int | float]:
    """The search config of one benchmarked controller, validated by the search's ``prepare``,
    and the size of its space: ``controller=NAME`` and the ``KEY=VALUE`` overrides (as
    ``++controller.KEY=VALUE``, so parameters without a YAML default reach the controller, which
    rejects unknown ones) composed as ``corenas search`` does, the table's space, trainer and
    reward for ``metric``, ``mode`` and ``noise``, one trial at a time inline."""
    from omegaconf import OmegaConf

    from corenas.config import compose, to_container
    from corenas.engine import prepare

    cfg = compose(
        plugins,
        [
            f"controller={controller}",
            *[f"++controller.{item}" for item in overrides],  # adds parameters YAML lacks
            "hardware=none",
            "executor=inline",
            "job_dir=benchmark",
            "search.max_parallel_trials=1",
        ],
    )
    for group, node in table.search_nodes(metric, mode, noise).items():
        cfg[group] = node
    config = to_container(cfg)
    prepared = prepare(OmegaConf.create(config), plugins, Path(config["job_dir"]))
    return config, prepared.space.size()


def run_benchmark(
    table: str,
    metric: str,
    controllers: Sequence[str],
    budgets: Sequence[int],
    seeds: int,
    noise: float = 0.0,
    mode: str = "max",
    overrides: dict[str, list[str]] | None = None,
    jobs: int = 1,
    progress: bool = False,
    plugins: Any = None,
    stream: TextIO | None = None,
    first_seed: int = 0,
) -> BenchmarkResult:
    """Run every controller with seeds ``first_seed .. first_seed + seeds - 1`` for
    ``max(budgets)`` trials on ``table`` (``nb201`` or a table YAML path) and return the
    incumbent curves (row ``i`` is seed ``first_seed + i``).

    ``overrides`` maps a controller to its ``KEY=VALUE`` parameter overrides (Hydra syntax).
    With ``jobs > 1`` runs go to that many worker processes (spawned; they get JSON data and
    load plugins from the environment, so plugins registered in-process only run with
    ``jobs=1``); results do not depend on ``jobs``. Raises ``ConfigError`` (one line) for an
    unknown table, metric or controller, bad parameters or budgets."""
    from corenas.plugins import get_plugins

    plugins = plugins or get_plugins()
    mode = check_mode(mode, "benchmark")
    noise = check_noise(noise, "benchmark")
    labels = list(controllers)
    overrides = dict(overrides or {})
    _check_inputs(labels, budgets, seeds, first_seed, jobs, overrides)
    benchmark = open_benchmark(table)
    if table not in BUILTIN_TABLES:  # name the file unambiguously in the result and workers
        table = os.path.abspath(table)
    if metric not in benchmark.metrics:
        raise ConfigError(
            f"table '{benchmark.name}' has no metric {metric!r}; its metrics: "
            f"{', '.join(benchmark.metrics)}"
        )
    configs: dict[str, dict[str, Any]] = {}
    for label in labels:
        configs[label], size = search_config(
            plugins, benchmark, label, overrides.get(label, []), metric, mode, noise
        )
    if max(budgets) > size:
        raise ConfigError(f"budget {max(budgets)} is larger than the space ({size} architectures)")
    spec = RunSpec(table, metric, max(budgets), configs)
    column = benchmark.column(metric)
    started = time.monotonic()
    tasks = [(label, seed) for label in labels for seed in range(first_seed, first_seed + seeds)]
    jobs = max(1, min(jobs, len(tasks)))
    meter = RunProgress(len(tasks), stream=stream, enabled=progress)
    curves = {label: np.full((seeds, spec.trials), np.nan) for label in labels}
    done = 0
    try:
        for label, seed, curve in _run_all(spec, tasks, jobs, plugins):
            curves[label][seed - first_seed] = curve
            done += 1
            meter.update(done, min(jobs, len(tasks) - done), 0, 0, None, force=done == len(tasks))
    finally:
        meter.close()
    return BenchmarkResult(
        table=benchmark.name,
        source=table,
        metric=metric,
        mode=mode,
        noise=noise,
        seeds=seeds,
        budgets=sorted(set(budgets)),
        optimum=float(column[best_row(column, mode)]),
        curves=curves,
        elapsed_s=time.monotonic() - started,
        jobs=jobs,
        settings={label: dict(configs[label]["controller"]) for label in labels},
        first_seed=first_seed,
    )


def _check_inputs(
    labels: list[str],
    budgets: Sequence[int],
    seeds: int,
    first_seed: int,
    jobs: int,
    overrides: dict[str, list[str]],
) -> None:
    if not labels:
        raise ConfigError("no controllers to run")
    duplicate = next((name for name in labels if labels.count(name) > 1), None)
    if duplicate:
        raise ConfigError(f"controller '{duplicate}' is listed twice")
    if not budgets or min(budgets) < 1:
        raise ConfigError(f"budgets must be positive trial counts, got {list(budgets)}")
    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    if first_seed < 0:
        raise ConfigError(f"the first seed must be at least 0, got {first_seed}")
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    stray = [name for name in overrides if name not in labels]
    if stray:
        raise ConfigError(
            f"parameters given for controller '{stray[0]}', which is not benchmarked "
            f"(controllers: {', '.join(labels)})"
        )


RunResult = tuple[str, int, list[float]]

_WORKER_SPEC: RunSpec | None = None


def _init_worker(data: dict[str, Any]) -> None:
    global _WORKER_SPEC
    _WORKER_SPEC = RunSpec(**data)


def _work(task: tuple[str, int]) -> RunResult:
    assert _WORKER_SPEC is not None, "worker not initialised"
    label, seed = task
    return label, seed, run_seed(_WORKER_SPEC, label, seed)


def _run_all(
    spec: RunSpec, tasks: list[tuple[str, int]], jobs: int, plugins: Any
) -> Iterator[RunResult]:
    """Yield ``(label, seed, curve)`` for every task, in-process or from ``jobs`` spawned
    workers (in completion order)."""
    if jobs == 1:
        for label, seed in tasks:
            yield label, seed, run_seed(spec, label, seed, plugins)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    chunk = max(1, len(tasks) // (jobs * 16))
    with context.Pool(jobs, initializer=_init_worker, initargs=(asdict(spec),)) as pool:
        yield from pool.imap_unordered(_work, tasks, chunksize=chunk)


def format_value(value: float, optimum: float) -> str:
    """``value`` with the decimals that suit the scale of ``optimum`` (2 for 94.37, 3 for
    1.53, 5 for 0.073)."""
    scale = abs(optimum) if optimum else 1.0
    decimals = min(6, max(2, 3 - math.floor(math.log10(scale))))
    return f"{value:.{decimals}f}"


def plot_curves(result: BenchmarkResult, path: str) -> None:
    """Write a PNG of the mean incumbent curve of every controller with a +-std band, x =
    trials, the table's optimum dashed and the budgets as grey lines (matplotlib, Agg)."""
    from corenas.plotting import new_figure, save_png

    figure = new_figure(7.5, 4.5)
    axes = figure.add_subplot()
    lows, highs = [], []
    for label, curves in result.curves.items():
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        x = np.arange(1, len(mean) + 1)
        (line,) = axes.plot(x, mean, label=label, linewidth=1.6)
        axes.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.18)
        start = max(0, len(mean) // 10 - 1)  # the first trials are random draws: skip them
        lows.append(float(np.nanmin(mean[start:] - std[start:])))
        highs.append(float(np.nanmax(mean[start:] + std[start:])))
    axes.axhline(result.optimum, color="black", linestyle="--", linewidth=1, label="table optimum")
    for budget in result.budgets:
        axes.axvline(budget, color="0.85", linewidth=0.8, zorder=0)
    low, high = min([*lows, result.optimum]), max([*highs, result.optimum])
    margin = 0.05 * (high - low or 1.0)
    axes.set_ylim(low - margin, high + margin)
    axes.set_xlim(1, max(result.budgets))
    axes.set_xlabel("trials")
    axes.set_ylabel(f"true {result.metric} of the incumbent")
    noise = f", noise {result.noise:g}" if result.noise else ""
    axes.set_title(
        f"{result.table}: {result.metric} ({result.mode}{noise}), mean +- std over "
        f"{result.seed_text()}",
        fontsize=10,
    )
    axes.legend(loc="lower right" if result.mode == "max" else "upper right", fontsize=9)
    axes.grid(True, alpha=0.3)
    save_png(figure, path, dpi=120)


def print_summary(result: BenchmarkResult, stream: TextIO | None = None) -> None:
    """The table of mean +- std (n) per controller and budget, with a header line naming the
    table, metric, mode, noise and seeds."""
    from corenas.cli.tables import render_table

    out = stream or sys.stdout
    noise = f", noise {result.noise:g}" if result.noise else ", no noise"
    print(
        f"{result.table}: true {result.metric} of the incumbent (best observed "
        f"{'maximum' if result.mode == 'max' else 'minimum'}{noise}), mean +- std over "
        f"{result.seed_text()}; table optimum "
        f"{format_value(result.optimum, result.optimum)}",
        file=out,
    )
    rows = []
    for label, row in result.summary().items():
        cells = [
            f"{format_value(s['mean'], result.optimum)} +- "
            f"{format_value(s['std'], result.optimum)} (n={s['n']})"
            for s in row.values()
        ]
        rows.append([label, *cells])
    print(render_table(["controller", *[f"{b} trials" for b in result.budgets]], rows), file=out)
