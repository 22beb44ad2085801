"""Versioned schema migrations: `python -m shared.migrate` (safe to run twice, and concurrently)."""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from shared.logging import configure_logging, get_logger
from shared.migration_files import apply_pending, migration_files
from shared.pipeline_settings import PipelineSettings
from shared.settings import CommonSettings
from shared.settings_loading import load_settings
from shared.training_store import ensure_schema

# Any constant works; it only has to be the same for every process that migrates.
_MIGRATION_LOCK = 7_201_455_311


async def migrate(settings: CommonSettings) -> list[str]:
    """Apply the migrations not yet applied to the configured schema; returns their names."""
    schema = settings.db_schema
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            applied = await apply_pending(conn, migration_files(), schema, "schema_migrations")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied


async def migrate_training_store(settings: PipelineSettings) -> list[str]:
    """Apply the training store's migrations (shared/migrations/training) to DP_TRAINING_DATABASE_URL.

    Only with that URL: its role owns the training schema, which the migrator role may not touch. The
    step runner applies the same set before every load, so a store without this URL is migrated there.
    """
    if settings.training_database_url is None:
        return []
    conn = await asyncpg.connect(settings.training_database_url.get_secret_value())
    try:
        return await ensure_schema(conn, settings.training_schema)
    finally:
        await conn.close()


async def drop_schema(settings: CommonSettings) -> None:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {settings.db_schema} CASCADE")
    finally:
        await conn.close()


def main() -> None:
    settings = load_settings(CommonSettings, "dp-migrate")
    configure_logging(settings, service="migrate")
    log = get_logger()
    pipeline = load_settings(PipelineSettings, "dp-migrate")
    try:
        applied = asyncio.run(migrate(settings))
        training = asyncio.run(migrate_training_store(pipeline))
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("migration failed", error=str(exc))
        sys.exit(1)
    log.info(
        "migrations applied" if applied else "schema up to date", schema=settings.db_schema, applied=applied
    )
    if pipeline.training_database_url is not None:
        log.info(
            "training store migrations applied" if training else "training store up to date",
            schema=pipeline.training_schema,
            applied=training,
        )


if __name__ == "__main__":
    main()
