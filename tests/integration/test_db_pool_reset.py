"""shared.db.create_pool releases connections with a rollback-only reset (issue 11) instead of asyncpg's
`RESET ALL`-style round trip: what the next user of a connection sees must still be clean where the code
relies on it (no open transaction, no transaction-scoped setting, the configured search_path).

Every pool here has max_size=1, so the next acquire gets the connection just released (the same backend
pid is checked: a reset that fails makes asyncpg terminate the connection and open a new one, which would
hide a leak and cost a reconnect per release).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db import pool_context
from shared.migrate import drop_schema
from shared.settings import CommonSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(common_settings: CommonSettings) -> AsyncIterator[CommonSettings]:
    own = common_settings.model_copy(
        update={"db_schema": f"{common_settings.db_schema}_reset{uuid.uuid4().hex[:6]}"}
    )
    conn = await asyncpg.connect(own.database_url.get_secret_value())
    try:
        await conn.execute(f"CREATE SCHEMA {own.db_schema}")
        await conn.execute(f"CREATE TABLE {own.db_schema}.scratch (id int)")
    finally:
        await conn.close()
    yield own
    await drop_schema(own)


@pytest.fixture
async def pool(settings: CommonSettings) -> AsyncIterator[asyncpg.Pool]:
    async with pool_context(settings, max_size=1) as pool:
        yield pool


async def test_a_transaction_left_open_is_rolled_back_on_release(pool: asyncpg.Pool) -> None:
    conn = await pool.acquire()
    pid = conn.get_server_pid()
    tr = conn.transaction()
    await tr.start()
    await conn.execute("INSERT INTO scratch VALUES (1)")
    await pool.release(conn)

    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM scratch") == 0
        async with conn.transaction():  # a fresh transaction works (no "already in progress")
            await conn.execute("INSERT INTO scratch VALUES (2)")
        assert await conn.fetchval("SELECT count(*) FROM scratch") == 1


async def test_set_local_does_not_reach_the_next_user(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        pid = conn.get_server_pid()
        default = await conn.fetchval("SHOW statement_timeout")
        assert default != "4321ms"
        async with conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = '4321ms'")
            assert await conn.fetchval("SHOW statement_timeout") == "4321ms"
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid
        assert await conn.fetchval("SHOW statement_timeout") == default


async def test_search_path_stays_the_configured_schema_across_many_releases(
    pool: asyncpg.Pool, settings: CommonSettings
) -> None:
    pids = set()
    for i in range(50):
        async with pool.acquire() as conn:
            pids.add(conn.get_server_pid())
            if i % 2:  # half the cycles leave a transaction open, as a failed handler would
                await conn.transaction().start()
            assert await conn.fetchval("SELECT current_schema()") == settings.db_schema
            assert await conn.fetchval("SHOW search_path") == f"{settings.db_schema},public"
    assert len(pids) == 1  # one connection, reset each time, never replaced


async def test_release_runs_no_session_reset(pool: asyncpg.Pool) -> None:
    """The point of the change: no `RESET ALL` round trip per release. A session-level SET therefore
    survives, which is why the code only ever uses `SET LOCAL` (shared/db.py says so)."""
    async with pool.acquire() as conn:
        await conn.execute("SET application_name = 'left_behind'")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") == "left_behind"
