"""Entry point ``ray`` of group ``corenas``: executor ``ray`` and its config directory.

Importing this module does not import ray (every corenas command loads the plugin); the
executor imports it when a search starts.
"""

from __future__ import annotations

import os

from corenas import hookimpl
from corenas.registry import ExecutorRegistry
from corenas_ray.executor import RayExecutor

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conf")


@hookimpl
def corenas_register_executors(registry: ExecutorRegistry) -> None:
    registry.register("ray", RayExecutor, "trials as reusable Ray actors on a Ray cluster")


@hookimpl
def corenas_config_dirs() -> list[str]:
    return [CONFIG_DIR]
