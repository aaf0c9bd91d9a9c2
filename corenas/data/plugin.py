"""Built-in datasets, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.hookspecs import hookimpl
from corenas.registry import DatasetRegistry


@hookimpl
def corenas_register_datasets(registry: DatasetRegistry) -> None:
    from corenas.data import builtin

    builtin.register(registry)
