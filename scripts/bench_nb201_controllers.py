"""Controllers on NAS-Bench-201: mean +- std of the incumbent's true test accuracy.

For each controller, seed and budget, the controller runs ask/tell in-process against the
shipped NB201 table (corenas/benchmarks/nb201.npz); the reported number is the TRUE test
accuracy of the incumbent - the architecture with the best observed reward - after `budget`
trials (with --noise > 0 the observed reward is the table value plus seeded Gaussian noise).
Published reference (NB201 paper, 12,000 s budget): REA 93.92 / 71.84 / 45.54, random
93.70 / 71.04 / 44.57; optimum 94.37 / 73.51 / 47.31.

    python scripts/bench_nb201_controllers.py --dataset cifar10 --budgets 50,100,300 --seeds 50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from corenas.benchmarks.nb201 import NB201Table, make_nb201_space
from corenas.controller.base import Controller
from corenas.controller.evolution import EvolutionController
from corenas.controller.random import RandomController
from corenas.testing import ask_tell

CONTROLLERS: dict[str, Callable[[Any, int], Controller]] = {
    "random": lambda space, seed: RandomController(space, seed),
    "evolution": lambda space, seed: EvolutionController(
        space, seed, population_size=20, tournament_size=5
    ),
}


def incumbent_curve(
    make: Callable[[Any, int], Controller], seed: int, budget: int, dataset: str, noise: float
) -> list[float]:
    """True accuracy of the incumbent (best observed reward so far) after each trial."""
    table = NB201Table()
    noise_rng = np.random.default_rng(10_000 + seed)

    def observed(genome: dict[str, Any]) -> float:
        value = table.lookup(genome, dataset)
        return value + float(noise_rng.normal(0.0, noise)) if noise else value

    curve, best_observed, incumbent_true = [], -np.inf, float("nan")
    for trial in ask_tell(make(make_nb201_space(), seed), observed, budget):
        assert trial.reward is not None
        if trial.reward > best_observed:
            best_observed, incumbent_true = trial.reward, table.lookup(trial.genome, dataset)
        curve.append(incumbent_true)
    return curve + [incumbent_true] * (budget - len(curve))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", default="cifar10", choices=["cifar10", "cifar100", "ImageNet16-120"]
    )
    parser.add_argument("--controllers", default="random,evolution")
    parser.add_argument("--budgets", default="50,100,300")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--json", help="also write the results as JSON to this path")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    results: dict[str, dict[int, dict[str, float]]] = {}
    for name in args.controllers.split(","):
        started = time.monotonic()
        curves = np.array(
            [
                incumbent_curve(CONTROLLERS[name], seed, max(budgets), args.dataset, args.noise)
                for seed in range(args.seeds)
            ]
        )
        results[name] = {
            b: {
                "mean": float(curves[:, b - 1].mean()),
                "std": float(curves[:, b - 1].std()),
                "n": args.seeds,
            }
            for b in budgets
        }
        print(
            f"{name}: {args.seeds} seeds x {max(budgets)} trials in "
            f"{time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    print(
        f"NAS-Bench-201 {args.dataset}, noise {args.noise}, {args.seeds} seeds: true test "
        "accuracy (%) of the incumbent"
    )
    print("| controller | " + " | ".join(f"{b} trials" for b in budgets) + " |")
    print("|---|" + "---:|" * len(budgets))
    for name, row in results.items():
        cells = " | ".join(f"{row[b]['mean']:.2f} +- {row[b]['std']:.2f}" for b in budgets)
        print(f"| {name} | {cells} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
