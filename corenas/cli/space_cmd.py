"""``corenas space show | sample | validate``."""

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


def run(args: argparse.Namespace) -> int:
    plugins = get_plugins(config_dirs=args.config_dir)
    handlers = {"show": _show, "sample": _sample, "validate": _validate}
    return handlers[args.space_command](args, plugins)
