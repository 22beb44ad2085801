"""Migrations are versioned and safe to run twice (and concurrently)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.conftest import PG_URL

pytestmark = pytest.mark.integration


async def test_migrate_twice_and_concurrently() -> None:
    settings = CommonSettings(database_url=PG_URL, db_schema=f"dpm_{uuid.uuid4().hex[:8]}")
    try:
        first, second = await asyncio.gather(migrate(settings), migrate(settings))
        every = sorted(p.name for p in (Path(__file__).parents[2] / "shared" / "migrations").glob("*.sql"))
        assert every[:3] == [
            "0001_pipeline_tables.sql",
            "0002_task_tombstones.sql",
            "0003_event_versions.sql",
        ]
        assert sorted([first, second], key=len) == [[], every]
        assert await migrate(settings) == []
        conn = await asyncpg.connect(PG_URL)
        try:
            tables = {
                r["table_name"]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    settings.db_schema,
                )
            }
        finally:
            await conn.close()
        assert {
            "data_pipeline_tasks",
            "data_pipeline_task_executions",
            "data_pipeline_task_logs",
            "data_pipeline_task_outputs",
            "data_pipeline_events",
            "schema_migrations",
        } <= tables
    finally:
        await drop_schema(settings)
