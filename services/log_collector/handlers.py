"""Consumes every event in batches: one transaction stores the batch and updates the read models
(services/log_collector/batch_store.py), then the batch is acked. A redelivered event is already in the
store, so it changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aio_pika.abc import AbstractChannel
from pydantic import ValidationError

from services.log_collector.adapters.task_files import TaskLogFiles
from services.log_collector.batch_store import PreparedBatch, prepare, store_batch
from services.log_collector.metrics import CollectorMetrics
from services.log_collector.projections import Projector
from services.log_collector.unit_of_work import LOG_COLUMNS
from shared.deliveries import Message
from shared.events import RUNNING_STEP_TYPES
from shared.logging import get_logger
from shared.messages import EVENTS_ADAPTER, CommandEnvelope, EventBatch, EventEnvelope, decode_message
from shared.retry import TRANSIENT_ERRORS, delays

log = get_logger()
_RETRY_BASE_DELAY = 0.2
_RETRY_MAX_DELAY = 5.0
_SYNC_SECONDS = 1.0  # data_pipeline.log files are fsynced at least this often (a finishing task's at once)
_FILE_COLUMNS = ("id", "timestamp", "log_level", "step_name", "message")
_AT = [LOG_COLUMNS.index(c) for c in _FILE_COLUMNS]
# The id of each task's log row before the first one a commit added (None: it has none).
_BEFORE = """
SELECT t.task_id,
       (SELECT max(l.id) FROM data_pipeline_task_logs l WHERE l.task_id = t.task_id AND l.id < t.first_id) AS before
FROM unnest($1::varchar[], $2::bigint[]) AS t(task_id, first_id)
"""


def _lines_by_task(committed: Projector) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(committed.uow.written_logs, key=lambda r: r[0]):
        out.setdefault(row[1], []).append(dict(zip(_FILE_COLUMNS, (row[i] for i in _AT), strict=True)))
    return out


async def _ack_batch(messages: list[Message]) -> None:
    """One `basic.ack multiple` per channel for a committed batch instead of one ack per event: the
    broker settles the quorum queue's messages in one command. Safe because every delivery before the
    batch's last one on that channel is settled already: batches are taken in delivery order and
    stored one at a time, and messages outside a batch were rejected on arrival."""
    last: dict[int, Message] = {}
    for message in messages:
        key = id(message.channel)  # a restored channel numbers its deliveries afresh
        if key not in last or (message.delivery_tag or 0) > (last[key].delivery_tag or 0):
            last[key] = message
    for message in last.values():
        await message.ack(multiple=True)


@dataclass
class BatchCollector:
    pool: asyncpg.Pool
    files: TaskLogFiles
    batch_size: int
    flush_seconds: float
    channel: AbstractChannel | None = None
    metrics: CollectorMetrics = field(default_factory=CollectorMetrics.build)
    compact: bool = (
        True  # heartbeats and progress compacted (shared/event_compaction.py); the bench turns it off
    )
    linger_seconds: float = 0.0  # how long a running step's events alone may wait for more (`_schedule`)
    _pending: list[tuple[Message, EventEnvelope]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one batch stores at a time
    _files_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # log files and acks, in commit order
    _timer: asyncio.TimerHandle | None = None
    _pending_since: float = 0.0  # loop time the oldest pending event arrived
    _at_once: bool = False  # a pending event is not a running step's (stored without the linger)
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)
    _to_store: int = 0  # batches taken that have not left the store's lock yet
    _behind: set[str] = field(default_factory=set)  # tasks whose log file could not be written yet
    _stopping: bool = False
    _synced_at: float = 0.0
    _sync: asyncio.Task[None] | None = None
    stored: int = 0

    async def on_message(self, message: Message) -> None:
        try:
            # The queue carries events: validating them directly costs half of the union with commands.
            decoded: EventEnvelope | CommandEnvelope | EventBatch = EVENTS_ADAPTER.validate_json(message.body)
        except ValidationError:
            try:
                decoded = decode_message(message.body)
            except ValidationError as exc:
                log.error("malformed message sent to the dead-letter queue", error=str(exc)[:2000])
                self.metrics.dead_lettered.labels("malformed").inc()
                await message.reject(requeue=False)
                return
        if isinstance(decoded, CommandEnvelope):
            log.error("a command on the event queue sent to the dead-letter queue", type=decoded.type)
            self.metrics.dead_lettered.labels("not_an_event").inc()
            await message.reject(requeue=False)
            return
        # A batch's events enter one batch of the store together (nothing awaits in between).
        events = decoded.events if isinstance(decoded, EventBatch) else (decoded,)
        if not self._pending:
            self._pending_since = asyncio.get_running_loop().time()
        self._pending.extend((message, envelope) for envelope in events)
        self._at_once = self._at_once or any(envelope.type not in RUNNING_STEP_TYPES for envelope in events)
        if len(self._pending) >= self.batch_size:
            # Store this batch while the next one is read (when the channel's prefetch lets more than
            # one batch in); with one batch storing and one waiting, wait here.
            self._flush_soon()
            while len(self._flushing) > 1:
                await asyncio.wait(self._flushing, return_when=asyncio.FIRST_COMPLETED)
        else:
            self._schedule()

    def _schedule(self) -> None:
        """The pending events' store, `flush_seconds` after the oldest arrived, or `linger_seconds` while
        they are all a running step's (shared.events.RUNNING_STEP_TYPES). Nobody waits to read those back
        at once: the gateway's live streams take them from the broker, and what the gateway waits for (a
        new task, a delete, a review decision) and what a runner checks (a step's outcome) are stored at
        once. Under a trickle of them (log lines, heartbeats, progress) sharing a transaction is most of
        their cost. Any other event takes the waiting ones before it along: a task's read model is never
        behind by more than the linger, nor behind its last event of the other kind."""
        wait = self.flush_seconds if self._at_once else max(self.flush_seconds, self.linger_seconds)
        due = self._pending_since + wait
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._to_store:
            self._flush_soon()
        # Otherwise a batch is being stored: what arrives meanwhile goes as one batch when its store
        # ends (_stored), not after its log files. Taking it now would queue small batches behind the
        # lock, each paying a batch's fixed round trips and commit, and under a steady rate the
        # collector would fall behind.

    def _flush_soon(self) -> None:
        batch = self._take()
        if batch:
            self._to_store += 1
            task = asyncio.create_task(self._flush(batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    def _stored(self) -> None:
        """A batch left the store's lock: what arrived meanwhile goes next, as one batch (a running step's
        events alone once their linger is up)."""
        self._to_store -= 1
        if self._pending and not self._to_store and (self._at_once or self._timer is None):
            self._flush_soon()

    def _take(self) -> list[tuple[Message, EventEnvelope]]:
        """The pending messages, as the next batch (batches are stored in the order they were taken:
        the lock wakes its waiters first come, first served)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        self._at_once = False
        return batch

    async def flush(self) -> None:
        """Store what is pending, after the batches taken before it (all go through tasks, which take
        the lock in the order they were created)."""
        self._flush_soon()
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    async def _flush(self, batch: list[tuple[Message, EventEnvelope]]) -> None:
        prepared = None
        # Before the lock: this runs while the batch before it waits on PostgreSQL. Should it fail, it
        # fails again under the lock, where a failing batch is stored message by message.
        with contextlib.suppress(Exception):
            prepared = prepare([envelope for _, envelope in batch], compact=self.compact)
        try:
            committed = await self._store_in_turn(batch, prepared)
        finally:
            self._stored()
        if committed is None:
            return
        try:
            await self._after_commit(committed)
            await _ack_batch([message for message, _ in batch])
            self.stored += len(batch)
        finally:
            self._files_lock.release()

    async def _store_in_turn(
        self, batch: list[tuple[Message, EventEnvelope]], prepared: PreparedBatch | None
    ) -> Projector | None:
        """Store the batch under the store's lock. Committed: the files' turn is held on return (the
        caller writes the files, acks, and releases it), taken before the next batch may store, so that
        batches reach the files and are acked in commit order while the next batch's transaction runs.
        None: the batch was settled here (requeued, or stored message by message)."""
        async with self._lock:
            try:
                committed = await self._store_patiently(batch, prepared)
            except TRANSIENT_ERRORS as exc:
                log.warning("batch not stored before shutdown; requeued", size=len(batch), error=repr(exc))
                self.metrics.requeued.inc(len(batch))
                await self._settle(batch, requeue=True)
                return None
            except Exception as exc:
                # One bad event must not block the rest: store them one by one, requeue only the culprit.
                log.exception("batch failed; storing events one by one", error=repr(exc))
                async with self._files_lock:
                    await self._one_by_one(batch)
                return None
            await self._files_lock.acquire()
            return committed

    async def _store_patiently(
        self,
        batch: list[tuple[Message, EventEnvelope]],
        prepared: PreparedBatch | None = None,
    ) -> Projector:
        """Store the batch, waiting out transient failures (database down) with bounded backoff.

        Requeueing instead would spend the quorum queue's delivery limit within moments, dead-lettering
        events, and would put the batch behind events delivered meanwhile, which the projection needs
        in order. The batch stays unacked meanwhile, so the prefetch window holds back the rest.
        """
        waits = delays(_RETRY_BASE_DELAY, _RETRY_MAX_DELAY)
        delay = next(waits)
        while True:
            started = time.perf_counter()
            try:
                result = await self._store(batch, prepared)
            except TRANSIENT_ERRORS as exc:
                if self._stopping:
                    raise
                self.metrics.transient_retries.inc()
                log.warning("batch not stored; retrying", size=len(batch), delay=delay, error=repr(exc))
                await asyncio.sleep(delay)
                delay = next(waits)
                continue
            self.metrics.committed([envelope.type for _, envelope in batch], time.perf_counter() - started)
            self.metrics.beats_coalesced.inc(result.coalesced_beats)
            return result

    async def _store(
        self, batch: list[tuple[Message, EventEnvelope]], prepared: PreparedBatch | None
    ) -> Projector:
        if prepared is None:
            prepared = prepare([envelope for _, envelope in batch], compact=self.compact)
        async with self.pool.acquire() as conn, conn.transaction():
            return await store_batch(conn, prepared, compact=self.compact)

    async def _one_by_one(self, batch: list[tuple[Message, EventEnvelope]]) -> None:
        """Message by message (a message carries one event or one task's batch of them)."""
        for message, group in itertools.groupby(batch, key=lambda pair: pair[0]):
            events = list(group)
            try:
                removed = await self._store_patiently(events)
            except Exception as exc:
                log.exception("message not stored; requeued", type=events[-1][1].type, error=repr(exc))
                self.metrics.requeued.inc(len(events))
                await message.nack(requeue=True)
                continue
            await self._after_commit(removed)
            await message.ack()
            self.stored += len(events)

    async def _after_commit(self, committed: Projector) -> None:
        """Bring the task directories up to date: the batch's lines appended from memory where the file
        ends with the task's previous row, a catch-up from the table elsewhere. Never raises: the rows
        are committed, so the batch is acked regardless, and a log file that cannot be written now
        catches up after a later commit."""
        gone = committed.deleted_tasks | committed.files_cleaned_tasks
        for task_id in gone:
            self.files.remove_task(task_id)
        for task_id in committed.logs_purged_tasks - gone:
            self.files.remove_log(task_id)
        lines = _lines_by_task(committed)
        fresh = {t: rows for t, rows in lines.items() if t not in self._behind and t not in gone}
        self._behind = (self._behind | lines.keys() | committed.logged_tasks) - gone
        try:
            if fresh:
                async with self.pool.acquire() as conn:
                    before = await conn.fetch(
                        _BEFORE, list(fresh), [rows[0]["id"] for rows in fresh.values()]
                    )
                # In a thread: a new task's directory and file cost the disk's journal about a
                # millisecond each, which the event loop spends on the next batch meanwhile.
                starts = {row["task_id"]: row["before"] for row in before}
                self._behind -= await asyncio.to_thread(self.files.append_all, fresh, starts)
            if self._behind:
                async with self.pool.acquire() as conn:
                    for task_id in sorted(self._behind):
                        await self.files.catch_up(conn, task_id)
                        self._behind.discard(task_id)
            self._sync_soon()
        except Exception as exc:
            self.metrics.catch_up_failures.inc()
            log.warning("log file not written; it catches up later", tasks=len(self._behind), error=repr(exc))

    def _sync_soon(self) -> None:
        """fsync the written log files in a thread, at most every _SYNC_SECONDS and one sync at a time."""
        if self._sync is not None and not self._sync.done():
            return
        if time.monotonic() - self._synced_at < _SYNC_SECONDS:
            return
        self._synced_at = time.monotonic()
        self._sync = asyncio.create_task(asyncio.to_thread(self.files.sync))

    async def _settle(self, batch: list[tuple[Message, EventEnvelope]], *, requeue: bool) -> None:
        for message in dict.fromkeys(message for message, _ in batch):  # a batch's message once
            with contextlib.suppress(Exception):
                await message.nack(requeue=requeue)

    async def drain(self) -> None:
        self._stopping = True
        await self.flush()
        with contextlib.suppress(OSError):
            if self._sync is not None:
                await self._sync
            self.files.sync()
