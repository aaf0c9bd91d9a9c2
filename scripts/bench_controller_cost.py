"""Per-ask cost of corenas controllers on NAS-Bench-201, beside Optuna's TPE.

Each controller first runs ask/tell for ``--observed`` trials on the shipped NB201 table
(CIFAR-10), then the next ``--asks`` ask/tell rounds are timed (ask only). Prints the mean ms
per ask and the ratio to Optuna's TPE sampler (multivariate, the same 6 categorical
decisions, in-memory storage) timed the same way in the same process.

    python scripts/bench_controller_cost.py --observed 1000 --asks 50
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from corenas.benchmarks.nb201 import DECISIONS, OPS, NB201Table, make_nb201_space
from corenas.plugins import get_plugins
from corenas.records import Trial, TrialStatus, architecture_id


def controller_ms(name: str, observed: int, asks: int) -> float:
    """Mean ms per ``ask(1)`` of controller ``name`` after ``observed`` told trials."""
    table = NB201Table()
    registry = get_plugins().registry("controller")
    controller = registry.create(name, space=make_nb201_space(), seed=0)  # class defaults
    spent = 0.0
    for trial_id in range(1, observed + asks + 1):
        started = time.perf_counter()
        asked = controller.ask(1)
        if trial_id > observed:
            spent += time.perf_counter() - started
        if not asked:
            raise SystemExit(f"{name} stopped proposing after {trial_id - 1} trials")
        genome = asked[0]
        controller.tell(
            Trial(
                trial_id,
                genome,
                architecture_id(genome),
                TrialStatus.SUCCEEDED,
                reward=table.lookup(genome, "cifar10"),
            )
        )
    return 1000 * spent / asks


def optuna_tpe_ms(observed: int, asks: int) -> float:
    """Mean ms per ``study.ask()`` plus suggestions of Optuna's multivariate TPE."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = NB201Table()
    sampler = optuna.samplers.TPESampler(seed=0, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    spent = 0.0
    for number in range(observed + asks):
        started = time.perf_counter()
        trial = study.ask()
        genome: dict[str, Any] = {d: trial.suggest_categorical(d, OPS) for d in DECISIONS}
        if number >= observed:
            spent += time.perf_counter() - started
        study.tell(trial, table.lookup(genome, "cifar10"))
    return 1000 * spent / asks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controllers", default="random,evolution,local_search")
    parser.add_argument("--observed", type=int, default=1000)
    parser.add_argument("--asks", type=int, default=50)
    args = parser.parse_args(argv)
    peer = optuna_tpe_ms(args.observed, args.asks)
    print(f"per-ask cost after {args.observed} observed NB201 trials ({args.asks} asks timed)")
    print(f"optuna TPE (multivariate): {peer:.2f} ms")
    for name in args.controllers.split(","):
        ms = controller_ms(name, args.observed, args.asks)
        print(f"{name}: {ms:.2f} ms ({ms / peer:.3f} x Optuna TPE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
