"""``corenas space show | sample | validate | check``. ``check`` samples and measures
architectures and reports how much of the space satisfies constraints; its logic lives in
``corenas.space_check``, its measuring in ``corenas.cli.measure_cmd``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from corenas.cli import choices
from corenas.cli.tables import render_table, short
from corenas.errors import ConfigError
from corenas.plugins import Plugins, get_plugins
from corenas.space.base import SearchSpace


def load_space(name: str, overrides: list[str], plugins: Plugins) -> tuple[str, SearchSpace]:
    """The space of config option ``name`` (conf/space/NAME.yaml, plugin configs included) or,
    failing that, registered space ``name`` with default parameters; ``overrides`` set its
    parameters (``key=value``)."""
    chosen = choices.load_space(plugins, name, overrides)
    return chosen.label, chosen.space


def _size_text(size: int | float) -> str:
    if size == float("inf"):
        return "infinitely many (float decisions)"
    text = f"{size:,}"
    return f"{text} (~{float(size):.3g})" if size >= 10**6 else text


def _options_text(decision: dict[str, Any]) -> str:
    kind = decision.get("kind")
    if "options" in decision:
        return short(", ".join(json.dumps(o) for o in decision["options"]), 60)
    if kind in ("int", "float"):
        extra = " log" if decision.get("log") else ""
        return f"[{decision.get('low')}, {decision.get('high')}]{extra}"
    if kind == "repeat":
        return "counts " + ", ".join(str(c) for c in decision.get("counts", []))
    if kind == "fixed":
        return json.dumps(decision.get("value"))
    return ""


def _show(args: argparse.Namespace, plugins: Plugins) -> int:
    label, space = load_space(args.name, args.overrides, plugins)
    description = space.describe()
    description["name"] = label
    if args.format == "json":
        print(json.dumps(description, indent=2))
        return 0
    print(f"space {label}: {_size_text(space.size())} architectures")
    rows = []
    for decision in description["decisions"]:
        condition = decision.get("condition")
        when = ", ".join(f"{k}={json.dumps(v)}" for k, v in condition.items()) if condition else ""
        rows.append([decision["name"], decision.get("kind", ""), _options_text(decision), when])
    print(render_table(["decision", "kind", "options", "when"], rows))
    return 0


def _sample(args: argparse.Namespace, plugins: Plugins) -> int:
    if args.n < 1:
        raise ConfigError("-n must be at least 1")
    _, space = load_space(args.name, args.overrides, plugins)
    rng = np.random.default_rng(args.seed)
    print(json.dumps([space.sample(rng) for _ in range(args.n)], indent=2))
    return 0


def _read_genome(text: str) -> Any:
    path = Path(text[1:] if text.startswith("@") else text)
    if text.startswith("@") or (not text.lstrip().startswith("{") and path.is_file()):
        if not path.is_file():
            raise ConfigError(f"genome file '{path}' does not exist")
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"genome is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _validate(args: argparse.Namespace, plugins: Plugins) -> int:
    _, space = load_space(args.name, args.overrides, plugins)
    genome = _read_genome(args.genome)
    if not isinstance(genome, dict):
        raise ConfigError("genome must be a JSON object mapping decision names to values")
    canonical = space.validate(genome)
    from corenas.records import architecture_id

    print(
        json.dumps(
            {"valid": True, "arch_id": architecture_id(canonical), "genome": canonical}, indent=2
        )
    )
    return 0


def _reward(plugins: Plugins, name: str | None) -> Any:
    """The reward of config option or registered name ``name`` (None: no reward)."""
    if name is None:
        return None
    node = choices.component_node(plugins, "reward", name, [])
    params = {k: v for k, v in node.items() if k != "name"}
    return plugins.registry("reward").create(str(node["name"]), **params)


def _check(args: argparse.Namespace, plugins: Plugins) -> int:
    """Sample ``-n`` architectures, measure each with ``--backend`` and report on stdout (text
    or one JSON object); ``--out DIR`` also writes DIR/space_check.json (with every
    architecture) and DIR/space_check.png. Progress goes to stderr. Exit 0 also when the
    report warns that few architectures are feasible."""
    from corenas import space_check
    from corenas.cli.measure_cmd import TABLE_COLUMNS, describe, measure
    from corenas.progress import ProgressLine

    if args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}")
    bounds = [space_check.parse_constraint(text) for text in args.constraint]
    choice = choices.load_backend(plugins, args.backend, args.set)
    chosen = choices.load_space(plugins, args.name, args.overrides, args.data)
    space = chosen.space
    spec = choices.input_spec(choice, chosen, args.input_shape, args.batch_size)
    reward = _reward(plugins, args.reward)
    rng = np.random.default_rng(args.seed)
    genomes = [space.sample(rng) for _ in range(args.n)]
    progress = ProgressLine(enabled=not args.no_progress and args.n > 1)
    failed = 0

    def on_each(done: int, outcome: space_check.Outcome) -> None:
        nonlocal failed
        if outcome.metrics is None:
            failed += 1
        elif done - failed == 1:  # the first measured: fail fast on a metric it lacks
            space_check.check_known(bounds, outcome.metrics, choice.name)
            if reward is not None:
                metric = space_check.reward_metric(reward)
                space_check.ideal_reward(reward, outcome.metrics, metric, args.reward)
        progress.show(
            f"space check: {done}/{args.n} architectures measured | {failed} failed | "
            f"{progress.elapsed()}",
            int(10 * done / args.n),
            force=done == args.n,
        )

    try:
        outcomes = space_check.measure_all(
            genomes, lambda genome: measure(space, genome, choice, spec, args.seed), on_each
        )
    finally:
        progress.close()
    names = space_check.metric_order(outcomes, TABLE_COLUMNS)
    size = space.size()
    report: dict[str, Any] = {
        "space": {
            **chosen.to_json(),
            "size": None if size == float("inf") else size,
            "size_text": _size_text(size),
        },
        "hardware": {
            "name": choice.name,
            "registered": choice.registered,
            "params": choice.params,
            "description": describe(choice.backend),
            "input": "x".join(str(n) for n in (spec.batch_size, *spec.shape)),
        },
        "seed": args.seed,
        **space_check.summarise(outcomes, bounds, names, reward, args.reward or ""),
    }
    if args.out is not None:
        report["files"] = _write_out(Path(args.out), report, bounds, reward)
    if args.format == "json":
        print(json.dumps({k: v for k, v in report.items() if k != "architectures"}, indent=2))
    else:
        print("\n".join(space_check.render_text(report)))
    return 0


def _write_out(
    folder: Path, report: dict[str, Any], bounds: list[Any], reward: Any
) -> dict[str, str]:
    """Write ``folder``/space_check.png (when a plotted metric was measured) and
    ``folder``/space_check.json (the report with every architecture); their paths by kind."""
    from corenas import space_check
    from corenas.jobdir import write_atomically

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create '{folder}': {exc.strerror or exc}") from None
    files: dict[str, str] = {}
    png = folder / "space_check.png"
    limits = space_check.reward_limits(reward)
    if space_check.plot_histograms(report, bounds, str(png), limits):
        files["histograms"] = str(png)
    files["report"] = str(folder / "space_check.json")
    text = json.dumps({**report, "files": files}, indent=2)
    try:
        write_atomically(Path(files["report"]), text + "\n")
    except OSError as exc:
        raise ConfigError(
            f"--out: cannot write '{files['report']}': {exc.strerror or exc}"
        ) from None
    return files


def run(args: argparse.Namespace) -> int:
    plugins = get_plugins(config_dirs=args.config_dir)
    handlers = {"show": _show, "sample": _sample, "validate": _validate, "check": _check}
    return handlers[args.space_command](args, plugins)
