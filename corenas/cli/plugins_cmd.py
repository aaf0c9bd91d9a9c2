"""``corenas plugins``: every plugin, its origin and what it registered per kind."""

from __future__ import annotations

import argparse
import json

from corenas.cli.tables import render_table
from corenas.plugins import get_plugins


def run(args: argparse.Namespace) -> int:
    plugins = get_plugins()
    if args.format == "json":
        print(json.dumps([info.to_json() for info in plugins.infos], indent=2))
        return 0
    rows = []
    for info in plugins.infos:
        registered = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in info.registered.items()
        )
        if info.config_dirs:
            registered += ("; " if registered else "") + f"config: {', '.join(info.config_dirs)}"
        origin = info.entry_point or info.source
        rows.append([info.name, info.version, origin, registered or "-"])
    print(render_table(["plugin", "version", "source", "registers"], rows))
    return 0
