"""Migration sets (shared/migrations for the pipeline, shared/migrations/training for the training
store): their SQL files in version order, and applying the ones a schema has not recorded yet."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

import asyncpg

PIPELINE = "shared.migrations"


def migration_files(folder: Traversable | None = None) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every `NNNN_name.sql` directly in `folder` (default: the pipeline's)."""
    found = []
    for entry in (folder or resources.files(PIPELINE)).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def training_migrations() -> list[tuple[int, str, str]]:
    """The training-data store's own set, applied to its schema by shared.training_store.ensure_schema."""
    return migration_files(resources.files(PIPELINE).joinpath("training"))


async def apply_pending(
    conn: asyncpg.Connection, files: list[tuple[int, str, str]], schema: str, table: str
) -> list[str]:
    """Apply the `files` whose versions `schema.table` has not recorded, each in its own transaction (a
    savepoint inside the caller's), `{schema}` in their SQL replaced by `schema` (already safe to put
    into SQL); creates the schema and the table when missing. The caller serialises concurrent calls
    (a lock). Returns the names applied."""
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {schema}.{table} ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.{table}")}
    applied: list[str] = []
    for version, name, sql in files:
        if version in done:
            continue
        async with conn.transaction():
            await conn.execute(sql.replace("{schema}", schema))
            await conn.execute(f"INSERT INTO {schema}.{table} (version, name) VALUES ($1, $2)", version, name)
        applied.append(name)
    return applied
