"""Controllers on NAS-Bench-201 next to Optuna's TPE: the incumbent's true test accuracy.

The corenas controllers run through ``corenas benchmark``'s runner
(``corenas.benchmarks.runner.run_benchmark``). Optuna TPE runs as the corenas controller
``optuna-tpe`` when a plugin registers one; otherwise this script drives
``optuna.samplers.TPESampler`` itself with ask/tell over the six edge decisions (categorical),
observing exactly what a corenas run observes (table value plus the same seeded noise) and
scored the same way (true accuracy of the architecture with the best observed value). TPE may
propose an architecture twice (each proposal counts as a trial); corenas controllers never do.
Prints mean +- std per budget, each controller's difference to TPE and the wall time of all
runs of each (same number of worker processes).

    python scripts/bench_nb201_controllers.py --dataset cifar10 --budgets 50,100,300 --seeds 50
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from corenas.benchmarks.base import add_noise
from corenas.benchmarks.nb201 import DATASETS, DECISIONS, OPS, NB201Table
from corenas.benchmarks.runner import incumbent_curve, run_benchmark
from corenas.cli.benchmark_cmd import parse_budgets, parse_sets
from corenas.plugins import get_plugins
from corenas.records import Trial, TrialStatus, architecture_id, trial_seed

TPE = "optuna-tpe"
DEFAULT_SETS = ["evolution.population_size=20", "evolution.tournament_size=5"]


def tpe_curve(task: tuple[int, int, str, float]) -> tuple[list[float], int]:
    """One Optuna TPE run (seed, trials, dataset, noise): the incumbent's true accuracy after
    each trial and the number of repeated proposals."""
    import optuna

    seed, trials, dataset, noise = task
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = NB201Table()
    column = table.column(dataset)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    space = {name: optuna.distributions.CategoricalDistribution(OPS) for name in DECISIONS}
    done: list[Trial] = []
    for trial_id in range(1, trials + 1):
        asked = study.ask(space)
        genome = {name: asked.params[name] for name in DECISIONS}
        reward = add_noise(float(column[table.row(genome)]), noise, trial_seed(seed, trial_id))
        study.tell(asked, reward)
        arch = architecture_id(genome)
        done.append(Trial(trial_id, genome, arch, TrialStatus.SUCCEEDED, reward=reward))
    repeats = len(done) - len({t.arch_id for t in done})
    return incumbent_curve(done, lambda g: float(column[table.row(g)]), trials), repeats


def run_tpe(seeds: int, trials: int, dataset: str, noise: float, jobs: int) -> np.ndarray:
    tasks = [(seed, trials, dataset, noise) for seed in range(seeds)]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        runs = pool.map(tpe_curve, tasks)
    repeats = [r for _, r in runs]
    print(f"TPE repeated {np.mean(repeats):.1f} proposals per run on average", file=sys.stderr)
    return np.array([curve for curve, _ in runs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10", choices=DATASETS)
    parser.add_argument("--controllers", default="random,evolution")
    parser.add_argument("--set", action="append", help=f"default: {' '.join(DEFAULT_SETS)}")
    parser.add_argument("--budgets", default="50,100,300")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write the results as JSON to this path")
    args = parser.parse_args(argv)
    budgets = parse_budgets(args.budgets)
    controllers = [name for name in args.controllers.split(",") if name != TPE]
    tpe_builtin = TPE in get_plugins().registry("controller")
    sets = parse_sets(DEFAULT_SETS if args.set is None else args.set)
    curves: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name in [*controllers, *([TPE] if tpe_builtin else [])]:
        result = run_benchmark(
            "nb201",
            args.dataset,
            [name],
            budgets,
            args.seeds,
            noise=args.noise,
            overrides={name: sets[name]} if name in sets else {},
            jobs=args.jobs,
        )
        curves[name], seconds[name] = result.curves[name], result.elapsed_s
    if not tpe_builtin:
        started = time.monotonic()
        curves[TPE] = run_tpe(args.seeds, max(budgets), args.dataset, args.noise, args.jobs)
        seconds[TPE] = time.monotonic() - started
    how = "corenas controller" if tpe_builtin else "TPESampler driven by this script"
    print(
        f"NAS-Bench-201 {args.dataset}, noise {args.noise:g}, {args.seeds} seeds, "
        f"{args.jobs} workers: true test accuracy (%) of the incumbent; {TPE}: {how}"
    )
    print("| controller | " + " | ".join(f"{b} trials" for b in budgets) + " | wall s |")
    print("|---|" + "---:|" * (len(budgets) + 1))
    for name, runs in curves.items():
        cells = [f"{runs[:, b - 1].mean():.2f} +- {runs[:, b - 1].std():.2f}" for b in budgets]
        print(f"| {name} | " + " | ".join(cells) + f" | {seconds[name]:.1f} |")
    print(f"\ndifference to {TPE} (mean, percentage points) and wall time relative to it")
    print("| controller | " + " | ".join(f"{b} trials" for b in budgets) + " | time |")
    print("|---|" + "---:|" * (len(budgets) + 1))
    tpe = curves[TPE]
    for name in controllers:
        runs = curves[name]
        diffs = [f"{runs[:, b - 1].mean() - tpe[:, b - 1].mean():+.2f}" for b in budgets]
        ratio = seconds[name] / seconds[TPE]
        print(f"| {name} | " + " | ".join(diffs) + f" | {ratio:.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            data = {
                name: {
                    str(b): {
                        "mean": float(runs[:, b - 1].mean()),
                        "std": float(runs[:, b - 1].std()),
                        "n": int(runs.shape[0]),
                    }
                    for b in budgets
                }
                for name, runs in curves.items()
            }
            json.dump({"results": data, "wall_s": seconds}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
