"""``corenas proxy select-models | train-candidates | search | variance``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from corenas.cli.tables import render_table
from corenas.errors import ConfigError
from corenas.plugins import get_plugins
from corenas.proxy.correlation import Requirements
from corenas.proxy.toolkit import (
    measure_proxy_variance,
    named_config,
    read_candidates,
    read_proxy_configs,
    search_proxies,
    select_models,
    train_candidates,
)


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _select(args: argparse.Namespace) -> int:
    result = select_models(
        Path(args.proxy_dir),
        list(args.overrides),
        get_plugins(config_dirs=args.config_dir),
        models=args.models,
        keep=args.keep,
        drop=args.drop,
        max_failed=args.max_failed,
        metric=args.metric,
        latency_metric=args.latency_metric,
        progress=not args.no_progress,
    )
    metric, latency = result["metric"], result["latency_metric"]
    print(
        f"\n{result['valid']} of {result['models']} models valid ({result['failed']} failed); "
        f"{len(result['rounds'])} rounds kept {len(result['candidates'])} candidates:"
    )
    for row in result["rounds"]:
        print(f"  round {row['round']}: dropped trials {', '.join(map(str, row['dropped']))}")
    rows = [
        [c["trial_id"], c[metric], c.get(latency) if latency else None, c["arch_id"][:12]]
        for c in result["candidates"]
    ]
    print(render_table(["trial", metric, latency or "latency", "architecture"], rows))
    spread = result["spread"]
    for name in ("accuracy", "latency"):
        if spread["all"][name]:
            low, high = spread["all"][name]
            klow, khigh = spread["kept"][name]
            print(f"{name} range: all {low:.4g}..{high:.4g}, kept {klow:.4g}..{khigh:.4g}")
    print(f"\ncandidates: {Path(args.proxy_dir) / 'candidates.json'}\nplot: {result['plot']}")
    print(f"next (full training of the candidates): {result['next']}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from corenas.cli.search_cmd import exit_code, print_summary

    summary = train_candidates(
        Path(args.proxy_dir), list(args.overrides), get_plugins(), not args.no_progress
    )
    print_summary(summary)
    return exit_code(summary)


def _search(args: argparse.Namespace) -> int:
    proxy_dir = Path(args.proxy_dir)
    configs, settings = read_proxy_configs(Path(args.configs))
    threshold = args.threshold if args.threshold is not None else settings.get("threshold", 0.65)
    if not -1.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"--threshold must be a tau in [-1, 1], got {threshold}")
    hold = int(args.hold if args.hold is not None else settings.get("hold", 1))
    if hold < 1:
        raise ConfigError(f"--hold must be at least 1, got {hold}")
    limit = args.time_limit_s if args.time_limit_s is not None else settings.get("time_limit_s")
    metric = args.metric or settings.get("metric") or read_candidates(proxy_dir)["metric"]
    if args.parallel is not None and args.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1, got {args.parallel}")
    result = search_proxies(
        proxy_dir,
        configs,
        get_plugins(),
        requirements=Requirements(threshold=float(threshold), hold=hold),
        metric=metric,
        time_limit_s=None if limit is None else float(limit),
        results_file=Path(args.full_results) if args.full_results else None,
        parallel=args.parallel,
        progress=not args.no_progress,
    )
    rows = []
    for v in result["configs"]:
        latency = v["latency"]
        rows.append(
            [
                v["name"],
                f"{v['valid']}/{v['candidates']}",
                v["stop_step"],
                _number(v["tau"]),
                _number(v["p_value"], 4),
                "-" if latency is None else _number(latency["tau"]),
                f"{v['cost_s']:.1f}",
                ("pass: " if v["passed"] else "fail: ") + v["reason"],
            ]
        )
    headers = ["config", "valid", "stop step", "tau", "p", "latency tau", "cost s", "verdict"]
    held = "" if hold == 1 else f", held for {hold} steps"
    print(f"\nKendall tau of '{metric}' against full training (threshold {threshold:g}{held}):")
    print(render_table(headers, rows))
    chosen = result["chosen"]
    if chosen is None:
        print("\nno configuration reached the threshold; try longer or larger proxies")
    else:
        best = next(v for v in result["configs"] if v["name"] == chosen)
        print(
            f"\nchosen: '{chosen}' ({' '.join(best['overrides']) or 'no overrides'}), stop at "
            f"step {best['stop_step']}: tau {best['tau']:.3f}, p-value {best['p_value']:.4g}, "
            f"{best['cost_s']:.1f} training seconds for {best['valid']} models"
        )
    print(f"results: {proxy_dir / 'proxy_search.json'}\nplot: {result['plot']}")
    return 0 if chosen is not None else 1


def _variance(args: argparse.Namespace) -> int:
    proxy_dir = Path(args.proxy_dir)
    config, stop_step = named_config(proxy_dir, args.config)
    metric = args.metric or read_candidates(proxy_dir)["metric"]
    result = measure_proxy_variance(
        proxy_dir,
        get_plugins(),
        config,
        repeats=args.repeats,
        trial_id=args.trial,
        metric=metric,
        stop_step=stop_step,
        progress=not args.no_progress,
    )
    stopped = "" if stop_step is None else f", stopped at step {stop_step}"
    finals = ", ".join(f"{v:.4f}" for v in result["finals"])
    print(
        f"\n{result['runs']} runs of trial {result['trial_id']} under '{result['config']}'"
        f"{stopped} ({result['failed']} failed): final {metric} {finals}"
    )
    cv, worst = result["cv_percent"], result["worst_smoothness"]
    print(
        f"coefficient of variation: {_number(cv)} % -> "
        f"{'good' if result['cv_good'] else 'bad'} (good at most {result['cv_good_at_most']} %)"
    )
    smooth = result["smoothness_good"]
    verdict = {True: "good", False: "bad", None: "unknown: curves need 3 points or more"}[smooth]
    print(
        f"smoothness (worst run): {_number(worst)} -> {verdict} (good at most "
        f"{result['smoothness_good_at_most']:g}); per run: " + json.dumps(result["smoothness"])
    )
    print(f"results: {proxy_dir / ('variance-' + result['config'] + '.json')}")
    print(f"plot: {result['plot']}")
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {
        "select-models": _select,
        "train-candidates": _train,
        "search": _search,
        "variance": _variance,
    }
    return handlers[args.proxy_command](args)
