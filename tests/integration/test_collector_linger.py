"""A running step's events alone wait up to the collector's linger to share a transaction; any other
event takes them along at once (services/log_collector/handlers.py, `_schedule`). What that could break:
an event held back that someone reads back at once (a create or delete the gateway waits for, a step's
outcome a runner's "still wanted?" check reads), waiting events never stored, or stored out of order.
Against the real database."""

# ruff: noqa: F811  (the fixtures imported from test_platform_collector are parameters here)

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest

from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.handlers import BatchCollector
from shared.events import EVENT_TYPES, RUNNING_STEP_TYPES
from shared.messages import EventEnvelope
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


def _lingering(
    pool: asyncpg.Pool, root: Path, linger: float
) -> tuple[BatchCollector, str, list[EventEnvelope]]:
    """A collector with this linger (and no flush wait), and a task's events: created, started,
    step_scheduled, step_started, log_emitted, step_succeeded."""
    collector = BatchCollector(
        pool=pool, files=TaskLogFiles(root), batch_size=100, flush_seconds=0, linger_seconds=linger
    )
    task_id = _task_id()
    return collector, task_id, _envelopes(task_id)


async def _stored(pg: asyncpg.Connection, task_id: str) -> list[asyncpg.Record]:
    return await pg.fetch(
        "SELECT type, recorded_at FROM data_pipeline_events WHERE task_id = $1 ORDER BY seq", task_id
    )


def test_what_is_read_back_at_once_never_waits() -> None:
    assert RUNNING_STEP_TYPES < set(EVENT_TYPES)
    read_back = {"task_created", "task_finished", "task_deleted", "pair_reviewed", "step_succeeded"}
    assert not (read_back | {"step_failed", "step_cancelled"}) & RUNNING_STEP_TYPES
    assert CollectorSettings.model_fields["collector_linger_ms"].default == 50


async def test_a_running_steps_events_alone_wait_for_the_linger_then_share_one_transaction(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    collector, task_id, (created, started, *steps, _outcome) = _lingering(pool, tmp_path, linger=0.5)
    first = [FakeMessage(created), FakeMessage(started)]
    await _deliver(collector, first)
    await _wait_settled(first, timeout=0.4)  # task-level: stored at once, not after the linger

    running = [FakeMessage(e) for e in steps]  # step_scheduled, step_started, log_emitted
    began = time.monotonic()
    await _deliver(collector, running)
    await _wait_settled(running)
    assert time.monotonic() - began >= 0.45  # held until the linger was up, not stored at once
    rows = await _stored(pg, task_id)
    assert [r["type"] for r in rows[2:]] == [e.type for e in steps]
    assert len({r["recorded_at"] for r in rows[2:]}) == 1  # one transaction
    await collector.drain()


@pytest.mark.parametrize("taker", ["task_started", "step_succeeded"])
async def test_a_task_level_event_or_a_steps_outcome_takes_the_waiting_ones_along_at_once(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path, taker: str
) -> None:
    collector, task_id, (created, started, *running, outcome) = _lingering(pool, tmp_path, linger=30)
    before = [created] if taker == "task_started" else [created, started]
    first = [FakeMessage(e) for e in before]
    await _deliver(collector, first)
    await _wait_settled(first, timeout=5)

    # step_scheduled, step_started and log_emitted wait, the taker comes last (after task_started, the
    # outcome too: its execution row needs its step_scheduled stored, in the same batch is enough).
    order = [*running, started, outcome] if taker == "task_started" else [*running, outcome]
    rest = [FakeMessage(e) for e in order]
    await _deliver(collector, rest)
    await _wait_settled(rest, timeout=5)  # far inside the 30 s linger
    rows = await _stored(pg, task_id)
    assert [r["type"] for r in rows] == [e.type for e in (*before, *order)]
    assert len({r["recorded_at"] for r in rows[len(before) :]}) == 1
    execution = await pg.fetchrow(
        "SELECT status FROM data_pipeline_task_executions WHERE task_id = $1", task_id
    )
    assert execution["status"] == "completed"
    await collector.drain()


async def test_a_stopping_collector_stores_what_lingers(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    collector, task_id, (created, started, *running, _) = _lingering(pool, tmp_path, linger=30)
    messages = [FakeMessage(e) for e in (created, started, *running)]
    await _deliver(collector, messages)
    await collector.drain()
    assert all(m.settled == ["ack"] for m in messages)
    assert len(await _stored(pg, task_id)) == len(messages)
