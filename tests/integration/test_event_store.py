"""The one event-store adapter (shared/event_store.py) on a real PostgreSQL schema of its own: versions are
stored, the v1 fixture's rows (stored as they were before versions existed) replay through the projector,
an old version is upcast on every read path, and one from a newer release is refused with a reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.log_collector.rebuild import rebuild_read_models
from shared import event_store
from shared.db import pool_context
from shared.events import EVENT_TYPES, StepHeartbeat
from shared.messages import EventEnvelope
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "stored_events_v1.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
async def pool(common_settings: CommonSettings) -> AsyncIterator[asyncpg.Pool]:
    settings = common_settings.model_copy(
        update={"db_schema": f"{common_settings.db_schema}_es{uuid.uuid4().hex[:6]}"}
    )
    await migrate(settings)
    try:
        async with pool_context(settings, max_size=2) as pool:
            yield pool
    finally:
        await drop_schema(settings)


async def _insert_raw(conn: asyncpg.Connection, row: dict[str, Any], version: int | None = None) -> None:
    """A row as an earlier release wrote it (no version column value: the migration's default, 1)."""
    columns = "event_id, type, task_id, occurred_at, producer, payload" + (", version" if version else "")
    values = "$1::uuid, $2, $3, $4::timestamptz, $5, $6::jsonb" + (", $7" if version else "")
    at = datetime.fromisoformat(row["occurred_at"])
    args = [row["event_id"], row["type"], row["task_id"], at, row["producer"], row["payload"]]
    await conn.execute(
        f"INSERT INTO data_pipeline_events ({columns}) VALUES ({values})",
        *args,
        *([version] if version else []),
    )


async def test_append_stores_the_current_version(pool: asyncpg.Pool) -> None:
    envelope = EventEnvelope(
        task_id="task_20261129_000000_ver",
        producer="test",
        payload=StepHeartbeat(step="ddl_generation", execution_id="e1", runner_id="r1"),  # type: ignore[arg-type]
    )
    async with pool.acquire() as conn:
        seq = await event_store.append(conn, envelope)
        stored = await conn.fetchval("SELECT version FROM data_pipeline_events WHERE seq = $1", seq)
        assert stored == event_store.EVENT_VERSIONS["step_heartbeat"] == 1
        assert await event_store.task_events(conn, envelope.task_id) == [envelope]


async def test_the_v1_fixture_stored_without_versions_replays_through_every_reader(
    pool: asyncpg.Pool,
) -> None:
    # The fixture's events, minus the delete (it would purge the rest), as an earlier release stored them.
    rows = [r for r in ROWS if r["type"] != "task_deleted"]
    async with pool.acquire() as conn:
        for row in rows:
            await _insert_raw(conn, row)
        assert await conn.fetchval("SELECT bool_and(version = 1) FROM data_pipeline_events")
        events = await event_store.task_events(conn, rows[0]["task_id"])
        replayed = [env async for _, env in event_store.replay(conn, batch=5)]
    first_task = [r for r in rows if r["task_id"] == rows[0]["task_id"]]
    assert [e.type for e in replayed] == [r["type"] for r in rows]
    assert [e.type for e in events] == [r["type"] for r in first_task]
    assert {r["type"] for r in ROWS} == set(EVENT_TYPES)
    assert await rebuild_read_models(pool) == len(rows)  # the projector takes every type
    page = await event_store.event_page(pool, rows[0]["task_id"], after_seq=None, limit=100)
    # The fixture's task_logs_purged drops the log text stored before it, in the rebuild as live.
    assert [p["payload"] for p in page] == [r["payload"] for r in first_task if r["type"] != "log_emitted"]


async def test_an_old_version_is_upcast_on_read_and_a_newer_one_refused(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = next(r for r in ROWS if r["type"] == "step_heartbeat")
    old_payload = {k: v for k, v in row["payload"].items() if k != "runner_id"} | {"worker": "runner-z9"}
    async with pool.acquire() as conn:
        await _insert_raw(conn, {**row, "payload": old_payload})
    # This release's step_heartbeat is v2: `worker` became `runner_id`.
    monkeypatch.setitem(event_store.EVENT_VERSIONS, "step_heartbeat", 2)
    monkeypatch.setitem(
        event_store.UPCASTERS,
        ("step_heartbeat", 1),
        lambda p: {k: v for k, v in p.items() if k != "worker"} | {"runner_id": p["worker"]},
    )
    async with pool.acquire() as conn:
        (decoded,) = await event_store.task_events(conn, row["task_id"])
        assert isinstance(decoded.payload, StepHeartbeat) and decoded.payload.runner_id == "runner-z9"
        (page_row,) = await event_store.event_page(conn, row["task_id"], after_seq=None, limit=10)
        assert page_row["payload"]["runner_id"] == "runner-z9" and "worker" not in page_row["payload"]
        await conn.execute("UPDATE data_pipeline_events SET version = 3")
        with pytest.raises(event_store.UndecodableEvent, match="newer release"):
            await event_store.task_events(conn, row["task_id"])
