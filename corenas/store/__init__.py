"""Trial stores: the ``Store`` contract, the shared SQL store and its built-in backends, SQLite
(``sqlite:///path``) and PostgreSQL (``postgresql://...``, needs psycopg only when opened)."""

from __future__ import annotations

from corenas.store.base import SCHEMA_VERSION, JobRecord, Store
from corenas.store.postgres import PostgresStore, postgres_target
from corenas.store.sql import SQLStore
from corenas.store.sqlite import SQLiteStore, default_lock_owner, sqlite_path, sqlite_url

__all__ = [
    "SCHEMA_VERSION",
    "JobRecord",
    "PostgresStore",
    "SQLStore",
    "SQLiteStore",
    "Store",
    "default_lock_owner",
    "postgres_target",
    "sqlite_path",
    "sqlite_url",
]
