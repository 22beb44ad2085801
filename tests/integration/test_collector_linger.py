"""Step-level events alone wait up to the collector's linger to share a transaction; a task-level event
takes them along at once (services/log_collector/handlers.py, `_schedule`). What that could break: a
task-level event held back (a create or delete the gateway waits for), step-level events never stored,
or stored out of order. Against the real database."""

# ruff: noqa: F811  (the fixtures imported from test_platform_collector are parameters here)

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest

from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.handlers import BatchCollector
from shared.events import EVENT_TYPES, STEP_LEVEL_TYPES
from shared.settings import CollectorSettings
from tests.integration.test_platform_collector import (  # noqa: F401  (fixtures)
    FakeMessage,
    _deliver,
    _envelopes,
    _task_id,
    _wait_settled,
    pg,
    pool,
    settings,
)

pytestmark = pytest.mark.integration


def _lingering(pool: asyncpg.Pool, root: Path, linger: float) -> BatchCollector:
    return BatchCollector(
        pool=pool, files=TaskLogFiles(root), batch_size=100, flush_seconds=0, linger_seconds=linger
    )


async def _stored(pg: asyncpg.Connection, task_id: str) -> list[asyncpg.Record]:
    return await pg.fetch(
        "SELECT type, recorded_at FROM data_pipeline_events WHERE task_id = $1 ORDER BY seq", task_id
    )


def test_the_catalog_splits_into_step_level_and_task_level_events() -> None:
    assert STEP_LEVEL_TYPES < set(EVENT_TYPES)
    assert not {"task_created", "task_finished", "task_deleted", "pair_reviewed"} & STEP_LEVEL_TYPES
    assert CollectorSettings.model_fields["collector_linger_ms"].default == 50


async def test_step_level_events_alone_wait_for_the_linger_then_share_one_transaction(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task_id = _task_id()
    created, started, *steps = _envelopes(task_id)
    collector = _lingering(pool, tmp_path, linger=0.5)
    first = [FakeMessage(created), FakeMessage(started)]
    await _deliver(collector, first)
    await _wait_settled(first, timeout=0.4)  # task-level: stored at once, not after the linger

    step_level = [FakeMessage(e) for e in steps]
    began = time.monotonic()
    await _deliver(collector, step_level)
    assert not any(m.settled for m in step_level)
    assert [r["type"] for r in await _stored(pg, task_id)] == ["task_created", "task_started"]

    await _wait_settled(step_level)
    assert time.monotonic() - began >= 0.45
    rows = await _stored(pg, task_id)
    assert [r["type"] for r in rows[2:]] == [e.type for e in steps]
    assert len({r["recorded_at"] for r in rows[2:]}) == 1  # one transaction
    await collector.drain()


async def test_a_task_level_event_takes_the_waiting_step_level_ones_along_at_once(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    collector = _lingering(pool, tmp_path, linger=30)
    created = [FakeMessage(envelopes[0])]
    await _deliver(collector, created)
    await _wait_settled(created, timeout=5)

    # step_scheduled, step_started, log_emitted, step_succeeded wait; task_started (task-level) follows.
    rest = [FakeMessage(e) for e in [*envelopes[2:], envelopes[1]]]
    await _deliver(collector, rest)
    await _wait_settled(rest, timeout=5)  # far inside the 30 s linger
    rows = await _stored(pg, task_id)
    assert [r["type"] for r in rows] == ["task_created", *(e.type for e in envelopes[2:]), "task_started"]
    assert len({r["recorded_at"] for r in rows[1:]}) == 1
    execution = await pg.fetchrow(
        "SELECT status FROM data_pipeline_task_executions WHERE task_id = $1", task_id
    )
    assert execution["status"] == "completed"
    await collector.drain()


async def test_a_stopping_collector_stores_what_lingers(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task_id = _task_id()
    created, started, *steps, _ = _envelopes(task_id)
    collector = _lingering(pool, tmp_path, linger=30)
    messages = [FakeMessage(e) for e in (created, started, *steps)]
    await _deliver(collector, messages)
    await collector.drain()
    assert all(m.settled == ["ack"] for m in messages)
    assert len(await _stored(pg, task_id)) == len(messages)
