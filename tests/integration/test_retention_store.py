"""Retention against the real event store (issue 9, item 5): the scheduler adapter's query for finished
tasks, and the collector's projection of a log purge and a file clean, in a schema of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import BaseModel

from services.log_collector.projections import Projector
from shared.db import pool_context
from shared.event_store import EventStore, append
from shared.events import (
    LogEmitted,
    TaskCancelRequested,
    TaskCreated,
    TaskDeleted,
    TaskFilesCleaned,
    TaskFinished,
    TaskLogsPurged,
    TaskRerunRequested,
)
from shared.messages import EventEnvelope
from shared.migrate import drop_schema, migrate
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import STEP_ORDER

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
PARAMS = TaskParameters(db_connection="postgresql://u:***@db/x", business_context="ctx", table_list=["t"])


@pytest.fixture
async def pool(common_settings: CommonSettings) -> AsyncIterator[asyncpg.Pool]:
    settings = common_settings.model_copy(
        update={"db_schema": f"{common_settings.db_schema}_ret{uuid.uuid4().hex[:6]}"}
    )
    await migrate(settings)
    try:
        async with pool_context(settings, max_size=2) as pool:
            yield pool
    finally:
        await drop_schema(settings)


async def _store(pool: asyncpg.Pool, task_id: str, payload: BaseModel, at: datetime) -> int:
    envelope = EventEnvelope(task_id=task_id, producer="test", payload=payload, occurred_at=at)  # type: ignore[arg-type]
    async with pool.acquire() as conn, conn.transaction():
        seq = await append(conn, envelope)
        assert seq is not None
        projector = Projector(conn)
        await projector.apply(envelope, seq)
        await projector.flush()
    return seq


def _tid(name: str) -> str:
    return f"task_20240101_000000_{name}"


async def _finished(pool: asyncpg.Pool, name: str, days_ago: float) -> str:
    task_id = _tid(name)
    at = NOW - timedelta(days=days_ago)
    created = TaskCreated(parameters=PARAMS, output_directory=f"/x/{task_id}", steps=list(STEP_ORDER))
    await _store(pool, task_id, created, at - timedelta(minutes=5))
    await _store(pool, task_id, LogEmitted(message=f"a line of {name}"), at - timedelta(minutes=4))
    await _store(pool, task_id, TaskFinished(status="completed"), at)
    return task_id


async def test_finished_tasks_follow_the_last_finish_and_what_retention_did_since(pool: asyncpg.Pool) -> None:
    store = EventStore(pool)
    old = await _finished(pool, "old", 40)
    young = await _finished(pool, "young", 1)
    rerun = await _finished(pool, "rerun", 40)
    await _store(
        pool,
        rerun,
        TaskRerunRequested(steps=list(STEP_ORDER), execution_mode="complete"),
        NOW - timedelta(days=2),
    )
    purged = await _finished(pool, "purged", 40)
    await _store(pool, purged, TaskLogsPurged(reason="r", retention_days=30), NOW - timedelta(days=10))
    both = await _finished(pool, "both", 40)
    await _store(pool, both, TaskLogsPurged(reason="r", retention_days=30), NOW - timedelta(days=10))
    await _store(pool, both, TaskFilesCleaned(reason="r", retention_days=30), NOW - timedelta(days=10))
    again = await _finished(pool, "again", 40)  # purged, then re-run and finished again (35 days ago)
    await _store(pool, again, TaskLogsPurged(reason="r", retention_days=30), NOW - timedelta(days=38))
    await _store(
        pool,
        again,
        TaskRerunRequested(steps=[STEP_ORDER[0]], execution_mode="single"),
        NOW - timedelta(days=36),
    )
    await _store(pool, again, TaskFinished(status="completed"), NOW - timedelta(days=35))
    deleting = await _finished(pool, "deleting", 40)
    await _store(pool, deleting, TaskCancelRequested(delete_after=True), NOW - timedelta(days=1))
    await _store(pool, deleting, TaskDeleted(), NOW - timedelta(days=1))

    found = {f.task_id: f for f in await store.finished_tasks(NOW - timedelta(days=20))}
    assert set(found) == {old, purged, again}
    assert (found[old].logs_purged, found[old].files_cleaned) == (False, False)
    assert (found[purged].logs_purged, found[purged].files_cleaned) == (True, False)
    assert (found[again].logs_purged, found[again].files_cleaned) == (False, False)  # a new finish
    assert abs(found[again].finished_at - (NOW - timedelta(days=35))) < timedelta(seconds=1)
    assert young not in found and rerun not in found and both not in found


async def test_the_projection_purges_log_text_and_marks_cleaned_files(pool: asyncpg.Pool) -> None:
    task_id = await _finished(pool, "proj", 40)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO data_pipeline_task_outputs (task_id, file_type, file_name, file_path, created_at, modified_at)"
            " VALUES ($1, 'txt', 'a.txt', 'a.txt', now(), now())",
            task_id,
        )
    seq = await _store(pool, task_id, TaskLogsPurged(reason="r", retention_days=30), NOW)
    late = await _store(pool, task_id, LogEmitted(message="a line after the purge"), NOW)
    await _store(pool, task_id, TaskFilesCleaned(reason="r", retention_days=30), NOW)
    async with pool.acquire() as conn:
        logs = await conn.fetch("SELECT id, message FROM data_pipeline_task_logs WHERE task_id = $1", task_id)
        assert [(r["id"], r["message"]) for r in logs] == [(late, "a line after the purge")]
        texts = await conn.fetchval(
            "SELECT count(*) FROM data_pipeline_events WHERE task_id = $1 AND strpos(payload::text, 'a line of') > 0",
            task_id,
        )
        assert texts == 0
        kept = await conn.fetchval(
            "SELECT count(*) FROM data_pipeline_events WHERE task_id = $1 AND seq < $2", task_id, seq
        )
        assert kept == 2  # task_created and task_finished: the record survives a rebuild
        assert (
            await conn.fetchval("SELECT status FROM data_pipeline_tasks WHERE id = $1", task_id)
            == "completed"
        )
        assert not await conn.fetchval(
            "SELECT bool_or(is_downloadable) FROM data_pipeline_task_outputs WHERE task_id = $1", task_id
        )
