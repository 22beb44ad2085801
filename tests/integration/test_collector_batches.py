"""The collector's batch path (issue 11, goals 1 and 5) on the real PostgreSQL: one COPY of the batch's new
events, the handlers folded over the batch's rows in memory, each touched row written once, heartbeats
and progress compacted. Each test catches a bug that batching or compaction could bring: a repeat stored
twice, tasks mixed up inside a batch, events after a delete, a compaction a rebuild cannot reproduce,
a batch that failed half-way leaving a trace."""

# ruff: noqa: F811  (the fixtures imported from test_platform_collector are parameters here)

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from services.log_collector.adapters.task_files import LOG_FILE, TaskLogFiles
from services.log_collector.handlers import BatchCollector
from services.log_collector.rebuild import rebuild_read_models
from services.log_collector.unit_of_work import UnitOfWork
from shared.db import pool_context
from shared.events import (
    LogEmitted,
    StepHeartbeat,
    StepProgress,
    StepScheduled,
    StepStarted,
    StepSucceeded,
    TaskCreated,
    TaskDeleted,
    TaskFinished,
    TaskStarted,
)
from shared.ids import execution_id
from shared.messages import EventBatch, EventEnvelope
from shared.migrate import drop_schema, migrate
from shared.parameters import TaskParameters
from shared.settings import CommonSettings
from shared.steps import STEP_ORDER, StepName
from tests.conftest import PG_URL
from tests.integration.test_platform_collector import (  # noqa: F401  (fixtures)
    FakeChannel,
    FakeMessage,
    _collector,
    _deliver,
    _envelopes,
    _read_models,
    _task_id,
    _wait_settled,
    pg,
    pool,
    settings,
)
from tests.support.eventually import eventually

pytestmark = pytest.mark.integration


async def _run(collector: Any, envelopes: list[EventEnvelope]) -> list[FakeMessage]:
    messages = [FakeMessage(e) for e in envelopes]
    await _deliver(collector, messages)
    await _wait_settled(messages)
    await collector.drain()
    return messages


def _beats(task_id: str, step: StepName, exec_id: str, at: datetime, count: int) -> list[EventEnvelope]:
    payloads: list[BaseModel] = []
    for i in range(count):
        payloads += [
            StepHeartbeat(step=step, execution_id=exec_id, runner_id="r1"),
            StepProgress(step=step, execution_id=exec_id, percent=10 * (i + 1)),
        ]
    return [
        EventEnvelope(task_id=task_id, producer="test", payload=p, occurred_at=at + timedelta(seconds=i + 1))  # type: ignore[arg-type]
        for i, p in enumerate(payloads)
    ]


def _finished(task_id: str, at: datetime) -> EventEnvelope:
    return EventEnvelope(
        task_id=task_id,
        producer="t",
        payload=TaskFinished(status="completed"),
        occurred_at=at + timedelta(seconds=60),
    )  # type: ignore[arg-type]


@pytest.fixture
async def other_pool(
    common_settings: CommonSettings,
) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Connection]]:
    """A second fresh schema: the same events stored there get the same sequence numbers."""
    own = common_settings.model_copy(
        update={"db_schema": f"{common_settings.db_schema}_{uuid.uuid4().hex[:6]}"}
    )
    await migrate(own)
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": own.db_schema})
    try:
        async with pool_context(own, max_size=2) as pool:
            yield pool, conn
    finally:
        await conn.close()
        await drop_schema(own)


async def test_repeats_in_a_batch_and_a_redelivered_batch_change_nothing(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    collector = _collector(pool, tmp_path, batch_size=100)
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    text = "tab\there, line\nbreak, back\\slash, carriage\rreturn, \\N"  # what COPY text must escape
    envelopes[4] = envelopes[4].model_copy(
        update={"payload": envelopes[4].payload.model_copy(update={"message": text})}
    )
    # A producer's retried publish: the same event twice in one batch.
    first = await _run(collector, [*envelopes[:4], envelopes[4], envelopes[4], *envelopes[5:]])
    assert all(m.settled == ["ack"] for m in first)
    live = await _read_models(pg)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events") == len(envelopes)
    assert [r["message"] for r in live["logs"]][1] == text
    stored = await pg.fetchval(
        "SELECT payload->>'message' FROM data_pipeline_events WHERE event_id = $1", envelopes[4].event_id
    )
    assert stored == text
    again = await _run(collector, envelopes)  # the whole batch redelivered
    assert all(m.settled == ["ack"] for m in again)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events") == len(envelopes)
    assert await _read_models(pg) == live
    ids = re.findall(r"\(#(\d+)\)$", (tmp_path / task_id / LOG_FILE).read_text(), re.MULTILINE)
    assert ids == [str(r["id"]) for r in live["logs"]] and len(ids) == 2
    await rebuild_read_models(pool)
    assert await _read_models(pg) == live


async def test_two_tasks_interleaved_in_one_batch_fold_as_one_event_at_a_time(
    pool: asyncpg.Pool,
    pg: asyncpg.Connection,
    other_pool: tuple[asyncpg.Pool, asyncpg.Connection],
    tmp_path: Path,
) -> None:
    a, b = _task_id(), _task_id()
    ea, eb = _envelopes(a), _envelopes(b)
    at = ea[0].occurred_at
    exec_a = ea[2].payload.execution_id  # type: ignore[union-attr]
    ea = [*ea[:4], *_beats(a, StepName.DDL_GENERATION, exec_a, at, 3), *ea[4:]]
    # Both finish in the batch: their final reports are made together at the flush.
    ea, eb = [*ea, _finished(a, at)], [*eb, _finished(b, at)]
    mixed = [e for pair in zip(ea, eb, strict=False) for e in pair] + ea[len(eb) :]
    await _run(_collector(pool, tmp_path / "batched", batch_size=500), mixed)
    other, other_conn = other_pool
    await _run(_collector(other, tmp_path / "single", batch_size=1), mixed)
    # Same sequence numbers, same rows: the batch's fold equals applying one event per transaction.
    batched, single = await _read_models(pg), await _read_models(other_conn)
    assert batched == single
    assert [
        r["event_id"] for r in await pg.fetch("SELECT event_id FROM data_pipeline_events ORDER BY seq")
    ] == [
        r["event_id"]
        for r in await other_conn.fetch("SELECT event_id FROM data_pipeline_events ORDER BY seq")
    ]
    assert all(r["result"] and r["status"] == "completed" for r in batched["tasks"])
    tasks = {r["id"]: json.loads(r["step_status"]) for r in batched["tasks"]}
    assert tasks[a]["ddl_generation"] == tasks[b]["ddl_generation"] == "completed"
    for task_id in (a, b):
        left = (tmp_path / "batched" / task_id / LOG_FILE).read_text()
        assert left == (tmp_path / "single" / task_id / LOG_FILE).read_text()


async def test_a_delete_in_a_batch_keeps_the_tasks_later_events_out(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    deleted, kept = _task_id(), _task_id()
    ed, ek = _envelopes(deleted), _envelopes(kept)
    deletion = EventEnvelope(task_id=deleted, producer="test", payload=TaskDeleted())  # type: ignore[arg-type]
    # One batch: the deleted task's first events, the delete, then its late log line and outcome, and
    # the other task's events around them.
    batch = [*ed[:4], *ek[:3], deletion, *ed[4:], *ek[3:]]
    messages = await _run(_collector(pool, tmp_path, batch_size=500), batch)
    assert all(m.settled == ["ack"] for m in messages)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", deleted) == 0
    tomb = await pg.fetchrow("SELECT * FROM task_tombstones WHERE task_id = $1", deleted)
    # Four events and the delete; one execution; the workflow_start line of task_started.
    assert (tomb["event_count"], tomb["execution_count"], tomb["log_count"]) == (5, 1, 1)
    live = await _read_models(pg)
    assert {r["task_id"] for r in live["logs"]} == {kept}
    assert [r["id"] for r in live["tasks"]] == [kept]
    assert not (tmp_path / deleted).exists()
    assert len((tmp_path / kept / LOG_FILE).read_text().splitlines()) == 2
    await rebuild_read_models(pool)
    assert await _read_models(pg) == live


async def test_compaction_leaves_what_a_rebuild_needs(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task_id = _task_id()
    at = datetime.now(UTC).replace(microsecond=0)
    step, step2 = StepName.DDL_GENERATION, StepName.QA_GENERATION
    done, running = execution_id(task_id, step, at, 1), execution_id(task_id, step2, at, 1)
    created = TaskCreated(
        parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="x"),
        output_directory=f"/data/{task_id}",
        steps=list(STEP_ORDER),
    )

    def env(payload: BaseModel, seconds: float) -> EventEnvelope:
        return EventEnvelope(
            task_id=task_id, producer="t", payload=payload, occurred_at=at + timedelta(seconds=seconds)
        )  # type: ignore[arg-type]

    events = [
        env(created, 0),
        env(TaskStarted(), 0.5),
        env(StepScheduled(step=step, execution_id=done, attempt=1), 1),
        env(StepStarted(step=step, execution_id=done, runner_id="r1"), 2),
        *_beats(task_id, step, done, at + timedelta(seconds=2), 5),
        env(LogEmitted(message="halfway", step=step, execution_id=done), 20),
        env(StepSucceeded(step=step, execution_id=done, summary={}), 30),
        env(
            StepHeartbeat(step=step, execution_id=done, runner_id="r1"), 31
        ),  # after the finish: changes nothing
        env(StepScheduled(step=step2, execution_id=running, attempt=1), 32),
        env(StepStarted(step=step2, execution_id=running, runner_id="r2"), 33),
        *_beats(task_id, step2, running, at + timedelta(seconds=33), 3),
    ]
    # Two batches, so the finish compacts beats stored by an earlier transaction too.
    collector = _collector(pool, tmp_path, batch_size=8)
    await _run(collector, events)
    beats = await pg.fetch(
        "SELECT type, payload->>'execution_id' AS e, payload->>'percent' AS pct FROM data_pipeline_events"
        " WHERE task_id = $1 AND type IN ('step_heartbeat', 'step_progress') ORDER BY seq",
        task_id,
    )
    # The finished execution keeps its last heartbeat-or-progress and its last progress (here one event);
    # the heartbeat after the finish was never kept. The running one keeps the beats no later beat of
    # their batch overwrote: the third batch's last progress and heartbeat, the fourth's progress.
    assert [(b["type"], b["pct"]) for b in beats if b["e"] == done] == [("step_progress", "50.0")]
    assert [(b["type"], b["pct"]) for b in beats if b["e"] == running] == [
        ("step_progress", "20.0"),
        ("step_heartbeat", None),
        ("step_progress", "30.0"),
    ]
    live = await _read_models(pg)
    execution = next(r for r in live["executions"] if r["execution_id"] == done)
    assert execution["progress"] == 50 and execution["last_heartbeat_at"] == at + timedelta(seconds=12)
    await rebuild_read_models(pool)
    assert await _read_models(pg) == live


async def test_no_compaction_across_a_cancel(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    at = envelopes[0].occurred_at
    exec_id = envelopes[2].payload.execution_id  # type: ignore[union-attr]
    cancel = EventEnvelope(
        task_id=task_id,
        producer="t",
        payload=TaskFinished(status="cancelled"),
        occurred_at=at + timedelta(seconds=5),
    )  # type: ignore[arg-type]
    beats = _beats(task_id, StepName.DDL_GENERATION, exec_id, at, 2)
    # The task finishes (cancelled) while the execution still sends beats: the earlier progress moved the
    # task's step progress, the later ones could not, so the progress before the cancel stays. Each
    # heartbeat is overwritten by the progress right after it in the batch and never stored.
    events = [*envelopes[:4], beats[0], beats[1], cancel, beats[2], beats[3], envelopes[-1]]
    await _run(_collector(pool, tmp_path, batch_size=100), events)
    kept = await pg.fetch(
        "SELECT event_id FROM data_pipeline_events WHERE task_id = $1 AND type IN ('step_heartbeat', 'step_progress')"
        " ORDER BY seq",
        task_id,
    )
    assert [r["event_id"] for r in kept] == [b.event_id for b in (beats[1], beats[3])]
    live = await _read_models(pg)
    await rebuild_read_models(pool)
    assert await _read_models(pg) == live


async def test_a_batch_that_fails_after_its_events_were_copied_is_retried_whole(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_flush = UnitOfWork.flush
    failures = [ConnectionResetError("connection lost mid-batch (simulated)")]

    async def flaky_flush(self: UnitOfWork) -> None:
        await real_flush(self)  # the rows are written, then the transaction dies before its commit
        if failures:
            raise failures.pop()

    monkeypatch.setattr(UnitOfWork, "flush", flaky_flush)
    a, b = _task_id(), _task_id()
    messages = await _run(_collector(pool, tmp_path, batch_size=100), [*_envelopes(a), *_envelopes(b)])
    assert not failures and all(m.settled == ["ack"] for m in messages)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events") == len(messages)
    live = await _read_models(pg)
    assert len(live["logs"]) == 4 and len(live["executions"]) == 2
    for task_id in (a, b):
        assert len((tmp_path / task_id / LOG_FILE).read_text().splitlines()) == 2
    await rebuild_read_models(pool)
    assert await _read_models(pg) == live


class SlowPool:
    """A pool whose first connection takes a while: the next batches are full before the first is stored."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.slow = True

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        if self.slow:
            self.slow = False
            await asyncio.sleep(0.3)  # a slow first store: the next batch must wait its turn
        async with self._pool.acquire() as conn:
            yield conn


async def test_batches_stored_in_the_background_keep_their_order(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    messages = await _run(_collector(SlowPool(pool), tmp_path, batch_size=2), envelopes)
    assert all(m.settled == ["ack"] for m in messages)
    stored = await pg.fetch("SELECT event_id FROM data_pipeline_events ORDER BY seq")
    assert [r["event_id"] for r in stored] == [e.event_id for e in envelopes]
    row = await pg.fetchrow("SELECT status, step_status->>'ddl_generation' AS ddl FROM data_pipeline_tasks")
    assert (row["status"], row["ddl"]) == ("in_progress", "completed")


class GatedPool:
    """A pool whose acquisitions wait for the test to open the gate: every one, or only the `only`-th
    (the second is the first batch's log files, after its commit)."""

    def __init__(self, pool: asyncpg.Pool, only: int | None = None) -> None:
        self._pool = pool
        self.gate = asyncio.Event()
        self._only = only
        self._acquired = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        self._acquired += 1
        if self._only in (None, self._acquired):
            await self.gate.wait()
        async with self._pool.acquire() as conn:
            yield conn


async def _second_batch_stored_while_the_first_ones_files_wait(
    collector: BatchCollector,
    pg: asyncpg.Connection,
    messages: list[FakeMessage],
    release: Callable[[], None],
) -> None:
    """Two batches of two (the first four messages) are stored while the first one's log files are held
    back and nothing is acked yet; then `release` lets the files go, the rest is stored, all are acked."""
    # In the background: with two batches in flight, a delivery waits (the prefetch's back-pressure).
    delivering = asyncio.create_task(_deliver(collector, messages[:4]))
    await eventually(
        lambda: pg.fetchval("SELECT count(*) = 4 FROM data_pipeline_events"),
        timeout=10,
        interval=0.02,
        what="the second batch committed while the first one's files wait",
    )
    assert not any(m.settled for m in messages), "a batch was acked before the one committed before it"
    release()
    await delivering
    await _deliver(collector, messages[4:])
    await _wait_settled(messages)
    await collector.drain()
    assert all(m.settled == ["ack"] for m in messages)


async def _log_file_as_the_table(pg: asyncpg.Connection, data_root: Path, task_id: str) -> list[str]:
    """The task's data_pipeline.log lines, checked to name the table's log rows in order."""
    lines = (data_root / task_id / LOG_FILE).read_text().splitlines()
    ids = [r["id"] for r in await pg.fetch("SELECT id FROM data_pipeline_task_logs ORDER BY id")]
    assert [line.rsplit("(#", 1)[1].rstrip(")") for line in lines] == [str(i) for i in ids]
    return lines


async def test_the_next_batch_stores_while_the_last_ones_files_are_written_and_acks_keep_commit_order(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    # The log files and the acks of a committed batch run outside the store's lock (the next batch's
    # transaction goes on meanwhile), but in commit order: a later batch acked first would settle the
    # earlier one's deliveries (ack multiple) before its file was written, and lines would interleave.
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    gated = GatedPool(pool, only=2)
    collector = _collector(gated, tmp_path, batch_size=2)
    acked: list[int] = []
    messages = [FakeMessage(e) for e in envelopes]
    for message in messages:
        settle = message._settle

        def recording(how: str, message: FakeMessage = message, settle: Any = settle) -> None:
            acked.append(message.delivery_tag)
            settle(how)

        message._settle = recording  # type: ignore[method-assign]

    await _second_batch_stored_while_the_first_ones_files_wait(collector, pg, messages, gated.gate.set)
    assert acked == sorted(acked)
    stored = await pg.fetch("SELECT event_id FROM data_pipeline_events ORDER BY seq")
    assert [r["event_id"] for r in stored] == [e.event_id for e in envelopes]
    lines = await _log_file_as_the_table(pg, tmp_path, task_id)
    assert len(lines) == 2 and "working" in lines[-1]


async def test_events_arriving_while_a_batch_writes_its_files_are_stored_without_waiting_for_them(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    # Group commit takes what arrived during a store when that store ends, not after the batch's log
    # files and acks: at light load a task's last events would otherwise wait for the files of the ones
    # before them.
    envelopes = _envelopes(_task_id())
    gated = GatedPool(pool, only=2)
    collector = _collector(gated, tmp_path, batch_size=100)
    # The first batch (created, started) has a log line: its files take the second connection.
    messages = [FakeMessage(e) for e in envelopes]
    first, rest = messages[:2], messages[2:]
    await _deliver(collector, first)

    async def stored(count: int) -> bool:
        return bool(await pg.fetchval("SELECT count(*) FROM data_pipeline_events") == count)

    await eventually(lambda: stored(2), timeout=10, interval=0.02, what="the first batch committed")
    await _deliver(collector, rest)
    await eventually(
        lambda: stored(len(envelopes)),
        timeout=10,
        interval=0.02,
        what="the next batch committed while the first one's files wait",
    )
    assert not any(m.settled for m in messages)
    gated.gate.set()
    await _wait_settled(messages)
    await collector.drain()
    assert all(m.settled == ["ack"] for m in messages)


async def test_events_arriving_while_a_batch_is_stored_go_as_one_batch_in_order(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    # Group commit: a flush timer firing while a batch is being stored must not queue a small batch of
    # its own behind it (each paying a batch's round trips and commit: a steady rate falls behind).
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    gated = GatedPool(pool)
    collector = _collector(gated, tmp_path, batch_size=100)
    messages = [FakeMessage(e) for e in envelopes]
    for message in messages:
        await collector.on_message(message)  # type: ignore[arg-type]
        await asyncio.sleep(0.03)  # three times the flush timer: each event's timer fires
    gated.gate.set()
    await _wait_settled(messages)
    await collector.drain()
    assert all(m.settled == ["ack"] for m in messages)
    stored = await pg.fetch("SELECT event_id, xmin::text AS tx FROM data_pipeline_events ORDER BY seq")
    assert [r["event_id"] for r in stored] == [e.event_id for e in envelopes]
    # The first event alone (its timer fired before the others came), then the rest as one batch.
    assert len({r["tx"] for r in stored}) == 2


async def test_with_no_flush_wait_a_burst_of_deliveries_still_goes_as_one_batch(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    # DP_COLLECTOR_FLUSH_MS=0 (the default): no timer to wait out at light load, yet the events one read
    # of the socket delivers (each its own on_message task, all ready at once) still share a batch.
    envelopes = _envelopes(_task_id())
    collector = BatchCollector(pool=pool, files=TaskLogFiles(tmp_path), batch_size=100, flush_seconds=0)
    lone, burst = FakeMessage(envelopes[0]), [FakeMessage(e) for e in envelopes[1:]]
    await collector.on_message(lone)  # type: ignore[arg-type]
    await _wait_settled([lone])
    await asyncio.gather(*(collector.on_message(m) for m in burst))  # type: ignore[arg-type]
    await _wait_settled(burst)
    await collector.drain()
    stored = await pg.fetch("SELECT event_id, xmin::text AS tx FROM data_pipeline_events ORDER BY seq")
    assert [r["event_id"] for r in stored] == [e.event_id for e in envelopes]
    assert len({r["tx"] for r in stored}) == 2


async def test_a_rebuild_in_small_chunks_gives_the_live_rows(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.log_collector.rebuild as rebuild

    a, b = _task_id(), _task_id()
    ea, eb = _envelopes(a), _envelopes(b)
    at = ea[0].occurred_at
    exec_a = ea[2].payload.execution_id  # type: ignore[union-attr]
    ea = [*ea[:4], *_beats(a, StepName.DDL_GENERATION, exec_a, at, 3), *ea[4:], _finished(a, at)]
    mixed = [e for pair in zip(ea, eb, strict=False) for e in pair] + ea[len(eb) :]
    await _run(_collector(pool, tmp_path, batch_size=7), mixed)
    live = await _read_models(pg)
    monkeypatch.setattr(rebuild, "CHUNK", 3)  # a task's events and rows span many chunks
    await rebuild.rebuild_read_models(pool)
    assert await _read_models(pg) == live


async def test_a_command_or_garbage_on_the_event_queue_is_dead_lettered_and_events_go_on(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    from shared.commands import CancelTask
    from shared.messages import CommandEnvelope, encode

    task_id = _task_id()
    envelopes = _envelopes(task_id)
    events = [FakeMessage(e) for e in envelopes]
    command, garbage = FakeMessage(envelopes[0]), FakeMessage(envelopes[0])  # bodies replaced below
    command.body = encode(CommandEnvelope(task_id=task_id, producer="t", payload=CancelTask()))  # type: ignore[arg-type]
    garbage.body = b'{"kind": "event", "payload": {"type": "no_such_event"}}'
    collector = _collector(pool, tmp_path)
    await _deliver(collector, [*events[:3], command, garbage, *events[3:]])
    await _wait_settled([*events, command, garbage])
    await collector.drain()
    assert command.settled == garbage.settled == ["reject(requeue=False)"]
    assert all(m.settled == ["ack"] for m in events)
    assert await pg.fetchval("SELECT count(*) FROM data_pipeline_events") == len(events)


def _as_messages(envelopes: list[EventEnvelope], sizes: list[int], channel: Any = None) -> list[FakeMessage]:
    """The envelopes in messages of `sizes` events each (a size of 1: the event itself), as producers
    batch them (shared/event_batches.py)."""
    messages, at = [], 0
    for size in sizes:
        run = envelopes[at : at + size]
        body = run[0] if size == 1 else EventBatch(events=tuple(run))
        messages.append(FakeMessage(body, channel) if channel else FakeMessage(body))
        at += size
    assert at == len(envelopes)
    return messages


# The scheduler's task_created, task_started and step_scheduled in one message; step_started alone; a
# log line riding ahead of the step's end.
SIZES = [3, 1, 2]


async def test_a_message_carrying_several_events_stores_each_once_in_order_and_is_settled_once(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    batched_task, single_task = _task_id(), _task_id()
    envelopes = _envelopes(batched_task)
    collector = _collector(pool, tmp_path, batch_size=2)  # the store's batches end inside messages
    for _ in range(2):  # the second time: a redelivery, which changes nothing
        messages = _as_messages(envelopes, SIZES)
        await _deliver(collector, messages)
        await _wait_settled(messages)
        await collector.drain()
        assert all(m.settled == ["ack"] for m in messages)
    stored = await pg.fetch(
        "SELECT event_id FROM data_pipeline_events WHERE task_id = $1 ORDER BY seq", batched_task
    )
    assert [r["event_id"] for r in stored] == [e.event_id for e in envelopes]
    await _run(_collector(pool, tmp_path), _envelopes(single_task))  # the same events, one per message
    shown = "SELECT status, progress, current_step FROM data_pipeline_tasks WHERE id = $1"
    assert dict(await pg.fetchrow(shown, batched_task)) == dict(await pg.fetchrow(shown, single_task))
    for task_id in (batched_task, single_task):
        assert len((tmp_path / task_id / LOG_FILE).read_text().splitlines()) == 2
    live = await _read_models(pg)
    await rebuild_read_models(pool)
    assert await _read_models(pg) == live


async def test_a_batch_message_whose_event_fails_goes_back_whole_and_the_others_are_stored(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    task, other = _task_id(), _task_id()
    # PostgreSQL cannot store NUL in text: the batch fails, then the collector stores message by message.
    poison = EventEnvelope(task_id=task, producer="test", payload=LogEmitted(message="bad \x00 byte"))  # type: ignore[arg-type]
    channel = FakeChannel()
    messages = [
        *_as_messages([*_envelopes(task)[:3], poison], [4], channel),
        *_as_messages(_envelopes(other), SIZES, channel),
    ]
    await _deliver(_collector(pool, tmp_path, batch_size=50), messages)
    await _wait_settled(messages)
    assert messages[0].settled == ["nack(requeue=True)"]  # once: the broker refuses a second settle
    assert all(m.settled == ["ack"] for m in messages[1:])
    count = "SELECT count(*) FROM data_pipeline_events WHERE task_id = $1"
    assert (await pg.fetchval(count, task), await pg.fetchval(count, other)) == (0, 6)


class SlowFiles(TaskLogFiles):
    """Log files whose writes block (as a new task's directory and file do on a slow disk) until the test
    lets them go."""

    def __init__(self, data_root: Path) -> None:
        super().__init__(data_root)
        self.release = threading.Event()

    def append(self, task_id: str, rows: list[dict[str, Any]], before: int | None) -> bool:
        assert self.release.wait(timeout=5), "the test never let the files go"
        return super().append(task_id, rows, before)


async def test_the_next_batch_is_stored_while_the_last_ones_files_block_the_disk(
    pool: asyncpg.Pool, pg: asyncpg.Connection, tmp_path: Path
) -> None:
    # The files are written in a thread: the event loop goes on storing the next batch meanwhile. On the
    # loop, a blocked write would stop everything (here: the test itself, which would never release it).
    task_id = _task_id()
    envelopes = _envelopes(task_id)
    files = SlowFiles(tmp_path)
    collector = BatchCollector(pool=pool, files=files, batch_size=2, flush_seconds=0.01)
    messages = [FakeMessage(e) for e in envelopes]
    await _second_batch_stored_while_the_first_ones_files_wait(collector, pg, messages, files.release.set)
    assert len(await _log_file_as_the_table(pg, tmp_path, task_id)) == 2
