"""Trial stores: the ``Store`` contract and the built-in SQLite store (``sqlite:///path``)."""

from __future__ import annotations

from corenas.store.base import SCHEMA_VERSION, JobRecord, Store
from corenas.store.sqlite import SQLiteStore, default_lock_owner, sqlite_path, sqlite_url

__all__ = [
    "SCHEMA_VERSION",
    "JobRecord",
    "SQLiteStore",
    "Store",
    "default_lock_owner",
    "sqlite_path",
    "sqlite_url",
]
