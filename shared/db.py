"""asyncpg pool creation; every connection's search_path is the configured pipeline schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from shared.retry import until_reachable
from shared.settings import CommonSettings


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Nothing more than asyncpg does before calling this: it rolls back an open transaction itself.
    Its default reset also runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` (a round
    trip per release, a fifth of the gateway's CPU in the issue-11 bench) for session state this code
    never leaves behind: it takes only transaction-scoped locks and settings (`SET LOCAL`,
    `pg_advisory_xact_lock`) and opens cursors only inside transactions."""


async def create_pool(settings: CommonSettings, *, max_size: int | None = None) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=max_size or settings.db_pool_max_size,
        init=_init_connection,
        reset=_reset_connection,
        server_settings={"search_path": f"{settings.db_schema},public", "application_name": "data_pipeline"},
        command_timeout=60,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def pool_context(
    settings: CommonSettings, *, max_size: int | None = None, starting: bool = False
) -> AsyncIterator[asyncpg.Pool]:
    """The pool, closed at the end. `starting`: a service starting up, which waits up to
    DP_STARTUP_WAIT_SECONDS for the database (shared.retry.until_reachable)."""
    if starting:
        pool = await until_reachable(
            "database",
            "DP_DATABASE_URL",
            lambda: create_pool(settings, max_size=max_size),
            settings.startup_wait_seconds,
        )
    else:
        pool = await create_pool(settings, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


def table(settings: CommonSettings, name: str) -> str:
    """A fully qualified pipeline table name (the schema is validated as an identifier in settings)."""
    return f"{settings.db_schema}.{name}"
