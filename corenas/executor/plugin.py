"""Built-in executors, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.executor.inline import InlineExecutor
from corenas.executor.local import LocalExecutor
from corenas.hookspecs import hookimpl
from corenas.registry import ExecutorRegistry


@hookimpl
def corenas_register_executors(registry: ExecutorRegistry) -> None:
    registry.register("inline", InlineExecutor)
    registry.register("local", LocalExecutor)
