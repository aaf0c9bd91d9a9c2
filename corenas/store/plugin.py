"""Built-in trial stores by URL scheme, registered through the same hook as third-party ones."""

from __future__ import annotations

from corenas.hookspecs import hookimpl
from corenas.registry import StoreRegistry


@hookimpl
def corenas_register_storages(registry: StoreRegistry) -> None:
    from corenas.store.postgres import PostgresStore
    from corenas.store.sqlite import SQLiteStore

    registry.register("sqlite", SQLiteStore)
    registry.register("postgresql", PostgresStore)
