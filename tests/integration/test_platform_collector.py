"""The log collector's batch consumer against the real PostgreSQL: failures must neither lose, reorder
nor stall events. Messages are stand-ins that record how they were settled; the broker's part
(a nacked message counts against the quorum queue's delivery limit) is what makes nacks costly.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from services.log_collector import handlers
from services.log_collector.adapters.task_files import LOG_FILE, TaskLogFiles
from services.log_collector.handlers import BatchCollector
from shared.db import pool_context
from shared.events import (
    LogEmitted,
    StepScheduled,
    StepStarted,
    StepSucceeded,
    TaskCreated,
    TaskDeleted,
    TaskStarted,
)
from shared.ids import execution_id, new_task_id
from shared.messages import EventBatch, EventEnvelope, encode
from shared.migrate import drop_schema, migrate
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import STEP_ORDER, StepName
from tests.conftest import PG_URL
from tests.support.eventually import eventually

_counter = itertools.count()


class FakeChannel:
    """Delivery tags as a channel numbers them; settling a tag twice fails as the broker's channel does."""

    def __init__(self) -> None:
        self.delivered: list[FakeMessage] = []


_CHANNEL = FakeChannel()


class FakeMessage:
    """An incoming message that records how the consumer settled it (an ack with `multiple` settles
    every unsettled earlier delivery of its channel too)."""

    def __init__(self, envelope: EventEnvelope | EventBatch, channel: FakeChannel = _CHANNEL) -> None:
        self.body = encode(envelope)
        self.settled: list[str] = []
        self.channel = channel
        channel.delivered.append(self)
        self.delivery_tag = len(channel.delivered)

    def _settle(self, how: str) -> None:
        if self.settled:
            raise RuntimeError(f"PRECONDITION_FAILED - unknown delivery tag {self.delivery_tag}")
        self.settled.append(how)

    async def ack(self, multiple: bool = False) -> None:
        self._settle("ack")
        if multiple:
            for earlier in self.channel.delivered[: self.delivery_tag - 1]:
                if not earlier.settled:
                    earlier.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self._settle(f"nack(requeue={requeue})")

    async def reject(self, requeue: bool = False) -> None:
        self._settle(f"reject(requeue={requeue})")


class FlakyPool:
    """A pool whose next `failures` acquisitions fail as if the database were unreachable."""

    def __init__(self, pool: asyncpg.Pool, failures: int) -> None:
        self._pool = pool
        self.failures = failures

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("database unreachable (simulated)")
        async with self._pool.acquire() as conn:
            yield conn


@pytest.fixture
async def settings(common_settings: CommonSettings) -> AsyncIterator[CommonSettings]:
    """A schema of its own: the session's e2e services still run against the shared one and would
    adopt (and run) these tasks if they saw them."""
    own = common_settings.model_copy(
        update={"db_schema": f"{common_settings.db_schema}_{uuid.uuid4().hex[:6]}"}
    )
    await migrate(own)
    yield own
    await drop_schema(own)


@pytest.fixture
async def pool(settings: CommonSettings) -> AsyncIterator[asyncpg.Pool]:
    async with pool_context(settings, max_size=2) as pool:
        yield pool


@pytest.fixture
async def pg(settings: CommonSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": settings.db_schema})
    yield conn
    await conn.close()


def _task_id() -> str:
    now = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(seconds=next(_counter))
    return new_task_id(now)


def _envelopes(task_id: str) -> list[EventEnvelope]:
    at = datetime.now(UTC)
    step = StepName.DDL_GENERATION
    exec_id = execution_id(task_id, step, at, 1)
    payloads: list[BaseModel] = [
        TaskCreated(
            parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="x"),
            output_directory=f"/data/{task_id}",
            steps=list(STEP_ORDER),
        ),
        TaskStarted(),
        StepScheduled(step=step, execution_id=exec_id, attempt=1),
        StepStarted(step=step, execution_id=exec_id, attempt=1, runner_id="r1"),
        LogEmitted(level="INFO", message="working", step=step, execution_id=exec_id),
        StepSucceeded(step=step, execution_id=exec_id, summary={}),
    ]
    return [
        EventEnvelope(task_id=task_id, producer="test", payload=p, occurred_at=at + timedelta(milliseconds=i))  # type: ignore[arg-type]
        for i, p in enumerate(payloads)
    ]


def _collector(pool: Any, data_root: Path, batch_size: int = 100) -> BatchCollector:
    return BatchCollector(pool=pool, files=TaskLogFiles(data_root), batch_size=batch_size, flush_seconds=0.01)


async def _deliver(collector: BatchCollector, messages: list[FakeMessage]) -> None:
    for message in messages:
        await collector.on_message(message)  # type: ignore[arg-type]


async def _wait_settled(messages: list[FakeMessage], timeout: float = 10) -> None:
    await eventually(
        lambda: all(m.settled for m in messages), timeout=timeout, interval=0.02, what="every message settled"
    )


async def _read_models(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {name: [dict(r) for r in await conn.fetch(q)] for name, q in READ_MODELS.items()}


@asynccontextmanager
async def _stored_in_own_schema(
    settings: CommonSettings, data_root: Path, events: list[EventEnvelope], batch_size: int
) -> AsyncIterator[tuple[asyncpg.Pool, BatchCollector]]:
    """`events` stored by a collector in batches of `batch_size` into the schema of `settings` (made
    here, dropped on exit), every message acked."""
    await migrate(settings)
    try:
        async with pool_context(settings, max_size=2) as pool:
            messages = [FakeMessage(e, FakeChannel()) for e in events]
            collector = _collector(pool, data_root, batch_size=batch_size)
            await _deliver(collector, messages)
            await _wait_settled(messages)
            await collector.drain()
            assert all(m.settled == ["ack"] for m in messages)
            yield pool, collector
    finally:
        await drop_schema(settings)


async def test_database_outage_is_waited_out_not_requeued(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    # Every nack(requeue) burns one of the quorum queue's 10 deliveries: requeueing at once while the
    # database is down dead-letters events within milliseconds, and requeued events come back after
    # the ones delivered meanwhile, so the order-sensitive projection goes wrong.
    flaky = FlakyPool(pool, failures=3)
    collector = _collector(flaky, tmp_path, batch_size=3)
    task_id = _task_id()
    messages = [FakeMessage(e) for e in _envelopes(task_id)]
    await _deliver(collector, messages)
    await _wait_settled(messages)
    await collector.drain()
    assert [m.settled for m in messages] == [["ack"]] * len(messages)
    stored = await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", task_id)
    assert stored == len(messages)
    row = await pg.fetchrow(
        "SELECT status, step_status->>'ddl_generation' AS ddl FROM data_pipeline_tasks WHERE id = $1", task_id
    )
    assert (row["status"], row["ddl"]) == ("in_progress", "completed")


async def test_a_batch_whose_preparation_fails_is_stored_all_the_same(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a batch prepares before the store's lock (batch_store.prepare) fails once: the batch is
    # prepared again under the lock and stored, not left unsettled.
    calls = 0
    real = handlers.prepare

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("preparation failed (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers, "prepare", failing_once)
    collector = _collector(pool, tmp_path)
    task_id = _task_id()
    messages = [FakeMessage(e) for e in _envelopes(task_id)]
    await _deliver(collector, messages)
    await _wait_settled(messages)
    await collector.drain()
    assert calls == 2
    assert [m.settled for m in messages] == [["ack"]] * len(messages)
    stored = await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", task_id)
    assert stored == len(messages)


class BrokenFiles(TaskLogFiles):
    """The task directory is not writable for a while (full disk, lost mount)."""

    def __init__(self, data_root: Path) -> None:
        super().__init__(data_root)
        self.broken = True

    async def catch_up(self, conn: asyncpg.Connection, task_id: str) -> int:
        if self.broken:
            raise OSError(28, "No space left on device (simulated)")
        return await super().catch_up(conn, task_id)

    def append(self, task_id: str, rows: list[dict[str, Any]], before: int | None) -> bool:
        if self.broken:
            raise OSError(28, "No space left on device (simulated)")
        return super().append(task_id, rows, before)


async def test_log_file_failure_neither_stalls_nor_loses_lines(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    collector = _collector(pool, tmp_path)
    files = BrokenFiles(tmp_path)
    collector.files = files
    task_id = _task_id()
    first = [FakeMessage(e) for e in _envelopes(task_id)]
    await _deliver(collector, first)
    await _wait_settled(first, timeout=2)
    # The events are committed: they are acked (not left unacked, which would fill the prefetch window
    # and stop the consumer for good), and the log file catches up once it can be written again.
    assert [m.settled for m in first] == [["ack"]] * len(first)
    files.broken = False
    later = FakeMessage(
        EventEnvelope(
            task_id=_task_id(),
            producer="test",
            payload=LogEmitted(level="INFO", message="another task"),  # type: ignore[arg-type]
        )
    )
    await _deliver(collector, [later])
    await collector.drain()
    lines = (tmp_path / task_id / LOG_FILE).read_text().splitlines()
    # task_started also gives the task-level `workflow_start` line (shared/task_log.py).
    assert len(lines) == 2 and "[workflow_start]" in lines[0] and "working" in lines[1]
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1", task_id) == 2


READ_MODELS = {
    "tasks": "SELECT * FROM data_pipeline_tasks ORDER BY id",
    "executions": "SELECT * FROM data_pipeline_task_executions ORDER BY id",
    "logs": "SELECT * FROM data_pipeline_task_logs ORDER BY id",
    "outputs": "SELECT * FROM data_pipeline_task_outputs ORDER BY id",
}


async def test_after_a_failed_batch_a_rebuild_reproduces_the_rows_and_ids(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    from services.log_collector.rebuild import rebuild_read_models

    collector = _collector(pool, tmp_path, batch_size=50)
    good, other = _task_id(), _task_id()
    # PostgreSQL cannot store NUL in text: this log line fails the whole batch after the rows before it
    # were inserted (consuming ids); the collector then stores the events one by one.
    poison = EventEnvelope(
        task_id=other,
        producer="test",
        payload=LogEmitted(level="INFO", message="bad \x00 byte"),  # type: ignore[arg-type]
    )
    envelopes = [*_envelopes(good)[:5], *_envelopes(other), poison, *_envelopes(good)[5:]]
    messages = [FakeMessage(e) for e in envelopes]
    await _deliver(collector, messages)
    await _wait_settled(messages)
    await collector.drain()
    assert messages[-2].settled == ["nack(requeue=True)"]  # the poison goes back (and dead-letters later)
    assert all(m.settled == ["ack"] for m in messages if m is not messages[-2])
    live = {name: [dict(r) for r in await pg.fetch(q)] for name, q in READ_MODELS.items()}
    # Row ids are the sequence numbers of the events that made the rows, whatever rolled back before.
    log_seqs = await pg.fetch(
        "SELECT seq FROM data_pipeline_events WHERE type IN ('log_emitted', 'task_started')"
        " AND event_id = ANY($1::uuid[]) ORDER BY seq",
        [r["event_id"] for r in live["logs"]],
    )
    assert [r["id"] for r in live["logs"]] == [r["seq"] for r in log_seqs]
    assert len(live["logs"]) == 4  # per task: the line logged and the derived workflow_start
    await rebuild_read_models(pool)
    rebuilt = {name: [dict(r) for r in await pg.fetch(q)] for name, q in READ_MODELS.items()}
    assert rebuilt == live


async def test_a_batch_ack_never_settles_an_earlier_batchs_requeued_event(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    """Batches are acked with one `multiple` ack each: the poison of an earlier batch, handed back one by
    one, must stay requeued (the fake channel refuses a second settle, as the broker does)."""
    collector = _collector(pool, tmp_path, batch_size=4)
    task = _task_id()
    poison = EventEnvelope(
        task_id=task, producer="test", payload=LogEmitted(level="INFO", message="bad \x00")
    )  # type: ignore[arg-type]
    envelopes = [*_envelopes(task)[:3], poison, *_envelopes(_task_id()), *_envelopes(_task_id())]
    channel = FakeChannel()
    messages = [FakeMessage(e, channel) for e in envelopes]
    await _deliver(collector, messages)
    await _wait_settled(messages)
    await collector.drain()
    assert messages[3].settled == ["nack(requeue=True)"]
    assert all(m.settled == ["ack"] for m in messages if m is not messages[3])
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events") == len(envelopes) - 1


async def test_delete_purges_the_store_and_late_events_stay_out(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    from services.log_collector.rebuild import rebuild_read_models
    from services.step_runner.adapters.task_records import TaskRecords

    collector = _collector(pool, tmp_path)
    deleted, kept = _task_id(), _task_id()
    late = _envelopes(deleted)[-2:]  # a log line and an outcome the runner sends after the delete
    deletion = EventEnvelope(task_id=deleted, producer="test", payload=TaskDeleted())  # type: ignore[arg-type]
    kept_events = _envelopes(kept)
    messages = [FakeMessage(e) for e in [*_envelopes(deleted)[:-2], *kept_events, deletion]]
    await _deliver(collector, messages)
    await _wait_settled(messages)
    late_messages = [FakeMessage(e) for e in late]
    await _deliver(collector, late_messages)
    await _wait_settled(late_messages)
    await collector.drain()
    assert all(m.settled == ["ack"] for m in [*messages, *late_messages])
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", deleted) == 0
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1", deleted) == 0
    tomb = await pg.fetchrow("SELECT * FROM task_tombstones WHERE task_id = $1", deleted)
    # log_count 1: the workflow_start line derived from task_started
    assert (tomb["event_count"], tomb["execution_count"], tomb["log_count"]) == (5, 1, 1)
    ended = kept_events[-1].payload.execution_id  # type: ignore[attr-defined]
    expected = ["the task was deleted", None, f"execution {ended} already ended completed", None]
    asked = [(deleted, "any"), (kept, "any"), (kept, ended), (kept, "any")]
    records = TaskRecords(pool)
    for one, reason in zip(asked, expected, strict=True):  # one at a time, and all in one loop turn
        assert await records.obsolete_reason(*one) == reason
    assert await asyncio.gather(*(records.obsolete_reason(*one) for one in asked)) == expected
    live = {name: [dict(r) for r in await pg.fetch(q)] for name, q in READ_MODELS.items()}
    await rebuild_read_models(pool)
    assert {name: [dict(r) for r in await pg.fetch(q)] for name, q in READ_MODELS.items()} == live
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks WHERE id = $1", deleted) == 0
