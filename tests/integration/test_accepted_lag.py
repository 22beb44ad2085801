"""The collector lag `/readyz` reports, from the gateway's intake journal on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.api_gateway.adapters import accepted, read_models
from shared.db import pool_context
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings

pytestmark = pytest.mark.integration
TTL = 86400.0


@pytest.fixture
async def pool(common_settings: CommonSettings) -> AsyncIterator[asyncpg.Pool]:
    settings = common_settings.model_copy(
        update={"db_schema": f"{common_settings.db_schema}_lag{uuid.uuid4().hex[:6]}"}
    )
    await migrate(settings)
    try:
        async with pool_context(settings, max_size=2) as pool:
            yield pool
    finally:
        await drop_schema(settings)


async def _accept(pool: asyncpg.Pool, task_id: str, seconds_ago: int) -> None:
    await accepted.record(pool, task_id, "complete_workflow", "complete", None)
    await pool.execute(
        "UPDATE accepted_commands SET accepted_at = now() - make_interval(secs => $2) WHERE task_id = $1",
        task_id,
        seconds_ago,
    )


async def _recorded(pool: asyncpg.Pool, task_id: str, seconds_ago: int) -> None:
    await pool.execute(
        "INSERT INTO data_pipeline_tasks (id, parameters, created_at, updated_at)"
        " VALUES ($1, '{}', now() - make_interval(secs => $2), now())",
        task_id,
        seconds_ago,
    )


async def test_an_unrecorded_task_is_lag_until_a_newer_one_is_recorded(pool: asyncpg.Pool) -> None:
    await _accept(pool, "task_lost", seconds_ago=300)
    lag = await accepted.lag(pool, TTL)
    assert lag.waiting == 1 and lag.seconds >= 299  # the collector has reached nothing since

    # A task accepted later is recorded: the collector went past the first, which was lost, not delayed.
    await _accept(pool, "task_later", seconds_ago=200)
    await _recorded(pool, "task_later", seconds_ago=199)
    assert await accepted.lag(pool, TTL) == accepted.Lag(seconds=0.0, waiting=0)
    # ... and the lost one is still addressable as pending.
    view = await accepted.unrecorded(pool, "task_lost")
    assert view is not None and view["status"] == "pending"


async def test_tasks_accepted_after_the_newest_recorded_one_count(pool: asyncpg.Pool) -> None:
    await _accept(pool, "task_done", seconds_ago=120)
    await _recorded(pool, "task_done", seconds_ago=119)
    await _accept(pool, "task_behind_1", seconds_ago=90)
    await _accept(pool, "task_behind_2", seconds_ago=10)
    lag = await accepted.lag(pool, TTL)
    assert lag.waiting == 2 and 89 <= lag.seconds < 200


async def test_a_task_recorded_between_the_two_reads_is_found(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /tasks/{id} reads the read model, then the journal: the collector may commit the task's row in
    between (a client reading right after a 202 meets this). It was a 404 for an existing task."""
    await _accept(pool, "task_racing", seconds_ago=1)
    journal = accepted.unrecorded

    async def recorded_meanwhile(pool_: asyncpg.Pool, task_id: str) -> object:
        await _recorded(pool, task_id, seconds_ago=0)  # the collector's commit lands between the reads
        return await journal(pool_, task_id)

    monkeypatch.setattr(accepted, "unrecorded", recorded_meanwhile)
    row = await read_models.get_task(pool, "task_racing")
    assert row is not None and row["id"] == "task_racing"
    assert await read_models.existing_task_ids(pool, ["task_racing", "task_none"]) == {"task_racing"}
