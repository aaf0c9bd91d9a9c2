"""``corenas plugins``: every plugin, its origin and what it registered per kind."""

from __future__ import annotations

import argparse
import json

from corenas.cli.tables import render_table
from corenas.hookspecs import REGISTRATION_HOOKS
from corenas.plugins import get_plugins


def run(args: argparse.Namespace) -> int:
    plugins = get_plugins()
    if args.format == "json":
        print(json.dumps([info.to_json() for info in plugins.infos], indent=2))
        return 0
    rows = []
    for info in plugins.infos:
        parts = [f"{kind}: {', '.join(names)}" for kind, names in info.registered.items()]
        if info.config_dirs:
            parts.append(f"config: {', '.join(info.config_dirs)}")
        events = [
            h
            for h in info.hooks
            if h not in REGISTRATION_HOOKS.values() and h != "corenas_config_dirs"
        ]
        if events:
            parts.append(f"events: {', '.join(events)}")
        origin = info.entry_point or info.source
        rows.append([info.name, info.version, origin, "; ".join(parts) or "-"])
    print(render_table(["plugin", "version", "source", "provides"], rows))
    if getattr(args, "verbose", False):
        print()
        for kind, registry in plugins.registries.items():
            for entry in registry:
                print(f"{kind:<10} {entry.name:<16} {entry.plugin:<22} {entry.description}")
    return 0
