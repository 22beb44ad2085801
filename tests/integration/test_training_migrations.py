"""The training store's schema comes from its own migration set (shared/migrations/training), applied to
the training database by the step runner before each load and by `python -m shared.migrate` when
DP_TRAINING_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared import training_store
from shared.migrate import migrate_training_store
from shared.migration_files import training_migrations
from shared.pipeline_settings import PipelineSettings
from tests.conftest import PG_URL

pytestmark = pytest.mark.integration

STORE_TABLES = {"training_data", "training_loads", "training_data_sources", "training_migrations"}


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = f"dpt_{uuid.uuid4().hex[:8]}"
    yield name
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


async def _columns(conn: asyncpg.Connection, schema: str) -> dict[str, set[str]]:
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1", schema
    )
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r["table_name"], set()).add(r["column_name"])
    return found


def test_the_training_set_is_its_own_folder() -> None:
    folder = Path(__file__).parents[2] / "shared" / "migrations" / "training"
    names = [name for _, name, _ in training_migrations()]
    assert names == sorted(p.name for p in folder.glob("*.sql"))
    assert names[0] == "0001_training_store.sql"


async def test_applied_once_even_concurrently(schema: str) -> None:
    conns = [await asyncpg.connect(PG_URL) for _ in range(2)]
    try:
        first, second = await asyncio.gather(*(training_store.ensure_schema(c, schema) for c in conns))
        everything = [name for _, name, _ in training_migrations()]
        assert sorted([first, second], key=len) == [[], everything]
        assert await training_store.ensure_schema(conns[0], schema) == []
        columns = await _columns(conns[0], schema)
        assert set(columns) == STORE_TABLES
        assert {"removed"} <= columns["training_loads"]
        assert {"db_name"} <= columns["training_data_sources"]
    finally:
        for c in conns:
            await c.close()


async def test_a_store_created_before_the_migrations_gains_what_it_lacks(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        # What the step runner's DDL created before `removed` and `db_name` existed, with a row in it.
        await conn.execute(
            f"""CREATE SCHEMA {schema};
            CREATE TABLE {schema}.training_data (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL, content text NOT NULL,
                question text, sql text, table_name text, source_task_id text, source_file text,
                content_hash text NOT NULL, embedding real[] NOT NULL, dimensions integer NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (kind, content_hash));
            CREATE TABLE {schema}.training_loads (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task_id text NOT NULL,
                loaded_at timestamptz NOT NULL DEFAULT now(), inserted jsonb NOT NULL,
                already_present jsonb NOT NULL, backup_table text);
            INSERT INTO {schema}.training_data (kind, content, content_hash, embedding, dimensions)
                VALUES ('ddl', 'CREATE TABLE t ()', 'h', '{{1}}', 1);"""
        )
        assert await training_store.ensure_schema(conn, schema) == ["0001_training_store.sql"]
        columns = await _columns(conn, schema)
        assert set(columns) == STORE_TABLES
        assert "removed" in columns["training_loads"]
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.training_data") == 1
    finally:
        await conn.close()


async def test_migrate_applies_the_set_only_with_a_training_url(schema: str) -> None:
    assert await migrate_training_store(PipelineSettings(training_schema=schema)) == []
    conn = await asyncpg.connect(PG_URL)
    try:
        assert await conn.fetchval("SELECT to_regnamespace($1) IS NULL", schema)
        applied = await migrate_training_store(
            PipelineSettings(training_schema=schema, training_database_url=PG_URL)
        )
        assert applied == ["0001_training_store.sql"]
        assert set(await _columns(conn, schema)) == STORE_TABLES
    finally:
        await conn.close()
