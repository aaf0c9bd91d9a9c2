"""Parallel efficiency of a corenas search, next to a peer running the same sleeps.

What it measures
----------------
*corenas*: a real search (``start_search``, in-process, as ``corenas search`` runs it) of
``--trials`` trials whose trainer sleeps ``--sleep`` seconds (the registered ``function``
trainer with ``corenas.testing:scripted_trainer`` and ``budget.sleep_s``), on the
``tabular_mlp`` space with the random controller, SQLite store, no hardware measurement, at
each parallelism of ``--parallel``. The wall time covers everything the search does: the job
directory and store, starting the worker processes, asking the controller, three store
transactions per trial, the executor's round trips, shutting the workers down.

    efficiency = (trials x sleep / parallelism) / wall time

1.0 would be a search with no overhead at all. Next to it, each run prints the trials'
start-up (submit -> the worker begins the trial; a worker's first trial includes starting the
process) and the workers' idle gap between two trials, from ``LocalExecutor.timings``.

*Peer*: the same sleeps, ``--trials`` of them, at the same parallelism, through Optuna's
``study.optimize(objective, n_jobs=P)`` (threads, in-memory storage) and through a plain
``concurrent.futures.ProcessPoolExecutor(P)`` (pool start-up included), with the same formula.

Executors: ``--executor local`` (the default) or ``--executor ray`` (plugins/corenas-ray, on a
Ray head and worker nodes of 2 CPUs each started on this machine for the run; timings from
``RayExecutor.timings``); each name maps to one function in ``EXECUTORS`` that runs one search
and returns a ``Run``. Nothing here asserts on a timing; it prints them.

Usage::

    pip install -e .[bench]
    python scripts/bench_parallel.py [--trials 200] [--sleep 0.5] [--parallel 1,2,4]
        [--executor local|ray] [--peers optuna,processpool] [--json PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SEARCH = [
    "space=tabular_mlp",
    "hardware=none",
    "trainer=function",
    "trainer.target=corenas.testing:scripted_trainer",
    "reward=accuracy",
    "controller=random",
    "search.max_failed_trials=0",
    "search.trial_timeout_s=60",
]
"""The corenas search of every run (plus executor, trials, parallelism, sleep and job_dir)."""


@dataclass
class Run:
    """One run: who ran it, how many trials at which parallelism, how long it took."""

    system: str
    trials: int
    parallel: int
    sleep_s: float
    wall_s: float
    succeeded: int
    startup: dict[str, float] = field(default_factory=dict)
    """Start-up figures (seconds), when the system reports them."""

    @property
    def efficiency(self) -> float:
        return self.trials * self.sleep_s / self.parallel / self.wall_s


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max": ordered[-1],
    }


def run_search(
    executor: list[str],
    trials: int,
    sleep_s: float,
    parallel: int,
    job_dir: Path,
    plugins: Any = None,
) -> tuple[Any, Any, float]:
    """One benchmark search with the ``executor`` overrides (e.g. ``["executor=local"]``):
    returns its summary, its executor (after the search) and the wall time of ``start_search``.
    ``plugins``: the plugin set to use (default: the installed ones)."""
    from corenas.config import compose
    from corenas.engine import plan_search, start_search
    from corenas.plugins import get_plugins

    plugins = plugins or get_plugins()
    cfg = compose(
        plugins,
        [
            *SEARCH,
            *executor,
            f"search.max_trials={trials}",
            f"search.max_parallel_trials={parallel}",
            f"+budget.sleep_s={sleep_s}",
            f"job_dir={job_dir}",
        ],
    )
    prepared = plan_search(cfg, plugins, job_dir)
    started = time.perf_counter()
    summary = start_search(cfg, plugins, job_dir, progress=False, prepared=prepared)
    return summary, prepared.executor, time.perf_counter() - started


def startup_figures(timings: list[Any]) -> dict[str, float]:
    """Quantiles of ``TrialTiming``s (corenas.executor.timing): first trials' start-up, later
    trials' start-up, idle gaps, and the number of workers."""
    first = [t.startup_s for t in timings if t.first]
    later = [t.startup_s for t in timings if not t.first]
    gaps = [t.gap_s for t in timings if t.gap_s is not None]
    figures = {f"first_{k}": v for k, v in _quantiles(first).items()}
    figures.update({f"later_{k}": v for k, v in _quantiles(later).items()})
    figures.update({f"gap_{k}": v for k, v in _quantiles(gaps).items()})
    figures["workers"] = float(len({t.worker for t in timings}))
    return figures


def run_local(trials: int, sleep_s: float, parallel: int, workdir: Path) -> Run:
    """A corenas search on the local executor; start-up figures from its timings."""
    from corenas.executor.local import LocalExecutor

    summary, executor, wall = run_search(
        ["executor=local"], trials, sleep_s, parallel, workdir / f"local-p{parallel}"
    )
    assert isinstance(executor, LocalExecutor)
    return Run(
        "corenas local",
        trials,
        parallel,
        sleep_s,
        wall,
        summary.counts.get("succeeded", 0),
        startup_figures(executor.timings),
    )


RAY_CPUS_PER_NODE = 2
"""CPUs of each node of the benchmark's Ray cluster on this machine."""
_ray_cluster: Any = None


def run_ray(trials: int, sleep_s: float, parallel: int, workdir: Path) -> Run:
    """A corenas search on executor ``ray`` (plugins/corenas-ray) on a Ray cluster of processes
    on this machine: a head and as many worker nodes as ``parallel`` needs, 2 CPUs each, started
    at the first call and stopped when the script exits. The wall time also covers connecting
    to Ray and creating the actors."""
    import atexit

    try:
        import corenas_ray.plugin
        from corenas_ray.cluster import LocalCluster
        from corenas_ray.executor import RayExecutor
    except ImportError as exc:
        raise SystemExit(
            f"--executor ray needs {exc.name}: pip install -e plugins/corenas-ray"
        ) from None

    from corenas.plugins import get_plugins, load_plugins

    global _ray_cluster
    if _ray_cluster is None:
        _ray_cluster = LocalCluster(head_cpus=RAY_CPUS_PER_NODE)
        atexit.register(_ray_cluster.stop)
    missing = -(-(parallel - RAY_CPUS_PER_NODE * len(_ray_cluster.nodes)) // RAY_CPUS_PER_NODE)
    if missing > 0:
        _ray_cluster.add_nodes(*[{}] * missing, num_cpus=RAY_CPUS_PER_NODE)
    plugins = get_plugins()
    if "ray" not in plugins.registry("executor"):  # not pip-installed: register the module
        plugins = load_plugins(extra=[("ray", corenas_ray.plugin)])
    summary, executor, wall = run_search(
        ["executor=ray", f"executor.address={_ray_cluster.address}"],
        trials,
        sleep_s,
        parallel,
        workdir / f"ray-p{parallel}",
        plugins,
    )
    assert isinstance(executor, RayExecutor)
    succeeded = summary.counts.get("succeeded", 0)
    figures = startup_figures(executor.timings)
    return Run("corenas ray", trials, parallel, sleep_s, wall, succeeded, figures)


EXECUTORS: dict[str, Callable[[int, float, int, Path], Run]] = {"local": run_local, "ray": run_ray}
"""``--executor`` name -> a function that runs one search and returns its ``Run``."""


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return 0.5


def run_optuna(trials: int, sleep_s: float, parallel: int) -> Run:
    """Optuna's own parallel loop: ``study.optimize(n_jobs=P)`` (threads, in memory)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return _sleep(sleep_s)

    started = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=trials, n_jobs=parallel)
    wall = time.perf_counter() - started
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    return Run("optuna n_jobs (threads)", trials, parallel, sleep_s, wall, done)


def run_processpool(trials: int, sleep_s: float, parallel: int) -> Run:
    """The same sleeps in a ``ProcessPoolExecutor`` of ``parallel`` processes."""
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(parallel) as pool:
        done = sum(1 for _ in pool.map(_sleep, [sleep_s] * trials))
    wall = time.perf_counter() - started
    return Run("ProcessPoolExecutor", trials, parallel, sleep_s, wall, done)


PEERS: dict[str, Callable[[int, float, int], Run]] = {
    "optuna": run_optuna,
    "processpool": run_processpool,
}


def _table(runs: list[Run]) -> str:
    lines = [
        "| system | parallel | trials | wall s | ideal s | efficiency |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        ideal = run.trials * run.sleep_s / run.parallel
        lines.append(
            f"| {run.system} | {run.parallel} | {run.succeeded}/{run.trials} | "
            f"{run.wall_s:.2f} | {ideal:.2f} | {run.efficiency:.3f} |"
        )
    return "\n".join(lines)


def _startup_table(runs: list[Run]) -> str:
    lines = [
        "| system | parallel | workers | first trial start-up s (median / max) | "
        "later trials start-up s (median / p95 / max) | gap between trials s "
        "(median / p95 / max) |",
        "|---|---:|---:|---|---|---|",
    ]
    for run in runs:
        s = run.startup
        if not s:
            continue
        lines.append(
            f"| {run.system} | {run.parallel} | {s.get('workers', 0):.0f} | "
            f"{s.get('first_median', 0):.3f} / {s.get('first_max', 0):.3f} | "
            f"{s.get('later_median', 0):.4f} / {s.get('later_p95', 0):.4f} / "
            f"{s.get('later_max', 0):.4f} | {s.get('gap_median', 0):.4f} / "
            f"{s.get('gap_p95', 0):.4f} / {s.get('gap_max', 0):.4f} |"
        )
    return "\n".join(lines)


def _ratios(runs: list[Run]) -> str:
    mine = [r for r in runs if r.startup]
    lines = []
    for run in mine:
        for peer in runs:
            if peer.parallel == run.parallel and not peer.startup:
                lines.append(
                    f"p={run.parallel}: {run.system} efficiency / {peer.system} = "
                    f"{run.efficiency / peer.efficiency:.3f}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds each trial sleeps")
    parser.add_argument("--parallel", default="1,2,4", help="comma-separated parallelisms")
    parser.add_argument("--executor", default="local", choices=sorted(EXECUTORS))
    parser.add_argument(
        "--peers", default="optuna,processpool", help=f"comma-separated, of {sorted(PEERS)}"
    )
    parser.add_argument("--dir", type=Path, default=None, help="where job directories go")
    parser.add_argument("--json", type=Path, default=None, help="write every run as JSON")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.sleep <= 0:
        parser.error("--trials must be >= 1 and --sleep > 0")
    try:
        levels = [int(p) for p in args.parallel.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--parallel {args.parallel!r} is not a list of numbers, e.g. 1,2,4")
    if not levels or min(levels) < 1:
        parser.error("--parallel needs numbers >= 1, e.g. 1,2,4")
    peers = [p for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer(s) {unknown}; choose from {sorted(PEERS)}")
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="bench-parallel-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    for parallel in levels:
        print(f"{args.executor} p={parallel}: {args.trials} trials ...", file=sys.stderr)
        runs.append(EXECUTORS[args.executor](args.trials, args.sleep, parallel, workdir))
        for peer in peers:
            print(f"{peer} p={parallel} ...", file=sys.stderr)
            runs.append(PEERS[peer](args.trials, args.sleep, parallel))
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {args.trials} trials of {args.sleep} s sleep"
    )
    print()
    print(_table(runs))
    print()
    print(_startup_table(runs))
    print()
    print(_ratios(runs))
    if args.json is not None:
        payload: list[dict[str, Any]] = [
            {**asdict(run), "efficiency": run.efficiency} for run in runs
        ]
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
