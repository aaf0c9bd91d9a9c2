"""``corenas benchmark``: controllers x seeds x budgets on a tabular benchmark, in-process."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from corenas.errors import ConfigError


def parse_budgets(text: str) -> list[int]:
    """``50,100,300`` -> ``[50, 100, 300]``; ``ConfigError`` unless positive integers."""
    try:
        budgets = [int(item) for item in text.split(",")]
    except ValueError:
        budgets = []
    if not budgets or min(budgets) < 1:
        raise ConfigError(f"--budgets takes positive trial counts like 50,100,300, got {text!r}")
    return budgets


def parse_controllers(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigError(f"--controllers takes names like random,evolution, got {text!r}")
    return names


def parse_sets(items: Sequence[str]) -> dict[str, list[str]]:
    """``evolution.population_size=20`` items -> controller -> ``KEY=VALUE`` overrides."""
    overrides: dict[str, list[str]] = {}
    for item in items:
        target, _, assignment = item.partition(".")
        if not target or "=" not in assignment or assignment.startswith("="):
            raise ConfigError(
                f"--set takes CONTROLLER.KEY=VALUE, e.g. evolution.population_size=20, got {item!r}"
            )
        overrides.setdefault(target, []).append(assignment)
    return overrides


def run(args: argparse.Namespace) -> int:
    from corenas.benchmarks.runner import (
        open_benchmark,
        plot_curves,
        print_summary,
        run_benchmark,
    )
    from corenas.plugins import get_plugins

    if args.plot and not os.path.isdir(os.path.dirname(os.path.abspath(args.plot))):
        raise ConfigError(f"--plot {args.plot}: its folder does not exist")
    budgets = parse_budgets(args.budgets)
    controllers = parse_controllers(args.controllers)
    overrides = parse_sets(args.set)
    jobs = args.jobs if args.jobs is not None else os.cpu_count() or 1
    metric = args.metric or open_benchmark(args.table).metrics[0]
    result = run_benchmark(
        table=args.table,
        metric=metric,
        controllers=controllers,
        budgets=budgets,
        seeds=args.seeds,
        first_seed=args.first_seed,
        noise=args.noise,
        mode=args.mode,
        overrides=overrides,
        jobs=jobs,
        progress=not args.no_progress,
        plugins=get_plugins(config_dirs=args.config_dir),
    )
    runs = len(controllers) * args.seeds
    print(
        f"corenas: {runs} runs of {max(budgets)} trials in {result.elapsed_s:.1f} s "
        f"({result.jobs} {'worker' if result.jobs == 1 else 'workers'})",
        file=sys.stderr,
    )
    if args.plot:
        plot_curves(result, args.plot)
        print(f"corenas: wrote {args.plot}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_summary(result)
    return 0
