"""PostgresStore specifics on a real server: URLs, schemas as jobs, settings, errors, and the
CLI end to end (search, resume, status, trials) with the store in PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from corenas_test_helpers import SCRIPTED
from store.pg_server import PostgresServer, new_schema

from corenas.errors import StoreError
from corenas.store.postgres import PostgresStore, postgres_target


def test_url_forms() -> None:
    conninfo, schema, location = postgres_target(
        "postgresql+psycopg://nas:s3cret@db.example:6543/jobs?schema=cifar_1&sslmode=require"
    )
    assert conninfo == "postgresql://nas:s3cret@db.example:6543/jobs?sslmode=require"
    assert schema == "cifar_1"
    assert location == "postgresql://nas@db.example:6543/jobs?schema=cifar_1"  # no password
    assert postgres_target("postgres://db/nas")[1:] == (
        "public",
        "postgresql://db/nas?schema=public",
    )
    for bad, needle in [
        ("sqlite:////tmp/x.db", "not a PostgreSQL URL"),
        ("http://db/nas", "not a PostgreSQL URL"),
        ("postgresql://db/nas?schema=a&schema=b", r"more than one schema \(a, b\)"),
        ("postgresql://db/nas?schema=job-1", "not a plain name"),
        ("postgresql://db/nas?schema=", "not a plain name"),
        ("postgresql://db/nas?schema=1job", "not a plain name"),
    ]:
        with pytest.raises(StoreError, match=needle):
            postgres_target(bad)


def test_unreachable_server_is_one_line_without_the_password(postgres: PostgresServer) -> None:
    with pytest.raises(StoreError) as info:
        PostgresStore("postgresql://nas:s3cret@127.0.0.1:1/nas?schema=j", connect_timeout_s=2)
    message = str(info.value)
    assert message.startswith("cannot connect to store postgresql://nas@127.0.0.1:1/nas?schema=j")
    assert "server is running" in message and "\n" not in message and "s3cret" not in message


def test_invalid_parameters_refused(postgres: PostgresServer) -> None:
    with pytest.raises(StoreError, match="synchronous='sometimes'"):
        PostgresStore(postgres.url(), synchronous="sometimes")
    with pytest.raises(StoreError, match="busy_timeout_ms=-1"):
        PostgresStore(postgres.url(), busy_timeout_ms=-1)


def test_schemas_hold_separate_jobs(postgres: PostgresServer) -> None:
    first_url, second_url = postgres.url(), postgres.url()
    with PostgresStore(first_url) as first, PostgresStore(second_url) as second:
        first.create_job("a", {"n": 1})
        second.create_job("b", {"n": 2})
        assert [t.id for t in first.add_trials([], None)] == []
        first.add_trials([], {"k": 1})
        second.acquire_driver_lock("driver of b")
        first.acquire_driver_lock("driver of a")  # a lock per schema
        assert (first.driver(), second.driver()) == ("driver of a", "driver of b")
        with (
            PostgresStore(first_url) as third,
            pytest.raises(StoreError, match="already holds job 'a'.*storage.schema=NAME"),
        ):
            third.create_job("c", {})
    with PostgresStore(second_url) as again:
        job = again.job()
        assert job is not None and job.name == "b"
        assert again.controller_state() is None


def test_create_false_and_foreign_schema(postgres: PostgresServer) -> None:
    import psycopg

    url = postgres.url()
    conninfo, schema, _ = postgres_target(url)
    with pytest.raises(StoreError, match="no store at"):
        PostgresStore(url, create=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        assert exists.fetchone() is None  # create=False created nothing
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.users (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="is not a corenas store") as info:
        PostgresStore(url)
    assert "holds other tables" in str(info.value)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
        assert tables.fetchall() == [("users",)]  # left untouched


def setting(store: PostgresStore, name: str) -> Any:
    return store._db().execute(f"SHOW {name}").fetchone()[0]


def test_session_settings(postgres: PostgresServer) -> None:
    url = postgres.url()
    with PostgresStore(url, synchronous="full", busy_timeout_ms=1500) as s:
        assert setting(s, "synchronous_commit") == "on"
        assert setting(s, "lock_timeout") == "1500ms"
        assert setting(s, "search_path") == postgres_target(url)[1]
    with PostgresStore(url, synchronous="off", busy_timeout_ms=0) as s:
        assert setting(s, "synchronous_commit") == "off"
        assert setting(s, "lock_timeout") == "1ms"  # 0 means "do not wait", not "forever"


def test_busy_writer_times_out_while_readers_proceed(postgres: PostgresServer) -> None:
    url = postgres.url()
    writer = PostgresStore(url)
    conn = writer._db()
    conn.execute("BEGIN")
    conn.execute("LOCK TABLE trials IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(
        "INSERT INTO trials (id, genome_json, arch_id, status, created_at, stage)"
        " VALUES (1, '{}', 'x', 'pending', 0, 'search')"
    )
    try:
        with PostgresStore(url, busy_timeout_ms=0, create=False) as other:
            assert other.trials() == []  # committed rows only, without waiting
            with pytest.raises(StoreError, match="busy timeout"):
                other.add_trials([], None)
    finally:
        conn.execute("COMMIT")
    with PostgresStore(url) as reader:
        assert [t.id for t in reader.trials()] == [1]
    writer.close()


# --- the CLI ------------------------------------------------------------------------------
def one_line_error(result: Any, *needles: str) -> None:
    """One error line (after the note naming a new job dir), no traceback, exit status 2."""
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("corenas: searching in ")
    ]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_search_resume_and_listings(
    cli, corenas, postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.url()  # in an override, a URL with ?query=... must be quoted
    job = tmp_path / "job"
    first = cli(
        "search", *SCRIPTED, "search.max_trials=3", f"storage.url='{url}'", f"job_dir={job}",
        "--no-progress",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert not (job / "corenas.db").exists()  # the store is the schema, the config is here
    resumed = cli("resume", str(job), "search.max_trials=5", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    status = json.loads(corenas("status", str(job), "--format", "json").stdout)
    assert status["status"] == "completed" and status["counts"]["succeeded"] == 5
    trials = json.loads(corenas("trials", "list", str(job), "--format", "json").stdout)
    assert [t["id"] for t in trials] == [1, 2, 3, 4, 5]
    with PostgresStore(url, create=False) as store:
        assert [t.id for t in store.trials()] == [1, 2, 3, 4, 5]
        assert store.driver() is None  # the drivers exited and released the lock
    from corenas.dashboard.jobs import JobSource, JobView
    from corenas.plugins import get_plugins

    for source in (JobSource.of_dir(job), JobSource.of_url(url)):  # what the dashboard reads
        view = JobView(source, get_plugins())
        try:
            assert [r["id"] for r in view.table(sort="id")["rows"]] == [1, 2, 3, 4, 5]
            assert view.summary()["status"] == "completed"
        finally:
            view.close()


def test_cli_storage_group_and_bad_input(cli, postgres: PostgresServer, tmp_path: Path) -> None:
    schema = new_schema()
    grouped = cli(
        "search", *SCRIPTED, "search.max_trials=1", "storage=postgresql",
        f"storage.url={postgres.database}", f"storage.schema={schema}",
        f"job_dir={tmp_path / 'job'}", "--no-progress",
    )  # fmt: skip
    assert grouped.returncode == 0, grouped.stderr
    with PostgresStore(postgres.url(schema), create=False) as store:
        assert len(store.trials()) == 1
    for overrides, needle in [
        (
            ["storage.url=postgresql://nas:s3cret@127.0.0.1:1/nas"],
            "cannot connect to store postgresql://nas@127.0.0.1:1/nas?schema=public",
        ),
        ([f"storage.url={postgres.database}", "storage.schema=bad-name"], "is not a plain name"),
    ]:
        result = cli(
            "search", *SCRIPTED, "storage=postgresql", "storage.connect_timeout_s=2", *overrides,
            f"job_dir={tmp_path / 'bad'}",
        )  # fmt: skip
        one_line_error(result, needle)
        assert "s3cret" not in result.stderr
